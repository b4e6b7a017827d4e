package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keytrail/keytrail/attest"
)

// MaxPolicyBytes bounds a policy file.
const MaxPolicyBytes = 1 << 20

// Policy is the YAML policy file: the rules a rotation must meet. Decoding is
// strict: unknown fields and duplicate keys are errors. See docs/policy.md.
type Policy struct {
	// Version is 1.
	Version int `yaml:"version"`
	// Rotation holds the rotation rules.
	Rotation RotationPolicy `yaml:"rotation"`
	// KeyClasses holds the rules of each key class, by the class name a
	// rotation carries (evidence.Rotation.KeyClass), e.g. "hot-signing".
	KeyClasses map[string]*KeyClassPolicy `yaml:"keyClasses"`
	// Deletion holds the rules of key deletion (check deletion.retention).
	Deletion *DeletionPolicy `yaml:"deletion"`
	// BreakGlass holds the rules of break-glass events (check
	// break-glass.quorum). Without it, any break-glass event fails.
	BreakGlass *BreakGlassPolicy `yaml:"breakGlass"`
	// Freshness holds the limits of `keytrail verify freshness`.
	Freshness *FreshnessPolicy `yaml:"freshness"`
	// Require lists checks that must PASS for a bundle to verify, beyond
	// those that always must (e.g. [log.completeness,
	// checkpoint.consistency]): a SKIP of one of them fails the bundle.
	Require []string `yaml:"require"`
	// Authority maps a lifecycle event type to the roles whose holders may
	// sign events of that type (see authority.go and docs/policy.md). A type
	// not listed takes its default; a type listed with no roles may be
	// signed by nobody.
	Authority map[string][]string `yaml:"authority"`
}

// DeletionPolicy holds the rules of key deletion.
type DeletionPolicy struct {
	// MinRetention is the shortest retention a schedule-deletion event may
	// give (e.g. 30d). Optional.
	MinRetention Duration `yaml:"minRetention"`
}

// BreakGlassPolicy holds the rules of break-glass events.
type BreakGlassPolicy struct {
	// Quorum is how many distinct principals holding one of Roles must be
	// listed in a break-glass event's quorum. At least 1.
	Quorum int `yaml:"quorum"`
	// Roles are the roles whose holders count towards the quorum. Required.
	Roles []string `yaml:"roles"`
}

// FreshnessPolicy holds the age limits of the freshness gate: the latest
// record of each type about a key must be in a checkpoint, and made, no
// longer ago than the limit. A type without a limit takes MaxAge.
type FreshnessPolicy struct {
	// MaxAge is the default limit (e.g. 24h).
	MaxAge Duration `yaml:"maxAge"`
	// HSMAttestation, TPMAttestation and KeyPolicySnapshot are per-type
	// limits (optional).
	HSMAttestation    Duration `yaml:"hsmAttestation"`
	TPMAttestation    Duration `yaml:"tpmAttestation"`
	KeyPolicySnapshot Duration `yaml:"keyPolicySnapshot"`
}

// KeyClassPolicy holds the rules for the keys of one class.
type KeyClassPolicy struct {
	// RotationWindow bounds how long a key of the class may serve before it is
	// rotated (see docs/policy.md).
	RotationWindow *DurationRange `yaml:"rotationWindow"`
	// MinStrength is the weakest hardware evidence accepted for a key of the
	// class: one of software, self-reported, tpm-certified, vendor-attested.
	MinStrength attest.Strength `yaml:"minStrength"`
	// Jurisdictions lists where the keys of the class, the HSMs that hold them
	// and the log may reside, e.g. [EU].
	Jurisdictions []string `yaml:"jurisdictions"`
}

// DurationRange is a closed range of durations, written like "90d" or "2160h".
type DurationRange struct {
	Min Duration `yaml:"min"`
	Max Duration `yaml:"max"`
}

// Duration is a time.Duration that also accepts a whole number of days ("90d")
// or years of 365 days ("3y").
type Duration time.Duration

// UnmarshalYAML decodes a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses a Go duration ("720h"), whole days ("90d") or whole
// years of 365 days ("3y"). The result must be positive.
func ParseDuration(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if n, unit, ok := strings.Cut(s, "d"); ok && unit == "" {
		d, err = wholeUnits(n, 24*time.Hour)
	} else if n, unit, ok := strings.Cut(s, "y"); ok && unit == "" {
		d, err = wholeUnits(n, 365*24*time.Hour)
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("duration %q: want a positive duration such as 90d, 3y or 720h", s)
	}
	return d, nil
}

func wholeUnits(n string, unit time.Duration) (time.Duration, error) {
	v, err := strconv.ParseUint(n, 10, 16)
	if err != nil || v == 0 {
		return 0, errors.New("not a whole number")
	}
	return time.Duration(v) * unit, nil
}

