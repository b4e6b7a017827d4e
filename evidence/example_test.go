package evidence_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/keytrail/keytrail/evidence"
)

// keys is a one-key evidence.KeySet.
type keys struct{ k *evidence.PublicKey }

func (s keys) Key(d string) *evidence.PublicKey {
	if d == s.k.Digest {
		return s.k
	}
	return nil
}
func (s keys) Keys() []*evidence.PublicKey { return []*evidence.PublicKey{s.k} }

// A collector records that a key was promoted, signs the record as a DSSE
// envelope, and a verifier authenticates the envelope before it parses the
// statement inside.
func Example() {
	ctx := context.Background()
	collector, _ := evidence.NewSigner(ed25519.NewKeyFromSeed(make([]byte, 32)))
	walletKey, _ := evidence.NewPublicKey(ed25519.NewKeyFromSeed(append(make([]byte, 31), 1)).Public())

	key := evidence.KeyRef{ID: "kms:eu-central-1/custody/hot-1/v2", SPKISHA256: walletKey.Digest}
	event := &evidence.LifecycleEvent{
		At:         evidence.AtTime(time.Date(2026, 3, 2, 19, 0, 0, 0, time.UTC)),
		Event:      evidence.EventPromote,
		RotationID: "rot-2026-03-hot-1",
		Actor:      evidence.Actor{ID: "kms-rotation-service"},
	}
	st, _ := evidence.NewStatement(event, key)
	envelope, _ := evidence.SignStatement(ctx, st, collector)

	// The verifier: authenticate, then parse.
	env, _ := evidence.ParseEnvelope(envelope, evidence.MaxRecordBytes)
	if _, err := env.Verify(evidence.PayloadType, keys{collector.PublicKey()}); err != nil {
		fmt.Println("not verified:", err)
		return
	}
	got, pred, _ := evidence.ParseStatement(env.Payload)
	fmt.Println(got.PredicateType)
	fmt.Println(got.Subject[0].Name, pred.(*evidence.LifecycleEvent).Event, evidence.FormatTime(pred.RecordTime()))
	// Output:
	// https://keytrail.dev/predicates/lifecycle-event/v1
	// kms:eu-central-1/custody/hot-1/v2 promote 2026-03-02T19:00:00Z
}
