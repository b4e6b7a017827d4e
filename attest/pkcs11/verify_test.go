package pkcs11_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/pkcs11"
	"github.com/keytrail/keytrail/evidence"
)

var loggedAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// record mints a pkcs11-attributes record for a fresh key of the given kind,
// with a real proof of possession, as a token holding the key would answer.
func record(t testing.TB, kind string) *evidence.HSMAttestation {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	digest := sha256.Sum256(nonce)
	var spki, sig []byte
	var mech, keyType, curve string
	switch kind {
	case "P-256", "P-384":
		c := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}[kind]
		k, _ := ecdsa.GenerateKey(c, rand.Reader)
		spki, _ = x509.MarshalPKIXPublicKey(&k.PublicKey)
		r, s, _ := ecdsa.Sign(rand.Reader, k, digest[:])
		n := (c.Params().BitSize + 7) / 8
		sig = append(r.FillBytes(make([]byte, n)), s.FillBytes(make([]byte, n))...)
		mech, keyType, curve = pkcs11.MechECDSA, "EC", kind
	case "secp256k1":
		k, _ := secp256k1.GeneratePrivateKey()
		spki = secp256k1SPKI(k.PubKey())
		der := secpecdsa.Sign(k, digest[:])
		r, s := der.R(), der.S()
		rb, sb := r.Bytes(), s.Bytes()
		sig = append(rb[:], sb[:]...)
		mech, keyType, curve = pkcs11.MechECDSA, "EC", kind
	case "Ed25519":
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		spki, _ = x509.MarshalPKIXPublicKey(pub)
		sig = ed25519.Sign(priv, nonce)
		mech, keyType, curve = pkcs11.MechEdDSA, "EC_EDWARDS", kind
	case "RSA":
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		spki, _ = x509.MarshalPKIXPublicKey(&k.PublicKey)
		sig, _ = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
		mech, keyType = pkcs11.MechRSA256, "RSA"
	}
	return &evidence.HSMAttestation{
		At: evidence.AtTime(loggedAt), Format: evidence.HSMFormatPKCS11,
		Token:      evidence.TokenInfo{Manufacturer: "SoftHSM project", Model: "SoftHSM v2", Serial: "1234", Label: "custody"},
		KeyURI:     "pkcs11:token=custody;object=hot-1;type=private",
		Attributes: evidence.KeyAttributes{Class: "PRIVATE_KEY", KeyType: keyType, Curve: curve, Label: "hot-1", Sensitive: true, NeverExtractable: true, AlwaysSensitive: true, Local: true, Token: true, Private: true},
		PublicKey:  spki, ProofOfPossession: &evidence.ProofOfPossession{Nonce: nonce, Mechanism: mech, Signature: sig},
	}
}

func secp256k1SPKI(p *secp256k1.PublicKey) []byte {
	prefix := []byte{0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00}
	return append(prefix, p.SerializeUncompressed()...)
}

func digestOf(b []byte) string { k, _ := pkcs11.ParseSPKI(b); return k.Digest }

// Every key type verifies, and the strength is self-reported, never more
// (ATTACKS.md 25): SoftHSM2 reports the same attributes as hardware.
func TestAllKeyTypes(t *testing.T) {
	for _, kind := range []string{"P-256", "P-384", "secp256k1", "Ed25519", "RSA"} {
		t.Run(kind, func(t *testing.T) {
			rec := record(t, kind)
			res := pkcs11.Verify(pkcs11.Evidence{Record: rec, LoggedAt: loggedAt, ExpectedKey: digestOf(rec.PublicKey)})
			if !res.Verified || res.Strength != attest.SelfReported {
				t.Fatalf("verified=%v strength=%s: %v", res.Verified, res.Strength, res.Err())
			}
			if res.Facts.KeyDigest != digestOf(rec.PublicKey) {
				t.Fatalf("key digest %s", res.Facts.KeyDigest)
			}
		})
	}
}

func failsWith(t *testing.T, res *attest.Result, check string, sentinel error) {
	t.Helper()
	c := res.Check(check)
	if c == nil || c.Status != attest.Fail || !errors.Is(c.Err(), sentinel) || res.Verified {
		t.Fatalf("check %s: %+v (verified %v)", check, c, res.Verified)
	}
}

