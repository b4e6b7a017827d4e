package evidence_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/keytrail/keytrail/evidence"
)

// oneKey is an evidence.KeySet of one key.
type oneKey struct{ k *evidence.PublicKey }

func (s oneKey) Key(d string) *evidence.PublicKey {
	if d == s.k.Digest {
		return s.k
	}
	return nil
}
func (s oneKey) Keys() []*evidence.PublicKey { return []*evidence.PublicKey{s.k} }

// ATTACKS.md case 15 at the envelope level, for small payloads and for payloads
// over 1 MiB, whose PAE is streamed: a changed payload or payloadType under the
// old signature fails, for Ed25519 and ECDSA keys, with or without a keyid.
func TestAttack15_PayloadChangedUnderOldSignature(t *testing.T) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signers := map[string]*evidence.Signer{}
	for name, priv := range map[string]crypto.Signer{"Ed25519": ed, "P-256": p256} {
		if signers[name], err = evidence.NewSigner(priv); err != nil {
			t.Fatal(err)
		}
	}
	for name, s := range signers {
		for _, size := range []int{100, 1<<20 + 1} {
			t.Run(fmt.Sprintf("%s, %d-byte payload", name, size), func(t *testing.T) {
				payload := bytes.Repeat([]byte("k"), size)
				raw, err := evidence.Sign(context.Background(), evidence.BundleMediaType, payload, s)
				if err != nil {
					t.Fatal(err)
				}
				keys := oneKey{s.PublicKey()}
				env, err := evidence.ParseEnvelope(raw, evidence.MaxBundleBytes)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := env.Verify(evidence.BundleMediaType, keys); err != nil {
					t.Fatalf("genuine envelope: %v", err)
				}
				edits := map[string]func(e *evidence.Envelope){
					"first byte changed":  func(e *evidence.Envelope) { e.Payload[0] ^= 1 },
					"middle byte changed": func(e *evidence.Envelope) { e.Payload[len(e.Payload)/2] ^= 1 },
					"last byte changed":   func(e *evidence.Envelope) { e.Payload[len(e.Payload)-1] ^= 1 },
					"one byte appended":   func(e *evidence.Envelope) { e.Payload = append(e.Payload, 'k') },
					"one byte removed":    func(e *evidence.Envelope) { e.Payload = e.Payload[:len(e.Payload)-1] },
					// The PAE's length prefixes keep type and payload apart.
					"byte moved from payload to type": func(e *evidence.Envelope) {
						e.PayloadType, e.Payload = e.PayloadType+"k", e.Payload[1:]
					},
				}
				for what, edit := range edits {
					for _, keyid := range []bool{true, false} {
						e, err := evidence.ParseEnvelope(raw, evidence.MaxBundleBytes)
						if err != nil {
							t.Fatal(err)
						}
						if !keyid {
							e.Signatures[0].KeyID = ""
						}
						edit(e)
						_, err = e.Verify(e.PayloadType, keys)
						want := evidence.ErrBadSignature
						if !keyid {
							want = evidence.ErrUnknownSigner
						}
						if !errors.Is(err, want) {
							t.Errorf("%s, keyid %v: Verify = %v, want %v", what, keyid, err, want)
						}
					}
				}
				e, _ := evidence.ParseEnvelope(raw, evidence.MaxBundleBytes)
				e.PayloadType = evidence.PayloadType
				if _, err := e.Verify(evidence.BundleMediaType, keys); !errors.Is(err, evidence.ErrPayloadType) {
					t.Errorf("payloadType changed: Verify = %v, want ErrPayloadType", err)
				}
				// Under its new type the old signature does not verify either.
				if _, err := e.Verify(evidence.PayloadType, keys); !errors.Is(err, evidence.ErrBadSignature) {
					t.Errorf("payloadType changed, verified as the new type: Verify = %v, want ErrBadSignature", err)
				}
			})
		}
	}
}
