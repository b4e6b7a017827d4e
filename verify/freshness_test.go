package verify_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/ledger/posix"
	"github.com/keytrail/keytrail/verify"
)

// freshLog logs the policy rotation's records in a real embedded ledger and
// returns the directory, the parties and the ledger's latest checkpoint
// cosigned by a witness the returned trust file lists.
func freshLog(t *testing.T) (dir string, pr *scenario.PolicyRotation, cosigned []byte, trust *verify.Trust) {
	t.Helper()
	ctx := context.Background()
	p, err := scenario.NewParties("", "keytrail.example/custody-log")
	if err != nil {
		t.Fatal(err)
	}
	if pr, err = scenario.NewPolicyRotation(p); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(t.TempDir(), "log")
	l, err := posix.Open(ctx, posix.Config{Dir: dir, Signer: p.LogSigner, KeyIDs: evidence.SubjectKeyIDs})
	if err != nil {
		t.Fatal(err)
	}
	// Today's attestation and snapshot of the new key, as a daily collector
	// would make them.
	recent := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	// The attestation verifies (self-reported, with a proof of possession):
	// the gate counts only hardware records that verify (ATTACKS.md 40).
	att, err := scenario.SelfReported(p.NewKey, recent, scenario.HSMSerial)
	if err != nil {
		t.Fatal(err)
	}
	snap := scenario.Snapshot(recent, "arn:aws-eusc:kms:eusc-de-east-1:210987654321:key/3c9d2e71-8a4b-4f6c-b1d0-7e5a2c8f4b19", false)
	daily := []scenario.Step{{By: p.Collector, Key: pr.Rotation.NewKey, Record: att}, {By: p.Collector, Key: pr.Rotation.NewKey, Record: snap}}
	envs, err := scenario.SignSteps(ctx, append(pr.Steps, daily...))
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		if _, err := l.Append(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := note.NewVerifier(p.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(raw, note.VerifierList(lv))
	if err != nil {
		t.Fatal(err)
	}
	if cosigned, err = note.Sign(n, ws); err != nil {
		t.Fatal(err)
	}
	tf := p.PolicyTrust()
	tf.Logs[0].Witnesses = []verify.TrustedWitness{{Key: wv}}
	if trust, err = verify.NewTrust(tf); err != nil {
		t.Fatal(err)
	}
	return dir, pr, cosigned, trust
}

func TestFreshness(t *testing.T) {
	dir, pr, cosigned, trust := freshLog(t)
	policy, err := verify.ParsePolicy([]byte(strings.Replace(scenario.PolicyYAMLFull, "keyPolicySnapshot: 7d", "keyPolicySnapshot: 720h", 1)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.NewFreshnessGate(trust, policy.Freshness)
	if err != nil {
		t.Fatal(err)
	}
	newKey := []evidence.KeyRef{{ID: pr.Rotation.NewKey.ID}}
	witnessTime := time.Now() // the witness cosigned just now; the daily records are an hour older

	t.Run("fresh", func(t *testing.T) {
		now := witnessTime.Add(time.Hour)
		f, err := v.Check(verify.FreshnessOptions{Log: os.DirFS(dir), Checkpoint: cosigned, Keys: newKey, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if !f.Fresh || f.Checkpoint.Witness != "witness.example/w1" || f.Checkpoint.AgeSeconds < 3599 || f.Checkpoint.AgeSeconds > 3700 {
			t.Fatalf("freshness = %+v", f)
		}
		hw, pol := f.Records[0], f.Records[1]
		if hw.Kind != verify.FreshHardware || hw.Type != evidence.PredicateHSMAttestation || hw.LimitSeconds != 24*3600 || hw.AgeSeconds < 7199 || hw.AgeSeconds > 7300 {
			t.Errorf("hardware %+v", hw)
		}
		if pol.Kind != verify.FreshPolicy || pol.LimitSeconds != 720*3600 || !pol.Fresh {
			t.Errorf("policy %+v", pol)
		}
	})
	t.Run("two days later", func(t *testing.T) {
		f, err := v.Check(verify.FreshnessOptions{Log: os.DirFS(dir), Checkpoint: cosigned, Keys: newKey, Now: witnessTime.Add(48 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		// The hardware limit is 24h: the checkpoint is too old; the policy
		// snapshot's 720h limit still holds.
		if f.Fresh || f.Records[0].Fresh || !strings.Contains(f.Records[0].Reason, "checkpoint is 2d old") || !f.Records[1].Fresh {
			t.Errorf("freshness = %+v", f)
		}
	})
	t.Run("--max-age for kinds the policy leaves open", func(t *testing.T) {
		p2, err := verify.ParsePolicy([]byte(scenario.PolicyYAML))
		if err != nil {
			t.Fatal(err)
		}
		v2, err := verify.NewFreshnessGate(trust, p2.Freshness)
		if err != nil {
			t.Fatal(err)
		}
		f, err := v2.Check(verify.FreshnessOptions{Log: os.DirFS(dir), Checkpoint: cosigned, Keys: newKey, Now: witnessTime.Add(3 * time.Hour), MaxAge: 2 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if f.Fresh || !strings.Contains(f.Records[0].Reason, "checkpoint is 3h0m0s old") {
			t.Errorf("freshness = %+v", f)
		}
	})
	t.Run("future times", func(t *testing.T) {
		// Seen from an hour before the witness cosigned, the checkpoint's time
		// is in the future; seen from two hours before, the records are too.
		f, err := v.Check(verify.FreshnessOptions{Log: os.DirFS(dir), Checkpoint: cosigned, Keys: newKey, Now: witnessTime.Add(-time.Hour + time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if f.Fresh || !strings.Contains(f.Records[0].Reason, "is in the future") {
			t.Errorf("cosignature in the future: %+v", f.Records[0])
		}
		f, err = v.Check(verify.FreshnessOptions{Log: os.DirFS(dir), Checkpoint: cosigned, Keys: newKey, Now: witnessTime.Add(-3 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if f.Fresh || !strings.Contains(f.Records[0].Reason, "in the future") || !strings.HasPrefix(f.Records[0].Reason, "entry ") {
			t.Errorf("record in the future: %+v", f.Records[0])
		}
	})
	t.Run("no witness time", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
		if err != nil {
			t.Fatal(err)
		}
		f, err := v.Check(verify.FreshnessOptions{Log: os.DirFS(dir), Checkpoint: raw, Keys: newKey, Now: witnessTime})
		if err != nil {
			t.Fatal(err)
		}
		if f.Fresh || f.Checkpoint.Time != "" || !strings.Contains(f.Records[0].Reason, "checkpoint age unknown") {
			t.Errorf("freshness = %+v", f)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		f, err := v.Check(verify.FreshnessOptions{Log: os.DirFS(dir), Checkpoint: cosigned, Keys: []evidence.KeyRef{{ID: "kms:nowhere/k1"}}, Now: witnessTime})
		if err != nil {
			t.Fatal(err)
		}
		if f.Fresh || f.Records[0].Found || !strings.Contains(f.Records[0].Reason, "no verified hardware record about kms:nowhere/k1") {
			t.Errorf("freshness = %+v", f)
		}
	})
	t.Run("untrusted checkpoint", func(t *testing.T) {
		_, err := v.Check(verify.FreshnessOptions{Log: os.DirFS(dir), Checkpoint: []byte("other\n1\nAAAA\n\n— x abc\n"), Keys: newKey, Now: witnessTime})
		if err == nil {
			t.Fatal("an unsigned checkpoint was accepted")
		}
	})
	t.Run("tampered log copy", func(t *testing.T) {
		bad := t.TempDir()
		if err := os.CopyFS(bad, os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		var matches []string
		filepath.WalkDir(filepath.Join(bad, "tile", "entries"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				matches = append(matches, p)
			}
			return nil
		})
		if len(matches) == 0 {
			t.Fatal("no entry bundle file found to tamper with")
		}
		for _, m := range matches { // every entry bundle, partial ones included
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := os.WriteFile(m, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err = v.Check(verify.FreshnessOptions{Log: os.DirFS(bad), Checkpoint: cosigned, Keys: newKey, Now: witnessTime})
		if !errors.Is(err, verify.ErrIncomplete) {
			t.Errorf("tampered log: %v", err)
		}
	})
}
