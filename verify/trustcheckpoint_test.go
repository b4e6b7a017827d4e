package verify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/verify"
)

// TestTrustOpenCheckpoint: Trust.OpenCheckpoint, which bundle build uses to
// pick a checkpoint, accepts what checkpoint.signature accepts: the log's
// signature with the trust file's witness quorum.
func TestTrustOpenCheckpoint(t *testing.T) {
	const origin = "example.com/open-checkpoint-log"
	lskey, lvkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	logSigner, err := note.NewSigner(lskey)
	if err != nil {
		t.Fatal(err)
	}
	wskey, wvkey, err := note.GenerateKey(rand.Reader, "witness.example/w")
	if err != nil {
		t.Fatal(err)
	}
	witnessSigner, err := fnote.NewSignerForCosignatureV1(wskey)
	if err != nil {
		t.Fatal(err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(wvkey)
	if err != nil {
		t.Fatal(err)
	}
	op, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := verify.NewTrust(&verify.TrustFile{
		Version:       1,
		Logs:          []verify.TrustedLog{{Origin: origin, Key: lvkey, Witnesses: []verify.TrustedWitness{{Key: cvkey}}, WitnessQuorum: 1}},
		BundleSigners: []verify.TrustedSigner{{ID: "operator", PublicKey: evidence.MarshalPublicKeyPEM(op.Public())}},
	})
	if err != nil {
		t.Fatal(err)
	}
	text := string(flog.Checkpoint{Origin: origin, Size: 3, Hash: rfc6962.DefaultHasher.EmptyRoot()}.Marshal())
	sign := func(signers ...note.Signer) []byte {
		raw, err := note.Sign(&note.Note{Text: text}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if _, err := trust.OpenCheckpoint(sign(logSigner)); !errors.Is(err, checkpoint.ErrWitnessQuorum) {
		t.Errorf("log signature only: %v, want ErrWitnessQuorum", err)
	}
	if _, err := trust.OpenCheckpoint(sign(witnessSigner)); !errors.Is(err, checkpoint.ErrSignature) {
		t.Errorf("witness signature only: %v, want ErrSignature", err)
	}
	cp, err := trust.OpenCheckpoint(sign(logSigner, witnessSigner))
	if err != nil || cp.Size != 3 || cp.Origin != origin {
		t.Errorf("cosigned: %v, %v", cp, err)
	}
}
