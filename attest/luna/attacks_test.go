package luna_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/internal/fakeca"
	"github.com/keytrail/keytrail/attest/luna"
	"github.com/keytrail/keytrail/evidence"
)

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

func raws(certs ...*x509.Certificate) [][]byte {
	var out [][]byte
	for _, c := range certs {
		out = append(out, c.Raw)
	}
	return out
}

func TestWrongCSR(t *testing.T) {
	ev := ecc(t)
	ev.CSR = read(t, "rsa-test.csr")
	res := verifier(t).Verify(ev)
	wantFail(t, res, luna.CheckCSR, attest.ErrKeyMismatch, "the CSR requests key")
	if res.Strength != attest.VendorAttested {
		t.Fatalf("strength %s: the PKC itself verified", res.Strength)
	}
	ev.CSR = []byte("not a CSR")
	wantFail(t, verifier(t).Verify(ev), luna.CheckCSR, attest.ErrInput, "CSR")
}

func TestTimes(t *testing.T) {
	end := time.Date(2030, 8, 12, 15, 23, 6, 0, time.UTC) // leaf, HOC and root end together
	ev := ecc(t)
	ev.LoggedAt = end
	if res := verifier(t).Verify(ev); !res.Verified {
		t.Fatalf("at the inclusive end: %v", res.Err())
	}
	ev.LoggedAt = end.Add(time.Second)
	wantFail(t, verifier(t).Verify(ev), luna.CheckChain, attest.ErrValidity, "2030-08-12T15:23:06Z")
	ev.LoggedAt = time.Date(2009, 1, 1, 0, 0, 0, 0, time.UTC)
	wantFail(t, verifier(t).Verify(ev), luna.CheckChain, attest.ErrValidity, "valid from")
	ev.LoggedAt = time.Time{}
	wantFail(t, verifier(t).Verify(ev), attest.CheckEvidenceTime, attest.ErrInput, "required")

	// A pinned window that ends early.
	r := root(t, "luna-ecc-root-certificate.pem")
	r.NotAfter = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	v, err := luna.NewVerifier(luna.Config{Roots: []attest.Root{r}})
	if err != nil {
		t.Fatal(err)
	}
	wantFail(t, v.Verify(ecc(t)), luna.CheckChain, attest.ErrValidity, "pinned root")
}

// The root must be pinned: the copy in the PKC is never trusted.
func TestRootNotPinned(t *testing.T) {
	v, err := luna.NewVerifier(luna.Config{Roots: []attest.Root{root(t, "luna-rsa-root-certificate.pem")}})
	if err != nil {
		t.Fatal(err)
	}
	wantFail(t, v.Verify(ecc(t)), luna.CheckChain, attest.ErrChain, "SafeNet ECC Manufacturer Integrity Module")
}

// Certificates removed, swapped in from the other chain, or added.
func TestWrongCertificates(t *testing.T) {
	e := pkcCerts(t, "ecc-pkc.p7b")
	r := pkcCerts(t, "rsa-pkc.p7b")
	other := fakeca.MustNew(nil, fakeca.Options{Subject: pkix.Name{CommonName: "unrelated"}})
	for _, tc := range []struct {
		name   string
		certs  [][]byte
		check  string
		err    error
		reason string
	}{
		{"no leaf", raws(e[1], e[2]), luna.CheckFormat, attest.ErrFormat, "no key confirmation certificate"},
		{"no HOC", raws(e[0], e[2]), luna.CheckChain, attest.ErrChain, "521174"},
		{"HOC of the other chain", raws(e[0], r[2], e[2]), luna.CheckChain, attest.ErrChain, ""},
		{"two leaves", raws(e[0], e[1], e[2], r[0]), luna.CheckFormat, attest.ErrFormat, "two key confirmation certificates"},
		{"an unrelated certificate", raws(e[0], e[1], e[2], other.Cert), luna.CheckChain, attest.ErrChain, "neither on the path"},
		{"the other chain's root", raws(e[0], e[1], e[2], r[4]), luna.CheckChain, attest.ErrChain, "Chrysalis-ITS Root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := ecc(t)
			ev.PKC = luna.MarshalPKC(tc.certs)
			wantFail(t, verifier(t).Verify(ev), tc.check, tc.err, tc.reason)
		})
	}
	// The order of the certificates does not matter, nor a missing root copy.
	ev := ecc(t)
	for _, certs := range [][][]byte{raws(e[2], e[0], e[1]), raws(e[0], e[1])} {
		ev.PKC = luna.MarshalPKC(certs)
		if res := verifier(t).Verify(ev); !res.Verified {
			t.Fatalf("reordered: %v", res.Err())
		}
	}
}

