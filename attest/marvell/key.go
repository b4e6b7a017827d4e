package marvell

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/evidence"
)

// Bounds on the keys keytrail reads.
const maxRSABits = 8192

// ulong reads attribute t as an unsigned big-endian integer of 1 to 8 bytes
// (CK_ULONG values such as CKA_CLASS are one byte in this format).
func (o *Object) ulong(t uint32) (uint64, error) {
	v, ok := o.Get(t)
	if !ok {
		return 0, fmt.Errorf("no attribute %#x", t)
	}
	if len(v) == 0 || len(v) > 8 {
		return 0, fmt.Errorf("attribute %#x is %d bytes, want 1 to 8", t, len(v))
	}
	var n uint64
	for _, c := range v {
		n = n<<8 | uint64(c)
	}
	return n, nil
}

// boolean reads attribute t as a CK_BBOOL: one byte, 0 or 1.
func (o *Object) boolean(t uint32) (bool, error) {
	v, ok := o.Get(t)
	if !ok {
		return false, fmt.Errorf("no attribute %#x", t)
	}
	if len(v) != 1 || v[0] > 1 {
		return false, fmt.Errorf("attribute %#x is %x, want one byte 0 or 1", t, v)
	}
	return v[0] == 1, nil
}

// Class returns the object's CKA_CLASS.
func (o *Object) Class() (uint64, error) { return o.ulong(AttrClass) }

// PublicKey returns the key the object holds: an EC point (uncompressed, on
// P-256, P-384 or P-521) or an RSA modulus and exponent.
func (o *Object) PublicKey() (crypto.PublicKey, error) {
	kt, err := o.ulong(AttrKeyType)
	if err != nil {
		return nil, err
	}
	v, ok := o.Get(AttrModulus)
	if !ok {
		return nil, fmt.Errorf("no attribute %#x (public key)", AttrModulus)
	}
	switch kt {
	case KeyTypeEC:
		var curve elliptic.Curve
		switch len(v) {
		case 65:
			curve = elliptic.P256()
		case 97:
			curve = elliptic.P384()
		case 133:
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("EC point of %d bytes is not an uncompressed P-256, P-384 or P-521 point", len(v))
		}
		k, err := ecdsa.ParseUncompressedPublicKey(curve, v)
		if err != nil {
			return nil, fmt.Errorf("EC point: %w", err)
		}
		return k, nil
	case KeyTypeRSA:
		e, ok := o.Get(AttrPublicExponent)
		if !ok {
			return nil, fmt.Errorf("no attribute %#x (RSA public exponent)", AttrPublicExponent)
		}
		if len(v) == 0 || v[0] == 0 || len(v)*8 > maxRSABits {
			return nil, fmt.Errorf("RSA modulus of %d bytes is not a minimal modulus of at most %d bits", len(v), maxRSABits)
		}
		if len(e) == 0 || len(e) > 4 || e[0] == 0 {
			return nil, fmt.Errorf("RSA public exponent %x is not a minimal exponent of at most 32 bits", e)
		}
		n := new(big.Int).SetBytes(v)
		exp := new(big.Int).SetBytes(e).Int64()
		if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
			return nil, fmt.Errorf("RSA public exponent %d is not odd and at least 3", exp)
		}
		if bits, err := o.ulong(AttrModulusBits); err == nil && bits != uint64(n.BitLen()) {
			return nil, fmt.Errorf("modulus bits %d, but the modulus has %d bits", bits, n.BitLen())
		}
		return &rsa.PublicKey{N: n, E: int(exp)}, nil
	}
	return nil, fmt.Errorf("key type %#x is neither RSA (0) nor EC (3)", kt)
}

