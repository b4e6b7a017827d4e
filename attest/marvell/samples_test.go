package marvell_test

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/marvell"
	"github.com/keytrail/keytrail/evidence"
)

// The facts of testdata/attest/marvell/README.md, reproduced from the files
// directly (independently of the package) and through the Verifier.

func gunzip(tb testing.TB, name string) []byte {
	tb.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(read(tb, name)))
	if err != nil {
		tb.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func parseCerts(tb testing.TB) (mfrPartition, mfrCard, ownerPartition, ownerCard *x509.Certificate) {
	tb.Helper()
	var cs []*x509.Certificate
	for _, der := range chains(tb) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			tb.Fatal(err)
		}
		cs = append(cs, c)
	}
	if len(cs) != 4 {
		tb.Fatalf("%d certificates, want 4", len(cs))
	}
	return cs[0], cs[1], cs[2], cs[3]
}

func statuses(res *attest.Result) map[string]attest.Status {
	m := map[string]attest.Status{}
	for _, c := range res.Checks {
		m[c.Name] = c.Status
	}
	return m
}

// Fact: after gunzip, the last 256 bytes are an RSA PKCS#1 v1.5 SHA-256
// signature over everything before them, by the partition certificate's key;
// it verifies for the EC file, not for the RSA file.
func TestFactSignature(t *testing.T) {
	mp, _, op, _ := parseCerts(t)
	for _, tc := range []struct {
		file string
		ok   bool
	}{{"ec-key-attestation.dat.gz", true}, {"rsa-key-attestation-other-hsm.dat.gz", false}} {
		raw := gunzip(t, tc.file)
		h := sha256.Sum256(raw[:len(raw)-256])
		for _, c := range []*x509.Certificate{mp, op} {
			err := rsa.VerifyPKCS1v15(c.PublicKey.(*rsa.PublicKey), crypto.SHA256, h[:], raw[len(raw)-256:])
			if (err == nil) != tc.ok {
				t.Errorf("%s: signature by %q: %v, want ok=%v", tc.file, c.Subject.CommonName, err, tc.ok)
			}
		}
		ev := ecEvidence(t)
		ev.Attestation = read(t, tc.file)
		res := verifier(t).Verify(ev)
		want := attest.Pass
		if !tc.ok {
			want = attest.Fail
		}
		if c := res.Check(marvell.CheckSignature); c.Status != want {
			t.Errorf("%s: %s = %s (%s), want %s", tc.file, marvell.CheckSignature, c.Status, c.Reason, want)
		}
		if !tc.ok && !errors.Is(res.Check(marvell.CheckSignature).Err(), attest.ErrSignature) {
			t.Errorf("%s: signature error %v does not wrap ErrSignature", tc.file, res.Check(marvell.CheckSignature).Err())
		}
	}
}

