package marvell_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/internal/fakeca"
	"github.com/keytrail/keytrail/attest/marvell"
	"github.com/keytrail/keytrail/evidence"
)

// wantFail checks that res is not verified and that check failed with err.
func wantFail(t *testing.T, res *attest.Result, check string, err error, reason string) {
	t.Helper()
	if res.Verified {
		t.Fatalf("verified; want %s to fail", check)
	}
	c := res.Check(check)
	if c == nil {
		t.Fatalf("no check %s in %+v", check, res.Checks)
	}
	if c.Status != attest.Fail || !errors.Is(c.Err(), err) || !strings.Contains(c.Reason, reason) {
		t.Fatalf("%s = %s %q, want FAIL wrapping %v and containing %q", check, c.Status, c.Reason, err, reason)
	}
	if res.Check(attest.CheckVerifier) != nil {
		t.Fatalf("verifier panicked: %s", res.Check(attest.CheckVerifier).Reason)
	}
}

// Every single flipped byte of the decompressed attestation makes it fail:
// the signature covers everything but itself (ATTACKS.md 15).
func TestFlippedByte(t *testing.T) {
	v := verifier(t)
	raw := gunzip(t, "ec-key-attestation.dat.gz")
	ev := ecEvidence(t)
	for i := range raw {
		b := bytes.Clone(raw)
		b[i] ^= 0x01
		ev.Attestation = b
		res := v.Verify(ev)
		if res.Verified || res.Strength != attest.Unverified {
			t.Fatalf("byte %d flipped: verified=%v strength=%s", i, res.Verified, res.Strength)
		}
		c := res.Check(marvell.CheckSignature)
		if c.Status != attest.Fail && res.Check(marvell.CheckDecode).Status != attest.Fail {
			t.Fatalf("byte %d flipped: %s = %s", i, c.Name, c.Status)
		}
	}
	// And in the gzip: every flipped byte is a decode failure or a signature
	// failure, never a pass.
	gz := read(t, "ec-key-attestation.dat.gz")
	for i := range gz {
		b := bytes.Clone(gz)
		b[i] ^= 0x80
		ev.Attestation = b
		if res := v.Verify(ev); res.Verified && !bytes.Equal(mustDecompress(t, b), raw) {
			t.Fatalf("gzip byte %d flipped: verified with other content", i)
		}
	}
}

