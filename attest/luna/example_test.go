package luna_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/luna"
)

// A Thales Luna Public Key Confirmation, verified offline against the pinned
// Luna roots, with the CSR made with the same key.
func ExampleVerifier_Verify() {
	file := func(name string) []byte {
		b, _ := os.ReadFile(filepath.Join("..", "..", "testdata", "attest", "luna", name))
		return b
	}
	ecc, _ := attest.ParseRootPEM(file("luna-ecc-root-certificate.pem"))
	rsa, _ := attest.ParseRootPEM(file("luna-rsa-root-certificate.pem"))
	v, _ := luna.NewVerifier(luna.Config{Roots: []attest.Root{ecc, rsa}})

	res := v.Verify(luna.Evidence{
		PKC:      file("ecc-pkc.p7b"),
		CSR:      file("ecc-test.csr"),
		LoggedAt: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC),
	})
	for _, c := range res.Checks {
		fmt.Println(c.Status, c.Name)
		for _, d := range c.Deviations {
			fmt.Println("  accepted:", d)
		}
	}
	fmt.Println("verified:", res.Verified, res.Strength)
	fmt.Println("HSM serial:", res.Facts.Token.Serial)
	fmt.Println("key:", res.Facts.Algorithm, res.Facts.KeyDigest)
	// Output:
	// PASS pkc.format
	// PASS pkc.chain
	//   accepted: the ECDSA signature on "43000000ae000002d6f30700" encodes r or s as a negative DER INTEGER, which strict parsers reject; read as unsigned and verified
	//   accepted: pinned root "SafeNet ECC Manufacturer Integrity Module " is X.509 v3 without basicConstraints: CheckSignatureFrom refuses it (RFC 5280 4.2.1.9); accepted because it is pinned, its signature on "521174" checked directly over the TBSCertificate
	// PASS key.csr
	// SKIP key.binding
	// PASS key.non-export
	// PASS hsm.identity
	// verified: true vendor-attested
	// HSM serial: 521174
	// key: ECDSA P-256 2b46db254646d108806df29049aa02d51c8d7c26888480b6afeb81d718010330
}
