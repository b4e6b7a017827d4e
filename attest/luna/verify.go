package luna

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/internal/chain"
	"github.com/keytrail/keytrail/evidence"
)

// Check names, in the order they run (and attest.CheckBinding,
// attest.CheckNonExport, attest.CheckIdentity).
const (
	CheckFormat = "pkc.format"
	CheckChain  = "pkc.chain"
	CheckCSR    = "key.csr"
)

var (
	// OIDKeyConfirmation is the extended key usage of a PKC leaf.
	OIDKeyConfirmation = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 12383, 1, 13}
	// OIDSerial is the extension holding the HSM's serial number, little-endian.
	OIDSerial = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 12383, 2, 1}
)

// MaxCSRBytes bounds a CSR.
const MaxCSRBytes = 16 << 10

// allow is what Luna chains need; see the package documentation.
var allow = chain.Allow{AnchorWithoutBasicConstraints: true, NegativeECDSA: true}

// Config is the trust material of a Verifier.
type Config struct {
	// Roots are the pinned Luna roots, e.g. "SafeNet ECC Manufacturer
	// Integrity Module" and "Chrysalis-ITS Root". At least one.
	Roots []attest.Root
}

// Verifier verifies PKCs against fixed, pinned roots. It is safe for
// concurrent use.
type Verifier struct {
	roots []attest.Root
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.Roots) == 0 {
		return nil, fmt.Errorf("luna: no root")
	}
	for i, r := range cfg.Roots {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("luna: root %d: %w", i+1, err)
		}
	}
	return &Verifier{roots: slices.Clone(cfg.Roots)}, nil
}

// Evidence is one PKC to verify.
type Evidence struct {
	// PKC is the Public Key Confirmation, DER PKCS #7.
	PKC []byte
	// CSR, if set, is the certificate request made with the same key, PEM or
	// DER: the PKC must confirm the key of the CSR.
	CSR []byte
	// LoggedAt is when the evidence was logged: a trusted time, at which every
	// certificate and root is judged. Required.
	LoggedAt time.Time
	// ExpectedKey, if set, is the keytrail key digest of the key the PKC must
	// confirm.
	ExpectedKey string
}

// Verify verifies ev. Every problem is a failed check in the result; it never
// panics and never changes ev.
func (v *Verifier) Verify(ev Evidence) (res *attest.Result) {
	res = &attest.Result{Format: attest.FormatLuna, Strength: attest.Unverified}
	defer res.Recover()
	v.verify(ev, res)
	authenticating := []string{CheckFormat, CheckChain, attest.CheckIdentity}
	res.Conclude(attest.VendorAttested, authenticating, append(authenticating, attest.CheckNonExport))
	return res
}

func (v *Verifier) verify(ev Evidence, res *attest.Result) {
	if ev.LoggedAt.IsZero() {
		res.Fail(attest.CheckEvidenceTime, attest.ErrNoTime)
		return
	}
	later := []string{CheckChain, CheckCSR, attest.CheckBinding, attest.CheckNonExport, attest.CheckIdentity}
	p, err := ParsePKC(ev.PKC)
	var leaf *x509.Certificate
	var digest string
	if err == nil {
		leaf, err = findLeaf(p.Certificates)
	}
	if err == nil {
		if digest, err = evidence.KeyDigest(leaf.PublicKey); err != nil {
			err = fmt.Errorf("%w: key of %q: %w", attest.ErrFormat, chain.Name(leaf), err)
		}
	}
	if !res.Record(CheckFormat, err, fmt.Sprintf("certificates-only PKCS #7 SignedData with %d certificates; key confirmation certificate %q",
		len(certsOf(p)), nameOf(leaf))) {
		for _, n := range later {
			res.Skip(n, CheckFormat+" failed")
		}
		return
	}
	alg, keyType := attest.KeyAlgorithm(leaf.PublicKey)
	res.Facts.KeyDigest, res.Facts.Algorithm, res.Facts.PublicKey = digest, alg, leaf.PublicKey

	path, err := chain.Build(leaf, p.Certificates, v.roots, ev.LoggedAt, allow)
	if err == nil {
		err = allOnPath(p.Certificates, path)
	}
	chainOK := err == nil
	if chainOK {
		res.Pass(CheckChain, fmt.Sprintf("%s, all valid at %s", describe(path), ev.LoggedAt.UTC().Format(time.RFC3339)), path.Deviations...)
	} else {
		res.Fail(CheckChain, err)
	}
	unauth := ""
	if !chainOK {
		unauth = " (unauthenticated: " + CheckChain + " did not pass)"
	}

	if len(ev.CSR) == 0 {
		res.Skip(CheckCSR, "no CSR given")
	} else {
		res.Record(CheckCSR, checkCSR(ev.CSR, leaf), "the leaf certifies the key of the CSR, and the CSR's signature verifies with it"+unauth)
	}
	res.CheckKeyBinding(ev.ExpectedKey)

	// A PKC is issued only for keys generated in the HSM that can never leave it.
	res.Facts.Attributes = &evidence.KeyAttributes{KeyType: keyType, Local: true, NeverExtractable: true,
		AlwaysSensitive: true, Sensitive: true, Extractable: false}
	res.Facts.AttributeSource = attest.SourceImplied
	source := "implied by the PKC: Luna confirms only keys generated in the HSM that can never leave it"
	if !chainOK {
		source += "; unauthenticated: " + CheckChain + " did not pass"
	}
	res.CheckKeyPolicy(res.Facts.Attributes, source)

	var certs []*x509.Certificate
	if chainOK {
		certs = path.Certs
	} else {
		certs = []*x509.Certificate{leaf}
	}
	reason, err := identity(certs, res)
	res.Record(attest.CheckIdentity, err, reason+unauth)
}

