package verify_test

import (
	"context"
	"fmt"

	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify"
)

// A dishonest operator drops an approval from a bundle and signs it again: the
// bundle's signature is valid, the rotation is not, and the failed check says why.
func ExampleVerifier_VerifyBundle_tampered() {
	b, _ := scenario.Build(context.Background(), "example", nil)
	trust, _ := verify.ParseTrust(b.TrustJSON)
	policy, _ := verify.ParsePolicy([]byte(scenario.PolicyYAML))
	v, _ := verify.New(trust, policy)

	b.Bundle.Entries = append(b.Bundle.Entries[:4:4], b.Bundle.Entries[5:]...)
	raw, _ := b.Resign(context.Background(), b.Bundle)

	res, err := v.VerifyBundle(raw, verify.Options{})
	if err != nil {
		fmt.Println("unreadable:", err)
		return
	}
	fmt.Println("verified:", res.Verified)
	for _, c := range res.Checks {
		if c.Status == verify.Fail {
			fmt.Printf("%s %s: %s\n", c.Status, c.Name, c.Reason)
		}
	}
	// Output:
	// verified: false
	// FAIL rotation.structure: rotation rule: 1 valid approvals before promotion, policy requires 2 from distinct approvers
}
