package receipt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keytrail/keytrail/evidence"
)

// Scheme is how a key signs and how its receipts' digests and signatures are
// read (see the package documentation).
type Scheme string

// The schemes a Key may have.
const (
	SchemeSecp256k1DER Scheme = "ecdsa-secp256k1-der"
	SchemeSecp256k1RSV Scheme = "ecdsa-secp256k1-rsv"
	SchemeEd25519      Scheme = "ed25519"
	SchemeP256DER      Scheme = "ecdsa-p256-der"
)

// Schemes lists every scheme.
var Schemes = []Scheme{SchemeSecp256k1DER, SchemeSecp256k1RSV, SchemeEd25519, SchemeP256DER}

// ParseScheme returns the scheme named s, exactly as spelled in Schemes.
func ParseScheme(s string) (Scheme, error) {
	for _, c := range Schemes {
		if string(c) == s {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: scheme %q is not one of %v", ErrUnsupported, s, Schemes)
}

// OIDs of RFC 5480 §2.1.1 and SEC 2 §A.2.1.
var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// MarshalSecp256k1SPKI returns the DER SubjectPublicKeyInfo of a secp256k1
// key: id-ecPublicKey, named curve secp256k1, uncompressed point. It is the
// 88-byte encoding OpenSSL and AWS KMS produce.
func MarshalSecp256k1SPKI(pub *secp256k1.PublicKey) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidECPublicKey)
			b.AddASN1ObjectIdentifier(oidSecp256k1)
		})
		b.AddASN1BitString(pub.SerializeUncompressed())
	})
	return b.BytesOrPanic() // nothing above can fail
}

// ParseSecp256k1SPKI parses exactly what MarshalSecp256k1SPKI writes: the
// DER SubjectPublicKeyInfo of a secp256k1 key with an uncompressed point on
// the curve. Other encodings of the same key (compressed or hybrid points,
// explicit curve parameters, BER) are errors, so that a key has one name.
func ParseSecp256k1SPKI(der []byte) (*secp256k1.PublicKey, error) {
	in := cryptobyte.String(der)
	var spki, alg cryptobyte.String
	var algOID, curveOID asn1.ObjectIdentifier
	var point asn1.BitString
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !in.Empty() ||
		!spki.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&algOID) || !alg.ReadASN1ObjectIdentifier(&curveOID) || !alg.Empty() ||
		!spki.ReadASN1BitString(&point) || !spki.Empty() {
		return nil, fmt.Errorf("%w: not a DER SubjectPublicKeyInfo with a named curve", ErrKey)
	}
	if !algOID.Equal(oidECPublicKey) || !curveOID.Equal(oidSecp256k1) {
		return nil, fmt.Errorf("%w: algorithm %v curve %v, want id-ecPublicKey (%v) secp256k1 (%v)",
			ErrKey, algOID, curveOID, oidECPublicKey, oidSecp256k1)
	}
	if point.BitLength != 8*secp256k1.PubKeyBytesLenUncompressed || point.Bytes[0] != secp256k1.PubKeyFormatUncompressed {
		return nil, fmt.Errorf("%w: secp256k1 point is not uncompressed (65 bytes, 0x04 first)", ErrKey)
	}
	pub, err := secp256k1.ParsePubKey(point.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: secp256k1 point: %w", ErrKey, err)
	}
	if string(MarshalSecp256k1SPKI(pub)) != string(der) {
		return nil, fmt.Errorf("%w: secp256k1 SubjectPublicKeyInfo is not in its DER form", ErrKey)
	}
	return pub, nil
}

// KeyDigest is evidence.KeyDigest for every key type a Key can have: the
// lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo, for secp256k1
// as MarshalSecp256k1SPKI writes it.
func KeyDigest(pub crypto.PublicKey) (string, error) {
	if k, ok := pub.(*secp256k1.PublicKey); ok {
		sum := sha256.Sum256(MarshalSecp256k1SPKI(k))
		return hex.EncodeToString(sum[:]), nil
	}
	return evidence.KeyDigest(pub)
}

// Key is a trusted key receipts are verified against, with its scheme. Build
// it from trust material (NewKey, ParseKey, ParseKeyPEM, NewAddressKey), never
// from a receipt. A Key is immutable and safe for concurrent use.
type Key struct {
	scheme  Scheme
	pub     crypto.PublicKey // nil for an address-only key
	address [20]byte         // secp256k1 schemes only
	addrHex string           // address, EIP-55
	digest  string           // "" for an address-only key
	spki    []byte           // DER SubjectPublicKeyInfo; nil for an address-only key
}

