// Package chain verifies vendor certificate chains link by link, at a given
// time, up to a pinned root, accepting only the deviations from RFC 5280 a
// format names (Allow) and recording each one it accepted.
//
// Go's x509.Verify is not used: it refuses the X.509 v1 CA certificates and
// the v3 roots without basicConstraints that HSM vendors ship, and the answer
// to that is never to disable its checks wholesale. Instead each link is
// checked with CheckSignatureFrom when Go's rules accept the issuer, and with a
// direct signature check over the TBSCertificate only for an allowed deviation.
package chain

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keytrail/keytrail/attest"
)

// Bounds on the chain search.
const (
	// MaxDepth bounds the certificates in a path, the root excluded.
	MaxDepth = 6
	// MaxLinks bounds the signature checks one Build may make, so that a pool
	// of certificates that all name each other cannot make the search explode.
	MaxLinks = 64
)

// Allow lists the deviations a format accepts.
type Allow struct {
	// V1Issuer: an X.509 v1 certificate, which has no extensions and so cannot
	// say it is a CA, may issue certificates below a pinned root (the Marvell
	// card certificate). x509.Verify refuses it ("not authorized to sign other
	// certificates").
	V1Issuer bool
	// AnchorWithoutBasicConstraints: a pinned root that is X.509 v3 without
	// basicConstraints may issue certificates (the Luna roots).
	// CheckSignatureFrom refuses it, after RFC 5280 4.2.1.9; the pin is what
	// makes it a trust anchor.
	AnchorWithoutBasicConstraints bool
	// NegativeECDSA: an ECDSA certificate signature whose r or s is
	// DER-encoded as a negative INTEGER is read as unsigned (a Luna PKC leaf).
	NegativeECDSA bool
}

// Path is a verified chain.
type Path struct {
	// Certs are the certificates from the leaf up, the root excluded.
	Certs []*x509.Certificate
	// Root is the pinned root the path ends at.
	Root attest.Root
	// Deviations are the deviations accepted on the way, in order.
	Deviations []string
}

// Name is a certificate's name for messages: its subject common name, or its
// whole subject if it has none.
func Name(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	return c.Subject.String()
}

