package verify

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParsePolicyKeyClasses(t *testing.T) {
	const head = "version: 1\nrotation: {approverRoles: [custody-officer]}\n"
	p, err := ParsePolicy([]byte(head + `keyClasses:
  hot-signing:
    rotationWindow: {min: 90d, max: 180d}
    minStrength: vendor-attested
    jurisdictions: [EU]
  root: {rotationWindow: {min: 1y, max: 3y}}
`))
	if err != nil {
		t.Fatal(err)
	}
	hot := p.KeyClasses["hot-signing"]
	if time.Duration(hot.RotationWindow.Min) != 90*24*time.Hour || time.Duration(hot.RotationWindow.Max) != 180*24*time.Hour {
		t.Errorf("hot-signing window = %v..%v", hot.RotationWindow.Min, hot.RotationWindow.Max)
	}
	if hot.MinStrength != "vendor-attested" || len(hot.Jurisdictions) != 1 || hot.Jurisdictions[0] != "EU" {
		t.Errorf("hot-signing = %+v", hot)
	}
	if got := time.Duration(p.KeyClasses["root"].RotationWindow.Max); got != 3*365*24*time.Hour {
		t.Errorf("root max = %v", got)
	}

	for _, tc := range []struct{ body, want string }{
		{"keyClasses: {hot: {rotationWindow: {min: 9d, max: 1d}}}", "keyClasses.hot.rotationWindow"},
		{"keyClasses: {hot: {rotationWindow: {min: 0d, max: 1d}}}", "duration \"0d\""},
		{"keyClasses: {hot: {rotationWindow: {min: -1h, max: 1d}}}", "duration \"-1h\""},
		{"keyClasses: {hot: {rotationWindow: {min: 1d}}}", "keyClasses.hot.rotationWindow"},
		{"keyClasses: {hot: {minStrength: hardware}}", "keyClasses.hot.minStrength"},
		{"keyClasses: {hot: {minStrength: unverified}}", "keyClasses.hot.minStrength"},
		{"keyClasses: {hot: {jurisdictions: [\" EU\"]}}", "keyClasses.hot.jurisdictions[0]"},
		{"keyClasses: {hot: }", "keyClasses.hot.empty"},
		{"keyClasses: {hot: {residency: EU}}", "field residency not found"},
	} {
		_, err := ParsePolicy([]byte(head + tc.body + "\n"))
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrPolicy naming %q", tc.body, err, tc.want)
		}
	}
}

func TestParsePolicyRuleSections(t *testing.T) {
	const head = "version: 1\nrotation: {approverRoles: [custody-officer]}\n"
	p, err := ParsePolicy([]byte(head + `deletion: {minRetention: 7d}
breakGlass: {quorum: 2, roles: [custody-officer]}
freshness: {maxAge: 24h, keyPolicySnapshot: 7d}
`))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(p.Deletion.MinRetention) != 7*24*time.Hour || p.BreakGlass.Quorum != 2 || time.Duration(p.Freshness.MaxAge) != 24*time.Hour {
		t.Errorf("policy = %+v %+v %+v", p.Deletion, p.BreakGlass, p.Freshness)
	}
	for _, tc := range []struct{ body, want string }{
		{"breakGlass: {quorum: 0, roles: [a]}", "breakGlass.quorum"},
		{"breakGlass: {quorum: 2}", "breakGlass.roles"},
		{"breakGlass: {quorum: 2, roles: [a], reason: x}", "field reason not found"},
		{"deletion: {}", "deletion"},
		{"freshness: {hsmAttestation: 1h}", "freshness"},
		{"freshness: {maxAge: soon}", "duration \"soon\""},
	} {
		_, err := ParsePolicy([]byte(head + tc.body + "\n"))
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrPolicy naming %q", tc.body, err, tc.want)
		}
	}
}
