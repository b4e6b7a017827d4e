package luna_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/luna"
	"github.com/keytrail/keytrail/evidence"
)

// The facts of testdata/attest/luna/README.md, reproduced from the files
// directly (independently of the package) and through the Verifier.

func pkcCerts(tb testing.TB, name string) []*x509.Certificate {
	tb.Helper()
	p, err := luna.ParsePKC(read(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	return p.Certificates
}

func csrKey(tb testing.TB, name string) any {
	tb.Helper()
	block, _ := pem.Decode(read(tb, name))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return csr.PublicKey
}

func ecc(tb testing.TB) luna.Evidence {
	return luna.Evidence{PKC: read(tb, "ecc-pkc.p7b"), CSR: read(tb, "ecc-test.csr"), LoggedAt: loggedAt}
}

func statuses(res *attest.Result) map[string]attest.Status {
	m := map[string]attest.Status{}
	for _, c := range res.Checks {
		m[c.Name] = c.Status
	}
	return m
}

// Fact: in ecc-pkc.p7b the leaf key equals the key in ecc-test.csr.
func TestFactLeafKeyIsCSRKey(t *testing.T) {
	certs := pkcCerts(t, "ecc-pkc.p7b")
	if len(certs) != 3 {
		t.Fatalf("%d certificates, want leaf, HOC, root", len(certs))
	}
	if !certs[0].PublicKey.(*ecdsa.PublicKey).Equal(csrKey(t, "ecc-test.csr")) {
		t.Fatal("leaf key is not the CSR's key")
	}
	res := verifier(t).Verify(ecc(t))
	if c := res.Check(luna.CheckCSR); c.Status != attest.Pass {
		t.Fatalf("%s = %s %q", c.Name, c.Status, c.Reason)
	}
	want, _ := evidence.KeyDigest(csrKey(t, "ecc-test.csr"))
	if res.Facts.KeyDigest != want || res.Facts.Algorithm != "ECDSA P-256" {
		t.Fatalf("facts %+v, want key %s", res.Facts, want)
	}
}

// Fact: the chain is leaf <- HOC (P-384) <- root, ECDSA-SHA384.
func TestFactChain(t *testing.T) {
	certs := pkcCerts(t, "ecc-pkc.p7b")
	leaf, hoc, rootCopy := certs[0], certs[1], certs[2]
	pinned := root(t, "luna-ecc-root-certificate.pem").Certificate
	if !rootCopy.Equal(pinned) {
		t.Fatal("the PKC's root is not the pinned root")
	}
	if hoc.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P384() {
		t.Fatal("HOC key is not P-384")
	}
	for _, c := range []*x509.Certificate{leaf, hoc} {
		if c.SignatureAlgorithm != x509.ECDSAWithSHA384 {
			t.Fatalf("%q signed with %s", c.Subject.CommonName, c.SignatureAlgorithm)
		}
	}
	if !bytes.Equal(leaf.RawIssuer, hoc.RawSubject) || !bytes.Equal(hoc.RawIssuer, pinned.RawSubject) {
		t.Fatal("names do not chain")
	}
	res := verifier(t).Verify(ecc(t))
	c := res.Check(luna.CheckChain)
	if c.Status != attest.Pass || !strings.Contains(c.Reason, `"521174" (ECDSA P-384, signed ECDSA-SHA384) <- pinned root "SafeNet ECC Manufacturer Integrity Module "`) {
		t.Fatalf("%s = %s %q", c.Name, c.Status, c.Reason)
	}
}

// Fact: extension 1.3.6.1.4.1.12383.2.1 holds the HSM serial, little-endian.
func TestFactSerial(t *testing.T) {
	leaf := pkcCerts(t, "ecc-pkc.p7b")[0]
	var v []byte
	for _, e := range leaf.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 12383, 2, 1}) {
			v = e.Value
		}
	}
	if !bytes.Equal(v, []byte{0xd6, 0xf3, 0x07, 0x00}) { // 0x0007f3d6 = 521174
		t.Fatalf("serial extension %x", v)
	}
	res := verifier(t).Verify(ecc(t))
	if res.Facts.Token.Serial != "521174" || res.Check(attest.CheckIdentity).Status != attest.Pass {
		t.Fatalf("serial %q, %s %s", res.Facts.Token.Serial, res.Check(attest.CheckIdentity).Status, res.Check(attest.CheckIdentity).Reason)
	}
	// The HOC's common name is the same serial.
	if hoc := pkcCerts(t, "ecc-pkc.p7b")[1]; hoc.Subject.CommonName != "521174" {
		t.Fatalf("HOC %q", hoc.Subject.CommonName)
	}
}

