package receipt

import (
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// The decoders are fuzzed for panics and for non-malleability: whatever a
// decoder accepts, it accepts in exactly one encoding, the one re-encoding
// gives back.

func fuzzSeedDER(f *testing.F) {
	k := secp256k1.PrivKeyFromBytes([]byte{7})
	sig := ecdsa.Sign(k, make([]byte, 32)).Serialize()
	f.Add(sig)
	f.Add(sig[:len(sig)-1])
	f.Add(append(append([]byte(nil), sig...), 0))
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Add([]byte{0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Add([]byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01})
	f.Add([]byte{0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01})
	f.Add([]byte{})
}

// derOf is the DER of SEQUENCE { r, s } by encoding/asn1, a second encoder.
func derOf(t *testing.T, r, s *big.Int) []byte {
	b, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecodeSecp256k1DER(f *testing.F) {
	fuzzSeedDER(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		sig, err := decodeSecp256k1DER(in)
		if err != nil {
			return
		}
		r, s := sig.R(), sig.S()
		rb, sb := r.Bytes(), s.Bytes()
		if got := derOf(t, new(big.Int).SetBytes(rb[:]), new(big.Int).SetBytes(sb[:])); string(got) != string(in) {
			t.Fatalf("accepted %x, whose DER is %x", in, got)
		}
		// dcrd's Serialize writes the low-S twin: the input itself if S is low.
		if low := !s.IsOverHalfOrder(); low != (string(sig.Serialize()) == string(in)) {
			t.Fatalf("S low = %v, but Serialize = %x for %x", low, sig.Serialize(), in)
		}
	})
}

func FuzzDecodeP256DER(f *testing.F) {
	fuzzSeedDER(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		r, s, err := decodeP256DER(in)
		if err != nil {
			return
		}
		if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(p256N) >= 0 || s.Cmp(p256N) >= 0 {
			t.Fatalf("accepted out-of-range r %v s %v", r, s)
		}
		// encoding/asn1 reads it the same way, with nothing left over.
		var v struct{ R, S *big.Int }
		rest, err := asn1.Unmarshal(in, &v)
		if err != nil || len(rest) != 0 || v.R.Cmp(r) != 0 || v.S.Cmp(s) != 0 {
			t.Fatalf("encoding/asn1 reads %x as %v %v (rest %x, %v), we as %v %v", in, v.R, v.S, rest, err, r, s)
		}
		if got := derOf(t, r, s); string(got) != string(in) {
			t.Fatalf("accepted %x, whose DER is %x", in, got)
		}
	})
}

func FuzzDecodeRSV(f *testing.F) {
	k := secp256k1.PrivKeyFromBytes([]byte{7})
	c := ecdsa.SignCompact(k, make([]byte, 32), false)
	rsv := append(append([]byte(nil), c[1:]...), c[0])
	f.Add(rsv)
	for _, v := range []byte{0, 1, 2, 26, 29, 35, 36, 37, 38, 255} {
		x := append([]byte(nil), rsv...)
		x[64] = v
		f.Add(x)
	}
	f.Add(rsv[:64])
	f.Add(make([]byte, 65))
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := decodeRSV(in)
		if err != nil {
			return
		}
		if got := x.encode(); string(got) != string(in) {
			t.Fatalf("accepted %x, which encodes as %x", in, got)
		}
		if x.recID > 1 || (x.chainID == 0) != (in[64] < 35) {
			t.Fatalf("v %d read as parity %d chain %d", in[64], x.recID, x.chainID)
		}
		if x.chainID != 0 && byte(x.chainID*2+35)+x.recID != in[64] {
			t.Fatalf("v %d read as chain %d parity %d", in[64], x.chainID, x.recID)
		}
	})
}

func FuzzParseSecp256k1SPKI(f *testing.F) {
	pub := secp256k1.PrivKeyFromBytes([]byte{7}).PubKey()
	good := MarshalSecp256k1SPKI(pub)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append([]byte{0x30, 0x81, 0x56}, good[2:]...))
	der, _ := hex.DecodeString("3059301306072a8648ce3d020106082a8648ce3d03010703420004f64b1d09efa511ffc7a1358ace355f4d8a0643a286609e8985f93a7cc33955631fc72510a3fe52ab74937287f81373fd9c185c9e0b75ee124e6496ace785f31a")
	f.Add(der)
	f.Fuzz(func(t *testing.T, in []byte) {
		pub, err := ParseSecp256k1SPKI(in)
		if err != nil {
			return
		}
		if !pub.IsOnCurve() {
			t.Fatalf("accepted a point off the curve: %x", in)
		}
		if got := MarshalSecp256k1SPKI(pub); string(got) != string(in) {
			t.Fatalf("accepted %x, which marshals as %x", in, got)
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	f.Add("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
	f.Add("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
	f.Add("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED")
	f.Add("0x")
	f.Fuzz(func(t *testing.T, in string) {
		a, err := ParseAddress(in)
		if err != nil {
			return
		}
		if canon := FormatAddress(a); in != canon && in != strings.ToLower(canon) {
			t.Fatalf("accepted %q, which is neither %s nor its lowercase", in, canon)
		}
	})
}

func FuzzDecodeDigest(f *testing.F) {
	f.Add(string(SchemeEd25519), strings.Repeat("ab", 32))
	f.Add(string(SchemeSecp256k1RSV), strings.Repeat("AB", 32))
	f.Add(string(SchemeP256DER), "0x"+strings.Repeat("ab", 31))
	f.Fuzz(func(t *testing.T, scheme, in string) {
		b, err := DecodeDigest(Scheme(scheme), in)
		if err != nil {
			return
		}
		if hex.EncodeToString(b) != in {
			t.Fatalf("accepted %q, which is %x", in, b)
		}
		if Scheme(scheme) != SchemeEd25519 && len(b) != DigestSize {
			t.Fatalf("accepted a %d-byte digest for %s", len(b), scheme)
		}
	})
}
