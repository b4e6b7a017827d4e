package receipt_test

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/keytrail/keytrail/verify/receipt"
)

// FuzzVerify feeds arbitrary digests, signatures and chains to Verify under
// every scheme. It never panics, every failure is an *Error, and nothing
// verifies but the genuine signature over the genuine digest (for rsv: its r
// and s with the genuine y parity, in any of the spellings of v; for P-256:
// or its twin (r, n-s), which P-256 does not exclude).
func FuzzVerify(f *testing.F) {
	k1 := k1Priv("fuzz")
	ed := edPriv("fuzz")
	p := p256Priv("fuzz")
	d := sum("fuzz")
	type genuine struct {
		key *receipt.Key
		sig []byte
	}
	byScheme := []genuine{
		{mustKey(f, receipt.SchemeSecp256k1DER, k1.PubKey()), signDER(k1, d)},
		{mustKey(f, receipt.SchemeSecp256k1RSV, k1.PubKey()), signRSV(k1, d, v27)},
		{mustKey(f, receipt.SchemeEd25519, ed.Public()), signEd(ed, d)},
		{mustKey(f, receipt.SchemeP256DER, &p.PublicKey), signP256(f, p, d)},
	}
	for i, g := range byScheme {
		f.Add(uint8(i), d, g.sig, "", false)
		f.Add(uint8(i), d, g.sig, "eip155:1", true)
		f.Add(uint8(i), d[:31], g.sig[1:], "", true)
	}
	f.Add(uint8(1), d, signRSV(k1, d, eip155(1)), "eip155:1", false)
	f.Fuzz(func(t *testing.T, scheme uint8, digest, sig []byte, chain string, allowHighS bool) {
		g := byScheme[int(scheme)%len(byScheme)]
		r := newReceipt(digest, sig)
		r.Chain = chain
		res, err := receipt.Verify(g.key, r, receipt.Options{AllowHighS: allowHighS})
		if err != nil {
			var e *receipt.Error
			if res != nil || !errors.As(err, &e) {
				t.Fatalf("Verify = %v, %v; want nil and an *Error", res, err)
			}
			return
		}
		if hex.EncodeToString(digest) != hex.EncodeToString(d) {
			t.Fatalf("verified over digest %x", digest)
		}
		switch g.key.Scheme() {
		case receipt.SchemeSecp256k1RSV:
			if string(sig[:64]) != string(g.sig[:64]) && (!allowHighS || string(sig[:64]) != string(twinRSV(g.sig)[:64])) {
				t.Fatalf("verified rsv %x", sig)
			}
		case receipt.SchemeP256DER:
			if string(sig) != string(g.sig) && string(sig) != string(twinDER(t, g.sig, p256N)) {
				t.Fatalf("verified P-256 %x", sig)
			}
		case receipt.SchemeSecp256k1DER:
			if string(sig) != string(g.sig) && (!allowHighS || string(sig) != string(twinDER(t, g.sig, k1N))) {
				t.Fatalf("verified secp256k1 %x", sig)
			}
		default:
			if string(sig) != string(g.sig) {
				t.Fatalf("verified %s %x", g.key.Scheme(), sig)
			}
		}
	})
}
