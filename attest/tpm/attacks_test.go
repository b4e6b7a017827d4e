package tpm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/tpm"
	"github.com/keytrail/keytrail/evidence"
)

func mustFail(t *testing.T, res *attest.Result, check string, sentinel error) {
	t.Helper()
	c := res.Check(check)
	if c == nil || c.Status != attest.Fail {
		t.Fatalf("check %s = %+v, want FAIL; result %+v", check, c, res.Checks)
	}
	if !errors.Is(c.Err(), sentinel) {
		t.Fatalf("check %s error %v does not wrap %v", check, c.Err(), sentinel)
	}
	if res.Verified {
		t.Fatalf("verified despite %s failing", check)
	}
}

func TestCertifyVerifies(t *testing.T) {
	f := newFake(t)
	k, pub := key(t, residentAttrs)
	ev := f.certify(t, pub, testNonce)
	ev.ExpectedKey, _ = evidence.KeyDigest(&k.PublicKey)
	ev.ExpectedNonce = testNonce
	res := f.verifier(t).Verify(ev)
	if !res.Verified || res.Strength != attest.TPMCertified {
		t.Fatalf("verified=%v strength=%s: %v", res.Verified, res.Strength, res.Err())
	}
	for _, c := range []string{tpm.CheckFormat, tpm.CheckAttestType, tpm.CheckAKTrust, tpm.CheckSignature, tpm.CheckNonce, tpm.CheckName, attest.CheckBinding, attest.CheckNonExport} {
		if res.Check(c) == nil || res.Check(c).Status != attest.Pass {
			t.Errorf("check %s: %+v", c, res.Check(c))
		}
	}
	if res.Facts.KeyDigest != ev.ExpectedKey || res.Facts.Algorithm != "ECDSA P-256" || res.Facts.AttributeSource != attest.SourceAttested {
		t.Errorf("facts %+v", res.Facts)
	}
}

func TestQuoteVerifies(t *testing.T) {
	f := newFake(t)
	res := f.verifier(t).Verify(f.quote(t, []int{0, 1, 7}, pcrValues(), testNonce))
	if !res.Verified || res.Strength != attest.TPMCertified || res.Check(tpm.CheckPCRs).Status != attest.Pass {
		t.Fatalf("verified=%v strength=%s: %v", res.Verified, res.Strength, res.Err())
	}
}

// resign replaces the attestation with a and signs it again with the AK, so
// that only the property under test is wrong.
func (f *fakeTPM) resign(t *testing.T, ev tpm.Evidence, a []byte) tpm.Evidence {
	ev.Attest, ev.Signature = a, f.sign(t, a)
	return ev
}

// ATTACKS.md 21: a TPMS_ATTEST whose magic is not TPM_GENERATED_VALUE, even
// correctly signed, fails; so does an attestation of another type.
func TestAttack21Magic(t *testing.T) {
	f := newFake(t)
	v := f.verifier(t)
	_, pub := key(t, residentAttrs)
	ev := f.certify(t, pub, testNonce)
	for _, magic := range []uint32{0, 0xff544346, 0x47435446} {
		a := bytes.Clone(ev.Attest)
		binary.BigEndian.PutUint32(a, magic)
		res := v.Verify(f.resign(t, ev, a))
		mustFail(t, res, tpm.CheckFormat, attest.ErrFormat)
		if !strings.Contains(res.Check(tpm.CheckFormat).Reason, "magic") || res.Strength != attest.Unverified {
			t.Errorf("magic %08x: %+v", magic, res.Check(tpm.CheckFormat))
		}
	}
	// The wrong type: a quote presented as a certification, and the reverse.
	q := f.quote(t, []int{0, 1, 7}, pcrValues(), testNonce)
	q.Kind, q.KeyPublic = tpm.KindCertify, tpm2.Marshal(pub)
	mustFail(t, v.Verify(q), tpm.CheckAttestType, tpm.ErrAttestType)
	c := f.certify(t, pub, testNonce)
	c.Kind = tpm.KindQuote
	mustFail(t, v.Verify(c), tpm.CheckAttestType, tpm.ErrAttestType)
	// A TPM_ST_ATTEST_CREATION body (same bytes as certify would carry).
	a := bytes.Clone(ev.Attest)
	binary.BigEndian.PutUint16(a[4:], uint16(tpm2.TPMSTAttestTime))
	res := v.Verify(f.resign(t, ev, a))
	if res.Verified || res.Strength != attest.Unverified {
		t.Fatalf("an attestation of another type verified: %+v", res.Checks)
	}
}

