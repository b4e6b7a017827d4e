package receipt_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/crypto/sha3"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/verify/receipt"
)

// Vectors made by OpenSSL 3.0.19, not by this package or its dependencies:
//
//	openssl ecparam -name secp256k1 -genkey -noout -out k1.pem
//	openssl ec -in k1.pem -pubout -outform DER | xxd -p
//	printf 'keytrail openssl vector' > msg
//	openssl dgst -sha256 -sign k1.pem msg | xxd -p   # repeated: OpenSSL does not enforce low S
//	(the same for prime256v1, and for ed25519 with openssl pkeyutl -sign -rawin)
const (
	opensslMsg     = "keytrail openssl vector"
	opensslK1SPKI  = "3056301006072a8648ce3d020106052b8104000a03420004770b5e3cc394a0262d17a9ff61d6d0143883539c77bbf322cd4ffff33f419d50f06834c7a316dee5516ac2c4db698f2c39d26af41a85e84679e5f17efbb8d41e"
	opensslK1Point = "04770b5e3cc394a0262d17a9ff61d6d0143883539c77bbf322cd4ffff33f419d50f06834c7a316dee5516ac2c4db698f2c39d26af41a85e84679e5f17efbb8d41e"
	opensslK1LowS  = "3045022100dedf31aa4e5ff4af875cdba97b1b4ff6c58e7530a18133af8335682299b0f28b022017927ec070329c0a5451fd80d430dfd21a66911695a65b0c738e8c99aa750074"
	opensslK1HighS = "30450220597557a21fc684c9db6563e1293023fc9b6c8d236a63a8034465f6de2330020a022100848dd590e5b7b58f7e444267e77d77fd1417a3d6ca80731186040cde10a0b2cf"
	opensslP256    = "3059301306072a8648ce3d020106082a8648ce3d03010703420004f64b1d09efa511ffc7a1358ace355f4d8a0643a286609e8985f93a7cc33955631fc72510a3fe52ab74937287f81373fd9c185c9e0b75ee124e6496ace785f31a"
	opensslP256Sig = "3046022100a1d3e3528cc10c3e0b34bef806830704d3299f5ca34bb5c06cb3c9f854de6879022100f400e8c3abb9e1a20bcea60598bafb3f832a6a0203ee17ce0d9b37b8400b8ad4"
	opensslEd      = "302a300506032b6570032100a3a727a11f54c632c453aaf594f369ba4faadb46a08c0fb5950b9ffccda60b7c"
	opensslEdSig   = "1b2dea77a4d736cee959439844dd4e366ac04c6bb48749c8a89b075d14c45e33f362ebae43e2e96c26f0e468a8d16cfe220e8cc570c80acae53803c0c84d170f"
)

