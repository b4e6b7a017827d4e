package attest_test

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/internal/fakeca"
	"github.com/keytrail/keytrail/evidence"
)

func TestNonExport(t *testing.T) {
	good := evidence.KeyAttributes{KeyType: "EC", Local: true, Sensitive: true, NeverExtractable: true, AlwaysSensitive: true}
	if err := attest.NonExport(&good); err != nil {
		t.Fatalf("good attributes: %v", err)
	}
	for _, tc := range []struct {
		edit func(a *evidence.KeyAttributes)
		want string
	}{
		{func(a *evidence.KeyAttributes) { a.Local = false }, "LOCAL=0"},
		{func(a *evidence.KeyAttributes) { a.NeverExtractable = false }, "NEVER_EXTRACTABLE=0"},
		{func(a *evidence.KeyAttributes) { a.AlwaysSensitive = false }, "ALWAYS_SENSITIVE=0"},
		{func(a *evidence.KeyAttributes) { a.Extractable = true }, "EXTRACTABLE=1"},
		{func(a *evidence.KeyAttributes) { a.Sensitive = false }, "SENSITIVE=0"},
	} {
		a := good
		tc.edit(&a)
		err := attest.NonExport(&a)
		if !errors.Is(err, attest.ErrPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NonExport = %v, want ErrPolicy naming %s", err, tc.want)
		}
	}
	// Every violation is named, not just the first.
	err := attest.NonExport(&evidence.KeyAttributes{Extractable: true})
	for _, want := range []string{"LOCAL=0", "NEVER_EXTRACTABLE=0", "ALWAYS_SENSITIVE=0", "EXTRACTABLE=1", "SENSITIVE=0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v does not name %s", err, want)
		}
	}
	if err := attest.NonExport(nil); !errors.Is(err, attest.ErrPolicy) {
		t.Errorf("nil attributes: %v", err)
	}
}

func TestStrength(t *testing.T) {
	order := []attest.Strength{attest.Unverified, attest.Software, attest.SelfReported, attest.TPMCertified, attest.VendorAttested}
	for i, s := range order {
		for j, min := range order {
			if got := s.AtLeast(min); got != (i >= j) {
				t.Errorf("%s.AtLeast(%s) = %v", s, min, got)
			}
		}
		if s.AtLeast("bogus") || attest.Strength("bogus").AtLeast(s) {
			t.Errorf("an unknown strength compares with %s", s)
		}
	}
}

func TestConclude(t *testing.T) {
	auth, req := []string{"a", "b"}, []string{"a", "b", "policy"}
	for _, tc := range []struct {
		name     string
		build    func(r *attest.Result)
		verified bool
		strength attest.Strength
	}{
		{"all pass", func(r *attest.Result) { r.Pass("a", ""); r.Pass("b", ""); r.Pass("policy", ""); r.Skip("optional", "") }, true, attest.VendorAttested},
		{"policy fails", func(r *attest.Result) { r.Pass("a", ""); r.Pass("b", ""); r.Fail("policy", attest.ErrPolicy) }, false, attest.VendorAttested},
		{"authentication fails", func(r *attest.Result) { r.Pass("a", ""); r.Fail("b", attest.ErrSignature); r.Pass("policy", "") }, false, attest.Unverified},
		{"required check skipped", func(r *attest.Result) { r.Pass("a", ""); r.Skip("b", ""); r.Pass("policy", "") }, false, attest.Unverified},
		{"required check missing", func(r *attest.Result) { r.Pass("a", ""); r.Pass("b", "") }, false, attest.VendorAttested},
		{"optional check fails", func(r *attest.Result) {
			r.Pass("a", "")
			r.Pass("b", "")
			r.Pass("policy", "")
			r.Fail("binding", attest.ErrBinding)
		}, false, attest.VendorAttested},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &attest.Result{}
			tc.build(r)
			r.Conclude(attest.VendorAttested, auth, req)
			if r.Verified != tc.verified || r.Strength != tc.strength {
				t.Fatalf("verified=%v strength=%s, want %v %s", r.Verified, r.Strength, tc.verified, tc.strength)
			}
			if (r.Err() == nil) != r.Verified {
				t.Fatalf("Err() = %v with Verified %v", r.Err(), r.Verified)
			}
		})
	}
}