// Fact: the manufacturer card certificate is X.509 v1: x509.Verify refuses it
// as a CA; CheckSignatureFrom link by link works; the verifier records why it
// accepted it.
func TestFactManufacturerV1Card(t *testing.T) {
	mp, mc, _, _ := parseCerts(t)
	mroot := root(t, "marvell-cavium-root-2015.pem").Certificate
	if mc.Version != 1 || mroot.Version != 1 {
		t.Fatalf("card certificate v%d, root v%d: want both X.509 v1", mc.Version, mroot.Version)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(mroot)
	inter.AddCert(mc)
	_, err := mp.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: loggedAt,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	var inv x509.CertificateInvalidError
	if !errors.As(err, &inv) || inv.Reason != x509.NotAuthorizedToSign || !strings.Contains(err.Error(), "not authorized to sign other certificates") {
		t.Fatalf("x509.Verify = %v, want NotAuthorizedToSign", err)
	}
	if err := mc.CheckSignatureFrom(mroot); err != nil {
		t.Fatalf("card <- root: %v", err)
	}
	if err := mp.CheckSignatureFrom(mc); err != nil {
		t.Fatalf("partition <- card: %v", err)
	}
	c := verifier(t).Verify(ecEvidence(t)).Check(marvell.CheckManufacturerChain)
	if c.Status != attest.Pass || len(c.Deviations) != 1 || !strings.Contains(c.Deviations[0], "X.509 v1") ||
		!strings.Contains(c.Deviations[0], "not authorized to sign other certificates") {
		t.Fatalf("%s = %s %q, deviations %q; want PASS recording the v1 card", c.Name, c.Status, c.Reason, c.Deviations)
	}
}

// Fact: the manufacturer root expired on 2025-11-16 (13:55:25 UTC): evidence
// logged until then verifies, evidence logged after does not (ATTACKS.md 19).
func TestFactRootExpiry(t *testing.T) {
	mroot := root(t, "marvell-cavium-root-2015.pem").Certificate
	end := time.Date(2025, 11, 16, 13, 55, 25, 0, time.UTC)
	if !mroot.NotAfter.Equal(end) {
		t.Fatalf("root notAfter %s, want %s", mroot.NotAfter, end)
	}
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{loggedAt, true},
		{end, true}, // validity ends are inclusive (RFC 5280 4.1.2.5)
		{end.Add(time.Second), false},
		{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		ev := ecEvidence(t)
		ev.LoggedAt = tc.at
		res := verifier(t).Verify(ev)
		if res.Verified != tc.ok {
			t.Fatalf("logged at %s: verified=%v, want %v: %v", tc.at, res.Verified, tc.ok, res.Err())
		}
		if !tc.ok {
			c := res.Check(marvell.CheckManufacturerChain)
			if c.Status != attest.Fail || !errors.Is(c.Err(), attest.ErrValidity) || !strings.Contains(c.Reason, "localca.liquidsecurity.cavium.com") {
				t.Fatalf("logged at %s: %s = %s %q, want a validity failure naming the root", tc.at, c.Name, c.Status, c.Reason)
			}
			if res.Strength != attest.Unverified {
				t.Fatalf("strength %s after the root's end", res.Strength)
			}
		}
	}
}

// Fact: the owner chain verifies with x509.Verify at 2024-06-01, and the
// manufacturer and owner certify the same partition key and the same card key.
func TestFactOwnerChainAndSameKeys(t *testing.T) {
	mp, mc, op, oc := parseCerts(t)
	oroot := root(t, "google-hawksbill-root-v1-prod.pem").Certificate
	roots := x509.NewCertPool()
	roots.AddCert(oroot)
	for _, c := range []*x509.Certificate{op, oc} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: loggedAt, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("x509.Verify(%q): %v", c.Subject.CommonName, err)
		}
	}
	if !mp.PublicKey.(*rsa.PublicKey).Equal(op.PublicKey) {
		t.Fatal("partition keys differ")
	}
	if !mc.PublicKey.(*rsa.PublicKey).Equal(oc.PublicKey) {
		t.Fatal("card keys differ")
	}
	res := verifier(t).Verify(ecEvidence(t))
	for _, n := range []string{marvell.CheckOwnerChain, marvell.CheckSameKeys} {
		if c := res.Check(n); c.Status != attest.Pass {
			t.Fatalf("%s = %s %q", n, c.Status, c.Reason)
		}
	}
}

// Fact: the layout. Response header (code, flags, totalSize, bufferSize), info
// header at len-bufferSize-256 (version, flags, offset1, offset2), two key
// objects (handle, attribute count, size, then type/length/value records).
func TestFactLayout(t *testing.T) {
	raw := gunzip(t, "ec-key-attestation.dat.gz")
	be := binary.BigEndian
	total, buffer := be.Uint32(raw[8:]), be.Uint32(raw[12:])
	if int(total) != len(raw) {
		t.Fatalf("totalSize %d, length %d", total, len(raw))
	}
	info := len(raw) - int(buffer) - 256
	off1, off2 := int(be.Uint16(raw[info+4:])), int(be.Uint16(raw[info+6:]))
	if info != 32 || off1 != 8 || off2 != 916 {
		t.Fatalf("info header at %d, offsets %d and %d; want 32, 8 and 916", info, off1, off2)
	}
	// Walk the objects by hand.
	var handles []uint32
	var classes []byte
	for _, off := range []int{off1, off2} {
		p := info + off
		handles = append(handles, be.Uint32(raw[p:]))
		count, size := be.Uint32(raw[p+4:]), be.Uint32(raw[p+8:])
		q, end := p+12, p+12+int(size)
		for range count {
			typ, n := be.Uint32(raw[q:]), int(be.Uint32(raw[q+4:]))
			if typ == 0 {
				classes = append(classes, raw[q+8])
			}
			q += 8 + n
		}
		if q != end {
			t.Fatalf("object at %d: records end at %d, size says %d", p, q, end)
		}
	}
	if !bytes.Equal(classes, []byte{2, 3}) {
		t.Fatalf("classes %v, want public (2) then private (3)", classes)
	}

	a, err := marvell.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if a.ResponseCode != 0 || a.Flags != 3 || a.Version != 1 || len(a.Objects) != 2 ||
		a.Objects[0].Handle != handles[0] || a.Objects[1].Handle != handles[1] || len(a.Signature) != 256 ||
		len(a.Signed) != len(raw)-256 || 16+len(a.Handles) != info {
		t.Fatalf("Parse disagrees with the layout: %+v", a)
	}
	if got := marvell.Marshal(a); !bytes.Equal(got, raw) {
		t.Fatal("Marshal(Parse(raw)) != raw")
	}
}