// keytrail's secp256k1 key name is the SHA-256 of the SPKI OpenSSL writes.
func TestSecp256k1SPKIVector(t *testing.T) {
	der := mustHex(opensslK1SPKI)
	pub, err := receipt.ParseSecp256k1SPKI(der)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(pub.SerializeUncompressed()); got != opensslK1Point {
		t.Errorf("point %s, want %s", got, opensslK1Point)
	}
	if got := receipt.MarshalSecp256k1SPKI(pub); string(got) != string(der) {
		t.Errorf("MarshalSecp256k1SPKI = %x, want OpenSSL's %s", got, opensslK1SPKI)
	}
	want := sha256.Sum256(der)
	if d, err := receipt.KeyDigest(pub); err != nil || d != hex.EncodeToString(want[:]) {
		t.Errorf("KeyDigest = %s, %v; want %x", d, err, want)
	}
	key, err := receipt.ParseKeyPEM(receipt.SchemeSecp256k1DER, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	if key.Digest() != hex.EncodeToString(want[:]) {
		t.Errorf("Key.Digest = %s", key.Digest())
	}
	ref, err := key.Ref("hsm:custody/btc-1")
	if err != nil || ref.SPKISHA256 != key.Digest() {
		t.Errorf("Ref = %+v, %v", ref, err)
	}
	if p, err := key.MarshalKeyPEM(); err != nil || !strings.Contains(string(p), "MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAE") {
		t.Errorf("MarshalKeyPEM = %s, %v", p, err)
	}
}

// OpenSSL's secp256k1 DER signatures verify; the high-S one is reported.
func TestOpenSSLSignatures(t *testing.T) {
	digest := sum(opensslMsg)
	k1, err := receipt.ParseKey(receipt.SchemeSecp256k1DER, mustHex(opensslK1SPKI))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := receipt.Verify(k1, newReceipt(digest, mustHex(opensslK1LowS)), receipt.Options{}); err != nil {
		t.Errorf("low S: %v", err)
	}
	if _, err := receipt.Verify(k1, newReceipt(digest, mustHex(opensslK1HighS)), receipt.Options{}); !errors.Is(err, receipt.ErrHighS) {
		t.Errorf("high S by default: %v, want ErrHighS", err)
	}
	if res, err := receipt.Verify(k1, newReceipt(digest, mustHex(opensslK1HighS)), receipt.Options{AllowHighS: true}); err != nil || !res.HighS {
		t.Errorf("high S allowed: %+v, %v", res, err)
	}

	p256, err := receipt.ParseKey(receipt.SchemeP256DER, mustHex(opensslP256))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := receipt.Verify(p256, newReceipt(digest, mustHex(opensslP256Sig)), receipt.Options{}); err != nil || !res.HighS {
		t.Errorf("P-256 (high S, reported only): %+v, %v", res, err)
	}
	ed, err := receipt.ParseKey(receipt.SchemeEd25519, mustHex(opensslEd))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := receipt.Verify(ed, newReceipt([]byte(opensslMsg), mustHex(opensslEdSig)), receipt.Options{}); err != nil {
		t.Errorf("Ed25519: %v", err)
	}
	// A key's digest does not depend on which package parsed it.
	edPub, _ := evidence.KeyDigest(ed.Public())
	if want := sha256.Sum256(mustHex(opensslEd)); edPub != hex.EncodeToString(want[:]) || ed.Digest() != edPub {
		t.Errorf("Ed25519 digest %s / %s", ed.Digest(), edPub)
	}
}

func TestParseSecp256k1SPKIRejects(t *testing.T) {
	good := mustHex(opensslK1SPKI)
	pub, _ := receipt.ParseSecp256k1SPKI(good)
	compressed := pub.SerializeCompressed()
	// The same SPKI, with a compressed point (BIT STRING of 33 bytes).
	comp := append(mustHex("3036301006072a8648ce3d020106052b8104000a032200"), compressed...)
	hybrid := append([]byte(nil), good...)
	hybrid[len(hybrid)-65] = 0x06 + pub.SerializeCompressed()[0] - 0x02
	offCurve := append([]byte(nil), good...)
	offCurve[len(offCurve)-1] ^= 1
	for name, der := range map[string][]byte{
		"compressed point": comp,
		"hybrid point":     hybrid,
		"point off curve":  offCurve,
		"trailing data":    append(append([]byte(nil), good...), 0),
		"truncated":        good[:len(good)-1],
		"BER length":       append([]byte{0x30, 0x81, 0x56}, good[2:]...),
		"P-256 SPKI":       mustHex(opensslP256),
		"Ed25519 SPKI":     mustHex(opensslEd),
		"empty":            nil,
	} {
		if _, err := receipt.ParseSecp256k1SPKI(der); !errors.Is(err, receipt.ErrKey) {
			t.Errorf("%s: ParseSecp256k1SPKI = %v, want ErrKey", name, err)
		}
	}
}

func TestKeccakAndAddressVectors(t *testing.T) {
	h := sha3.NewLegacyKeccak256()
	if got := hex.EncodeToString(h.Sum(nil)); got != "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470" {
		t.Errorf("Keccak-256(\"\") = %s", got)
	}
	// Private key 1: the generator's address.
	if got := receipt.Address(secp256k1.PrivKeyFromBytes([]byte{1}).PubKey()); got != "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf" {
		t.Errorf("address of key 1 = %s", got)
	}
	// EIP-55's examples.
	for _, a := range []string{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
		"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
	} {
		b, err := receipt.ParseAddress(a)
		if err != nil || receipt.FormatAddress(b) != a {
			t.Errorf("ParseAddress(%s) = %x, %v", a, b, err)
		}
		if _, err := receipt.ParseAddress(strings.ToLower(a)); err != nil {
			t.Errorf("lowercase %s: %v", a, err)
		}
		bad := []byte(a)
		for i := len(bad) - 1; i > 1; i-- {
			if c := bad[i]; 'a' <= c && c <= 'f' {
				bad[i] = c - 'a' + 'A'
				break
			}
		}
		if _, err := receipt.ParseAddress(string(bad)); !errors.Is(err, receipt.ErrKey) {
			t.Errorf("bad checksum %s: %v", bad, err)
		}
	}
	for _, a := range []string{"", "0x", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0X5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
		"0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaedaa", "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg"} {
		if _, err := receipt.ParseAddress(a); !errors.Is(err, receipt.ErrKey) {
			t.Errorf("ParseAddress(%q) = %v", a, err)
		}
	}
}

// The worked example of EIP-155: a legacy transaction on chain 1 signed with
// v = 37.
func TestEIP155Vector(t *testing.T) {
	signingData := mustHex("ec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a764000080018080")
	h := sha3.NewLegacyKeccak256()
	h.Write(signingData)
	digest := h.Sum(nil)
	if got := hex.EncodeToString(digest); got != "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53" {
		t.Fatalf("signing hash %s", got)
	}
	r, _ := new(big.Int).SetString("18515461264373351373200002665853028612451056578545711640558177340181847433846", 10)
	s, _ := new(big.Int).SetString("46948507304638947509940763649030358759909902576025900602547168820602576006531", 10)
	sig := cat(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32)), []byte{37})

	priv := secp256k1.PrivKeyFromBytes(mustHex(strings.Repeat("46", 32)))
	// Ethereum and dcrd both sign with RFC 6979 nonces.
	if got := signRSV(priv, digest, eip155(1)); string(got) != string(sig) {
		t.Errorf("dcrd's signature %x differs from EIP-155's %x", got, sig)
	}
	addr, err := receipt.NewAddressKey("0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*receipt.Key{addr, mustKey(t, receipt.SchemeSecp256k1RSV, priv.PubKey())} {
		rc := withChain(newReceipt(digest, sig), "eip155:1")
		res, err := receipt.Verify(k, rc, receipt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Address != "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F" || res.ChainID != 1 || res.V == nil || *res.V != 37 {
			t.Errorf("result %+v", res)
		}
	}
}

