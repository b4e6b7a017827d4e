package scenario

import (
	"context"
	"time"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify"
)

// Record is a predicate about a key, to be signed by the collector.
type Record struct {
	Key  evidence.KeyRef
	Pred evidence.Predicate
}

// HardwareOptions shape a rotation with hardware evidence.
type HardwareOptions struct {
	// Start is the start of the rotation window (default Start).
	Start time.Time
	// NewKey, if set, replaces the parties' new key in the rotation (for
	// evidence about a key whose private half the scenario does not hold, such
	// as a vendor sample).
	NewKey *evidence.KeyRef
	// Records returns the extra records, logged after the lifecycle events.
	Records func(p *Parties, r evidence.Rotation) ([]Record, error)
	// Hardware is the trust file's hardware section.
	Hardware *verify.HardwareTrust
	// Policy is the policy YAML (default PolicyYAML).
	Policy string
}

// BuildHardware logs a compliant rotation with extra hardware records signed
// by the collector, which the trust file enrols for hsm-attestation and
// tpm-attestation, and builds and signs its bundle.
func BuildHardware(ctx context.Context, seed string, o HardwareOptions) (*Built, error) {
	p, err := NewParties(seed, "keytrail.example/custody-log")
	if err != nil {
		return nil, err
	}
	if o.Start.IsZero() {
		o.Start = Start
	}
	if o.NewKey != nil {
		p.NewRef = *o.NewKey
	}
	b := &Built{Parties: p, Log: NewMemLog(p.Origin, p.LogSigner), Rotation: p.Rotation("rot-hw-1", o.Start)}
	var envs [][]byte
	for _, s := range p.Steps(b.Rotation) {
		env, err := s.Sign(ctx)
		if err != nil {
			return nil, err
		}
		envs = append(envs, env)
	}
	if o.Records != nil {
		recs, err := o.Records(p, b.Rotation)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			st, err := evidence.NewStatement(r.Pred, r.Key)
			if err != nil {
				return nil, err
			}
			env, err := evidence.SignStatement(ctx, st, p.Collector.Signer)
			if err != nil {
				return nil, err
			}
			envs = append(envs, env)
		}
	}
	for _, env := range envs {
		if _, err := b.Log.Append(ctx, env); err != nil {
			return nil, err
		}
		b.Records = append(b.Records, env)
	}
	if err := b.finish(ctx); err != nil {
		return nil, err
	}
	tf := p.TrustFile()
	tf.Collectors[0].PredicateTypes = append(tf.Collectors[0].PredicateTypes, evidence.PredicateHSMAttestation, evidence.PredicateTPMAttestation)
	tf.Hardware = o.Hardware
	if b.TrustJSON, err = strictjson.MarshalIndent(tf); err != nil {
		return nil, err
	}
	if b.Trust, err = verify.ParseTrust(b.TrustJSON); err != nil {
		return nil, err
	}
	if o.Policy != "" {
		b.Policy, err = verify.ParsePolicy([]byte(o.Policy))
	}
	return b, err
}
