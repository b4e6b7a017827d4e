package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
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
	return nil
}
