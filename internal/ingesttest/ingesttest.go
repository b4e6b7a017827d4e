// Package ingesttest makes the real keys, trust file and signed records that
// the ingestion server's tests, crash test and load generator submit: no
// mocks, every record is a DSSE envelope signed by an enrolled collector.
package ingesttest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify"
)

// Origin is the test log's origin.
const Origin = "keytrail.test/ingest-log"

// Collector IDs in the trust file.
const (
	ReceiptCollector = "wallet-signer-eu-1" // may sign signing receipts
	PolicyCollector  = "kms-policy-reader"  // may sign key-policy snapshots only
)

// Fixture is a set of keys and the trust file that enrols them.
type Fixture struct {
	Receipts   *evidence.Signer // ReceiptCollector
	Policy     *evidence.Signer // PolicyCollector
	Stranger   *evidence.Signer // in no trust file
	Operator   *evidence.Signer // bundle signer
	LogSigner  note.Signer
	LogVKey    string
	LogSKey    string
	TrustJSON  []byte
	Trust      *verify.Trust
	Key        evidence.KeyRef // the wallet key the receipts are about
	KeySPKI    []byte          // its DER SubjectPublicKeyInfo
	walletPriv *ecdsa.PrivateKey
	receiptsK  crypto.Signer
	operatorK  crypto.Signer
}

func p256() (*evidence.Signer, crypto.Signer) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	s, err := evidence.NewSigner(k)
	if err != nil {
		panic(err)
	}
	return s, k
}

// New makes fresh keys and a trust file.
func New() (*Fixture, error) {
	f := &Fixture{}
	f.Receipts, f.receiptsK = p256()
	f.Policy, _ = p256()
	f.Stranger, _ = p256()
	_, opk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	f.operatorK = opk
	if f.Operator, err = evidence.NewSigner(opk); err != nil {
		return nil, err
	}
	if f.LogSKey, f.LogVKey, err = note.GenerateKey(rand.Reader, Origin); err != nil {
		return nil, err
	}
	if f.LogSigner, err = note.NewSigner(f.LogSKey); err != nil {
		return nil, err
	}
	f.walletPriv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if f.KeySPKI, err = x509.MarshalPKIXPublicKey(f.walletPriv.Public()); err != nil {
		return nil, err
	}
	d, err := evidence.KeyDigest(f.walletPriv.Public())
	if err != nil {
		return nil, err
	}
	f.Key = evidence.KeyRef{ID: "projects/p/locations/eu/keyRings/hot/cryptoKeys/w1/cryptoKeyVersions/1", SPKISHA256: strings.TrimPrefix(d, "sha256:")}
	tf := verify.TrustFile{
		Version: 1,
		Logs:    []verify.TrustedLog{{Origin: Origin, Key: f.LogVKey}},
		Collectors: []verify.TrustedCollector{
			{ID: ReceiptCollector, PublicKey: f.Receipts.PublicKey().PEM(), PredicateTypes: []string{evidence.PredicateSigningReceipt}},
			{ID: PolicyCollector, PublicKey: f.Policy.PublicKey().PEM(), PredicateTypes: []string{evidence.PredicateKeyPolicySnapshot}},
		},
		BundleSigners: []verify.TrustedSigner{{ID: "operator", PublicKey: f.Operator.PublicKey().PEM()}},
	}
	if f.TrustJSON, err = strictjson.MarshalIndent(&tf); err != nil {
		return nil, err
	}
	if f.Trust, err = verify.ParseTrust(f.TrustJSON); err != nil {
		return nil, err
	}
	return f, nil
}

// Write writes trust.json, log.key, log.key.pub, receipts.pem and
// operator.pem to dir.
func (f *Fixture) Write(dir string) error {
	files := map[string][]byte{
		"trust.json":   f.TrustJSON,
		"log.key":      []byte(f.LogSKey + "\n"),
		"log.key.pub":  []byte(f.LogVKey + "\n"),
		"receipts.pem": pemKey(f.receiptsK),
		"operator.pem": pemKey(f.operatorK),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func pemKey(k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Start is the time of receipt 0.
var Start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Receipt returns signing receipt number i about f.Key, signed by signer
// (nil: the receipts collector), a DSSE envelope of about 1 KiB. Receipts
// with different (tag, i) differ.
func (f *Fixture) Receipt(ctx context.Context, signer *evidence.Signer, tag string, i int) ([]byte, error) {
	if signer == nil {
		signer = f.Receipts
	}
	digest := sha256.Sum256(fmt.Appendf(nil, "tx %s %d", tag, i))
	sig, err := ecdsa.SignASN1(rand.Reader, f.walletPriv, digest[:])
	if err != nil {
		return nil, err
	}
	r := &evidence.SigningReceipt{
		At:     evidence.AtTime(Start.Add(time.Duration(i) * time.Millisecond)),
		Scheme: evidence.SchemeP256DER, PublicKey: f.KeySPKI,
		Digest: hex.EncodeToString(digest[:]), Signature: sig,
		Operator: "wallet-signer-eu-1", RequestID: fmt.Sprintf("req-%s-%08d-%0400d", tag, i, 0),
		Chain: "eip155:1", TxHash: "0x" + hex.EncodeToString(digest[:]),
	}
	st, err := evidence.NewStatement(r, f.Key)
	if err != nil {
		return nil, err
	}
	return evidence.SignStatement(ctx, st, signer)
}

// Rotation returns a rotation descriptor of f.Key whose window holds the
// receipts, and its JSON.
func (f *Fixture) Rotation(id string) (evidence.Rotation, []byte, error) {
	r := evidence.Rotation{
		ID: id, KeyClass: "hot-signing", OldKey: f.Key,
		NewKey: evidence.KeyRef{ID: "w2", SPKISHA256: strings.Repeat("ab", 32)},
		Window: evidence.Window{Start: evidence.FormatTime(Start), End: evidence.FormatTime(Start.Add(24 * time.Hour))},
	}
	b, err := strictjson.Marshal(&r)
	return r, b, err
}
