package receipts_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/keytrail/keytrail/collectors/receipts"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify/receipt"
)

var sampleDir = filepath.Join("..", "..", "testdata", "receipts")

// sampleKey is one key of testdata/receipts/keys.json.
type sampleKey struct {
	KeyID      string `json:"keyId"`
	Scheme     string `json:"scheme"`
	PublicKey  string `json:"publicKey"`
	SPKISHA256 string `json:"spkiSha256"`
	Address    string `json:"address,omitempty"`
}

func sampleKeys(t testing.TB) ([]sampleKey, map[string]*receipt.Key) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sampleDir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []sampleKey
	if err := strictjson.Unmarshal(b, &entries, 1<<20); err != nil {
		t.Fatal(err)
	}
	keys := make(map[string]*receipt.Key)
	for _, e := range entries {
		k, err := receipt.ParseKeyPEM(receipt.Scheme(e.Scheme), []byte(e.PublicKey))
		if err != nil {
			t.Fatalf("%s: %v", e.KeyID, err)
		}
		if k.Digest() != e.SPKISHA256 {
			t.Fatalf("%s: digest %s, keys.json says %s", e.KeyID, k.Digest(), e.SPKISHA256)
		}
		keys[e.KeyID] = k
	}
	return entries, keys
}

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sampleDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// collectorKey is the collector's own key (Ed25519, fixed).
func collectorKey() ed25519.PrivateKey {
	s := sha256.Sum256([]byte("keytrail receipts collector test"))
	return ed25519.NewKeyFromSeed(s[:])
}

func collectorSigner(t testing.TB) *evidence.Signer {
	t.Helper()
	signer, err := evidence.NewSigner(collectorKey())
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

func newCollector(t testing.TB, keys map[string]*receipt.Key, opts receipt.Options) *receipts.Collector {
	t.Helper()
	c, err := receipts.New(receipts.Config{Keys: keys, Signer: collectorSigner(t), Verify: opts})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func collectAll(c *receipts.Collector, in []byte) ([]receipts.Record, error) {
	var out []receipts.Record
	_, err := c.Collect(context.Background(), bytes.NewReader(in), func(r receipts.Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// oneKey is an evidence.KeySet of the collector's key.
type oneKey struct{ k *evidence.PublicKey }

func (s oneKey) Key(d string) *evidence.PublicKey {
	if d == s.k.Digest {
		return s.k
	}
	return nil
}
func (s oneKey) Keys() []*evidence.PublicKey { return []*evidence.PublicKey{s.k} }

// openRecord authenticates a record's envelope under the collector's key and
// returns the statement inside, as a verifier would.
func openRecord(t testing.TB, signer *evidence.Signer, env []byte) (*evidence.Statement, evidence.Predicate) {
	t.Helper()
	e, err := evidence.ParseEnvelope(env, evidence.MaxRecordBytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Verify(evidence.PayloadType, oneKey{signer.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	st, p, err := evidence.ParseStatement(e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return st, p
}
