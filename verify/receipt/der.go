package receipt

import (
	"crypto/elliptic"
	"errors"
	"math/big"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxDERSignatureSize is the longest DER ECDSA-Sig-Value of a 256-bit curve:
// SEQUENCE of two 33-byte INTEGERs.
const MaxDERSignatureSize = 72

// decodeSecp256k1DER reads a strict DER secp256k1 signature. dcrd's parser is
// strict X.690 DER (minimal lengths and integers, no trailing data) and checks
// that r and s are in [1, n−1]; it accepts high S, which Verify reports.
func decodeSecp256k1DER(sig []byte) (*ecdsa.Signature, error) {
	d, err := ecdsa.ParseDERSignature(sig)
	var e ecdsa.Error
	if errors.As(err, &e) {
		// dcrd's descriptions start with "malformed signature: " or
		// "invalid signature: "; the caller says that already.
		_, desc, _ := strings.Cut(e.Description, ": ")
		return nil, errors.New(desc)
	}
	return d, err
}

var (
	p256N     = elliptic.P256().Params().N
	p256HalfN = new(big.Int).Rsh(p256N, 1)
)

// decodeP256DER reads a strict DER P-256 signature: exactly the DER encoding
// of SEQUENCE { r INTEGER, s INTEGER } with r and s in [1, n−1], nothing
// after it. It returns r and s.
func decodeP256DER(sig []byte) (r, s *big.Int, err error) {
	if len(sig) > MaxDERSignatureSize {
		return nil, nil, errors.New("longer than a P-256 DER signature can be")
	}
	r, s = new(big.Int), new(big.Int)
	in := cryptobyte.String(sig)
	var inner cryptobyte.String
	if !in.ReadASN1(&inner, cbasn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) || !inner.Empty() {
		return nil, nil, errors.New("not a DER ECDSA-Sig-Value")
	}
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(p256N) >= 0 || s.Cmp(p256N) >= 0 {
		return nil, nil, errors.New("r or s is not in [1, n-1]")
	}
	if string(encodeDER(r, s)) != string(sig) {
		return nil, nil, errors.New("not strict DER")
	}
	return r, s, nil
}

// encodeDER is the DER encoding of an ECDSA-Sig-Value.
func encodeDER(r, s *big.Int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.BytesOrPanic() // r and s are non-negative
}
