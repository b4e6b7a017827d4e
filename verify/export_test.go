package verify

import "github.com/keytrail/keytrail/evidence"

// VerifyConsistency exposes verifyConsistency to the external tests, which
// check its binding to the checkpoints' sizes directly (ATTACKS.md cases 2-4).
var VerifyConsistency = verifyConsistency

// BrokenVerifier returns a Verifier whose policy is missing, so that rule
// checking dereferences nil: a stand-in for any bug that panics mid-way.
func BrokenVerifier(v *Verifier) *Verifier { return &Verifier{trust: v.trust} }

// MayRelate exposes the log scan's pre-filter, whose soundness
// FuzzMayRelateSound checks against the parser.
func MayRelate(payload []byte, r evidence.Rotation) bool {
	return mayRelate(payload, relationNeedles(r))
}