// A flipped byte anywhere in the PKC makes it fail: every byte of the
// envelope, and every 5th (ECC) or 23rd (RSA) byte of the certificates (a
// P-384 verification costs about 2 ms; FuzzVerify covers the rest).
func TestFlippedByte(t *testing.T) {
	v := verifier(t)
	for name, step := range map[string]int{"ecc-pkc.p7b": 5, "rsa-pkc.p7b": 23} {
		pkc := read(t, name)
		for i := 0; i < len(pkc); i++ {
			if i > 45 && i < len(pkc)-2 && i%step != 0 {
				continue
			}
			b := bytes.Clone(pkc)
			b[i] ^= 0x01
			res := v.Verify(luna.Evidence{PKC: b, LoggedAt: loggedAt})
			if res.Verified || res.Check(attest.CheckVerifier) != nil {
				t.Fatalf("%s byte %d flipped: verified=%v", name, i, res.Verified)
			}
		}
	}
}

func TestExpectedKey(t *testing.T) {
	want, _ := evidence.KeyDigest(csrKey(t, "ecc-test.csr"))
	ev := ecc(t)
	ev.ExpectedKey = want
	if res := verifier(t).Verify(ev); !res.Verified || res.Check(attest.CheckBinding).Status != attest.Pass {
		t.Fatalf("%v", res.Err())
	}
	ev.ExpectedKey, _ = evidence.KeyDigest(csrKey(t, "rsa-test.csr"))
	wantFail(t, verifier(t).Verify(ev), attest.CheckBinding, attest.ErrBinding, want)
}

// A Luna-shaped PKI minted with keys the test holds: a v3 root without
// basicConstraints, a HOC, a leaf whose s is negative-encoded.
type fakeLuna struct {
	root, hoc *fakeca.Cert
}

var (
	oidPKC    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 12383, 1, 13}
	oidSerial = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 12383, 2, 1}
)

func newFakeLuna(t *testing.T) *fakeLuna {
	r := fakeca.MustNew(nil, fakeca.Options{Subject: pkix.Name{CommonName: "fake Luna root"}, NoBasicConstraints: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature})
	hoc := fakeca.MustNew(r, fakeca.Options{Subject: pkix.Name{CommonName: "1234"}, CA: true})
	return &fakeLuna{root: r, hoc: hoc}
}

func (f *fakeLuna) leaf(t *testing.T, issuer *fakeca.Cert, o fakeca.Options) *fakeca.Cert {
	if o.Subject.CommonName == "" {
		o.Subject = pkix.Name{CommonName: "leaf"}
	}
	if o.UnknownExtKeyUsage == nil {
		o.UnknownExtKeyUsage = []asn1.ObjectIdentifier{oidPKC}
	}
	if o.ExtraExtensions == nil {
		o.ExtraExtensions = []pkix.Extension{{Id: oidSerial, Value: []byte{0xd2, 0x04, 0, 0}}} // 1234
	}
	o.KeyUsage = x509.KeyUsageDigitalSignature
	return fakeca.MustNew(issuer, o)
}