func mustDecompress(t *testing.T, b []byte) []byte {
	out, err := marvell.Decompress(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// An attribute changed in the genuine attestation (the private key made
// importable): the signature fails, and so does the policy.
func TestAttributeChanged(t *testing.T) {
	a, err := marvell.Parse(gunzip(t, "ec-key-attestation.dat.gz"))
	if err != nil {
		t.Fatal(err)
	}
	set(&a.Objects[1], marvell.AttrLocal, []byte{0})
	ev := ecEvidence(t)
	ev.Attestation = marvell.Marshal(a)
	res := verifier(t).Verify(ev)
	wantFail(t, res, marvell.CheckSignature, attest.ErrSignature, "does not verify")
	wantFail(t, res, attest.CheckNonExport, attest.ErrPolicy, "LOCAL=0")
}

// Certificates from the wrong chain, missing, or a root that came with the
// evidence: the manufacturer chain fails (ATTACKS.md 13).
func TestWrongCertificates(t *testing.T) {
	p := newFakePKI(t)
	v := verifier(t)
	all := chains(t)
	for _, tc := range []struct {
		name   string
		certs  [][]byte
		check  string
		err    error
		reason string
	}{
		{"no certificates", nil, marvell.CheckManufacturerChain, attest.ErrChain, "no partition certificate"},
		{"manufacturer card missing", [][]byte{all[0], all[2], all[3]}, marvell.CheckManufacturerChain, attest.ErrChain, "partition"},
		{"owner card missing", [][]byte{all[0], all[1], all[2]}, marvell.CheckOwnerChain, attest.ErrChain, "card"},
		{"partition and card of another HSM", append(p.certs(p.mpart, p.mcard), all[2], all[3]), marvell.CheckManufacturerChain, attest.ErrChain, "localca.liquidsecurity.cavium.com"},
		{"another HSM's owner certificates", append([][]byte{all[0], all[1]}, p.certs(p.opart, p.ocard)...), marvell.CheckOwnerChain, attest.ErrChain, "Hawksbill"},
		{"garbage certificate", append([][]byte{{0x30, 0x00}}, all...), marvell.CheckManufacturerChain, attest.ErrFormat, "certificate 0"},
		{"too many certificates", make([][]byte, attest.MaxCertificates+1), marvell.CheckManufacturerChain, attest.ErrFormat, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := ecEvidence(t)
			ev.Certificates = tc.certs
			wantFail(t, v.Verify(ev), tc.check, tc.err, tc.reason)
		})
	}

	// The other HSM's partition certificate chained to its own (fake) root,
	// which the evidence carries: never trusted, since the fake root is not pinned.
	ev := ecEvidence(t)
	ev.Certificates = append(p.certs(p.mpart, p.mcard, p.mroot), all[2], all[3])
	wantFail(t, v.Verify(ev), marvell.CheckManufacturerChain, attest.ErrChain, "")
}

// The manufacturer partition certificate and the owner's carry different keys.
func TestOwnerCertifiesOtherKeys(t *testing.T) {
	p := newFakePKI(t)
	other := fakeca.MustNew(p.oroot, fakeca.Options{Subject: subject("HSM:TEST-0001:PARTN:7, for FIPS mode"), Key: fakeca.RSAKey(2048)})
	ev := marvell.Evidence{
		Attestation:  p.sign(keyPair(newECKey(t).Public())),
		Certificates: p.certs(p.mpart, p.mcard, other, p.ocard),
		LoggedAt:     loggedAt,
	}
	res := p.verifier(t).Verify(ev)
	wantFail(t, res, marvell.CheckSameKeys, attest.ErrKeyMismatch, "partition")
	if res.Strength != attest.Unverified {
		t.Fatalf("strength %s", res.Strength)
	}
}

// Two manufacturer partition certificates with different keys: ambiguous.
func TestAmbiguousPartition(t *testing.T) {
	p := newFakePKI(t)
	other := fakeca.MustNew(p.mcard, fakeca.Options{Subject: subject("HSM:TEST-0001:PARTN:8, for FIPS mode"), Key: fakeca.RSAKey(2048)})
	ev := marvell.Evidence{
		Attestation:  p.sign(keyPair(newECKey(t).Public())),
		Certificates: p.certs(p.mpart, other, p.mcard, p.opart, p.ocard),
		LoggedAt:     loggedAt,
	}
	wantFail(t, p.verifier(t).Verify(ev), marvell.CheckManufacturerChain, attest.ErrChain, "different keys")
}

// Evidence logged outside a certificate's validity, or with no time at all.
func TestTimes(t *testing.T) {
	v := verifier(t)
	ev := ecEvidence(t)
	ev.LoggedAt = time.Date(2024, 4, 15, 0, 0, 0, 0, time.UTC) // before the partition certificates
	wantFail(t, v.Verify(ev), marvell.CheckManufacturerChain, attest.ErrValidity, "PARTN:1")

	ev.LoggedAt = time.Time{}
	wantFail(t, v.Verify(ev), attest.CheckEvidenceTime, attest.ErrInput, "required")

	// A pinned window ending before the evidence, although the root is valid.
	mroot := root(t, "marvell-cavium-root-2015.pem")
	mroot.NotAfter = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	owner := root(t, "google-hawksbill-root-v1-prod.pem")
	narrowed, err := marvell.NewVerifier(marvell.Config{Manufacturer: mroot, Owner: &owner})
	if err != nil {
		t.Fatal(err)
	}
	wantFail(t, narrowed.Verify(ecEvidence(t)), marvell.CheckManufacturerChain, attest.ErrValidity, "2024-01-01")
}

// Swapped roots: the owner root pinned as the manufacturer's.
func TestSwappedRoots(t *testing.T) {
	owner := root(t, "marvell-cavium-root-2015.pem")
	v, err := marvell.NewVerifier(marvell.Config{Manufacturer: root(t, "google-hawksbill-root-v1-prod.pem"), Owner: &owner})
	if err != nil {
		t.Fatal(err)
	}
	res := v.Verify(ecEvidence(t))
	wantFail(t, res, marvell.CheckManufacturerChain, attest.ErrChain, "")
	wantFail(t, res, marvell.CheckOwnerChain, attest.ErrChain, "")
}

func TestExpectedKey(t *testing.T) {
	v := verifier(t)
	raw := gunzip(t, "ec-key-attestation.dat.gz")
	a, _ := marvell.Parse(raw)
	pub, _ := a.Objects[0].Get(marvell.AttrEKCV) // EKCV is the key digest
	digest := hex.EncodeToString(pub)

	ev := ecEvidence(t)
	ev.ExpectedKey = digest
	if res := v.Verify(ev); !res.Verified || res.Check(attest.CheckBinding).Status != attest.Pass {
		t.Fatalf("expected key %s: %v", digest, res.Err())
	}
	other := sha256.Sum256([]byte("other key"))
	ev.ExpectedKey = hex.EncodeToString(other[:])
	wantFail(t, v.Verify(ev), attest.CheckBinding, attest.ErrBinding, digest)
	ev.ExpectedKey = strings.ToUpper(digest)
	wantFail(t, v.Verify(ev), attest.CheckBinding, attest.ErrInput, "lowercase hex")
}

// A genuine attestation made with the fake PKI verifies: the verifier is not
// tied to the sample.
func TestFakeAttestation(t *testing.T) {
	p := newFakePKI(t)
	k := newECKey(t)
	ev := marvell.Evidence{Attestation: p.sign(keyPair(k.Public())), Certificates: p.certs(), LoggedAt: loggedAt}
	ev.ExpectedKey, _ = evidence.KeyDigest(k.Public())
	res := p.verifier(t).Verify(ev)
	if !res.Verified || res.Strength != attest.VendorAttested || res.Facts.Token.Serial != "TEST-0001" || res.Facts.Partition != "7" {
		t.Fatalf("verified=%v strength=%s facts=%+v: %v", res.Verified, res.Strength, res.Facts, res.Err())
	}
	// Compressed too.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(ev.Attestation)
	zw.Close()
	ev.Attestation = gz.Bytes()
	if res := p.verifier(t).Verify(ev); !res.Verified {
		t.Fatalf("gzip: %v", res.Err())
	}
	// RSA key.
	rk := fakeca.RSAKey(2048)
	ev.Attestation = p.sign(keyPair(rk.Public()))
	ev.ExpectedKey, _ = evidence.KeyDigest(rk.Public())
	if res := p.verifier(t).Verify(ev); !res.Verified || res.Facts.Algorithm != "RSA 2048" {
		t.Fatalf("RSA: %v", res.Err())
	}
	// Without an owner root pinned, the owner checks are skipped and the
	// evidence still verifies.
	v, err := marvell.NewVerifier(marvell.Config{Manufacturer: attest.Root{Certificate: p.mroot.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	res = v.Verify(ev)
	if !res.Verified || res.Check(marvell.CheckOwnerChain).Status != attest.Skip || res.Check(marvell.CheckSameKeys).Status != attest.Skip {
		t.Fatalf("no owner root: %+v", res.Checks)
	}
}

// Validly signed attestations that say the wrong things (ATTACKS.md 25, 26): the
// signature passes, and the check that reads the bad fact fails.
func TestSignedButBad(t *testing.T) {
	p := newFakePKI(t)
	v := p.verifier(t)
	k := newECKey(t)
	other := newECKey(t)
	otherPt, _ := other.PublicKey.Bytes()
	for _, tc := range []struct {
		name   string
		edit   func(a *marvell.Attestation)
		check  string
		err    error
		reason string
	}{
		{"imported", func(a *marvell.Attestation) { set(&a.Objects[1], marvell.AttrLocal, []byte{0}) }, attest.CheckNonExport, attest.ErrPolicy, "LOCAL=0"},
		{"once extractable", func(a *marvell.Attestation) { set(&a.Objects[1], marvell.AttrNeverExtractable, []byte{0}) }, attest.CheckNonExport, attest.ErrPolicy, "NEVER_EXTRACTABLE=0"},
		{"once not sensitive", func(a *marvell.Attestation) { set(&a.Objects[1], marvell.AttrAlwaysSensitive, []byte{0}) }, attest.CheckNonExport, attest.ErrPolicy, "ALWAYS_SENSITIVE=0"},
		{"extractable", func(a *marvell.Attestation) { set(&a.Objects[1], marvell.AttrExtractable, []byte{1}) }, attest.CheckNonExport, attest.ErrPolicy, "EXTRACTABLE=1"},
		{"boolean 2", func(a *marvell.Attestation) { set(&a.Objects[1], marvell.AttrLocal, []byte{2}) }, marvell.CheckKeyObjects, attest.ErrFormat, "0 or 1"},
		{"no LOCAL", func(a *marvell.Attestation) {
			a.Objects[1].Attributes = drop(a.Objects[1].Attributes, marvell.AttrLocal)
		}, marvell.CheckKeyObjects, attest.ErrFormat, "no attribute 0x163"},
		{"wrong EKCV", func(a *marvell.Attestation) { set(&a.Objects[1], marvell.AttrEKCV, make([]byte, 32)) }, marvell.CheckKeyValues, attest.ErrCheckValue, "EKCV"},
		{"no EKCV", func(a *marvell.Attestation) {
			a.Objects[0].Attributes = drop(a.Objects[0].Attributes, marvell.AttrEKCV)
		}, marvell.CheckKeyValues, attest.ErrCheckValue, "no EKCV"},
		{"wrong KCV", func(a *marvell.Attestation) { set(&a.Objects[0], marvell.AttrKCV, []byte{1, 2, 3}) }, marvell.CheckKeyValues, attest.ErrCheckValue, "KCV"},
		{"public and private keys differ", func(a *marvell.Attestation) { set(&a.Objects[0], marvell.AttrModulus, otherPt) }, marvell.CheckKeyObjects, attest.ErrKeyMismatch, "different keys"},
		{"point not on curve", func(a *marvell.Attestation) {
			pt := bytes.Clone(otherPt)
			pt[64] ^= 1
			set(&a.Objects[1], marvell.AttrModulus, pt)
		}, marvell.CheckKeyObjects, attest.ErrFormat, "EC point"},
		{"two private objects", func(a *marvell.Attestation) { set(&a.Objects[0], marvell.AttrClass, []byte{3}) }, marvell.CheckKeyObjects, attest.ErrFormat, "class 3"},
		{"secret key", func(a *marvell.Attestation) {
			a.Objects = a.Objects[:1]
			set(&a.Objects[0], marvell.AttrClass, []byte{4})
		}, marvell.CheckKeyObjects, attest.ErrFormat, "class 4"},
		{"duplicate attribute", func(a *marvell.Attestation) {
			a.Objects[1].Attributes = append(a.Objects[1].Attributes, marvell.Attribute{Type: marvell.AttrLocal, Value: []byte{1}})
		}, marvell.CheckFormat, attest.ErrFormat, "appears twice"},
		{"unknown key type", func(a *marvell.Attestation) { set(&a.Objects[1], marvell.AttrKeyType, []byte{0x1f}) }, marvell.CheckKeyObjects, attest.ErrFormat, "key type"},
		{"response code", func(a *marvell.Attestation) { a.ResponseCode = 1 }, marvell.CheckFormat, attest.ErrFormat, "response code"},
		{"exclude header flag", func(a *marvell.Attestation) { a.Flags = 7 }, marvell.CheckFormat, attest.ErrFormat, "request flags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := keyPair(k.Public())
			tc.edit(a)
			res := v.Verify(marvell.Evidence{Attestation: p.sign(a), Certificates: p.certs(), LoggedAt: loggedAt})
			if c := res.Check(marvell.CheckSignature); c.Status != attest.Pass {
				t.Fatalf("signature %s: %s", c.Status, c.Reason)
			}
			wantFail(t, res, tc.check, tc.err, tc.reason)
			wantStrength := attest.VendorAttested
			if tc.check != attest.CheckNonExport {
				wantStrength = attest.Unverified
			}
			if res.Strength != wantStrength {
				t.Fatalf("strength %s, want %s", res.Strength, wantStrength)
			}
		})
	}
}

func drop(attrs []marvell.Attribute, t uint32) []marvell.Attribute {
	var out []marvell.Attribute
	for _, a := range attrs {
		if a.Type != t {
			out = append(out, a)
		}
	}
	return out
}

// Signed by a key that is not the partition's.
func TestSignedByOtherKey(t *testing.T) {
	p := newFakePKI(t)
	ev := marvell.Evidence{Attestation: signWith(keyPair(newECKey(t).Public()), fakeca.RSAKey(2048)), Certificates: p.certs(), LoggedAt: loggedAt}
	wantFail(t, p.verifier(t).Verify(ev), marvell.CheckSignature, attest.ErrSignature, "PARTN:7")
}

// Malformed layouts and resource exhaustion (ATTACKS.md 29, 30).
func TestMalformed(t *testing.T) {
	raw := gunzip(t, "ec-key-attestation.dat.gz")
	be := binary.BigEndian
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(raw)) }
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(make([]byte, 10<<20))
	zw.Close()
	var twoMembers bytes.Buffer
	twoMembers.Write(read(t, "ec-key-attestation.dat.gz"))
	twoMembers.Write(read(t, "ec-key-attestation.dat.gz"))

	for _, tc := range []struct {
		name   string
		b      []byte
		reason string
	}{
		{"empty", nil, "too short"},
		{"signature only", make([]byte, 256), "too short"},
		{"total size", edit(func(b []byte) []byte { be.PutUint32(b[8:], 1); return b }), "total size"},
		{"buffer size too large", edit(func(b []byte) []byte { be.PutUint32(b[12:], 0xffffffff); return b }), "buffer size"},
		{"buffer size too small", edit(func(b []byte) []byte { be.PutUint32(b[12:], 4); return b }), "buffer size"},
		{"second offset", edit(func(b []byte) []byte { be.PutUint16(b[32+6:], 100); return b }), "offset"},
		{"no second object", edit(func(b []byte) []byte { be.PutUint16(b[32+6:], 0); return b }), "between the last key object and the signature"},
		{"attribute count", edit(func(b []byte) []byte { be.PutUint32(b[40+4:], 1000); return b }), "attributes"},
		{"attribute length", edit(func(b []byte) []byte { be.PutUint32(b[40+12+4:], 0xfffffff0); return b }), "runs past"},
		{"object size", edit(func(b []byte) []byte { be.PutUint32(b[40+8:], 0xffff); return b }), "runs past"},
		{"appended byte", append(bytes.Clone(raw), 0), "total size"},
		{"compression bomb", bomb.Bytes(), "decompresses to more than"},
		{"two gzip members", twoMembers.Bytes(), "after the gzip member"},
		{"too large", make([]byte, marvell.MaxBytes+1), "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, perr := marvell.Parse(tc.b)
			if d, err := marvell.Decompress(tc.b); err == nil {
				_, perr = marvell.Parse(d)
			} else {
				perr = err
			}
			if !errors.Is(perr, attest.ErrFormat) || !strings.Contains(perr.Error(), tc.reason) {
				t.Fatalf("Parse = %v, want ErrFormat containing %q", perr, tc.reason)
			}
			res := verifier(t).Verify(marvell.Evidence{Attestation: tc.b, Certificates: chains(t), LoggedAt: loggedAt})
			if res.Verified || res.Check(attest.CheckVerifier) != nil {
				t.Fatalf("verified=%v, checks %+v", res.Verified, res.Checks)
			}
		})
	}
}

