// Package pkcs11 verifies self-reported PKCS #11 key evidence
// (evidence.HSMAttestation of format "pkcs11-attributes"): the attributes a
// token reports for a key (PKCS #11 v3.0 §4.8–4.9), its public key, and a
// proof that the token holds the private key, a signature over a fresh nonce.
//
// Nothing here is signed by the hardware. A token reports the same attributes
// whether it is a certified HSM or SoftHSM2, so the best strength this
// evidence can reach is attest.SelfReported, and only because the record is
// signed by a collector the verifier trusts (ATTACKS.md 25). The proof of
// possession binds the record to the key: the token that answered held the
// private key of the recorded public key at collection time.
//
// Checks: pkcs11.public-key (the SPKI is canonical DER of a P-256, P-384,
// secp256k1, Ed25519 or RSA ≥ 2048 key, agreeing with keyType and curve),
// pkcs11.possession (the signature over the nonce verifies with it),
// key.binding, key.non-export.
package pkcs11

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/evidence"
)

// Check names.
const (
	CheckPublicKey  = "pkcs11.public-key"
	CheckPossession = "pkcs11.possession"
)

// Mechanisms of a proof of possession.
const (
	MechECDSA  = "CKM_ECDSA"
	MechEdDSA  = "CKM_EDDSA"
	MechRSA256 = "CKM_SHA256_RSA_PKCS"
)

// MinNonce is the shortest proof-of-possession nonce accepted.
const MinNonce = 16

// MaxSPKIBytes bounds a public key.
const MaxSPKIBytes = 4 << 10

// Evidence is one pkcs11-attributes record to verify.
type Evidence struct {
	// Record is the decoded record; it must be authenticated (signed by a
	// trusted collector) by the caller.
	Record *evidence.HSMAttestation
	// LoggedAt is when it was logged. Required.
	LoggedAt time.Time
	// ExpectedKey, if set, is the keytrail key digest the record must be about.
	ExpectedKey string
}

// Key is a parsed public key and its keytrail name.
type Key struct {
	// Public is *ecdsa.PublicKey, *secp256k1.PublicKey, ed25519.PublicKey or
	// *rsa.PublicKey.
	Public crypto.PublicKey
	// Curve is "P-256", "P-384", "secp256k1", "Ed25519", or "" for RSA.
	Curve string
	// KeyType is the PKCS #11 key type without CKK_: "EC", "EC_EDWARDS", "RSA".
	KeyType string
	// Algorithm names it for attest.Facts, e.g. "ECDSA secp256k1".
	Algorithm string
	// Digest is the lowercase hex SHA-256 of the DER SPKI.
	Digest string
}

var oidSecp256k1 = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
var oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}

// ParseSPKI parses a DER SubjectPublicKeyInfo and insists on its one canonical
// encoding, so that a key has one name.
func ParseSPKI(der []byte) (*Key, error) {
	if len(der) == 0 || len(der) > MaxSPKIBytes {
		return nil, fmt.Errorf("%w: public key of %d bytes", attest.ErrFormat, len(der))
	}
	sum := sha256.Sum256(der)
	k := &Key{Digest: hex.EncodeToString(sum[:])}
	if pub, err := parseSecp256k1(der); err == nil {
		k.Public, k.Curve, k.KeyType, k.Algorithm = pub, "secp256k1", "EC", "ECDSA secp256k1"
		return k, nil
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", attest.ErrFormat, err)
	}
	re, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil || !bytes.Equal(re, der) {
		return nil, fmt.Errorf("%w: public key is not in canonical DER", attest.ErrFormat)
	}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256(), elliptic.P384():
		default:
			return nil, fmt.Errorf("%w: ECDSA curve %s", attest.ErrFormat, p.Curve.Params().Name)
		}
		k.Curve, k.KeyType = p.Curve.Params().Name, "EC"
	case ed25519.PublicKey:
		k.Curve, k.KeyType = "Ed25519", "EC_EDWARDS"
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%w: RSA key of %d bits, want at least 2048", attest.ErrFormat, p.N.BitLen())
		}
		k.KeyType = "RSA"
	default:
		return nil, fmt.Errorf("%w: key type %T", attest.ErrFormat, pub)
	}
	k.Public = pub
	k.Algorithm, _ = attest.KeyAlgorithm(pub)
	return k, nil
}

// parseSecp256k1 parses exactly the 88-byte SPKI of a secp256k1 key with an
// uncompressed point (as OpenSSL writes it).
func parseSecp256k1(der []byte) (*secp256k1.PublicKey, error) {
	in := cryptobyte.String(der)
	var spki, alg cryptobyte.String
	var algOID, curveOID asn1.ObjectIdentifier
	var point asn1.BitString
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !in.Empty() ||
		!spki.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&algOID) || !alg.ReadASN1ObjectIdentifier(&curveOID) || !alg.Empty() ||
		!spki.ReadASN1BitString(&point) || !spki.Empty() ||
		!algOID.Equal(oidECPublicKey) || !curveOID.Equal(oidSecp256k1) ||
		len(point.Bytes) != 65 || point.Bytes[0] != 4 {
		return nil, fmt.Errorf("not a secp256k1 SPKI")
	}
	return secp256k1.ParsePubKey(point.Bytes)
}

