package chain_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/internal/chain"
	"github.com/keytrail/keytrail/attest/internal/fakeca"
)

var at = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

func name(cn string) pkix.Name { return pkix.Name{CommonName: cn} }

func TestLinkDeviations(t *testing.T) {
	root := fakeca.MustNew(nil, fakeca.Options{Subject: name("root"), CA: true})
	v1 := fakeca.MustNew(root, fakeca.Options{Subject: name("v1 intermediate"), V1: true})
	v1Leaf := fakeca.MustNew(v1, fakeca.Options{Subject: name("leaf of v1")})
	noBC := fakeca.MustNew(nil, fakeca.Options{Subject: name("root without basicConstraints"), NoBasicConstraints: true, KeyUsage: x509.KeyUsageCertSign})
	noBCLeaf := fakeca.MustNew(noBC, fakeca.Options{Subject: name("leaf of root without basicConstraints")})
	notCA := fakeca.MustNew(root, fakeca.Options{Subject: name("not a CA")})
	notCALeaf := fakeca.MustNew(notCA, fakeca.Options{Subject: name("leaf of not a CA")})
	negS := fakeca.MustNew(root, fakeca.Options{Subject: name("negative s"), NegativeS: true})
	noCertSign := fakeca.MustNew(nil, fakeca.Options{Subject: name("no certSign"), CA: false, NoBasicConstraints: true, KeyUsage: x509.KeyUsageDigitalSignature})
	noCertSignLeaf := fakeca.MustNew(noCertSign, fakeca.Options{Subject: name("leaf of no certSign")})
	other := fakeca.MustNew(nil, fakeca.Options{Subject: name("root"), CA: true}) // same name, other key

	if err := negS.Cert.CheckSignatureFrom(root.Cert); err == nil {
		t.Fatal("Go accepts a negative-s signature; the fake does not exercise the deviation")
	}
	if err := noBCLeaf.Cert.CheckSignatureFrom(noBC.Cert); err == nil {
		t.Fatal("Go accepts a v3 root without basicConstraints; the fake does not exercise the deviation")
	}

	for _, tc := range []struct {
		name          string
		child, parent *fakeca.Cert
		anchor        bool
		allow         chain.Allow
		wantErr       string
		wantDev       string
	}{
		{"ordinary", v1, root, true, chain.Allow{}, "", ""},
		{"v1 issuer refused", v1Leaf, v1, false, chain.Allow{}, "X.509 v1 certificate, which cannot be a CA", ""},
		{"v1 issuer allowed", v1Leaf, v1, false, chain.Allow{V1Issuer: true}, "", "X.509 v1 certificate (no basicConstraints)"},
		{"v1 anchor", v1Leaf, v1, true, chain.Allow{}, "", ""},
		{"anchor without basicConstraints refused", noBCLeaf, noBC, true, chain.Allow{}, "without basicConstraints", ""},
		{"anchor without basicConstraints allowed", noBCLeaf, noBC, true, chain.Allow{AnchorWithoutBasicConstraints: true}, "", "checked directly over the TBSCertificate"},
		{"intermediate without basicConstraints refused even when allowed for anchors", noBCLeaf, noBC, false, chain.Allow{AnchorWithoutBasicConstraints: true}, "without basicConstraints", ""},
		{"issuer says not a CA", notCALeaf, notCA, false, chain.Allow{V1Issuer: true, AnchorWithoutBasicConstraints: true}, "not a CA", ""},
		{"issuer says not a CA, even as anchor", notCALeaf, notCA, true, chain.Allow{AnchorWithoutBasicConstraints: true}, "not a CA", ""},
		{"key usage without certSign", noCertSignLeaf, noCertSign, true, chain.Allow{AnchorWithoutBasicConstraints: true}, "key usage", ""},
		{"negative s refused", negS, root, false, chain.Allow{}, "verification failure", ""},
		{"negative s allowed", negS, root, false, chain.Allow{NegativeECDSA: true}, "", "negative DER INTEGER"},
		{"wrong key, same name", v1, other, true, chain.Allow{}, "verification failure", ""},
		{"wrong name", v1Leaf, root, true, chain.Allow{}, "issuer name does not match", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			devs, err := chain.Link(tc.child.Cert, tc.parent.Cert, tc.anchor, tc.allow)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, attest.ErrChain) {
					t.Fatalf("Link = %v, want an ErrChain containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Link: %v", err)
			}
			joined := strings.Join(devs, "\n")
			if tc.wantDev == "" && len(devs) != 0 || !strings.Contains(joined, tc.wantDev) {
				t.Fatalf("deviations %q, want %q", devs, tc.wantDev)
			}
		})
	}
}

