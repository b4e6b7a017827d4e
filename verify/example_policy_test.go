package verify_test

import (
	"context"
	"fmt"

	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify"
)

// A rotation checked against every policy rule: the old key's service period,
// its receipts, the new key's smoke test, deletion, break-glass, separation of
// duties and residency (claims signed by a residency authority).
func ExampleVerifier_VerifyBundle_policyRules() {
	b, err := scenario.BuildPolicy(context.Background(), "example", nil)
	if err != nil {
		panic(err)
	}
	v, err := verify.New(b.Trust, b.Policy)
	if err != nil {
		panic(err)
	}
	res, err := v.VerifyBundle(b.BundleBytes, verify.Options{})
	if err != nil {
		panic(err)
	}
	for _, name := range []string{
		verify.CheckRotationWindow, verify.CheckReceiptsSignature, verify.CheckReceiptsBeforePromotion,
		verify.CheckReceiptsAfterDisable, verify.CheckDeletionRetention, verify.CheckBreakGlassQuorum,
		verify.CheckSeparationOfDuties, verify.CheckResidency,
	} {
		fmt.Println(res.Check(name).Status, name)
	}
	fmt.Println("verified:", res.Verified)
	// Output:
	// PASS rotation.window
	// PASS receipts.signature
	// PASS receipts.before-promotion
	// PASS receipts.after-disable
	// PASS deletion.retention
	// PASS break-glass.quorum
	// PASS policy.separation-of-duties
	// PASS residency
	// verified: true
}
