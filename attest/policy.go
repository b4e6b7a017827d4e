package attest

import (
	"fmt"
	"strings"

	"github.com/keytrail/keytrail/evidence"
)

// NonExport checks that a key never left, and can never leave, its hardware
// (ATTACKS.md 26). It returns an error wrapping ErrPolicy that names every
// attribute that breaks the rule:
//
//   - LOCAL must be true: the key was generated in the token, not imported;
//   - NEVER_EXTRACTABLE must be true: the key was never extractable;
//   - ALWAYS_SENSITIVE must be true: the key was never readable in the clear;
//   - EXTRACTABLE must be false and SENSITIVE true: it is not extractable now.
//
// The attributes are only as good as the evidence they came from: see Strength.
func NonExport(a *evidence.KeyAttributes) error {
	if a == nil {
		return fmt.Errorf("%w: no key attributes", ErrPolicy)
	}
	var bad []string
	if !a.Local {
		bad = append(bad, "LOCAL=0 (imported, not generated in the HSM)")
	}
	if !a.NeverExtractable {
		bad = append(bad, "NEVER_EXTRACTABLE=0 (was extractable at some time)")
	}
	if !a.AlwaysSensitive {
		bad = append(bad, "ALWAYS_SENSITIVE=0 (was not always sensitive)")
	}
	if a.Extractable {
		bad = append(bad, "EXTRACTABLE=1 (can be exported)")
	}
	if !a.Sensitive {
		bad = append(bad, "SENSITIVE=0 (can be read in the clear)")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrPolicy, strings.Join(bad, ", "))
	}
	return nil
}

// nonExportReason is the reason of a passed CheckNonExport.
const nonExportReason = "LOCAL=1, NEVER_EXTRACTABLE=1, ALWAYS_SENSITIVE=1, EXTRACTABLE=0, SENSITIVE=1"

// CheckKeyPolicy records CheckNonExport on r for attrs: PASS if NonExport
// accepts them, FAIL naming each attribute otherwise. The reason says where the
// attributes came from.
func (r *Result) CheckKeyPolicy(attrs *evidence.KeyAttributes, source string) {
	if err := NonExport(attrs); err != nil {
		r.Fail(CheckNonExport, fmt.Errorf("%w (%s)", err, source))
		return
	}
	r.Pass(CheckNonExport, nonExportReason+" ("+source+")")
}

// CheckKeyBinding records CheckBinding on r: SKIP if expected is empty, PASS if
// the attested key's digest is expected, FAIL otherwise. expected is a keytrail
// key digest (64 lowercase hex digits).
func (r *Result) CheckKeyBinding(expected string) {
	switch {
	case expected == "":
		r.Skip(CheckBinding, "no expected key given")
	case !isDigest(expected):
		r.Fail(CheckBinding, fmt.Errorf("%w: expected key %q is not 64 lowercase hex digits", ErrInput, expected))
	case r.Facts.KeyDigest == "":
		r.Fail(CheckBinding, fmt.Errorf("%w: no attested key to compare with %s", ErrBinding, expected))
	case r.Facts.KeyDigest != expected:
		r.Fail(CheckBinding, fmt.Errorf("%w: attested key %s, expected %s", ErrBinding, r.Facts.KeyDigest, expected))
	default:
		r.Pass(CheckBinding, "attested key is the expected key "+expected)
	}
}

func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
