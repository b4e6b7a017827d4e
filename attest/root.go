package attest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// Bounds on certificate input.
const (
	// MaxCertificates bounds the certificates one piece of evidence may carry.
	MaxCertificates = 16
	// MaxCertificateBytes bounds one DER certificate.
	MaxCertificateBytes = 16 << 10
)

// Root is a vendor root certificate pinned by the caller, and the window in
// which evidence chained to it is accepted.
type Root struct {
	// Certificate is the root. It is trusted because the caller pinned it; its
	// own extensions do not have to say it is a CA.
	Certificate *x509.Certificate
	// NotBefore and NotAfter, if set, narrow the window in which the root is
	// trusted (for example to end it at a known compromise). They never widen
	// the certificate's own validity.
	NotBefore, NotAfter time.Time
}

// Window returns the window in which the root is trusted: the certificate's
// validity, narrowed by NotBefore and NotAfter. Both ends are inclusive.
func (r Root) Window() (from, to time.Time) {
	from, to = r.Certificate.NotBefore, r.Certificate.NotAfter
	if !r.NotBefore.IsZero() && r.NotBefore.After(from) {
		from = r.NotBefore
	}
	if !r.NotAfter.IsZero() && r.NotAfter.Before(to) {
		to = r.NotAfter
	}
	return from, to
}

// ValidAt returns an error wrapping ErrValidity unless t is in the root's window.
func (r Root) ValidAt(t time.Time) error {
	from, to := r.Window()
	if t.Before(from) || t.After(to) {
		return fmt.Errorf("%w: pinned root %q is trusted from %s to %s, evidence logged at %s",
			ErrValidity, r.Certificate.Subject.CommonName, from.UTC().Format(time.RFC3339),
			to.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	}
	return nil
}

// Validate checks the root is usable: a certificate is set and the window is
// not empty.
func (r Root) Validate() error {
	if r.Certificate == nil {
		return errors.New("attest: root has no certificate")
	}
	if from, to := r.Window(); to.Before(from) {
		return fmt.Errorf("attest: root %q has an empty trust window", r.Certificate.Subject.CommonName)
	}
	return nil
}

// ParseRootPEM parses one PEM certificate as a Root trusted for its whole
// validity.
func ParseRootPEM(b []byte) (Root, error) {
	ders, err := CertificatesPEM(b)
	if err != nil {
		return Root{}, err
	}
	if len(ders) != 1 {
		return Root{}, fmt.Errorf("attest: want one root certificate, have %d", len(ders))
	}
	c, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return Root{}, fmt.Errorf("attest: parse root: %w", err)
	}
	return Root{Certificate: c}, nil
}

// CertificatesPEM returns the DER bytes of the PEM "CERTIFICATE" blocks in b,
// at most MaxCertificates of them. Any other block, or text other than space
// between blocks, is an error.
func CertificatesPEM(b []byte) ([][]byte, error) {
	var out [][]byte
	rest := b
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		var block *pem.Block
		if bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			block, rest = pem.Decode(rest)
		}
		if block == nil {
			return nil, errors.New("attest: data that is not a PEM block")
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("attest: PEM block is %q, want \"CERTIFICATE\"", block.Type)
		}
		if len(out) == MaxCertificates {
			return nil, fmt.Errorf("%w: more than %d certificates", ErrFormat, MaxCertificates)
		}
		out = append(out, block.Bytes)
	}
	if len(out) == 0 {
		return nil, errors.New("attest: no PEM certificate")
	}
	return out, nil
}
