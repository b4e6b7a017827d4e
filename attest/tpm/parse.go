package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"

	"github.com/keytrail/keytrail/attest"
)

// Bounds on untrusted structures.
const (
	// MaxStructBytes bounds one TPMS_ATTEST, TPMT_SIGNATURE or TPMT_PUBLIC.
	MaxStructBytes = 4 << 10
	// MinNonce is the shortest nonce accepted.
	MinNonce = 16
	// MaxPCRs bounds the PCR values of a quote.
	MaxPCRs = 24
)

// Magic is TPM_GENERATED_VALUE, the first field of every TPMS_ATTEST.
const Magic = uint32(tpm2.TPMGeneratedValue)

// ParseAttest parses a TPMS_ATTEST (the bytes the TPM signs). It checks the
// magic (which go-tpm's Unmarshal does not), and that the bytes are the one
// encoding of what they decode to: no trailing data, no non-canonical fields.
func ParseAttest(b []byte) (*tpm2.TPMSAttest, error) {
	if len(b) > MaxStructBytes {
		return nil, fmt.Errorf("%w: TPMS_ATTEST of %d bytes, limit %d", attest.ErrFormat, len(b), MaxStructBytes)
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: TPMS_ATTEST of %d bytes", attest.ErrFormat, len(b))
	}
	if m := binary.BigEndian.Uint32(b); m != Magic {
		return nil, fmt.Errorf("%w: TPMS_ATTEST magic 0x%08x, want TPM_GENERATED_VALUE 0x%08x", attest.ErrFormat, m, Magic)
	}
	a, err := unmarshal[tpm2.TPMSAttest]("TPMS_ATTEST", b)
	if err != nil {
		return nil, err
	}
	if a.Magic != tpm2.TPMGeneratedValue {
		return nil, fmt.Errorf("%w: TPMS_ATTEST magic 0x%08x", attest.ErrFormat, uint32(a.Magic))
	}
	return a, nil
}

// ParsePublic parses a TPMT_PUBLIC, or a TPM2B_PUBLIC (the same with a 2-byte
// size prefix, as tpm2-tools writes it) if the first two bytes are the size of
// the rest.
func ParsePublic(b []byte) (*tpm2.TPMTPublic, []byte, error) {
	if len(b) > MaxStructBytes {
		return nil, nil, fmt.Errorf("%w: TPMT_PUBLIC of %d bytes, limit %d", attest.ErrFormat, len(b), MaxStructBytes)
	}
	if len(b) >= 2 && int(binary.BigEndian.Uint16(b)) == len(b)-2 {
		b = b[2:]
	}
	p, err := unmarshal[tpm2.TPMTPublic]("TPMT_PUBLIC", b)
	if err != nil {
		return nil, nil, err
	}
	return p, b, nil
}

// ParseSignature parses a TPMT_SIGNATURE.
func ParseSignature(b []byte) (*tpm2.TPMTSignature, error) {
	if len(b) > MaxStructBytes {
		return nil, fmt.Errorf("%w: TPMT_SIGNATURE of %d bytes, limit %d", attest.ErrFormat, len(b), MaxStructBytes)
	}
	return unmarshal[tpm2.TPMTSignature]("TPMT_SIGNATURE", b)
}

// unmarshal decodes b and insists that it is the exact encoding of the value:
// go-tpm ignores trailing bytes, which would let two byte strings carry one
// signed meaning.
func unmarshal[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](what string, b []byte) (v *T, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("%w: %s: %v", attest.ErrFormat, what, p)
		}
	}()
	v, err = tpm2.Unmarshal[T, P](b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", attest.ErrFormat, what, err)
	}
	if !bytes.Equal(tpm2.Marshal(*v), b) {
		return nil, fmt.Errorf("%w: %s: trailing or non-canonical bytes (%d bytes decode to %d)", attest.ErrFormat, what, len(b), len(tpm2.Marshal(*v)))
	}
	return v, nil
}