// allOnPath checks that the PKC carries nothing but the path and a copy of its
// root, so that the PKC has no unauthenticated parts.
func allOnPath(certs []*x509.Certificate, path *chain.Path) error {
	for _, c := range certs {
		if !slices.ContainsFunc(path.Certs, c.Equal) && !c.Equal(path.Root.Certificate) {
			return fmt.Errorf("%w: certificate %q in the PKC is neither on the path to pinned root %q nor a copy of it",
				attest.ErrChain, chain.Name(c), chain.Name(path.Root.Certificate))
		}
	}
	return nil
}

func nameOf(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return chain.Name(c)
}

func certsOf(p *PKC) []*x509.Certificate {
	if p == nil {
		return nil
	}
	return p.Certificates
}

// findLeaf returns the one certificate that is a key confirmation: extended
// key usage OIDKeyConfirmation, not a CA.
func findLeaf(certs []*x509.Certificate) (*x509.Certificate, error) {
	var leaf *x509.Certificate
	for _, c := range certs {
		if c.IsCA || !slices.ContainsFunc(c.UnknownExtKeyUsage, OIDKeyConfirmation.Equal) {
			continue
		}
		if leaf != nil {
			return nil, fmt.Errorf("%w: two key confirmation certificates, %q and %q", attest.ErrFormat, chain.Name(leaf), chain.Name(c))
		}
		leaf = c
	}
	if leaf == nil {
		return nil, fmt.Errorf("%w: no key confirmation certificate (extended key usage %s, not a CA) among %d certificates",
			attest.ErrFormat, OIDKeyConfirmation, len(certs))
	}
	return leaf, nil
}

// checkCSR checks that the CSR is signed by, and requests, the leaf's key.
func checkCSR(b []byte, leaf *x509.Certificate) error {
	if len(b) > MaxCSRBytes {
		return fmt.Errorf("%w: CSR is %d bytes, at most %d allowed", attest.ErrInput, len(b), MaxCSRBytes)
	}
	der := b
	if block, rest := pem.Decode(b); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return fmt.Errorf("%w: CSR PEM block is %q", attest.ErrInput, block.Type)
		}
		if len(strings.TrimSpace(string(rest))) != 0 {
			return fmt.Errorf("%w: data after the CSR PEM block", attest.ErrInput)
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return fmt.Errorf("%w: CSR: %w", attest.ErrInput, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("%w: CSR signature: %w", attest.ErrKeyMismatch, err)
	}
	k, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !k.Equal(csr.PublicKey) {
		want, _ := evidence.KeyDigest(csr.PublicKey)
		have, _ := evidence.KeyDigest(leaf.PublicKey)
		return fmt.Errorf("%w: the PKC confirms key %s, the CSR requests key %s", attest.ErrKeyMismatch, have, want)
	}
	return nil
}

// identity reads the HSM serial from the leaf's OIDSerial extension; every
// other certificate of the path that carries the extension must agree. The
// model is the device certificate's common name before its serial ("Luna K7"
// in "Luna K7-521174"), when the path has one.
func identity(path []*x509.Certificate, res *attest.Result) (string, error) {
	serial, ok, err := serialOf(path[0])
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("%w: leaf %q has no serial extension %s", attest.ErrIdentity, chain.Name(path[0]), OIDSerial)
	}
	s := strconv.FormatUint(serial, 10)
	tok := evidence.TokenInfo{Serial: s}
	for _, c := range path {
		if tok.Manufacturer == "" && len(c.Subject.Organization) > 0 {
			tok.Manufacturer = c.Subject.Organization[0]
		}
		other, ok, err := serialOf(c)
		if err != nil {
			return "", err
		}
		if ok && other != serial {
			return "", fmt.Errorf("%w: leaf names HSM serial %d, %q names %d", attest.ErrIdentity, serial, chain.Name(c), other)
		}
		if m, found := strings.CutSuffix(c.Subject.CommonName, "-"+s); found && ok && tok.Model == "" {
			tok.Model = m
		}
	}
	res.Facts.Token = tok
	reason := "HSM serial " + s + " (extension " + OIDSerial.String() + ", little-endian)"
	if tok.Model != "" {
		reason += fmt.Sprintf(", model %q", tok.Model)
	}
	return reason, nil
}

// serialOf reads OIDSerial: 1 to 8 bytes, little-endian.
func serialOf(c *x509.Certificate) (uint64, bool, error) {
	for _, e := range c.Extensions {
		if !e.Id.Equal(OIDSerial) {
			continue
		}
		if len(e.Value) == 0 || len(e.Value) > 8 {
			return 0, false, fmt.Errorf("%w: serial extension of %q is %d bytes, want 1 to 8", attest.ErrIdentity, chain.Name(c), len(e.Value))
		}
		var n uint64
		for i := len(e.Value) - 1; i >= 0; i-- {
			n = n<<8 | uint64(e.Value[i])
		}
		return n, true, nil
	}
	return 0, false, nil
}

// describe names the path: each certificate with its key and the algorithm of
// the signature on it.
func describe(p *chain.Path) string {
	var parts []string
	for _, c := range p.Certs {
		alg, _ := attest.KeyAlgorithm(c.PublicKey)
		parts = append(parts, fmt.Sprintf("%q (%s, signed %s)", chain.Name(c), alg, c.SignatureAlgorithm))
	}
	alg, _ := attest.KeyAlgorithm(p.Root.Certificate.PublicKey)
	parts = append(parts, fmt.Sprintf("pinned root %q (%s)", chain.Name(p.Root.Certificate), alg))
	return strings.Join(parts, " <- ")
}