func TestLinkRefusesSHA1(t *testing.T) {
	root := fakeca.MustNew(nil, fakeca.Options{Subject: name("rsa root"), CA: true, Key: fakeca.RSAKey(2048)})
	leaf, err := fakeca.New(root, fakeca.Options{Subject: name("sha1 leaf"), SignatureAlgorithm: x509.SHA1WithRSA})
	if err != nil {
		t.Skipf("crypto/x509 will not mint SHA-1 certificates: %v", err)
	}
	if _, err := chain.Link(leaf.Cert, root.Cert, true, chain.Allow{AnchorWithoutBasicConstraints: true}); err == nil ||
		!strings.Contains(err.Error(), "not accepted") {
		t.Fatalf("Link = %v, want SHA-1 refused", err)
	}
}

func TestValidAtInclusive(t *testing.T) {
	nb, na := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := fakeca.MustNew(nil, fakeca.Options{Subject: name("c"), NotBefore: nb, NotAfter: na}).Cert
	for _, tc := range []struct {
		t  time.Time
		ok bool
	}{
		{nb, true}, {na, true}, {nb.Add(-time.Second), false}, {na.Add(time.Second), false},
	} {
		if err := chain.ValidAt(c, tc.t); (err == nil) != tc.ok || err != nil && !errors.Is(err, attest.ErrValidity) {
			t.Errorf("ValidAt(%s) = %v, want ok=%v", tc.t, err, tc.ok)
		}
	}
}