func TestRecover(t *testing.T) {
	r := func() (r *attest.Result) {
		r = &attest.Result{Verified: true, Strength: attest.VendorAttested}
		defer r.Recover()
		panic("boom")
	}()
	c := r.Check(attest.CheckVerifier)
	if r.Verified || r.Strength != attest.Unverified || c == nil || !errors.Is(c.Err(), attest.ErrPanic) {
		t.Fatalf("after a panic: %+v", r)
	}
}

func TestResultJSON(t *testing.T) {
	r := &attest.Result{Format: attest.FormatLuna}
	r.Pass("a", "fine", "a deviation")
	r.Fail("b", attest.ErrChain)
	r.Conclude(attest.VendorAttested, []string{"a"}, []string{"a", "b"})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"format":"luna-pkc","verified":false,"strength":"vendor-attested","facts":{"token":{"manufacturer":"","model":"","serial":""}},` +
		`"checks":[{"name":"a","status":"PASS","reason":"fine","deviations":["a deviation"]},{"name":"b","status":"FAIL","reason":"attest: certificate chain"}]}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
}

func TestKeyBinding(t *testing.T) {
	d := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		have, want string
		status     attest.Status
		err        error
	}{
		{d, "", attest.Skip, nil},
		{d, d, attest.Pass, nil},
		{d, strings.Repeat("cd", 32), attest.Fail, attest.ErrBinding},
		{"", d, attest.Fail, attest.ErrBinding},
		{d, strings.ToUpper(d), attest.Fail, attest.ErrInput},
		{d, d[:62], attest.Fail, attest.ErrInput},
	} {
		r := &attest.Result{Facts: attest.Facts{KeyDigest: tc.have}}
		r.CheckKeyBinding(tc.want)
		c := r.Check(attest.CheckBinding)
		if c.Status != tc.status || tc.err != nil && !errors.Is(c.Err(), tc.err) {
			t.Errorf("have %q want %q: %s %q", tc.have, tc.want, c.Status, c.Reason)
		}
	}
}

func TestRoot(t *testing.T) {
	nb, na := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := fakeca.MustNew(nil, fakeca.Options{NotBefore: nb, NotAfter: na, CA: true}).Cert
	r := attest.Root{Certificate: c}
	if err := r.ValidAt(na); err != nil {
		t.Fatalf("at the inclusive end: %v", err)
	}
	if err := r.ValidAt(na.Add(time.Second)); !errors.Is(err, attest.ErrValidity) {
		t.Fatalf("after the end: %v", err)
	}
	// A pinned window narrows, never widens.
	r.NotBefore, r.NotAfter = nb.AddDate(-5, 0, 0), nb.AddDate(1, 0, 0)
	if from, to := r.Window(); !from.Equal(nb) || !to.Equal(nb.AddDate(1, 0, 0)) {
		t.Fatalf("window %s..%s", from, to)
	}
	if err := r.ValidAt(nb.AddDate(2, 0, 0)); !errors.Is(err, attest.ErrValidity) {
		t.Fatalf("after the pinned end: %v", err)
	}
	if err := (attest.Root{}).Validate(); err == nil {
		t.Fatal("a root without a certificate validates")
	}
	r.NotBefore, r.NotAfter = na, nb
	if err := r.Validate(); err == nil {
		t.Fatal("an empty window validates")
	}
}

func TestCertificatesPEM(t *testing.T) {
	c := fakeca.MustNew(nil, fakeca.Options{}).Cert
	block := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	key := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}))
	for _, tc := range []struct {
		in   string
		n    int
		fail bool
	}{
		{block, 1, false},
		{"\n" + block + "\n" + block + "  \n", 2, false},
		{"junk\n" + block, 0, true},
		{block + "junk", 0, true},
		{block + key, 0, true},
		{"", 0, true},
		{strings.Repeat(block, attest.MaxCertificates+1), 0, true},
	} {
		ders, err := attest.CertificatesPEM([]byte(tc.in))
		if (err != nil) != tc.fail || len(ders) != tc.n {
			t.Errorf("CertificatesPEM(%.20q...) = %d, %v", tc.in, len(ders), err)
		}
	}
	if _, err := attest.ParseRootPEM([]byte(block + block)); err == nil {
		t.Error("two roots parsed as one")
	}
	if r, err := attest.ParseRootPEM([]byte(block)); err != nil || !r.Certificate.Equal(c) {
		t.Errorf("ParseRootPEM: %v", err)
	}
}