// ATTACKS.md 26: an imported or once-extractable key fails the non-export
// policy, naming the attribute, but keeps its strength (the facts are as
// authentic as self-reported facts get).
func TestAttack26ImportedKey(t *testing.T) {
	for name, edit := range map[string]func(*evidence.KeyAttributes){
		"imported":         func(a *evidence.KeyAttributes) { a.Local = false; a.KeyGenMechanism = "CK_UNAVAILABLE_INFORMATION" },
		"once extractable": func(a *evidence.KeyAttributes) { a.NeverExtractable = false },
		"once readable":    func(a *evidence.KeyAttributes) { a.AlwaysSensitive = false },
		"extractable":      func(a *evidence.KeyAttributes) { a.Extractable = true },
	} {
		rec := record(t, "P-256")
		edit(&rec.Attributes)
		res := pkcs11.Verify(pkcs11.Evidence{Record: rec, LoggedAt: loggedAt})
		failsWith(t, res, attest.CheckNonExport, attest.ErrPolicy)
		if res.Strength != attest.SelfReported {
			t.Errorf("%s: strength %s", name, res.Strength)
		}
	}
}

func TestPossession(t *testing.T) {
	// The signature is over another nonce.
	rec := record(t, "P-256")
	rec.ProofOfPossession.Nonce[0] ^= 1
	res := pkcs11.Verify(pkcs11.Evidence{Record: rec, LoggedAt: loggedAt})
	failsWith(t, res, pkcs11.CheckPossession, attest.ErrSignature)
	if res.Strength != attest.Unverified {
		t.Fatalf("strength %s without possession", res.Strength)
	}
	// Another key's public key in the record.
	rec, other := record(t, "Ed25519"), record(t, "Ed25519")
	rec.PublicKey = other.PublicKey
	failsWith(t, pkcs11.Verify(pkcs11.Evidence{Record: rec, LoggedAt: loggedAt}), pkcs11.CheckPossession, attest.ErrSignature)
	// No proof, a short nonce, the wrong mechanism.
	rec = record(t, "RSA")
	rec.ProofOfPossession = nil
	failsWith(t, pkcs11.Verify(pkcs11.Evidence{Record: rec, LoggedAt: loggedAt}), pkcs11.CheckPossession, attest.ErrSignature)
	rec = record(t, "secp256k1")
	rec.ProofOfPossession.Nonce = rec.ProofOfPossession.Nonce[:8]
	failsWith(t, pkcs11.Verify(pkcs11.Evidence{Record: rec, LoggedAt: loggedAt}), pkcs11.CheckPossession, attest.ErrSignature)
	rec = record(t, "P-384")
	rec.ProofOfPossession.Mechanism = pkcs11.MechEdDSA
	failsWith(t, pkcs11.Verify(pkcs11.Evidence{Record: rec, LoggedAt: loggedAt}), pkcs11.CheckPossession, attest.ErrSignature)
	// Attributes that contradict the key.
	rec = record(t, "P-256")
	rec.Attributes.Curve = "secp256k1"
	failsWith(t, pkcs11.Verify(pkcs11.Evidence{Record: rec, LoggedAt: loggedAt}), pkcs11.CheckPublicKey, attest.ErrKeyMismatch)
	// The wrong key expected.
	rec = record(t, "P-256")
	failsWith(t, pkcs11.Verify(pkcs11.Evidence{Record: rec, LoggedAt: loggedAt, ExpectedKey: digestOf(record(t, "P-256").PublicKey)}), attest.CheckBinding, attest.ErrBinding)
	// A non-canonical SPKI (trailing byte).
	rec = record(t, "P-256")
	rec.PublicKey = append(rec.PublicKey, 0)
	failsWith(t, pkcs11.Verify(pkcs11.Evidence{Record: rec, LoggedAt: loggedAt}), pkcs11.CheckPublicKey, attest.ErrFormat)
	failsWith(t, pkcs11.Verify(pkcs11.Evidence{Record: record(t, "P-256")}), attest.CheckEvidenceTime, attest.ErrNoTime)
}

// FuzzParseSPKI: never panics; an accepted key's digest is the digest of the
// input, which is the key's only encoding.
func FuzzParseSPKI(f *testing.F) {
	for _, k := range []string{"P-256", "secp256k1", "Ed25519", "RSA"} {
		f.Add(record(f, k).PublicKey)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := pkcs11.ParseSPKI(b)
		if err != nil {
			return
		}
		sum := sha256.Sum256(b)
		if k.Digest != string(hexOf(sum[:])) {
			t.Fatal("digest is not of the input")
		}
	})
}

func hexOf(b []byte) []byte {
	const h = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, h[c>>4], h[c&15])
	}
	return out
}

// BenchmarkVerify is the verification of a pkcs11-attributes record per key type.
func BenchmarkVerify(b *testing.B) {
	for _, kind := range []string{"P-256", "secp256k1", "Ed25519", "RSA"} {
		rec := record(b, kind)
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				if res := pkcs11.Verify(pkcs11.Evidence{Record: rec, LoggedAt: loggedAt}); !res.Verified {
					b.Fatal(res.Err())
				}
			}
		})
	}
}
