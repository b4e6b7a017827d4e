package receipt

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/sha3"
)

// RSVSignatureSize is the size of an ecdsa-secp256k1-rsv signature: r‖s‖v.
const RSVSignatureSize = 65

// keccak256 is Ethereum's Keccak-256 (the original Keccak padding, not FIPS 202
// SHA3-256).
func keccak256(parts ...[]byte) [32]byte {
	h := sha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ethereumAddress is the last 20 bytes of the Keccak-256 of the uncompressed
// point without its 0x04 prefix (Yellow Paper, eq. 284).
func ethereumAddress(pub *secp256k1.PublicKey) [20]byte {
	h := keccak256(pub.SerializeUncompressed()[1:])
	var a [20]byte
	copy(a[:], h[12:])
	return a
}

// Address returns the EIP-55 Ethereum address of a secp256k1 public key.
func Address(pub *secp256k1.PublicKey) string { return FormatAddress(ethereumAddress(pub)) }

// FormatAddress spells an address with its EIP-55 mixed-case checksum.
func FormatAddress(a [20]byte) string {
	lower := hex.EncodeToString(a[:])
	h := keccak256([]byte(lower))
	out := []byte("0x" + lower)
	for i := 0; i < len(lower); i++ {
		nibble := h[i/2] >> 4
		if i%2 == 1 {
			nibble = h[i/2] & 0x0f
		}
		if c := lower[i]; c >= 'a' && nibble >= 8 {
			out[2+i] = c - 'a' + 'A'
		}
	}
	return string(out)
}

// ParseAddress parses an Ethereum address: "0x" and 40 hex digits, either all
// lowercase or with a valid EIP-55 checksum. Any other mixed case is a typo
// EIP-55 exists to catch, and an error.
func ParseAddress(s string) ([20]byte, error) {
	var a [20]byte
	if len(s) != 42 || s[:2] != "0x" {
		return a, fmt.Errorf("%w: address %.60q is not 0x and 40 hex digits", ErrKey, s)
	}
	lowered := []byte(s[2:])
	mixed := false
	for i, c := range lowered {
		if 'A' <= c && c <= 'F' {
			lowered[i] = c - 'A' + 'a'
			mixed = true
		}
	}
	if _, err := hex.Decode(a[:], lowered); err != nil {
		return a, fmt.Errorf("%w: address %q is not 0x and 40 hex digits", ErrKey, s)
	}
	if mixed && FormatAddress(a) != s {
		return a, fmt.Errorf("%w: address %q has a bad EIP-55 checksum (want %s)", ErrKey, s, FormatAddress(a))
	}
	return a, nil
}

// rsv is a decoded ecdsa-secp256k1-rsv signature.
type rsv struct {
	r, s secp256k1.ModNScalar
	// v is the byte as given; recID the y parity it encodes; chainID the
	// EIP-155 chain ID, or 0 if v is not an EIP-155 value.
	v       byte
	recID   byte
	chainID uint64
}

// decodeRSV reads r‖s‖v: 65 bytes, r and s in [1, n−1], v in {0, 1, 27, 28} or
// an EIP-155 value chainId·2 + 35 + y parity with chainId ≥ 1.
func decodeRSV(sig []byte) (rsv, error) {
	var x rsv
	if len(sig) != RSVSignatureSize {
		return x, fmt.Errorf("%d bytes, want %d", len(sig), RSVSignatureSize)
	}
	if overflow := x.r.SetByteSlice(sig[:32]); overflow || x.r.IsZero() {
		return x, errors.New("r is not in [1, n-1]")
	}
	if overflow := x.s.SetByteSlice(sig[32:64]); overflow || x.s.IsZero() {
		return x, errors.New("s is not in [1, n-1]")
	}
	x.v = sig[64]
	switch v := x.v; {
	case v == 0 || v == 1:
		x.recID = v
	case v == 27 || v == 28:
		x.recID = v - 27
	case v >= 37: // chainId ≥ 1
		x.chainID = uint64(v-35) / 2
		x.recID = (v - 35) % 2
	default:
		return x, fmt.Errorf("v = %d is not 0, 1, 27, 28 or EIP-155 chainId*2+35/36 with chainId >= 1", v)
	}
	return x, nil
}

// encode is the inverse of decodeRSV.
func (x rsv) encode() []byte {
	out := make([]byte, RSVSignatureSize)
	x.r.PutBytesUnchecked(out[:32])
	x.s.PutBytesUnchecked(out[32:64])
	out[64] = x.v
	return out
}

// compact is the signature in the form ecdsa.RecoverCompact reads:
// 27 + recovery code, r, s.
func (x rsv) compact() []byte {
	out := make([]byte, RSVSignatureSize)
	out[0] = 27 + x.recID
	x.r.PutBytesUnchecked(out[1:33])
	x.s.PutBytesUnchecked(out[33:])
	return out
}

// eip155Chain is the CAIP-2 chain ID an EIP-155 v commits to.
func eip155Chain(chainID uint64) string { return "eip155:" + strconv.FormatUint(chainID, 10) }