// ATTACKS.md 22: a quote over a subset (or superset) of the required PCRs
// fails, and the digest is recomputed in selection order.
func TestAttack22PCRSelection(t *testing.T) {
	f := newFake(t)
	v := f.verifier(t)
	vals := pcrValues()
	mustFail(t, v.Verify(f.quote(t, []int{0, 7}, [][]byte{vals[0], vals[2]}, testNonce)), tpm.CheckPCRs, tpm.ErrPCR)
	mustFail(t, v.Verify(f.quote(t, []int{0, 1, 2, 7}, append(slices.Clone(vals), vals[0]), testNonce)), tpm.CheckPCRs, tpm.ErrPCR)
	// The quote is over the right selection, but the reported values are not
	// the quoted ones: reordered, or one changed.
	ev := f.quote(t, []int{0, 1, 7}, vals, testNonce)
	ev.PCRValues = [][]byte{vals[1], vals[0], vals[2]}
	mustFail(t, v.Verify(ev), tpm.CheckPCRs, tpm.ErrPCR)
	ev.PCRValues = [][]byte{vals[0], vals[1], make([]byte, 32)}
	mustFail(t, v.Verify(ev), tpm.CheckPCRs, tpm.ErrPCR)
	ev.PCRValues = vals[:2]
	mustFail(t, v.Verify(ev), tpm.CheckPCRs, tpm.ErrPCR)
	// A verifier without a required selection accepts no quote.
	cfg := f.config()
	cfg.QuotePCRs = nil
	v2, err := tpm.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, v2.Verify(f.quote(t, []int{0, 1, 7}, vals, testNonce)), tpm.CheckPCRs, tpm.ErrPCR)
}

// ATTACKS.md 23: a replayed quote (a nonce other than the one issued), an
// extraData that is not the nonce, an empty or short nonce: fail.
func TestAttack23Nonce(t *testing.T) {
	f := newFake(t)
	v := f.verifier(t)
	ev := f.quote(t, []int{0, 1, 7}, pcrValues(), testNonce)
	ev.ExpectedNonce = bytes.Repeat([]byte{9}, 32)
	mustFail(t, v.Verify(ev), tpm.CheckNonce, tpm.ErrNonce)
	ev = f.quote(t, []int{0, 1, 7}, pcrValues(), testNonce)
	ev.Nonce = bytes.Repeat([]byte{9}, 32)
	mustFail(t, v.Verify(ev), tpm.CheckNonce, tpm.ErrNonce)
	mustFail(t, v.Verify(f.quote(t, []int{0, 1, 7}, pcrValues(), nil)), tpm.CheckNonce, tpm.ErrNonce)
	mustFail(t, v.Verify(f.quote(t, []int{0, 1, 7}, pcrValues(), []byte("short"))), tpm.CheckNonce, tpm.ErrNonce)
	// A certification without a nonce, or with a short fixed one, passes (its
	// facts are immutable), but a stated nonce that is not its extraData fails.
	_, pub := key(t, residentAttrs)
	if res := v.Verify(f.certify(t, pub, nil)); !res.Verified {
		t.Errorf("a certification without a nonce: %v", res.Err())
	}
	c := f.certify(t, pub, nil)
	c.Nonce = testNonce
	res := v.Verify(c)
	mustFail(t, res, tpm.CheckNonce, tpm.ErrNonce)
	if res.Strength != attest.Unverified {
		t.Errorf("a certification with a wrong nonce has strength %s", res.Strength)
	}
	if res := v.Verify(f.certify(t, pub, []byte{0, 0xff, 0x55, 0xaa})); !res.Verified {
		t.Errorf("a certification with tpm2_certify's fixed nonce: %v", res.Err())
	}
}

// ATTACKS.md 24: an AK not enrolled in the trust material (the evidence carries
// its own), or enrolled for another time, is not trusted; a signature by
// another key fails; an AK that is not a TPM-resident restricted signing key
// cannot be enrolled.
func TestAttack24UntrustedAK(t *testing.T) {
	f, other := newFake(t), newFake(t)
	v := f.verifier(t)
	_, pub := key(t, residentAttrs)
	res := v.Verify(other.certify(t, pub, testNonce))
	mustFail(t, res, tpm.CheckAKTrust, tpm.ErrUntrustedAK)
	if res.Strength != attest.Unverified || res.Check(tpm.CheckSignature).Status != attest.Skip {
		t.Fatalf("unenrolled AK: strength %s, %+v", res.Strength, res.Checks)
	}
	// The enrolled AK's public area, but another key's signature.
	ev := other.certify(t, pub, testNonce)
	ev.AKPublic = tpm2.Marshal(f.akPub)
	mustFail(t, v.Verify(ev), tpm.CheckSignature, attest.ErrSignature)
	// Enrolled, but the evidence was logged outside the enrolment window.
	cfg := f.config()
	cfg.AttestationKeys[0].NotAfter = loggedAt.Add(-time.Second)
	cfg.AttestationKeys[0].NotBefore = loggedAt.Add(-time.Hour)
	v2, err := tpm.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustFail(t, v2.Verify(f.certify(t, pub, testNonce)), tpm.CheckAKTrust, tpm.ErrUntrustedAK)
	// Not restricted (it could sign a forged TPMS_ATTEST), or not fixedTPM.
	for _, edit := range []func(*tpm2.TPMAObject){
		func(a *tpm2.TPMAObject) { a.Restricted = false },
		func(a *tpm2.TPMAObject) { a.FixedTPM = false },
		func(a *tpm2.TPMAObject) { a.SensitiveDataOrigin = false },
	} {
		p := f.akPub
		edit(&p.ObjectAttributes)
		if _, err := tpm.NewVerifier(tpm.Config{AttestationKeys: []tpm.AK{{Name: "bad", Public: tpm2.Marshal(p)}}}); !errors.Is(err, tpm.ErrUntrustedAK) {
			t.Errorf("enrolled an AK with attributes %+v: %v", p.ObjectAttributes, err)
		}
	}
	if _, err := tpm.NewVerifier(tpm.Config{AttestationKeys: []tpm.AK{{Name: "a", Public: tpm2.Marshal(f.akPub)}, {Name: "b", Public: tpm2.Marshal(f.akPub)}}}); err == nil {
		t.Error("one AK enrolled twice")
	}
}