// NewKey makes a key of scheme from pub: a *secp256k1.PublicKey for the
// secp256k1 schemes, an ed25519.PublicKey for Ed25519, an *ecdsa.PublicKey on
// P-256 for P-256.
func NewKey(scheme Scheme, pub crypto.PublicKey) (*Key, error) {
	k := &Key{scheme: scheme, pub: pub}
	switch scheme {
	case SchemeSecp256k1DER, SchemeSecp256k1RSV:
		p, ok := pub.(*secp256k1.PublicKey)
		if !ok || p == nil {
			return nil, fmt.Errorf("%w: %s wants a *secp256k1.PublicKey, have %T", ErrKey, scheme, pub)
		}
		if !p.IsOnCurve() {
			return nil, fmt.Errorf("%w: secp256k1 point is not on the curve", ErrKey)
		}
		k.address = ethereumAddress(p)
		k.addrHex = FormatAddress(k.address)
	case SchemeEd25519:
		p, ok := pub.(ed25519.PublicKey)
		if !ok || len(p) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: %s wants a %d-byte ed25519.PublicKey, have %T", ErrKey, scheme, ed25519.PublicKeySize, pub)
		}
		k.pub = append(ed25519.PublicKey(nil), p...)
	case SchemeP256DER:
		p, ok := pub.(*ecdsa.PublicKey)
		if !ok || p == nil || p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: %s wants an *ecdsa.PublicKey on P-256, have %T", ErrKey, scheme, pub)
		}
		// A copy, checked to be on the curve: the caller keeps p.
		b, err := p.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: P-256 point: %w", ErrKey, err)
		}
		if k.pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b); err != nil {
			return nil, fmt.Errorf("%w: P-256 point: %w", ErrKey, err)
		}
	default:
		return nil, fmt.Errorf("%w: scheme %q is not one of %v", ErrUnsupported, scheme, Schemes)
	}
	// The SPKI is kept: Verify reports it with every result.
	der, err := k.marshalSPKI()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	k.spki, k.digest = der, hex.EncodeToString(sum[:])
	return k, nil
}

// NewAddressKey makes an ecdsa-secp256k1-rsv key known only by its Ethereum
// address: "0x" and 40 hex digits, all lowercase or with a valid EIP-55
// checksum. Its receipts are verified by the address of the key they recover.
func NewAddressKey(address string) (*Key, error) {
	a, err := ParseAddress(address)
	if err != nil {
		return nil, err
	}
	return &Key{scheme: SchemeSecp256k1RSV, address: a, addrHex: FormatAddress(a)}, nil
}

// ParseKey makes a key of scheme from a DER SubjectPublicKeyInfo: for the
// secp256k1 schemes as ParseSecp256k1SPKI reads it, otherwise as
// x509.ParsePKIXPublicKey does.
func ParseKey(scheme Scheme, spki []byte) (*Key, error) {
	var pub crypto.PublicKey
	var err error
	switch scheme {
	case SchemeSecp256k1DER, SchemeSecp256k1RSV:
		pub, err = ParseSecp256k1SPKI(spki)
	default:
		pub, err = x509.ParsePKIXPublicKey(spki)
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrKey, err)
		}
	}
	if err != nil {
		return nil, err
	}
	return NewKey(scheme, pub)
}

// ParseKeyPEM is ParseKey of one PEM "PUBLIC KEY" block; anything but
// whitespace around it is an error.
func ParseKeyPEM(scheme Scheme, b []byte) (*Key, error) {
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%w: no PEM \"PUBLIC KEY\" block", ErrKey)
	}
	for _, c := range rest {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return nil, fmt.Errorf("%w: data after the PEM block", ErrKey)
		}
	}
	return ParseKey(scheme, block.Bytes)
}

// MarshalKeyPEM returns the key as a PEM "PUBLIC KEY" block, or an error for
// an address-only key.
func (k *Key) MarshalKeyPEM() ([]byte, error) {
	var der []byte
	switch p := k.pub.(type) {
	case nil:
		return nil, fmt.Errorf("%w: an address-only key has no public key", ErrKey)
	case *secp256k1.PublicKey:
		der = MarshalSecp256k1SPKI(p)
	default:
		var err error
		if der, err = x509.MarshalPKIXPublicKey(p); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// SPKI returns the key's DER SubjectPublicKeyInfo (for secp256k1 as
// MarshalSecp256k1SPKI writes it), or an error for an address-only key. The
// slice is the caller's.
func (k *Key) SPKI() ([]byte, error) {
	if k.spki != nil {
		return bytes.Clone(k.spki), nil
	}
	return k.marshalSPKI()
}

// marshalSPKI encodes the key's SubjectPublicKeyInfo; its SHA-256 is
// KeyDigest.
func (k *Key) marshalSPKI() ([]byte, error) {
	switch p := k.pub.(type) {
	case nil:
		return nil, fmt.Errorf("%w: an address-only key has no public key", ErrKey)
	case *secp256k1.PublicKey:
		return MarshalSecp256k1SPKI(p), nil
	default:
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		return der, nil
	}
}

// Scheme returns the key's scheme.
func (k *Key) Scheme() Scheme { return k.scheme }

// Public returns the public key, or nil for an address-only key.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Digest returns the key's keytrail digest (KeyDigest), or "" for an
// address-only key.
func (k *Key) Digest() string { return k.digest }

// Address returns the EIP-55 Ethereum address of a secp256k1 key, or "".
func (k *Key) Address() string { return k.addrHex }

// Ref returns the evidence.KeyRef that names the key as id, for statement
// subjects. An address-only key has no digest of its own: use the digest of
// the key a receipt recovered (Result.KeyDigest).
func (k *Key) Ref(id string) (evidence.KeyRef, error) {
	if k.digest == "" {
		return evidence.KeyRef{}, errors.New("receipt: an address-only key has no key digest")
	}
	r := evidence.KeyRef{ID: id, SPKISHA256: k.digest}
	return r, r.Validate()
}
