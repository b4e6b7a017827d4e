package receipt_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	dcrdecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/verify/receipt"
)

// Fixed test keys, derived from names, so every signature below is real and
// reproducible: secp256k1 and Ed25519 sign deterministically, and so does
// P-256 with a nil random source (RFC 6979).
func seed(name string) []byte {
	s := sha256.Sum256([]byte("keytrail verify/receipt test\x00" + name))
	return s[:]
}

func k1Priv(name string) *secp256k1.PrivateKey { return secp256k1.PrivKeyFromBytes(seed(name)) }

func edPriv(name string) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(seed(name)) }

func p256Priv(name string) *ecdsa.PrivateKey {
	for i := 0; ; i++ {
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed(fmt.Sprintf("%s/%d", name, i)))
		if err == nil {
			return k
		}
	}
}

func mustKey(t testing.TB, scheme receipt.Scheme, pub crypto.PublicKey) *receipt.Key {
	t.Helper()
	k, err := receipt.NewKey(scheme, pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sum(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// newReceipt is a receipt of sig over digest, as a collector records it.
func newReceipt(digest, sig []byte) *evidence.SigningReceipt {
	return &evidence.SigningReceipt{
		At: evidence.AtTime(t0), Digest: hex.EncodeToString(digest), Signature: sig,
		Operator: "wallet-signer-eu-1", RequestID: "req-2026-03-02-0001",
	}
}

// signDER is a low-S DER secp256k1 signature.
func signDER(k *secp256k1.PrivateKey, digest []byte) []byte {
	return dcrdecdsa.Sign(k, digest).Serialize()
}

// signRSV is a low-S r||s||v signature, with v = vOf(y parity).
func signRSV(k *secp256k1.PrivateKey, digest []byte, vOf func(parity byte) byte) []byte {
	c := dcrdecdsa.SignCompact(k, digest, false) // 27+parity, r, s
	return append(append([]byte(nil), c[1:]...), vOf(c[0]-27))
}

func v27(p byte) byte { return 27 + p }
func v0(p byte) byte  { return p }
func eip155(chainID byte) func(byte) byte {
	return func(p byte) byte { return chainID*2 + 35 + p }
}

func signEd(k ed25519.PrivateKey, msg []byte) []byte { return ed25519.Sign(k, msg) }

func signP256(t testing.TB, k *ecdsa.PrivateKey, digest []byte) []byte {
	t.Helper()
	sig, err := k.Sign(nil, digest, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

type ecdsaSig struct{ R, S *big.Int }

func parseDER(t testing.TB, sig []byte) ecdsaSig {
	t.Helper()
	var s ecdsaSig
	if rest, err := asn1.Unmarshal(sig, &s); err != nil || len(rest) != 0 {
		t.Fatalf("test signature is not DER: %v", err)
	}
	return s
}

func marshalDER(t testing.TB, s ecdsaSig) []byte {
	t.Helper()
	b, err := asn1.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// twinDER is the other signature (r, n-s) of a DER signature: valid, with
// S on the other side of n/2.
func twinDER(t testing.TB, sig []byte, n *big.Int) []byte {
	s := parseDER(t, sig)
	return marshalDER(t, ecdsaSig{s.R, new(big.Int).Sub(n, s.S)})
}

// twinRSV is the other signature (r, n-s, v with the other parity).
func twinRSV(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	s := new(big.Int).SetBytes(sig[32:64])
	new(big.Int).Sub(secp256k1.Params().N, s).FillBytes(out[32:64])
	out[64] = flipV(out[64])
	return out
}

// flipV changes the y parity v encodes, keeping its form.
func flipV(v byte) byte {
	switch {
	case v <= 1:
		return v ^ 1
	case v <= 28:
		return 55 - v // 27 <-> 28
	default:
		return 35 + ((v - 35) ^ 1)
	}
}

func with(b []byte, i int, c byte) []byte {
	out := append([]byte(nil), b...)
	out[i] = c
	return out
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