// Every prefix of the attestation is rejected, without a panic: by Parse, and
// by Verify (with the chains for every 16th prefix, and without them, so that
// only the content is read, for all).
func TestTruncated(t *testing.T) {
	raw := gunzip(t, "ec-key-attestation.dat.gz")
	v := verifier(t)
	for n := range len(raw) {
		if _, err := marvell.Parse(raw[:n]); !errors.Is(err, attest.ErrFormat) {
			t.Fatalf("Parse of a %d-byte prefix: %v", n, err)
		}
		ev := marvell.Evidence{Attestation: raw[:n], LoggedAt: loggedAt}
		if n%16 == 0 {
			ev.Certificates = chains(t)
		}
		if res := v.Verify(ev); res.Verified || res.Check(attest.CheckVerifier) != nil {
			t.Fatalf("prefix of %d bytes: verified=%v", n, res.Verified)
		}
	}
}

// Verify never changes its input.
func TestInputUnchanged(t *testing.T) {
	ev := ecEvidence(t)
	att, certs := bytes.Clone(ev.Attestation), [][]byte{}
	for _, c := range ev.Certificates {
		certs = append(certs, bytes.Clone(c))
	}
	verifier(t).Verify(ev)
	if !bytes.Equal(att, ev.Attestation) {
		t.Fatal("attestation changed")
	}
	for i := range certs {
		if !bytes.Equal(certs[i], ev.Certificates[i]) {
			t.Fatal("certificate changed")
		}
	}
}

func TestNewVerifier(t *testing.T) {
	if _, err := marvell.NewVerifier(marvell.Config{}); err == nil {
		t.Fatal("no manufacturer root accepted")
	}
	mroot := root(t, "marvell-cavium-root-2015.pem")
	mroot.NotBefore, mroot.NotAfter = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := marvell.NewVerifier(marvell.Config{Manufacturer: mroot}); err == nil {
		t.Fatal("empty window accepted")
	}
}
