package tpm_test

import (
	"bytes"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/keytrail/keytrail/attest/tpm"
)

// FuzzParseAttest: ParseAttest never panics; what it accepts starts with the
// magic and is the one encoding of what it decodes to.
func FuzzParseAttest(f *testing.F) {
	fk := newFake(f)
	_, pub := key(f, residentAttrs)
	f.Add(fk.certify(f, pub, testNonce).Attest)
	f.Add(fk.quote(f, []int{0, 1, 7}, pcrValues(), testNonce).Attest)
	f.Add([]byte{0xff, 0x54, 0x43, 0x47})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := tpm.ParseAttest(b)
		if err != nil {
			return
		}
		if a.Magic != tpm2.TPMGeneratedValue || !bytes.Equal(tpm2.Marshal(*a), b) {
			t.Fatalf("accepted a non-canonical or unmagic TPMS_ATTEST")
		}
	})
}

// FuzzParsePublic: ParsePublic and PublicKey never panic; an accepted public
// area re-encodes to the bytes it was read from.
func FuzzParsePublic(f *testing.F) {
	fk := newFake(f)
	f.Add(tpm2.Marshal(fk.akPub))
	f.Add(tpm2.Marshal(tpm2.New2B(fk.akPub)))
	f.Add(tpm2.Marshal(tpm2.RSASRKTemplate))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, raw, err := tpm.ParsePublic(b)
		if err != nil {
			return
		}
		if !bytes.Equal(tpm2.Marshal(*p), raw) {
			t.Fatal("non-canonical TPMT_PUBLIC accepted")
		}
		_, _ = tpm.PublicKey(p)
		_, _ = tpm.Name(p)
	})
}

// FuzzParseSignature: never panics, canonical.
func FuzzParseSignature(f *testing.F) {
	fk := newFake(f)
	f.Add(fk.sign(f, []byte("x")))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := tpm.ParseSignature(b)
		if err == nil && !bytes.Equal(tpm2.Marshal(*s), b) {
			t.Fatal("non-canonical TPMT_SIGNATURE accepted")
		}
	})
}

// FuzzVerify: the whole verifier on a mutated attestation. It never panics, its
// Verified agrees with Err, and only the genuine bytes verify.
func FuzzVerify(f *testing.F) {
	fk := newFake(f)
	v := fk.verifier(f)
	_, pub := key(f, residentAttrs)
	ev := fk.certify(f, pub, testNonce)
	f.Add(ev.Attest, ev.Signature, ev.KeyPublic)
	f.Fuzz(func(t *testing.T, a, sig, kp []byte) {
		e := ev
		e.Attest, e.Signature, e.KeyPublic = a, sig, kp
		res := v.Verify(e)
		if res.Verified != (res.Err() == nil) {
			t.Fatal("Verified disagrees with Err")
		}
		if res.Verified && (!bytes.Equal(a, ev.Attest) || !bytes.Equal(kp, ev.KeyPublic)) {
			t.Fatal("verified altered evidence")
		}
	})
}
