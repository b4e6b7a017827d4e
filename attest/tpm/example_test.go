package tpm_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/keytrail/keytrail/attest/tpm"
	"github.com/keytrail/keytrail/internal/tpmfake"
)

// A TPM2_Certify of a key, verified against the enrolled attestation key.
func ExampleVerifier_Verify() {
	dev := tpmfake.New() // stands in for a TPM; collectors/tpm talks to real ones
	v, err := tpm.NewVerifier(tpm.Config{AttestationKeys: []tpm.AK{{Name: "host-7 AK", Public: dev.AKPublic()}}})
	if err != nil {
		panic(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attestation, sig, keyPublic := dev.Certify(&key.PublicKey, tpmfake.ResidentAttrs, []byte("a nonce of sixteen bytes or more"))
	res := v.Verify(tpm.Evidence{
		Kind: tpm.KindCertify, Attest: attestation, Signature: sig, AKPublic: dev.AKPublic(), KeyPublic: keyPublic,
		Nonce: []byte("a nonce of sixteen bytes or more"), LoggedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	})
	for _, c := range res.Checks {
		fmt.Println(c.Status, c.Name)
	}
	fmt.Println(res.Verified, res.Strength)
	// Output:
	// PASS tpm.format
	// PASS tpm.attest-type
	// PASS tpm.ak-trust
	// PASS tpm.signature
	// PASS tpm.nonce
	// PASS tpm.name
	// SKIP key.binding
	// PASS key.non-export
	// true tpm-certified
}
