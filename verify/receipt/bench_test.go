package receipt_test

import (
	"testing"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/verify/receipt"
)

// BenchmarkVerify measures one receipt's verification per scheme:
//
//	go test -run '^$' -bench Verify ./verify/receipt/
func BenchmarkVerify(b *testing.B) {
	k1 := k1Priv("bench")
	ed := edPriv("bench")
	p := p256Priv("bench")
	d := sum("bench")
	addr, err := receipt.NewAddressKey(receipt.Address(k1.PubKey()))
	if err != nil {
		b.Fatal(err)
	}
	solanaMessage := make([]byte, 215) // a one-transfer Solana message
	for _, c := range []struct {
		name string
		key  *receipt.Key
		r    *evidence.SigningReceipt
	}{
		{"secp256k1-der", mustKey(b, receipt.SchemeSecp256k1DER, k1.PubKey()), newReceipt(d, signDER(k1, d))},
		{"secp256k1-rsv", mustKey(b, receipt.SchemeSecp256k1RSV, k1.PubKey()), newReceipt(d, signRSV(k1, d, v27))},
		{"secp256k1-rsv-address", addr, newReceipt(d, signRSV(k1, d, v27))},
		{"ed25519-solana", mustKey(b, receipt.SchemeEd25519, ed.Public()), newReceipt(solanaMessage, signEd(ed, solanaMessage))},
		{"p256-der", mustKey(b, receipt.SchemeP256DER, &p.PublicKey), newReceipt(d, signP256(b, p, d))},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := receipt.Verify(c.key, c.r, receipt.Options{AllowHighS: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