// The certified Name binds the key's public area: another key's public area,
// or the same key with other attributes, fails.
func TestNameBinding(t *testing.T) {
	f := newFake(t)
	v := f.verifier(t)
	_, pub := key(t, residentAttrs)
	_, other := key(t, residentAttrs)
	ev := f.certify(t, pub, testNonce)
	ev.KeyPublic = tpm2.Marshal(other)
	mustFail(t, v.Verify(ev), tpm.CheckName, attest.ErrKeyMismatch)
	// Claim attributes the certified key does not have.
	weak := pub
	weak.ObjectAttributes.FixedTPM = false
	ev = f.certify(t, weak, testNonce)
	ev.KeyPublic = tpm2.Marshal(pub)
	mustFail(t, v.Verify(ev), tpm.CheckName, attest.ErrKeyMismatch)
	ev = f.certify(t, pub, testNonce)
	ev.ExpectedKey = strings.Repeat("ab", 32)
	mustFail(t, v.Verify(ev), attest.CheckBinding, attest.ErrBinding)
}

// A key that could leave its TPM (duplicable, or imported) is TPM-certified but
// fails the non-export policy (ATTACKS.md 26 for TPM keys).
func TestNonExportTPMKey(t *testing.T) {
	f := newFake(t)
	v := f.verifier(t)
	for name, edit := range map[string]func(*tpm2.TPMAObject){
		"duplicable": func(a *tpm2.TPMAObject) { a.FixedTPM, a.FixedParent = false, false },
		"imported":   func(a *tpm2.TPMAObject) { a.SensitiveDataOrigin = false },
	} {
		attrs := residentAttrs
		edit(&attrs)
		_, pub := key(t, attrs)
		res := v.Verify(f.certify(t, pub, testNonce))
		mustFail(t, res, attest.CheckNonExport, attest.ErrPolicy)
		if res.Strength != attest.TPMCertified {
			t.Errorf("%s: strength %s, want %s (authentic, but against policy)", name, res.Strength, attest.TPMCertified)
		}
	}
}

// Trailing bytes after any structure are refused: two encodings of one signed
// meaning are one too many.
func TestTrailingBytes(t *testing.T) {
	f := newFake(t)
	v := f.verifier(t)
	_, pub := key(t, residentAttrs)
	ev := f.certify(t, pub, testNonce)
	for name, edit := range map[string]func(*tpm.Evidence){
		"attest":    func(e *tpm.Evidence) { *e = f.resign(t, *e, append(bytes.Clone(e.Attest), 0)) },
		"signature": func(e *tpm.Evidence) { e.Signature = append(bytes.Clone(e.Signature), 0) },
		"akPublic":  func(e *tpm.Evidence) { e.AKPublic = append(bytes.Clone(e.AKPublic), 0) },
	} {
		e := ev
		edit(&e)
		res := v.Verify(e)
		mustFail(t, res, tpm.CheckFormat, attest.ErrFormat)
		_ = name
	}
	e := ev
	e.KeyPublic = append(bytes.Clone(e.KeyPublic), 0)
	mustFail(t, v.Verify(e), tpm.CheckName, attest.ErrFormat)
	// A TPM2B_PUBLIC (size-prefixed, as tpm2-tools writes it) is accepted.
	e = ev
	e.KeyPublic = tpm2.Marshal(tpm2.New2B(pub))
	if res := v.Verify(e); !res.Verified {
		t.Fatalf("TPM2B_PUBLIC: %v", res.Err())
	}
}

func TestNoTimeNoKind(t *testing.T) {
	f := newFake(t)
	v := f.verifier(t)
	_, pub := key(t, residentAttrs)
	ev := f.certify(t, pub, testNonce)
	ev.LoggedAt = time.Time{}
	mustFail(t, v.Verify(ev), attest.CheckEvidenceTime, attest.ErrNoTime)
	ev = f.certify(t, pub, testNonce)
	ev.Kind = "creation"
	mustFail(t, v.Verify(ev), tpm.CheckFormat, attest.ErrInput)
}
