package scenario

import (
	"context"
	"time"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify"
)

// Start is the start of the golden rotation's window.
var Start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Built is a complete rotation logged in a MemLog, with its signed bundle and
// the trust material that accepts it.
type Built struct {
	*Parties
	Log      *MemLog
	Rotation evidence.Rotation
	// Records are the logged envelopes of the rotation, in log order.
	Records [][]byte
	Bundle  *evidence.Bundle
	// BundleBytes is the signed bundle file.
	BundleBytes []byte
	TrustJSON   []byte
	Trust       *verify.Trust
	Policy      *verify.Policy
	// PolicyYAML is the policy file (BuildPolicy only).
	PolicyYAML string
	// Residency are the signed residency claims (BuildPolicy only).
	Residency [][]byte
}

// Build logs a compliant rotation, with records about other keys around it,
// and builds and signs its bundle. Mutate, if non-nil, may change the steps
// before they are signed.
func Build(ctx context.Context, seed string, mutate func([]Step) []Step) (*Built, error) {
	p, err := NewParties(seed, "keytrail.example/custody-log")
	if err != nil {
		return nil, err
	}
	b := &Built{Parties: p, Log: NewMemLog(p.Origin, p.LogSigner), Rotation: p.Rotation("rot-2026-03-hot-1", Start)}
	steps := p.Steps(b.Rotation)
	if mutate != nil {
		steps = mutate(steps)
	}
	noise, err := OtherKeyEvent(p, b.Rotation)
	if err != nil {
		return nil, err
	}
	envs, err := SignSteps(ctx, append([]Step{noise}, steps...))
	if err != nil {
		return nil, err
	}
	for i, env := range envs {
		if _, err := b.Log.Append(ctx, env); err != nil {
			return nil, err
		}
		if i > 0 {
			b.Records = append(b.Records, env)
		}
		if i == 3 {
			n, err := noise.Sign(ctx)
			if err != nil {
				return nil, err
			}
			b.Log.Append(ctx, append(n[:len(n):len(n)], ' ')) // a different leaf, same record
		}
	}
	return b, b.finish(ctx)
}

// finish builds and signs the bundle from the log and makes the trust
// material that accepts it.
func (b *Built) finish(ctx context.Context) error {
	verifier, err := notesVerifier(b.LogVerifier)
	if err != nil {
		return err
	}
	if b.Bundle, err = evidence.BuildBundle(ctx, b.Log, b.Rotation, evidence.BuildOptions{Origin: b.Origin, LogVerifier: verifier}); err != nil {
		return err
	}
	if b.BundleBytes, err = evidence.SignBundle(ctx, b.Bundle, b.Operator.Signer); err != nil {
		return err
	}
	if b.TrustJSON, err = strictjson.MarshalIndent(b.TrustFile()); err != nil {
		return err
	}
	if b.Trust, err = verify.ParseTrust(b.TrustJSON); err != nil {
		return err
	}
	b.Policy, err = verify.ParsePolicy([]byte(PolicyYAML))
	return err
}

// Resign re-signs a bundle after a test changed it: the operator's signature is
// then valid and only the deeper checks can catch the change. Unlike
// SignBundle it signs whatever it is given, invalid or not.
func (b *Built) Resign(ctx context.Context, bundle *evidence.Bundle) ([]byte, error) {
	payload, err := strictjson.Marshal(evidence.ManifestOf(bundle))
	if err != nil {
		return nil, err
	}
	env, err := evidence.Sign(ctx, evidence.ManifestMediaType, payload, b.Operator.Signer)
	if err != nil {
		return nil, err
	}
	return evidence.AssembleBundle(env, bundle)
}

// OtherKeyEvent is a record about a key outside rotation r, inside its window:
// unrelated traffic a bundle must not carry.
func OtherKeyEvent(p *Parties, r evidence.Rotation) (Step, error) {
	other, err := keyRef("kms:eu-central-1/custody/cold-7/v3", p.OtherKey.Public())
	if err != nil {
		return Step{}, err
	}
	start, _, err := r.Window.Bounds()
	if err != nil {
		return Step{}, err
	}
	ev := &evidence.LifecycleEvent{At: evidence.AtTime(start.Add(90 * time.Minute)), Event: evidence.EventDisable, Actor: evidence.Actor{ID: p.Collector.ID}}
	return Step{By: p.Collector, Key: other, Event: ev}, nil
}

// GoldenSeed is the seed of the committed golden files in testdata/golden.
const GoldenSeed = "keytrail golden v1"

// Golden returns the golden files: a deterministic rotation's signed bundle,
// its trust file, policy and rotation descriptor, and the log checkpoint.
// testdata/golden/gen.go writes them; a test checks the committed files still
// equal them byte for byte.
func Golden(ctx context.Context) (map[string][]byte, error) {
	b, err := Build(ctx, GoldenSeed, nil)
	if err != nil {
		return nil, err
	}
	rot, err := strictjson.MarshalIndent(b.Rotation)
	if err != nil {
		return nil, err
	}
	cp, err := b.Log.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"bundle.json":   b.BundleBytes,
		"trust.json":    append(b.TrustJSON, '\n'),
		"policy.yaml":   []byte(PolicyYAML),
		"rotation.json": append(rot, '\n'),
		"checkpoint":    cp,
	}, nil
}