// Fact: in the EC file's private object LOCAL=1, SENSITIVE=1, EXTRACTABLE=0,
// NEVER_EXTRACTABLE=1, ALWAYS_SENSITIVE=1, label "app_key"; EKCV is SHA-256 of
// the DER SubjectPublicKeyInfo of the P-256 point in 0x120, KCV the first 3
// bytes of its SHA-1. Model and serial come from the certificates' common names.
func TestFactECKey(t *testing.T) {
	a, err := marvell.Parse(gunzip(t, "ec-key-attestation.dat.gz"))
	if err != nil {
		t.Fatal(err)
	}
	priv := a.Objects[1]
	want := map[uint32]byte{marvell.AttrClass: 3, marvell.AttrLocal: 1, marvell.AttrSensitive: 1, marvell.AttrExtractable: 0,
		marvell.AttrNeverExtractable: 1, marvell.AttrAlwaysSensitive: 1}
	for typ, v := range want {
		got, ok := priv.Get(typ)
		if !ok || len(got) != 1 || got[0] != v {
			t.Errorf("private object attribute %#x = %x, want %d", typ, got, v)
		}
	}
	if l := priv.Label(); l != "app_key" {
		t.Errorf("label %q", l)
	}
	pt, _ := priv.Get(0x120)
	x, y := elliptic.Unmarshal(elliptic.P256(), pt) //nolint:staticcheck // an independent decoding
	if x == nil {
		t.Fatalf("0x120 is not a P-256 point: %x", pt)
	}
	spki, err := x509.MarshalPKIXPublicKey(&ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y})
	if err != nil {
		t.Fatal(err)
	}
	sum, sum1 := sha256.Sum256(spki), sha1.Sum(spki)
	for _, o := range a.Objects {
		if v, _ := o.Get(0x1003); !bytes.Equal(v, sum[:]) {
			t.Errorf("EKCV %x, SHA-256(SPKI) %x", v, sum)
		}
		if v, _ := o.Get(0x173); !bytes.Equal(v, sum1[:3]) {
			t.Errorf("KCV %x, SHA-1(SPKI)[:3] %x", v, sum1[:3])
		}
	}

	res := verifier(t).Verify(ecEvidence(t))
	if !res.Verified || res.Strength != attest.VendorAttested {
		t.Fatalf("verified=%v strength=%s: %v", res.Verified, res.Strength, res.Err())
	}
	wantFacts := attest.Facts{
		KeyDigest: hex.EncodeToString(sum[:]),
		Algorithm: "ECDSA P-256",
		Label:     "app_key",
		Token:     evidence.TokenInfo{Manufacturer: "Cavium", Model: "N3FIPS", Serial: "5.3G1953-ICM001225"},
		Partition: "1",
		Attributes: &evidence.KeyAttributes{KeyType: "EC", Local: true, Sensitive: true, Extractable: false,
			NeverExtractable: true, AlwaysSensitive: true},
		AttributeSource: attest.SourceAttested,
	}
	got := res.Facts
	got.PublicKey = nil
	if d := cmp.Diff(wantFacts, got); d != "" {
		t.Errorf("facts (-want +got):\n%s", d)
	}
	if d, _ := evidence.KeyDigest(res.Facts.PublicKey); d != wantFacts.KeyDigest {
		t.Errorf("Facts.PublicKey digest %s", d)
	}
	wantChecks := map[string]attest.Status{
		marvell.CheckDecode: attest.Pass, marvell.CheckManufacturerChain: attest.Pass, marvell.CheckOwnerChain: attest.Pass,
		marvell.CheckSameKeys: attest.Pass, marvell.CheckSignature: attest.Pass, marvell.CheckFormat: attest.Pass,
		marvell.CheckKeyObjects: attest.Pass, marvell.CheckKeyValues: attest.Pass, attest.CheckBinding: attest.Skip,
		attest.CheckNonExport: attest.Pass, attest.CheckIdentity: attest.Pass,
	}
	if d := cmp.Diff(wantChecks, statuses(res)); d != "" {
		t.Errorf("checks (-want +got):\n%s", d)
	}
	// The model and serial are those of the common names.
	mp, _, _, _ := parseCerts(t)
	if !strings.HasPrefix(mp.Subject.CommonName, "HSM:5.3G1953-ICM001225:PARTN:1") {
		t.Errorf("partition common name %q", mp.Subject.CommonName)
	}
}