// ValidAt returns an error wrapping attest.ErrValidity unless t is within c's
// validity (both ends inclusive, RFC 5280 4.1.2.5).
func ValidAt(c *x509.Certificate, t time.Time) error {
	if t.Before(c.NotBefore) || t.After(c.NotAfter) {
		return fmt.Errorf("%w: certificate %q is valid from %s to %s, evidence logged at %s",
			attest.ErrValidity, Name(c), c.NotBefore.UTC().Format(time.RFC3339),
			c.NotAfter.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	}
	return nil
}

// Parse parses DER certificates, at most attest.MaxCertificates of them, each
// at most attest.MaxCertificateBytes, and drops exact duplicates.
func Parse(ders [][]byte) ([]*x509.Certificate, error) {
	if len(ders) > attest.MaxCertificates {
		return nil, fmt.Errorf("%w: %d certificates, at most %d allowed", attest.ErrFormat, len(ders), attest.MaxCertificates)
	}
	var out []*x509.Certificate
	for i, der := range ders {
		if len(der) > attest.MaxCertificateBytes {
			return nil, fmt.Errorf("%w: certificate %d is %d bytes, at most %d allowed", attest.ErrFormat, i, len(der), attest.MaxCertificateBytes)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %w", attest.ErrFormat, i, err)
		}
		if !slices.ContainsFunc(out, c.Equal) {
			out = append(out, c)
		}
	}
	return out, nil
}

// secureAlgorithm reports whether a certificate signature algorithm is one
// keytrail accepts: no MD5, no SHA-1, no DSA.
func secureAlgorithm(a x509.SignatureAlgorithm) bool {
	switch a {
	case x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
		x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS,
		x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512, x509.PureEd25519:
		return true
	}
	return false
}

func isECDSA(a x509.SignatureAlgorithm) bool {
	return a == x509.ECDSAWithSHA256 || a == x509.ECDSAWithSHA384 || a == x509.ECDSAWithSHA512
}

// Link checks that parent signed child. anchor says parent is a pinned root,
// whose authority comes from the pin rather than from its extensions. It
// returns the deviations it accepted.
func Link(child, parent *x509.Certificate, anchor bool, allow Allow) ([]string, error) {
	fail := func(format string, a ...any) ([]string, error) {
		return nil, fmt.Errorf("%w: %q issued by %q: %s", attest.ErrChain, Name(child), Name(parent), fmt.Sprintf(format, a...))
	}
	if !secureAlgorithm(child.SignatureAlgorithm) {
		return fail("signature algorithm %s is not accepted", child.SignatureAlgorithm)
	}
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		return fail("issuer name does not match")
	}
	var devs []string
	c := child
	if allow.NegativeECDSA && isECDSA(child.SignatureAlgorithm) {
		if fixed, ok := UnsignedECDSA(child.Signature); ok {
			cp := *child
			cp.Signature = fixed
			c = &cp
			devs = append(devs, fmt.Sprintf("the ECDSA signature on %q encodes r or s as a negative DER INTEGER, "+
				"which strict parsers reject; read as unsigned and verified", Name(child)))
		}
	}

	// The issuer's authority. goAccepts is what CheckSignatureFrom would say.
	goAccepts := true
	if parent.KeyUsage != 0 && parent.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fail("issuer's key usage does not include certificate signing")
	}
	switch {
	case parent.BasicConstraintsValid && parent.IsCA:
	case parent.BasicConstraintsValid: // cA false: the issuer says it is not a CA.
		return fail("issuer's basicConstraints say it is not a CA")
	case parent.Version == 1 && anchor:
		// A v1 root: Go accepts it, and the pin makes it an anchor.
	case parent.Version == 1:
		if !allow.V1Issuer {
			return fail("issuer is an X.509 v1 certificate, which cannot be a CA")
		}
		devs = append(devs, fmt.Sprintf("%q is an X.509 v1 certificate (no basicConstraints): x509.Verify refuses it as a CA "+
			"(not authorized to sign other certificates); accepted as the issuer of %q below the pinned root, "+
			"the link checked with CheckSignatureFrom", Name(parent), Name(child)))
	case anchor && allow.AnchorWithoutBasicConstraints:
		goAccepts = false
		devs = append(devs, fmt.Sprintf("pinned root %q is X.509 v3 without basicConstraints: CheckSignatureFrom refuses it "+
			"(RFC 5280 4.2.1.9); accepted because it is pinned, its signature on %q checked directly over the TBSCertificate",
			Name(parent), Name(child)))
	default:
		return fail("issuer is X.509 v3 without basicConstraints, so not a CA")
	}

	var err error
	if goAccepts {
		err = c.CheckSignatureFrom(parent)
	} else {
		err = parent.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	}
	if err != nil {
		return fail("%v", err)
	}
	return devs, nil
}

// UnsignedECDSA reads sig, an ECDSA-Sig-Value (SEQUENCE of two INTEGERs), in
// which r or s is encoded as a negative INTEGER, reading both as unsigned. It
// returns the strict DER re-encoding and true only if sig is exactly such a
// value: well-formed DER but for the sign, both values non-zero. Otherwise (a
// conforming signature, or any other malformation) it returns false.
func UnsignedECDSA(sig []byte) ([]byte, bool) {
	in := cryptobyte.String(sig)
	var seq, rb, sb cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&rb, cbasn1.INTEGER) || !seq.ReadASN1(&sb, cbasn1.INTEGER) || !seq.Empty() {
		return nil, false
	}
	negative := false
	for _, v := range []cryptobyte.String{rb, sb} {
		switch {
		case len(v) == 0:
			return nil, false
		case v[0]&0x80 != 0:
			negative = true
		case len(v) > 1 && v[0] == 0 && v[1]&0x80 == 0: // not minimal
			return nil, false
		}
	}
	r, s := new(big.Int).SetBytes(rb), new(big.Int).SetBytes(sb)
	if !negative || r.Sign() == 0 || s.Sign() == 0 {
		return nil, false
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	out, err := b.Bytes()
	return out, err == nil
}

