package scenario_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify/receipt"
)

// opaqueSigner hides its key behind crypto.Signer, as a TPM or PKCS #11
// signer does: Receipt must not need the private key.
type opaqueSigner struct{ k *ecdsa.PrivateKey }

func (s opaqueSigner) Public() crypto.PublicKey { return s.k.Public() }
func (s opaqueSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return s.k.Sign(r, d, o)
}

// A receipt by any P-256 crypto.Signer verifies under its key; a key of
// another kind is refused.
func TestReceiptSigner(t *testing.T) {
	p, err := scenario.NewParties("", "example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Receipt(opaqueSigner{k}, scenario.Start, "req-1", "")
	if err != nil {
		t.Fatal(err)
	}
	key, err := receipt.NewKey(receipt.SchemeP256DER, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := receipt.Verify(key, r, receipt.Options{}); err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	if r.RecordTime() != scenario.Start.UTC().Truncate(time.Second) {
		t.Errorf("time %v, want %v", r.RecordTime(), scenario.Start)
	}
	_, ek, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := p.Receipt(ek, scenario.Start, "req-2", ""); err == nil {
		t.Fatal("an Ed25519 key made a P-256 receipt")
	}
}