func TestBuild(t *testing.T) {
	root := fakeca.MustNew(nil, fakeca.Options{Subject: name("root"), CA: true})
	inter := fakeca.MustNew(root, fakeca.Options{Subject: name("intermediate"), CA: true})
	leaf := fakeca.MustNew(inter, fakeca.Options{Subject: name("leaf")})
	pinned := []attest.Root{{Certificate: root.Cert}}

	p, err := chain.Build(leaf.Cert, []*x509.Certificate{root.Cert, leaf.Cert, inter.Cert}, pinned, at, chain.Allow{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Certs) != 2 || !p.Certs[1].Equal(inter.Cert) || !p.Root.Certificate.Equal(root.Cert) {
		t.Fatalf("path %v", p)
	}

	// A root in the pool is never trusted: only a pinned one is.
	rogue := fakeca.MustNew(nil, fakeca.Options{Subject: name("root"), CA: true})
	rogueInter := fakeca.MustNew(rogue, fakeca.Options{Subject: name("intermediate"), CA: true})
	rogueLeaf := fakeca.MustNew(rogueInter, fakeca.Options{Subject: name("leaf")})
	if _, err := chain.Build(rogueLeaf.Cert, []*x509.Certificate{rogue.Cert, rogueInter.Cert}, pinned, at, chain.Allow{}); !errors.Is(err, attest.ErrChain) {
		t.Fatalf("rogue chain: %v, want ErrChain", err)
	}

	// The pinned window narrows the root's validity.
	narrowed := []attest.Root{{Certificate: root.Cert, NotAfter: at.Add(-time.Hour)}}
	if _, err := chain.Build(leaf.Cert, []*x509.Certificate{inter.Cert}, narrowed, at, chain.Allow{}); !errors.Is(err, attest.ErrValidity) {
		t.Fatalf("root outside its pinned window: %v, want ErrValidity", err)
	}

	// No issuer at all.
	if _, err := chain.Build(leaf.Cert, nil, pinned, at, chain.Allow{}); err == nil || !strings.Contains(err.Error(), "no pinned root or certificate is the issuer") {
		t.Fatalf("missing intermediate: %v", err)
	}
}

// TestBuildBounded: certificates that all share one name and sign each other
// cannot make the search explode (ATTACKS.md 29).
func TestBuildBounded(t *testing.T) {
	root := fakeca.MustNew(nil, fakeca.Options{Subject: name("root"), CA: true})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	self := &fakeca.Cert{Key: key}
	self.Cert = fakeca.MustNew(nil, fakeca.Options{Subject: name("loop"), CA: true, Key: key}).Cert
	var pool []*x509.Certificate
	for range attest.MaxCertificates {
		pool = append(pool, fakeca.MustNew(self, fakeca.Options{Subject: name("loop"), CA: true, Key: key}).Cert)
	}
	start := time.Now()
	_, err := chain.Build(pool[0], pool, []attest.Root{{Certificate: root.Cert}}, at, chain.Allow{})
	if !errors.Is(err, attest.ErrChain) {
		t.Fatalf("Build = %v, want ErrChain", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Build took %s", d)
	}
}

func TestUnsignedECDSA(t *testing.T) {
	enc := func(r, s []byte) []byte {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(r) })
			b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(s) })
		})
		return b.BytesOrPanic()
	}
	for _, tc := range []struct {
		name string
		sig  []byte
		ok   bool
	}{
		{"negative s", enc([]byte{0x01}, []byte{0x80, 0x01}), true},
		{"negative r", enc([]byte{0xff}, []byte{0x01}), true},
		{"conforming", enc([]byte{0x01}, []byte{0x00, 0x80}), false},
		{"non-minimal positive", enc([]byte{0x00, 0x01}, []byte{0x80}), false},
		{"empty integer", enc(nil, []byte{0x80}), false},
		{"trailing data", append(enc([]byte{0x01}, []byte{0x80}), 0), false},
		{"not a sequence", []byte{0x02, 0x01, 0x80}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := chain.UnsignedECDSA(tc.sig)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok {
				checkStrict(t, tc.sig, out)
			}
		})
	}
}

// checkStrict: out is strict DER of two positive INTEGERs equal to the
// unsigned readings of in's.
func checkStrict(t *testing.T, in, out []byte) {
	t.Helper()
	read := func(b []byte, strict bool) (*big.Int, *big.Int, error) {
		s := cryptobyte.String(b)
		var seq, rb, sb cryptobyte.String
		if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&rb, cbasn1.INTEGER) || !seq.ReadASN1(&sb, cbasn1.INTEGER) {
			return nil, nil, fmt.Errorf("malformed")
		}
		if strict {
			var r, s2 big.Int
			s = cryptobyte.String(b)
			if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s2) || r.Sign() <= 0 || s2.Sign() <= 0 {
				return nil, nil, fmt.Errorf("not strict")
			}
		}
		return new(big.Int).SetBytes(rb), new(big.Int).SetBytes(sb), nil
	}
	r1, s1, err := read(in, false)
	if err != nil {
		t.Fatal(err)
	}
	r2, s2, err := read(out, true)
	if err != nil {
		t.Fatalf("re-encoding %x: %v", out, err)
	}
	if r1.Cmp(r2) != 0 || s1.Cmp(s2) != 0 {
		t.Fatalf("values changed: %x %x -> %x %x", r1, s1, r2, s2)
	}
}

func FuzzUnsignedECDSA(f *testing.F) {
	f.Add([]byte{0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x80, 0x01})
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x7f})
	f.Fuzz(func(t *testing.T, sig []byte) {
		out, ok := chain.UnsignedECDSA(sig)
		if ok {
			checkStrict(t, sig, out)
		}
	})
}