// PublicKey returns the Go public key of a TPMT_PUBLIC (RSA, or ECC on
// P-256, P-384 or P-521), checking that an ECC point is on its curve.
func PublicKey(p *tpm2.TPMTPublic) (crypto.PublicKey, error) {
	switch p.Type {
	case tpm2.TPMAlgRSA:
		parms, err := p.Parameters.RSADetail()
		if err != nil {
			return nil, fmt.Errorf("%w: RSA parameters: %v", attest.ErrFormat, err)
		}
		n, err := p.Unique.RSA()
		if err != nil {
			return nil, fmt.Errorf("%w: RSA modulus: %v", attest.ErrFormat, err)
		}
		e := int(parms.Exponent)
		if e == 0 {
			e = 65537
		}
		k := &rsa.PublicKey{N: new(big.Int).SetBytes(n.Buffer), E: e}
		if k.N.BitLen() < 2048 || k.N.BitLen() != int(parms.KeyBits) {
			return nil, fmt.Errorf("%w: RSA modulus of %d bits (keyBits %d); want at least 2048, as declared", attest.ErrFormat, k.N.BitLen(), parms.KeyBits)
		}
		return k, nil
	case tpm2.TPMAlgECC:
		parms, err := p.Parameters.ECCDetail()
		if err != nil {
			return nil, fmt.Errorf("%w: ECC parameters: %v", attest.ErrFormat, err)
		}
		pt, err := p.Unique.ECC()
		if err != nil {
			return nil, fmt.Errorf("%w: ECC point: %v", attest.ErrFormat, err)
		}
		var size int
		var curve elliptic.Curve
		switch parms.CurveID {
		case tpm2.TPMECCNistP256:
			size, curve = 32, elliptic.P256()
		case tpm2.TPMECCNistP384:
			size, curve = 48, elliptic.P384()
		case tpm2.TPMECCNistP521:
			size, curve = 66, elliptic.P521()
		default:
			return nil, fmt.Errorf("%w: unsupported ECC curve 0x%04x", attest.ErrFormat, uint16(parms.CurveID))
		}
		if len(pt.X.Buffer) > size || len(pt.Y.Buffer) > size {
			return nil, fmt.Errorf("%w: ECC point coordinates longer than the curve", attest.ErrFormat)
		}
		raw := make([]byte, 1+2*size)
		raw[0] = 4
		copy(raw[1+size-len(pt.X.Buffer):1+size], pt.X.Buffer)
		copy(raw[1+2*size-len(pt.Y.Buffer):], pt.Y.Buffer)
		k, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return nil, fmt.Errorf("%w: ECC point: %v", attest.ErrFormat, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: unsupported key type 0x%04x", attest.ErrFormat, uint16(p.Type))
}

// Name returns the TPM Name of a public area: nameAlg || H_nameAlg(TPMT_PUBLIC).
func Name(p *tpm2.TPMTPublic) ([]byte, error) {
	if _, err := hashOf(p.NameAlg); err != nil {
		return nil, fmt.Errorf("nameAlg: %w", err)
	}
	n, err := tpm2.ObjectName(p)
	if err != nil {
		return nil, fmt.Errorf("%w: name: %v", attest.ErrFormat, err)
	}
	return n.Buffer, nil
}

// hashOf maps a TPM hash algorithm to a Go hash; SHA-1 is refused.
func hashOf(a tpm2.TPMIAlgHash) (crypto.Hash, error) {
	switch a {
	case tpm2.TPMAlgSHA256:
		return crypto.SHA256, nil
	case tpm2.TPMAlgSHA384:
		return crypto.SHA384, nil
	case tpm2.TPMAlgSHA512:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("%w: hash algorithm 0x%04x not accepted (want SHA-256, SHA-384 or SHA-512)", attest.ErrFormat, uint16(a))
}

// HashName names a hash for the PCR bank, e.g. "sha256".
func bankName(a tpm2.TPMIAlgHash) string {
	switch a {
	case tpm2.TPMAlgSHA1:
		return "sha1"
	case tpm2.TPMAlgSHA256:
		return "sha256"
	case tpm2.TPMAlgSHA384:
		return "sha384"
	case tpm2.TPMAlgSHA512:
		return "sha512"
	}
	return fmt.Sprintf("0x%04x", uint16(a))
}

// BankAlg returns the TPM hash algorithm of a bank name ("sha256").
func BankAlg(name string) (tpm2.TPMIAlgHash, error) {
	for _, a := range []tpm2.TPMIAlgHash{tpm2.TPMAlgSHA1, tpm2.TPMAlgSHA256, tpm2.TPMAlgSHA384, tpm2.TPMAlgSHA512} {
		if bankName(a) == name {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown PCR bank %q (want sha1, sha256, sha384 or sha512)", name)
}