func (f *fakeLuna) verifier(t *testing.T) *luna.Verifier {
	v, err := luna.NewVerifier(luna.Config{Roots: []attest.Root{{Certificate: f.root.Cert}}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFakeLuna(t *testing.T) {
	f := newFakeLuna(t)
	leaf := f.leaf(t, f.hoc, fakeca.Options{NegativeS: true})
	res := f.verifier(t).Verify(luna.Evidence{PKC: luna.MarshalPKC(raws(leaf.Cert, f.hoc.Cert, f.root.Cert)), LoggedAt: loggedAt})
	if !res.Verified || res.Facts.Token.Serial != "1234" || len(res.Check(luna.CheckChain).Deviations) != 2 {
		t.Fatalf("verified=%v facts=%+v: %v %q", res.Verified, res.Facts, res.Err(), res.Check(luna.CheckChain).Deviations)
	}

	// A HOC without basicConstraints is not accepted: the deviation is for
	// pinned roots only.
	badHOC := fakeca.MustNew(f.root, fakeca.Options{Subject: pkix.Name{CommonName: "1234"}, NoBasicConstraints: true, KeyUsage: x509.KeyUsageCertSign})
	leaf2 := f.leaf(t, badHOC, fakeca.Options{})
	wantFail(t, f.verifier(t).Verify(luna.Evidence{PKC: luna.MarshalPKC(raws(leaf2.Cert, badHOC.Cert)), LoggedAt: loggedAt}),
		luna.CheckChain, attest.ErrChain, "without basicConstraints, so not a CA")

	// A leaf without the key confirmation usage is no PKC.
	plain := f.leaf(t, f.hoc, fakeca.Options{UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 2, 3}}})
	wantFail(t, f.verifier(t).Verify(luna.Evidence{PKC: luna.MarshalPKC(raws(plain.Cert, f.hoc.Cert)), LoggedAt: loggedAt}),
		luna.CheckFormat, attest.ErrFormat, "no key confirmation certificate")

	// A leaf without a serial, or one that disagrees with its HOC.
	noSerial := f.leaf(t, f.hoc, fakeca.Options{ExtraExtensions: []pkix.Extension{}})
	wantFail(t, f.verifier(t).Verify(luna.Evidence{PKC: luna.MarshalPKC(raws(noSerial.Cert, f.hoc.Cert)), LoggedAt: loggedAt}),
		attest.CheckIdentity, attest.ErrIdentity, "no serial extension")
	hocSerial := fakeca.MustNew(f.root, fakeca.Options{Subject: pkix.Name{CommonName: "1234"}, CA: true,
		ExtraExtensions: []pkix.Extension{{Id: oidSerial, Value: []byte{0xd3, 0x04, 0, 0}}}})
	leaf3 := f.leaf(t, hocSerial, fakeca.Options{})
	wantFail(t, f.verifier(t).Verify(luna.Evidence{PKC: luna.MarshalPKC(raws(leaf3.Cert, hocSerial.Cert)), LoggedAt: loggedAt}),
		attest.CheckIdentity, attest.ErrIdentity, "1235")

	// Signed by a key that is not the HOC's.
	rogue := fakeca.MustNew(nil, fakeca.Options{Subject: pkix.Name{CommonName: "1234"}, CA: true})
	leaf4 := f.leaf(t, rogue, fakeca.Options{})
	wantFail(t, f.verifier(t).Verify(luna.Evidence{PKC: luna.MarshalPKC(raws(leaf4.Cert, f.hoc.Cert)), LoggedAt: loggedAt}),
		luna.CheckChain, attest.ErrChain, "verification failure")
}

// Malformed PKCS #7 (ATTACKS.md 29, 30).
func TestMalformedPKC(t *testing.T) {
	e := pkcCerts(t, "ecc-pkc.p7b")
	signedData := func(f func(b *cryptobyte.Builder)) []byte {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2})
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, f)
			})
		})
		return b.BytesOrPanic()
	}
	body := func(digests, crls, signers bool) func(b *cryptobyte.Builder) {
		return func(b *cryptobyte.Builder) {
			b.AddASN1Int64(1)
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				if digests {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1})
					})
				}
			})
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1})
			})
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(e[0].Raw) })
			if crls {
				b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(*cryptobyte.Builder) {})
			}
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				if signers {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Int64(1) })
				}
			})
		}
	}
	many := make([][]byte, attest.MaxCertificates+1)
	for i := range many {
		many[i] = e[0].Raw
	}
	genuine := read(t, "ecc-pkc.p7b")
	indefinite := bytes.Clone(genuine)
	indefinite[1] = 0x80 // BER indefinite length
	for _, tc := range []struct {
		name, reason string
		b            []byte
	}{
		{"empty", "not one DER ContentInfo", nil},
		{"trailing data", "not one DER ContentInfo", append(bytes.Clone(genuine), 0)},
		{"BER indefinite length", "not one DER ContentInfo", indefinite},
		{"digest algorithms", "digestAlgorithms", signedData(body(true, false, false))},
		{"CRLs", "CRLs", signedData(body(false, true, false))},
		{"signers", "signerInfos", signedData(body(false, false, true))},
		{"too many certificates", "more than", luna.MarshalPKC(many)},
		{"no certificates", "no certificates", luna.MarshalPKC(nil)},
		{"not a certificate", "certificate 1", luna.MarshalPKC([][]byte{{0x30, 0x03, 0x02, 0x01, 0x01}})},
		{"too large", "at most", make([]byte, luna.MaxBytes+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := luna.ParsePKC(tc.b)
			if !errors.Is(err, attest.ErrFormat) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("ParsePKC = %v, want ErrFormat containing %q", err, tc.reason)
			}
			wantFail(t, verifier(t).Verify(luna.Evidence{PKC: tc.b, LoggedAt: loggedAt}), luna.CheckFormat, attest.ErrFormat, tc.reason)
		})
	}
}

// Every prefix of the PKC is rejected without a panic.
func TestTruncated(t *testing.T) {
	pkc := read(t, "ecc-pkc.p7b")
	for n := range len(pkc) {
		res := verifier(t).Verify(luna.Evidence{PKC: pkc[:n], LoggedAt: loggedAt})
		if res.Verified || res.Check(attest.CheckVerifier) != nil {
			t.Fatalf("prefix of %d bytes verified", n)
		}
	}
}

func TestNewVerifier(t *testing.T) {
	if _, err := luna.NewVerifier(luna.Config{}); err == nil {
		t.Fatal("no root accepted")
	}
	if _, err := luna.NewVerifier(luna.Config{Roots: []attest.Root{{}}}); err == nil {
		t.Fatal("empty root accepted")
	}
}
