package evidence

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"math/big"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

type testKeys []*PublicKey

func (k testKeys) Key(d string) *PublicKey {
	for _, x := range k {
		if x.Digest == d {
			return x
		}
	}
	return nil
}
func (k testKeys) Keys() []*PublicKey { return k }

func mustKey(t *testing.T, k crypto.Signer) *Signer {
	t.Helper()
	s, err := NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSignVerifyEveryKeyType signs and verifies a DSSE envelope with each key
// type keytrail accepts, and checks the envelope's keyid and exact payload.
func TestSignVerifyEveryKeyType(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, k := range map[string]crypto.Signer{"P-256": p256, "P-384": p384, "Ed25519": ed, "RSA-2048": rsaKey} {
		t.Run(name, func(t *testing.T) {
			s := mustKey(t, k)
			raw, err := Sign(context.Background(), PayloadType, []byte(`{"x":1}`), s)
			if err != nil {
				t.Fatal(err)
			}
			env, err := ParseEnvelope(raw, MaxRecordBytes)
			if err != nil {
				t.Fatal(err)
			}
			if env.Signatures[0].KeyID != s.Digest {
				t.Errorf("keyid %q, want %q", env.Signatures[0].KeyID, s.Digest)
			}
			signers, err := env.Verify(PayloadType, testKeys{s.PublicKey()})
			if err != nil || len(signers) != 1 || signers[0].Digest != s.Digest {
				t.Fatalf("Verify = %v, %v", signers, err)
			}
			if string(env.Payload) != `{"x":1}` {
				t.Errorf("payload %q", env.Payload)
			}
			// Without keyid the key is found by trying the trusted keys.
			env.Signatures[0].KeyID = ""
			if _, err := env.Verify(PayloadType, testKeys{s.PublicKey()}); err != nil {
				t.Errorf("no keyid: %v", err)
			}
		})
	}
}

func TestUnsupportedKeys(t *testing.T) {
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, k := range map[string]crypto.Signer{"P-224": p224, "RSA-1024": rsa1024} {
		if _, err := NewSigner(k); !errors.Is(err, ErrUnsupportedKey) {
			t.Errorf("%s: err = %v, want ErrUnsupportedKey", name, err)
		}
	}
}

// TestECDSASignatureMustBeDER: sigstore's verifier also accepts IEEE P1363
// (r||s) and keytrail must not, or one record would have two leaves.
func TestECDSASignatureMustBeDER(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s := mustKey(t, k)
	raw, err := Sign(context.Background(), PayloadType, []byte("{}"), s)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := ParseEnvelope(raw, MaxRecordBytes)
	der := env.Signatures[0].Sig
	var r, ss big.Int
	in := cryptobyte.String(der)
	var inner cryptobyte.String
	if !in.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&ss) {
		t.Fatal("not DER")
	}
	p1363 := append(r.FillBytes(make([]byte, 32)), ss.FillBytes(make([]byte, 32))...)
	trailing := append(append([]byte{}, der...), 0)
	for name, sig := range map[string][]byte{"P1363": p1363, "trailing byte": trailing} {
		env.Signatures[0].Sig = sig
		if _, err := env.Verify(PayloadType, testKeys{s.PublicKey()}); err == nil {
			t.Errorf("%s signature accepted", name)
		}
	}
	env.Signatures[0].Sig = der
	if _, err := env.Verify(PayloadType, testKeys{s.PublicKey()}); err != nil {
		t.Errorf("DER signature rejected: %v", err)
	}
}

func TestEnvelopeVerifyRejects(t *testing.T) {
	_, a, _ := ed25519.GenerateKey(rand.Reader)
	_, b, _ := ed25519.GenerateKey(rand.Reader)
	sa, sb := mustKey(t, a), mustKey(t, b)
	raw, _ := Sign(context.Background(), PayloadType, []byte("{}"), sa)
	parse := func() *Envelope { e, _ := ParseEnvelope(raw, MaxRecordBytes); return e }

	e := parse()
	if _, err := e.Verify(PayloadType, testKeys{sb.PublicKey()}); !errors.Is(err, ErrUnknownSigner) {
		t.Errorf("untrusted signer: %v", err)
	}
	e = parse()
	e.Signatures[0].KeyID = sb.Digest // claims a trusted key it was not made by
	if _, err := e.Verify(PayloadType, testKeys{sa.PublicKey(), sb.PublicKey()}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("keyid naming another trusted key: %v", err)
	}
	e = parse()
	e.PayloadType = "application/json"
	if _, err := e.Verify(PayloadType, testKeys{sa.PublicKey()}); !errors.Is(err, ErrPayloadType) {
		t.Errorf("payloadType: %v", err)
	}
	e = parse()
	e.Payload = []byte("{ }")
	if _, err := e.Verify(PayloadType, testKeys{sa.PublicKey()}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("changed payload: %v", err)
	}
	e = parse()
	e.Signatures = append(e.Signatures, e.Signatures[0])
	if _, err := e.Verify(PayloadType, testKeys{sa.PublicKey()}); err == nil {
		t.Error("one key signing twice accepted")
	}
	if _, err := ParseEnvelope([]byte(`{"payloadType":"x","payload":"e30=","signatures":[]}`), MaxRecordBytes); !errors.Is(err, ErrNoSignature) {
		t.Errorf("no signatures: %v", err)
	}
}
