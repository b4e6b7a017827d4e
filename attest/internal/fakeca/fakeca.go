// Package fakeca mints certificates with real signatures for the tests of the
// attestation verifiers, including the shapes HSM vendors ship and Go's
// crypto/x509 does not make: X.509 v1 CA certificates, v3 roots without
// basicConstraints, and ECDSA signatures whose s is DER-encoded as a negative
// INTEGER. It is for tests only.
package fakeca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Cert is a minted certificate and its key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Options describe a certificate to mint. The zero value is a P-256 end-entity
// certificate valid from 2020 to 2040.
type Options struct {
	Subject pkix.Name
	// NotBefore and NotAfter default to 2020-01-01 and 2040-01-01.
	NotBefore, NotAfter time.Time
	// Key is the certified key; nil: a new P-256 key.
	Key crypto.Signer
	// CA sets basicConstraints cA=true with key usage certSign.
	CA bool
	// NoBasicConstraints makes a v3 certificate without basicConstraints.
	NoBasicConstraints bool
	// V1 makes an X.509 v1 certificate: no extensions at all.
	V1 bool
	// NegativeS re-encodes the ECDSA signature's s as a negative INTEGER
	// (the issuer key must be ECDSA).
	NegativeS bool
	// KeyUsage and UnknownExtKeyUsage go in the certificate (v3 only).
	KeyUsage           x509.KeyUsage
	UnknownExtKeyUsage []asn1.ObjectIdentifier
	ExtraExtensions    []pkix.Extension
	// SignatureAlgorithm overrides the issuer's default.
	SignatureAlgorithm x509.SignatureAlgorithm
}

var serial atomic.Int64

// New mints a certificate issued by parent (self-signed if parent is nil).
func New(parent *Cert, o Options) (*Cert, error) {
	if o.Key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		o.Key = k
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	issuer := &Cert{Key: o.Key}
	if parent != nil {
		issuer = parent
	}
	sn := big.NewInt(serial.Add(1))
	for range 64 { // NegativeS needs an s with its top bit set: half the signatures
		der, err := mint(issuer, o, sn)
		if err != nil {
			return nil, err
		}
		if o.NegativeS {
			var ok bool
			if der, ok = negateS(der); !ok {
				continue
			}
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("fakeca: parse minted certificate: %w", err)
		}
		return &Cert{Cert: c, Key: o.Key}, nil
	}
	return nil, errors.New("fakeca: no signature with a negative-encodable s")
}

// MustNew is New that panics; for tests.
func MustNew(parent *Cert, o Options) *Cert {
	c, err := New(parent, o)
	if err != nil {
		panic(err)
	}
	return c
}

func mint(issuer *Cert, o Options, sn *big.Int) ([]byte, error) {
	var parentCert *x509.Certificate
	if issuer.Cert != nil {
		parentCert = issuer.Cert
	}
	if o.V1 {
		return mintV1(issuer, parentCert, o, sn)
	}
	tmpl := &x509.Certificate{
		SerialNumber:       sn,
		Subject:            o.Subject,
		NotBefore:          o.NotBefore,
		NotAfter:           o.NotAfter,
		KeyUsage:           o.KeyUsage,
		UnknownExtKeyUsage: o.UnknownExtKeyUsage,
		ExtraExtensions:    o.ExtraExtensions,
		SignatureAlgorithm: o.SignatureAlgorithm,
	}
	if o.CA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	if !o.NoBasicConstraints {
		tmpl.BasicConstraintsValid = true
		tmpl.IsCA = o.CA
	}
	if parentCert == nil {
		parentCert = tmpl
	}
	return x509.CreateCertificate(rand.Reader, tmpl, parentCert, o.Key.Public(), issuer.Key)
}

var (
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
)

// mintV1 builds an X.509 v1 certificate by hand: crypto/x509 only makes v3.
func mintV1(issuer *Cert, parent *x509.Certificate, o Options, sn *big.Int) ([]byte, error) {
	subject, err := asn1.Marshal(o.Subject.ToRDNSequence())
	if err != nil {
		return nil, err
	}
	issuerName := subject
	if parent != nil {
		issuerName = parent.RawSubject
	}
	spki, err := x509.MarshalPKIXPublicKey(o.Key.Public())
	if err != nil {
		return nil, err
	}
	algID := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			switch issuer.Key.(type) {
			case *ecdsa.PrivateKey:
				b.AddASN1ObjectIdentifier(oidECDSAWithSHA256)
			default:
				b.AddASN1ObjectIdentifier(oidSHA256WithRSA)
				b.AddASN1NULL()
			}
		})
	}
	var tb cryptobyte.Builder
	tb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(sn)
		algID(b)
		b.AddBytes(issuerName)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1UTCTime(o.NotBefore)
			b.AddASN1UTCTime(o.NotAfter)
		})
		b.AddBytes(subject)
		b.AddBytes(spki)
	})
	tbs, err := tb.Bytes()
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(tbs)
	var sig []byte
	switch k := issuer.Key.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
	default:
		sig, err = issuer.Key.Sign(rand.Reader, h[:], crypto.SHA256)
	}
	if err != nil {
		return nil, err
	}
	return certificate(tbs, algID, sig)
}

func certificate(tbs []byte, algID func(*cryptobyte.Builder), sig []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		algID(b)
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
}

// negateS re-encodes der's ECDSA signature with s as a negative INTEGER: it
// drops the 0x00 that keeps a minimal positive s whose top bit is set. It
// returns false if s does not have its top bit set.
func negateS(der []byte) ([]byte, bool) {
	in := cryptobyte.String(der)
	var cert, tbs, alg, sigBits cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1Element(&tbs, cbasn1.SEQUENCE) ||
		!cert.ReadASN1Element(&alg, cbasn1.SEQUENCE) || !cert.ReadASN1(&sigBits, cbasn1.BIT_STRING) {
		return nil, false
	}
	sig := sigBits[1:] // no unused bits
	s := cryptobyte.String(sig)
	var seq, r, sv cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1(&r, cbasn1.INTEGER) || !seq.ReadASN1(&sv, cbasn1.INTEGER) {
		return nil, false
	}
	if len(sv) < 2 || sv[0] != 0 || sv[1]&0x80 == 0 {
		return nil, false
	}
	var sb cryptobyte.Builder
	sb.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(r) })
		b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(sv[1:]) })
	})
	newSig, err := sb.Bytes()
	if err != nil {
		return nil, false
	}
	out, err := certificate(tbs, func(b *cryptobyte.Builder) { b.AddBytes(alg) }, newSig)
	return out, err == nil
}

// RSAKey returns a new RSA key of bits bits.
func RSAKey(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}