// Verify verifies ev. It never panics and never changes ev.
func Verify(ev Evidence) (res *attest.Result) {
	res = &attest.Result{Format: evidence.HSMFormatPKCS11, Strength: attest.Unverified}
	defer res.Recover()
	auth := []string{CheckPublicKey, CheckPossession}
	verify(ev, res)
	res.Conclude(attest.SelfReported, auth, append(auth, attest.CheckNonExport))
	return res
}

func verify(ev Evidence, res *attest.Result) {
	a := ev.Record
	if a == nil || a.Format != evidence.HSMFormatPKCS11 {
		res.Fail(CheckPublicKey, fmt.Errorf("%w: not a %s record", attest.ErrInput, evidence.HSMFormatPKCS11))
		return
	}
	if ev.LoggedAt.IsZero() {
		res.Fail(attest.CheckEvidenceTime, attest.ErrNoTime)
		return
	}
	res.Facts.Token = a.Token
	res.Facts.Label = a.Attributes.Label
	attrs := a.Attributes
	res.Facts.Attributes = &attrs
	res.Facts.AttributeSource = "self-reported by the token"
	k, err := ParseSPKI(a.PublicKey)
	if err == nil && (k.KeyType != attrs.KeyType || k.Curve != attrs.Curve) {
		err = fmt.Errorf("%w: the public key is %s %s, the attributes say %s %s", attest.ErrKeyMismatch, k.KeyType, k.Curve, attrs.KeyType, attrs.Curve)
	}
	if err != nil {
		res.Fail(CheckPublicKey, err)
		res.Skip(CheckPossession, CheckPublicKey+" failed")
	} else {
		res.Facts.KeyDigest, res.Facts.Algorithm, res.Facts.PublicKey = k.Digest, k.Algorithm, k.Public
		res.Pass(CheckPublicKey, fmt.Sprintf("%s key %s, consistent with CKA_KEY_TYPE %s", k.Algorithm, k.Digest, attrs.KeyType))
		res.Record(CheckPossession, checkPossession(k, a.ProofOfPossession),
			"the token signed a fresh nonce with the private key of this public key")
	}
	res.CheckKeyBinding(ev.ExpectedKey)
	res.CheckKeyPolicy(&attrs, "self-reported by token "+a.Token.Manufacturer+" "+a.Token.Model+" serial "+a.Token.Serial+", unsigned by the hardware")
}

func checkPossession(k *Key, p *evidence.ProofOfPossession) error {
	if p == nil {
		return fmt.Errorf("%w: no proof of possession", attest.ErrSignature)
	}
	if len(p.Nonce) < MinNonce {
		return fmt.Errorf("%w: nonce of %d bytes, want at least %d", attest.ErrSignature, len(p.Nonce), MinNonce)
	}
	return VerifyPossession(k.Public, p.Mechanism, p.Nonce, p.Signature)
}

// VerifyPossession verifies sig, made by mechanism over nonce, with pub.
func VerifyPossession(pub crypto.PublicKey, mechanism string, nonce, sig []byte) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %s proof of possession: %s", attest.ErrSignature, mechanism, why)
	}
	digest := sha256.Sum256(nonce)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if mechanism != MechECDSA {
			return bad("wrong mechanism for an ECDSA key")
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return bad(fmt.Sprintf("signature of %d bytes, want r||s of %d", len(sig), 2*n))
		}
		if !ecdsa.Verify(k, digest[:], new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])) {
			return bad("does not verify")
		}
	case *secp256k1.PublicKey:
		if mechanism != MechECDSA {
			return bad("wrong mechanism for a secp256k1 key")
		}
		if len(sig) != 64 {
			return bad(fmt.Sprintf("signature of %d bytes, want r||s of 64", len(sig)))
		}
		var r, s secp256k1.ModNScalar
		if r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:]) || r.IsZero() || s.IsZero() {
			return bad("r or s out of range")
		}
		if !secpecdsa.NewSignature(&r, &s).Verify(digest[:], k) {
			return bad("does not verify")
		}
	case ed25519.PublicKey:
		if mechanism != MechEdDSA {
			return bad("wrong mechanism for an Ed25519 key")
		}
		if !ed25519.Verify(k, nonce, sig) {
			return bad("does not verify")
		}
	case *rsa.PublicKey:
		if mechanism != MechRSA256 {
			return bad("wrong mechanism for an RSA key")
		}
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig); err != nil {
			return bad("does not verify")
		}
	default:
		return bad(fmt.Sprintf("key type %T", pub))
	}
	return nil
}