// Fact: the RSA file's private object shows LOCAL=0 and NEVER_EXTRACTABLE=0,
// an imported key that a non-export policy rejects; its signature does not
// verify against this chain.
func TestFactRSAOtherHSM(t *testing.T) {
	a, err := marvell.Parse(gunzip(t, "rsa-key-attestation-other-hsm.dat.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Objects) != 1 {
		t.Fatalf("%d objects, want the private object alone", len(a.Objects))
	}
	for typ, want := range map[uint32]byte{marvell.AttrClass: 3, marvell.AttrLocal: 0, marvell.AttrNeverExtractable: 0} {
		if v, _ := a.Objects[0].Get(typ); len(v) != 1 || v[0] != want {
			t.Errorf("attribute %#x = %x, want %d", typ, v, want)
		}
	}
	ev := ecEvidence(t)
	ev.Attestation = read(t, "rsa-key-attestation-other-hsm.dat.gz")
	res := verifier(t).Verify(ev)
	if res.Verified || res.Strength != attest.Unverified {
		t.Fatalf("verified=%v strength=%s", res.Verified, res.Strength)
	}
	sig, pol := res.Check(marvell.CheckSignature), res.Check(attest.CheckNonExport)
	if sig.Status != attest.Fail || !errors.Is(sig.Err(), attest.ErrSignature) {
		t.Errorf("%s = %s %q", sig.Name, sig.Status, sig.Reason)
	}
	if pol.Status != attest.Fail || !errors.Is(pol.Err(), attest.ErrPolicy) {
		t.Fatalf("%s = %s %q", pol.Name, pol.Status, pol.Reason)
	}
	for _, name := range []string{"LOCAL=0", "NEVER_EXTRACTABLE=0", "ALWAYS_SENSITIVE=0", "unauthenticated"} {
		if !strings.Contains(pol.Reason, name) {
			t.Errorf("policy reason %q does not name %s", pol.Reason, name)
		}
	}
	if res.Facts.Algorithm != "RSA 4096" || res.Facts.Attributes.Local || res.Facts.Attributes.NeverExtractable {
		t.Errorf("facts %+v %+v", res.Facts, res.Facts.Attributes)
	}
	if err := res.Err(); !errors.Is(err, attest.ErrSignature) || !errors.Is(err, attest.ErrPolicy) {
		t.Errorf("Err() = %v, want both the signature and the policy", err)
	}
}

// The result is JSON: what an auditor's tool prints.
func TestResultJSON(t *testing.T) {
	res := verifier(t).Verify(ecEvidence(t))
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back attest.Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Strength != attest.VendorAttested || !back.Verified || back.Facts.Token.Serial != "5.3G1953-ICM001225" ||
		len(back.Checks) != len(res.Checks) || len(back.Checks[1].Deviations) != 1 {
		t.Fatalf("round trip: %s", b)
	}
}