// Build finds a path from leaf, through certificates of pool, to one of roots,
// every certificate valid at t and every root trusted at t. A certificate in
// pool equal to a pinned root is never used: the pinned copy is. It returns an
// error wrapping attest.ErrChain or attest.ErrValidity that names the deepest
// link it could not make.
func Build(leaf *x509.Certificate, pool []*x509.Certificate, roots []attest.Root, t time.Time, allow Allow) (*Path, error) {
	b := &builder{roots: roots, t: t, allow: allow}
	for _, c := range pool {
		if !slices.ContainsFunc(roots, func(r attest.Root) bool { return r.Certificate.Equal(c) }) {
			b.pool = append(b.pool, c)
		}
	}
	if p := b.walk([]*x509.Certificate{leaf}, nil); p != nil {
		return p, nil
	}
	if b.err == nil {
		b.err = fmt.Errorf("%w: no path from %q to a pinned root", attest.ErrChain, Name(leaf))
	}
	return nil, b.err
}

type builder struct {
	pool  []*x509.Certificate
	roots []attest.Root
	t     time.Time
	allow Allow
	links int
	err   error // the error at the deepest point reached
	depth int
}

func (b *builder) note(depth int, err error) {
	if b.err == nil || depth > b.depth {
		b.err, b.depth = err, depth
	}
}

func (b *builder) walk(path []*x509.Certificate, devs []string) *Path {
	cur := path[len(path)-1]
	depth := len(path)
	if err := ValidAt(cur, b.t); err != nil {
		b.note(depth, err)
		return nil
	}
	if len(cur.UnhandledCriticalExtensions) > 0 {
		b.note(depth, fmt.Errorf("%w: %q has an unhandled critical extension %v", attest.ErrChain, Name(cur), cur.UnhandledCriticalExtensions[0]))
		return nil
	}
	named := false
	for _, r := range b.roots {
		if !bytes.Equal(cur.RawIssuer, r.Certificate.RawSubject) {
			continue
		}
		named = true
		if b.links++; b.links > MaxLinks {
			b.note(MaxDepth+1, fmt.Errorf("%w: gave up after %d signature checks", attest.ErrChain, MaxLinks))
			return nil
		}
		d, err := Link(cur, r.Certificate, true, b.allow)
		if err == nil {
			err = r.ValidAt(b.t)
		}
		if err != nil {
			b.note(depth+1, err)
			continue
		}
		return &Path{Certs: slices.Clone(path), Root: r, Deviations: append(slices.Clone(devs), d...)}
	}
	if depth < MaxDepth {
		for _, p := range b.pool {
			if !bytes.Equal(cur.RawIssuer, p.RawSubject) || slices.ContainsFunc(path, p.Equal) {
				continue
			}
			named = true
			if b.links++; b.links > MaxLinks {
				b.note(MaxDepth+1, fmt.Errorf("%w: gave up after %d signature checks", attest.ErrChain, MaxLinks))
				return nil
			}
			d, err := Link(cur, p, false, b.allow)
			if err != nil {
				b.note(depth, err)
				continue
			}
			if got := b.walk(append(slices.Clip(path), p), append(slices.Clip(devs), d...)); got != nil {
				return got
			}
		}
	}
	if !named {
		b.note(depth, fmt.Errorf("%w: no pinned root or certificate is the issuer %q of %q", attest.ErrChain, cur.Issuer.String(), Name(cur)))
	}
	return nil
}