// Trap 1: the leaf's ECDSA s is DER-encoded as a negative INTEGER. Strict
// verification fails; reading r and s as unsigned verifies, and the verifier
// records it.
func TestFactNegativeS(t *testing.T) {
	certs := pkcCerts(t, "ecc-pkc.p7b")
	leaf, hoc := certs[0], certs[1]
	in := cryptobyte.String(leaf.Signature)
	var seq, r, s cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&r, cbasn1.INTEGER) || !seq.ReadASN1(&s, cbasn1.INTEGER) {
		t.Fatal("signature is not SEQUENCE { INTEGER, INTEGER }")
	}
	if s[0]&0x80 == 0 {
		t.Fatalf("s = %x is not negative-encoded", s)
	}
	h := sha512.Sum384(leaf.RawTBSCertificate)
	pub := hoc.PublicKey.(*ecdsa.PublicKey)
	if ecdsa.VerifyASN1(pub, h[:], leaf.Signature) {
		t.Fatal("strict verification accepts the negative s")
	}
	if err := leaf.CheckSignatureFrom(hoc); err == nil {
		t.Fatal("CheckSignatureFrom accepts the negative s")
	}
	var fixed cryptobyte.Builder
	fixed.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(new(big.Int).SetBytes(r))
		b.AddASN1BigInt(new(big.Int).SetBytes(s))
	})
	if !ecdsa.VerifyASN1(pub, h[:], fixed.BytesOrPanic()) {
		t.Fatal("unsigned r and s do not verify")
	}
	c := verifier(t).Verify(ecc(t)).Check(luna.CheckChain)
	if !slicesContains(c.Deviations, "negative DER INTEGER") {
		t.Fatalf("deviations %q do not record the negative s", c.Deviations)
	}
}

// Trap 2: the root is v3 without basicConstraints. CheckSignatureFrom refuses
// it; a direct ECDSA check over the TBS bytes passes; the verifier records it.
func TestFactRootWithoutBasicConstraints(t *testing.T) {
	hoc := pkcCerts(t, "ecc-pkc.p7b")[1]
	pinned := root(t, "luna-ecc-root-certificate.pem").Certificate
	if pinned.Version != 3 || pinned.BasicConstraintsValid {
		t.Fatalf("root v%d, basicConstraints %v", pinned.Version, pinned.BasicConstraintsValid)
	}
	var cv x509.ConstraintViolationError
	if err := hoc.CheckSignatureFrom(pinned); !errors.As(err, &cv) {
		t.Fatalf("CheckSignatureFrom = %v, want ConstraintViolationError", err)
	}
	h := sha512.Sum384(hoc.RawTBSCertificate)
	if !ecdsa.VerifyASN1(pinned.PublicKey.(*ecdsa.PublicKey), h[:], hoc.Signature) {
		t.Fatal("direct ECDSA check over the TBS fails")
	}
	c := verifier(t).Verify(ecc(t)).Check(luna.CheckChain)
	if !slicesContains(c.Deviations, "X.509 v3 without basicConstraints") {
		t.Fatalf("deviations %q do not record the root", c.Deviations)
	}
}

// The ECC sample verifies, with the facts a PKC implies.
func TestECCSample(t *testing.T) {
	res := verifier(t).Verify(ecc(t))
	if !res.Verified || res.Strength != attest.VendorAttested {
		t.Fatalf("verified=%v strength=%s: %v", res.Verified, res.Strength, res.Err())
	}
	want := map[string]attest.Status{luna.CheckFormat: attest.Pass, luna.CheckChain: attest.Pass, luna.CheckCSR: attest.Pass,
		attest.CheckBinding: attest.Skip, attest.CheckNonExport: attest.Pass, attest.CheckIdentity: attest.Pass}
	if d := cmp.Diff(want, statuses(res)); d != "" {
		t.Fatalf("checks (-want +got):\n%s", d)
	}
	wantAttrs := &evidence.KeyAttributes{KeyType: "EC", Local: true, Sensitive: true, NeverExtractable: true, AlwaysSensitive: true}
	if d := cmp.Diff(wantAttrs, res.Facts.Attributes); d != "" || res.Facts.AttributeSource != attest.SourceImplied {
		t.Fatalf("attributes (-want +got) %s, source %s", d, res.Facts.AttributeSource)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
}

// The RSA sample (a K7 with a five-certificate chain) verifies too.
func TestRSASample(t *testing.T) {
	certs := pkcCerts(t, "rsa-pkc.p7b")
	if len(certs) != 5 || !certs[0].PublicKey.(*rsa.PublicKey).Equal(csrKey(t, "rsa-test.csr")) {
		t.Fatalf("%d certificates; the leaf key must be the CSR's", len(certs))
	}
	res := verifier(t).Verify(luna.Evidence{PKC: read(t, "rsa-pkc.p7b"), CSR: read(t, "rsa-test.csr"), LoggedAt: loggedAt})
	if !res.Verified || res.Strength != attest.VendorAttested {
		t.Fatalf("verified=%v strength=%s: %v", res.Verified, res.Strength, res.Err())
	}
	want, _ := evidence.KeyDigest(csrKey(t, "rsa-test.csr"))
	if res.Facts.KeyDigest != want || res.Facts.Token.Serial != "521174" || res.Facts.Token.Model != "Luna K7" {
		t.Fatalf("facts %+v", res.Facts)
	}
	if c := res.Check(luna.CheckChain); len(c.Deviations) != 1 || !strings.Contains(c.Reason, "Hardware Origin Certificate") {
		t.Fatalf("%s: %q %q", c.Name, c.Reason, c.Deviations)
	}
}

func slicesContains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
