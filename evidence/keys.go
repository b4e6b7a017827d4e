package evidence

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/sigstore/sigstore/pkg/signature"
)

// KeyDigest returns the lowercase hex SHA-256 of the DER SubjectPublicKeyInfo of
// pub. keytrail names every key by it: in subjects (digest "sha256"), in DSSE
// keyid fields, and in trust files.
func KeyDigest(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("evidence: marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// hashFor is the message digest keytrail uses with each key type: SHA-256 for
// P-256 and RSA (PKCS #1 v1.5), SHA-384 for P-384, none for Ed25519.
func hashFor(pub crypto.PublicKey) (crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return crypto.SHA256, nil
		case elliptic.P384():
			return crypto.SHA384, nil
		}
		return 0, fmt.Errorf("%w: ECDSA curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
	case ed25519.PublicKey:
		return crypto.Hash(0), nil
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return 0, fmt.Errorf("%w: RSA key of %d bits (need at least 2048)", ErrUnsupportedKey, k.N.BitLen())
		}
		return crypto.SHA256, nil
	}
	return 0, fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// ErrUnsupportedKey reports a key type or size keytrail does not accept.
var ErrUnsupportedKey = errors.New("evidence: unsupported key")

// PublicKey is a verification key together with its keytrail key digest.
type PublicKey struct {
	// Digest is KeyDigest of the key.
	Digest string
	key    crypto.PublicKey
	v      signature.Verifier
}

// NewPublicKey wraps pub (ECDSA P-256/P-384, Ed25519 or RSA ≥ 2048 bits).
func NewPublicKey(pub crypto.PublicKey) (*PublicKey, error) {
	hf, err := hashFor(pub)
	if err != nil {
		return nil, err
	}
	v, err := signature.LoadVerifier(pub, hf)
	if err != nil {
		return nil, fmt.Errorf("evidence: load verifier: %w", err)
	}
	d, err := KeyDigest(pub)
	if err != nil {
		return nil, err
	}
	return &PublicKey{Digest: d, key: pub, v: v}, nil
}

// ParsePublicKeyPEM parses one PEM "PUBLIC KEY" block (SubjectPublicKeyInfo).
// Anything before or after the block is an error.
func ParsePublicKeyPEM(b []byte) (*PublicKey, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, errors.New("evidence: no PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("evidence: PEM block is %q, want \"PUBLIC KEY\"", block.Type)
	}
	if len(trimSpace(rest)) != 0 {
		return nil, errors.New("evidence: data after the PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("evidence: parse SubjectPublicKeyInfo: %w", err)
	}
	return NewPublicKey(pub)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// Public returns the crypto.PublicKey.
func (k *PublicKey) Public() crypto.PublicKey { return k.key }

// PEM returns the key as a PEM "PUBLIC KEY" block.
func (k *PublicKey) PEM() string { return MarshalPublicKeyPEM(k.key) }

// Verify checks sig over msg.
func (k *PublicKey) Verify(msg, sig []byte) error {
	return k.VerifyReader(bytesReader(msg), sig)
}

// VerifyReader checks sig over the message read from msg, without holding the
// message in memory.
//
// ECDSA signatures must be strict ASN.1 DER: sigstore's verifier also accepts
// the IEEE P1363 (r||s) encoding, which would give one signature two encodings,
// and so one record two leaves.
func (k *PublicKey) VerifyReader(msg io.Reader, sig []byte) error {
	if _, ok := k.key.(*ecdsa.PublicKey); ok && !isStrictDERSignature(sig) {
		return errors.New("ECDSA signature is not strict ASN.1 DER")
	}
	return k.v.VerifySignature(bytesReader(sig), msg)
}

// isStrictDERSignature reports whether sig is exactly the DER encoding of
// ECDSA-Sig-Value (SEQUENCE of two positive INTEGERs), with nothing after it.
func isStrictDERSignature(sig []byte) bool {
	var r, s big.Int
	input := cryptobyte.String(sig)
	var inner cryptobyte.String
	if !input.ReadASN1(&inner, cbasn1.SEQUENCE) || !input.Empty() ||
		!inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) || !inner.Empty() ||
		r.Sign() <= 0 || s.Sign() <= 0 {
		return false
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(&r)
		b.AddASN1BigInt(&s)
	})
	der, err := b.Bytes()
	return err == nil && string(der) == string(sig)
}

// MarshalPublicKeyPEM encodes pub as a PEM "PUBLIC KEY" block. It panics only if
// pub is not a key type x509 can marshal, which keytrail never constructs.
func MarshalPublicKeyPEM(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(fmt.Sprintf("evidence: marshal public key: %v", err))
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// Signer signs DSSE envelopes with a private key, through sigstore's signature
// package.
type Signer struct {
	// Digest is KeyDigest of the public key; it becomes the DSSE keyid.
	Digest string
	s      signature.Signer
	pub    crypto.PublicKey
}

// NewSigner wraps priv (ECDSA P-256/P-384, Ed25519 or RSA ≥ 2048 bits).
func NewSigner(priv crypto.Signer) (*Signer, error) {
	pub := priv.Public()
	hf, err := hashFor(pub)
	if err != nil {
		return nil, err
	}
	s, err := signature.LoadSigner(priv, hf)
	if err != nil {
		return nil, fmt.Errorf("evidence: load signer: %w", err)
	}
	d, err := KeyDigest(pub)
	if err != nil {
		return nil, err
	}
	return &Signer{Digest: d, s: s, pub: pub}, nil
}

// Public returns the signer's public key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// PublicKey returns the signer's verification key.
func (s *Signer) PublicKey() *PublicKey {
	k, err := NewPublicKey(s.pub)
	if err != nil {
		panic(err) // the same key was accepted by NewSigner
	}
	return k
}
