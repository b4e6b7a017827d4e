package marvell_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/marvell"
)

// A Google Cloud HSM key attestation, verified offline against the pinned
// Marvell and Google roots, at the time the evidence was logged.
func ExampleVerifier_Verify() {
	file := func(name string) []byte {
		b, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "attest", "marvell", name))
		return b
	}
	mfr, _ := attest.ParseRootPEM(file("marvell-cavium-root-2015.pem"))
	owner, _ := attest.ParseRootPEM(file("google-hawksbill-root-v1-prod.pem"))
	v, _ := marvell.NewVerifier(marvell.Config{Manufacturer: mfr, Owner: &owner})

	certs, _ := attest.CertificatesPEM(file("cert-chains.pem"))
	res := v.Verify(marvell.Evidence{
		Attestation:  file("ec-key-attestation.dat.gz"), // CAVIUM_V1_COMPRESSED
		Certificates: certs,
		LoggedAt:     time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC),
		ExpectedKey:  "4075a3e5a13e33095430962abcbacbef32d7737234868785d2420893293fc86a",
	})
	for _, c := range res.Checks {
		fmt.Println(c.Status, c.Name)
	}
	fmt.Println("verified:", res.Verified, res.Strength)
	fmt.Println("HSM:", res.Facts.Token.Model, res.Facts.Token.Serial, "partition", res.Facts.Partition)
	a := res.Facts.Attributes
	fmt.Printf("%s key %q: local=%v neverExtractable=%v alwaysSensitive=%v\n",
		res.Facts.Algorithm, res.Facts.Label, a.Local, a.NeverExtractable, a.AlwaysSensitive)
	// Output:
	// PASS attestation.decode
	// PASS manufacturer.chain
	// PASS owner.chain
	// PASS chains.same-keys
	// PASS attestation.signature
	// PASS attestation.format
	// PASS key.objects
	// PASS key.check-values
	// PASS key.binding
	// PASS key.non-export
	// PASS hsm.identity
	// verified: true vendor-attested
	// HSM: N3FIPS 5.3G1953-ICM001225 partition 1
	// ECDSA P-256 key "app_key": local=true neverExtractable=true alwaysSensitive=true
}
