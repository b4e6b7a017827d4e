package kmspolicy_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"time"

	"github.com/keytrail/keytrail/collectors/kmspolicy"
	"github.com/keytrail/keytrail/evidence"
)

func read(path string) kmspolicy.File {
	b, err := os.ReadFile("../../testdata/kmspolicy/" + path)
	if err != nil {
		panic(err)
	}
	return kmspolicy.File{Name: path, Data: b}
}

// A collector turns an operator's AWS export into a signed key-policy
// snapshot, and the separation-of-duties question is asked of it.
func Example() {
	// The subject: the key's ARN and the SHA-256 of its public key, from
	// `aws kms get-public-key`.
	key, err := kmspolicy.KeyRefFromAWSPublicKey(read("aws/hot-1-eusc/get-public-key.json"))
	if err != nil {
		fmt.Println(err)
		return
	}
	snap, err := kmspolicy.CollectAWS(kmspolicy.AWSExport{
		DescribeKey: read("aws/hot-1-eusc/describe-key.json"),
		KeyPolicy:   read("aws/hot-1-eusc/get-key-policy.json"),
		Grants:      read("aws/hot-1-eusc/list-grants.json"),
	}, kmspolicy.Request{Key: key, Time: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := snap.Policy.Resource
	fmt.Println("key in", r.Partition, r.Region, "account", r.Account)

	collector, _ := evidence.NewSigner(ed25519.NewKeyFromSeed(make([]byte, 32)))
	if _, err := snap.Sign(context.Background(), collector); err != nil {
		fmt.Println(err)
		return
	}

	duties, err := kmspolicy.AdminSigners(snap.Predicate.Provider, snap.Predicate.Bindings, snap.Predicate.Denies)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range duties.Conflicts {
		fmt.Printf("administers and signs: %s (conditional: %v)\n", c.Principal, c.Conditional)
	}
	// Output:
	// key in aws-eusc eusc-de-east-1 account 210987654321
	// administers and signs: AWS:arn:aws-eusc:iam::210987654321:role/custody-ops (conditional: true)
	// administers and signs: AWS:arn:aws-eusc:iam::210987654321:root (conditional: false)
}