// RotationPolicy holds the rules every rotation must meet.
type RotationPolicy struct {
	// MinApprovals is how many distinct approvers, none of them the requester,
	// must approve before promotion. At least 1; default 2.
	MinApprovals int `yaml:"minApprovals"`
	// ApproverRoles are the roles whose approvals count. An approver must hold
	// the role in the trust file. Required.
	ApproverRoles []string `yaml:"approverRoles"`
	// RequireSmokeTest requires a passing smoke test of the new key before
	// promotion. Default true.
	RequireSmokeTest *bool `yaml:"requireSmokeTest"`
	// RequirePolicySnapshots requires a key-policy snapshot of both the old
	// and the new key in the bundle: without one, policy.separation-of-duties
	// fails instead of being skipped. Default false.
	RequirePolicySnapshots bool `yaml:"requirePolicySnapshots"`
}

// ErrPolicy reports an unusable policy file.
var ErrPolicy = errors.New("policy file")

// ParsePolicy decodes and validates a policy file, filling defaults.
func ParsePolicy(b []byte) (*Policy, error) {
	if len(b) > MaxPolicyBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPolicy, len(b), MaxPolicyBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil {
		// yaml.v3 lists field errors on indented lines; keep messages on one line.
		msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", ";")), " ")
		return nil, fmt.Errorf("%w: %s", ErrPolicy, strings.ReplaceAll(msg, ":;", ":"))
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrPolicy)
	}
	return &p, p.validate()
}

func (p *Policy) validate() error {
	if p.Version != 1 {
		return fmt.Errorf("%w: version %d, want 1", ErrPolicy, p.Version)
	}
	r := &p.Rotation
	if r.MinApprovals == 0 {
		r.MinApprovals = 2
	}
	if r.MinApprovals < 1 || r.MinApprovals > 16 {
		return fmt.Errorf("%w: rotation.minApprovals %d, want 1 to 16", ErrPolicy, r.MinApprovals)
	}
	if len(r.ApproverRoles) == 0 {
		return fmt.Errorf("%w: rotation.approverRoles is empty", ErrPolicy)
	}
	if r.RequireSmokeTest == nil {
		t := true
		r.RequireSmokeTest = &t
	}
	if b := p.BreakGlass; b != nil {
		if b.Quorum < 1 || b.Quorum > 16 {
			return fmt.Errorf("%w: breakGlass.quorum %d, want 1 to 16", ErrPolicy, b.Quorum)
		}
		if len(b.Roles) == 0 {
			return fmt.Errorf("%w: breakGlass.roles is empty", ErrPolicy)
		}
	}
	if d := p.Deletion; d != nil && d.MinRetention == 0 {
		return fmt.Errorf("%w: deletion: give minRetention", ErrPolicy)
	}
	if err := p.Freshness.validate(); err != nil {
		return err
	}
	for i, n := range p.Require {
		if !slices.Contains(Checks, n) {
			return fmt.Errorf("%w: require[%d]: %q is not a check; want one of %v", ErrPolicy, i, n, Checks)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.KeyClasses)) {
		if err := p.KeyClasses[name].validate(); err != nil {
			return fmt.Errorf("%w: keyClasses.%s.%w", ErrPolicy, name, err)
		}
	}
	return p.validateAuthority()
}

func (c *KeyClassPolicy) validate() error {
	if c == nil {
		return errors.New("empty: give the class at least one rule")
	}
	if w := c.RotationWindow; w != nil && (w.Min == 0 || w.Max == 0 || w.Min > w.Max) {
		return errors.New("rotationWindow: want 0 < min <= max")
	}
	if c.MinStrength != "" && !c.MinStrength.AtLeast(attest.Software) {
		return fmt.Errorf("minStrength %q: want one of software, self-reported, tpm-certified, vendor-attested", c.MinStrength)
	}
	for i, j := range c.Jurisdictions {
		if j == "" || strings.TrimSpace(j) != j {
			return fmt.Errorf("jurisdictions[%d] %q is not a jurisdiction name", i, j)
		}
	}
	return nil
}

// cloneRules deep-copies the sections a Verifier keeps, so that a caller
// changing its Policy after New does not change the Verifier.
func (p *Policy) cloneRules() {
	p.Require = slices.Clone(p.Require)
	p.cloneAuthority()
	if p.BreakGlass != nil {
		b := *p.BreakGlass
		b.Roles = slices.Clone(b.Roles)
		p.BreakGlass = &b
	}
	if p.Deletion != nil {
		d := *p.Deletion
		p.Deletion = &d
	}
	if p.Freshness != nil {
		f := *p.Freshness
		p.Freshness = &f
	}
	if p.KeyClasses != nil {
		classes := make(map[string]*KeyClassPolicy, len(p.KeyClasses))
		for name, c := range p.KeyClasses {
			if c == nil {
				classes[name] = nil
				continue
			}
			cc := *c
			cc.Jurisdictions = slices.Clone(c.Jurisdictions)
			if c.RotationWindow != nil {
				w := *c.RotationWindow
				cc.RotationWindow = &w
			}
			classes[name] = &cc
		}
		p.KeyClasses = classes
	}
}