// attributes reads the attributes that decide whether a key can leave the HSM.
func (o *Object) attributes(keyType string) (*evidence.KeyAttributes, error) {
	a := &evidence.KeyAttributes{KeyType: keyType}
	for _, f := range []struct {
		t   uint32
		dst *bool
	}{
		{AttrLocal, &a.Local}, {AttrSensitive, &a.Sensitive}, {AttrExtractable, &a.Extractable},
		{AttrNeverExtractable, &a.NeverExtractable}, {AttrAlwaysSensitive, &a.AlwaysSensitive},
	} {
		v, err := o.boolean(f.t)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	return a, nil
}

// Label returns the object's CKA_LABEL up to its first NUL, as valid UTF-8.
func (o *Object) Label() string {
	v, _ := o.Get(AttrLabel)
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	return strings.ToValidUTF8(string(v), string(utf8.RuneError))
}

// keyObjects finds the private object and, if present, the public one: the
// evidence is about one key pair.
func keyObjects(a *Attestation) (priv, pub *Object, err error) {
	for i := range a.Objects {
		o := &a.Objects[i]
		class, err := o.Class()
		if err != nil {
			return nil, nil, fmt.Errorf("key object %d: %w", i+1, err)
		}
		switch {
		case class == ClassPrivateKey && priv == nil:
			priv = o
		case class == ClassPublicKey && pub == nil:
			pub = o
		default:
			return nil, nil, fmt.Errorf("key object %d has class %d: want one private key (3) and at most one public key (2)", i+1, class)
		}
	}
	if priv == nil {
		return nil, nil, fmt.Errorf("no private key object (class 3) among %d objects", len(a.Objects))
	}
	return priv, pub, nil
}

// checkKeyObjects fills res.Facts from the attested key pair.
func checkKeyObjects(a *Attestation, res *attest.Result) (crypto.PublicKey, []*Object, error) {
	fail := func(err error) (crypto.PublicKey, []*Object, error) {
		return nil, nil, fmt.Errorf("%w: %w", attest.ErrFormat, err)
	}
	priv, pub, err := keyObjects(a)
	if err != nil {
		return fail(err)
	}
	key, err := priv.PublicKey()
	if err != nil {
		return fail(fmt.Errorf("private key object: %w", err))
	}
	alg, keyType := attest.KeyAlgorithm(key)
	attrs, err := priv.attributes(keyType)
	if err != nil {
		return fail(fmt.Errorf("private key object: %w", err))
	}
	digest, err := evidence.KeyDigest(key)
	if err != nil {
		return fail(err)
	}
	res.Facts.KeyDigest, res.Facts.Algorithm, res.Facts.PublicKey = digest, alg, key
	res.Facts.Label = priv.Label()
	res.Facts.Attributes, res.Facts.AttributeSource = attrs, attest.SourceAttested
	objs := []*Object{priv}
	if pub != nil {
		pk, err := pub.PublicKey()
		if err != nil {
			return fail(fmt.Errorf("public key object: %w", err))
		}
		if !key.(interface{ Equal(crypto.PublicKey) bool }).Equal(pk) {
			return nil, nil, fmt.Errorf("%w: the public and private key objects hold different keys", attest.ErrKeyMismatch)
		}
		objs = append(objs, pub)
	}
	return key, objs, nil
}

// checkValues checks EKCV (required) and KCV (if present) of each object
// against the key.
func checkValues(key crypto.PublicKey, objs []*Object) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", fmt.Errorf("%w: %w", attest.ErrFormat, err)
	}
	sum256, sum1 := sha256.Sum256(spki), sha1.Sum(spki)
	kcvs := 0
	for _, o := range objs {
		class, _ := o.Class()
		ekcv, ok := o.Get(AttrEKCV)
		if !ok {
			return "", fmt.Errorf("%w: object of class %d has no EKCV (attribute %#x)", attest.ErrCheckValue, class, AttrEKCV)
		}
		if !bytes.Equal(ekcv, sum256[:]) {
			return "", fmt.Errorf("%w: object of class %d: EKCV %x is not SHA-256 of the key's SubjectPublicKeyInfo %x",
				attest.ErrCheckValue, class, ekcv, sum256)
		}
		kcv, ok := o.Get(AttrKCV)
		if !ok {
			continue
		}
		kcvs++
		if !bytes.Equal(kcv, sum1[:3]) {
			return "", fmt.Errorf("%w: object of class %d: KCV %x is not the first 3 bytes of SHA-1 of the key's SubjectPublicKeyInfo %x",
				attest.ErrCheckValue, class, kcv, sum1[:3])
		}
	}
	reason := fmt.Sprintf("EKCV = SHA-256(SubjectPublicKeyInfo) = %s on %s", hex.EncodeToString(sum256[:]), plural(len(objs), "object"))
	if kcvs > 0 {
		reason += fmt.Sprintf(", KCV = SHA-1(SubjectPublicKeyInfo)[:3] = %s on %s", hex.EncodeToString(sum1[:3]), plural(kcvs, "object"))
	}
	return reason, nil
}
