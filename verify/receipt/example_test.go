package receipt_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/verify/receipt"
)

// An auditor checks that a wallet's signing receipt was signed by the
// wallet's address, known from the trust file. The receipt is EIP-155's
// worked example: a transaction on chain 1, signed with v = 37.
func Example() {
	key, err := receipt.NewAddressKey("0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F")
	if err != nil {
		panic(err)
	}
	sig, _ := hex.DecodeString("28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276" +
		"67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83" + "25")
	r := &evidence.SigningReceipt{
		At:        evidence.AtTime(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)),
		Digest:    "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53",
		Signature: sig,
		Operator:  "wallet-signer-eu-1",
		RequestID: "req-2026-03-02-0001",
		Chain:     "eip155:1",
	}
	res, err := receipt.Verify(key, r, receipt.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println("signed by", res.Address, "on chain", res.ChainID, "high S:", res.HighS)

	// The signature's twin (r, n-s) with the other parity verifies too, but
	// has a high S, which no Ethereum signer makes.
	twin := append([]byte(nil), sig...)
	s := new(big.Int).SetBytes(sig[32:64])
	new(big.Int).Sub(secp256k1.Params().N, s).FillBytes(twin[32:64])
	twin[64] = 38
	r.Signature = twin
	_, err = receipt.Verify(key, r, receipt.Options{})
	fmt.Println(errors.Is(err, receipt.ErrHighS))
	// Output:
	// signed by 0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F on chain 1 high S: false
	// true
}