func TestNewKeyRejects(t *testing.T) {
	k1 := k1Priv("a").PubKey()
	ed := edPriv("a").Public()
	p := &p256Priv("a").PublicKey
	offCurve := secp256k1.NewPublicKey(new(secp256k1.FieldVal).SetInt(1), new(secp256k1.FieldVal).SetInt(1))
	for _, c := range []struct {
		scheme receipt.Scheme
		pub    any
	}{
		{receipt.SchemeSecp256k1DER, ed}, {receipt.SchemeSecp256k1RSV, p}, {receipt.SchemeSecp256k1DER, offCurve},
		{receipt.SchemeSecp256k1DER, (*secp256k1.PublicKey)(nil)},
		{receipt.SchemeEd25519, k1}, {receipt.SchemeEd25519, ed.(ed25519.PublicKey)[:31]},
		{receipt.SchemeP256DER, k1}, {receipt.SchemeP256DER, &k1Priv("a").ToECDSA().PublicKey},
		{"ecdsa-secp256r1", p}, {"", ed},
	} {
		if _, err := receipt.NewKey(c.scheme, c.pub); err == nil {
			t.Errorf("NewKey(%s, %T) accepted", c.scheme, c.pub)
		}
	}
	if _, err := receipt.ParseKey(receipt.SchemeP256DER, mustHex(opensslK1SPKI)); err == nil {
		t.Error("a secp256k1 SPKI made a P-256 key")
	}
	if _, err := receipt.ParseKey(receipt.SchemeEd25519, mustHex(opensslP256)); err == nil {
		t.Error("a P-256 SPKI made an Ed25519 key")
	}
	if _, err := receipt.ParseKeyPEM(receipt.SchemeEd25519, append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustHex(opensslEd)}), 'x')); err == nil {
		t.Error("data after the PEM block accepted")
	}
	if _, err := receipt.ParseScheme("ED25519"); !errors.Is(err, receipt.ErrUnsupported) {
		t.Errorf("ParseScheme is not exact: %v", err)
	}
	addr, _ := receipt.NewAddressKey("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
	if _, err := addr.Ref("x"); err == nil {
		t.Error("an address-only key has a KeyRef")
	}
	if _, err := addr.MarshalKeyPEM(); err == nil {
		t.Error("an address-only key has a PEM")
	}
}

// Keys round-trip through PEM, and keep their digest.
func TestKeyPEMRoundTrip(t *testing.T) {
	for _, k := range []*receipt.Key{
		mustKey(t, receipt.SchemeSecp256k1DER, k1Priv("a").PubKey()),
		mustKey(t, receipt.SchemeSecp256k1RSV, k1Priv("a").PubKey()),
		mustKey(t, receipt.SchemeEd25519, edPriv("a").Public()),
		mustKey(t, receipt.SchemeP256DER, &p256Priv("a").PublicKey),
	} {
		p, err := k.MarshalKeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		back, err := receipt.ParseKeyPEM(k.Scheme(), p)
		if err != nil || back.Digest() != k.Digest() || back.Address() != k.Address() {
			t.Errorf("%s: round trip %v, digest %s vs %s", k.Scheme(), err, back.Digest(), k.Digest())
		}
	}
}
