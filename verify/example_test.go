package verify_test

import (
	"context"
	"fmt"

	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify"
)

// A Verifier is built once from the trust file and the policy; each bundle is
// then checked offline, and the result lists every check by name.
func ExampleVerifier_VerifyBundle() {
	b, _ := scenario.Build(context.Background(), "example", nil)

	trust, _ := verify.ParseTrust(b.TrustJSON)
	policy, _ := verify.ParsePolicy([]byte(scenario.PolicyYAML))
	v, _ := verify.New(trust, policy)

	res, err := v.VerifyBundle(b.BundleBytes, verify.Options{})
	if err != nil {
		fmt.Println("unreadable:", err)
		return
	}
	for _, c := range res.Checks {
		fmt.Println(c.Status, c.Name)
	}
	fmt.Println("verified:", res.Verified)
	fmt.Println("checks the verdict does not cover:", len(res.Skipped))
	// Output:
	// PASS bundle.signature
	// PASS bundle.format
	// PASS checkpoint.signature
	// PASS entries.inclusion
	// PASS entries.signature
	// PASS entries.binding
	// SKIP checkpoint.consistency
	// PASS rotation.structure
	// SKIP keys.hardware
	// SKIP log.completeness
	// SKIP rotation.window
	// SKIP receipts.signature
	// PASS receipts.before-promotion
	// PASS receipts.after-disable
	// SKIP deletion.retention
	// SKIP break-glass.quorum
	// SKIP policy.separation-of-duties
	// SKIP residency
	// PASS keys.lifecycle
	// verified: true
	// checks the verdict does not cover: 9
}
