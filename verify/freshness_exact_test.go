package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/internal/tpmfake"
	"github.com/keytrail/keytrail/ledger/posix"
	"github.com/keytrail/keytrail/verify"
)

// freshWorld is a custody log for the freshness gate's exact-key rule
// (ATTACKS.md 39 and 40): the policy rotation's parties, a TPM whose AK the
// trust file enrols, a collector enrolled for key-policy snapshots only, and a
// witness the trust file lists for the log.
type freshWorld struct {
	p        *scenario.Parties
	tpm      *tpmfake.TPM
	snapOnly scenario.Party
	witness  note.Signer
	trust    *verify.Trust
	// now is when the gate runs; records are made relative to it. The
	// witness cosigns at the real time, so now is the real time too.
	now time.Time
	// envs are the signed records, in log order.
	envs [][]byte
}

func newFreshWorld(t testing.TB) *freshWorld {
	t.Helper()
	p, err := scenario.NewParties("", "keytrail.example/custody-log")
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := evidence.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	w := &freshWorld{p: p, tpm: tpmfake.New(), snapOnly: scenario.Party{ID: "kms-policy-exporter", Signer: s, Key: k}, now: time.Now().UTC().Truncate(time.Second)}
	skey, vkey, err := note.GenerateKey(rand.Reader, "witness.example/w1")
	if err != nil {
		t.Fatal(err)
	}
	if w.witness, err = fnote.NewSignerForCosignatureV1(skey); err != nil {
		t.Fatal(err)
	}
	wv, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	tf := p.PolicyTrust()
	tf.Logs[0].Witnesses = []verify.TrustedWitness{{Key: wv}}
	tf.Collectors[0].PredicateTypes = append(tf.Collectors[0].PredicateTypes, evidence.PredicateTPMAttestation)
	tf.Collectors = append(tf.Collectors, verify.TrustedCollector{ID: w.snapOnly.ID, PublicKey: evidence.MarshalPublicKeyPEM(k.Public()),
		PredicateTypes: []string{evidence.PredicateKeyPolicySnapshot}})
	tf.Hardware = &verify.HardwareTrust{TPMAttestationKeys: []verify.TrustedTPMKey{{ID: "host-7 AK", PublicArea: w.tpm.AKPublic()}},
		TPMQuotePCRs: &verify.TrustedPCRSelection{Bank: "sha256", PCRs: []int{0}}}
	if w.trust, err = verify.NewTrust(tf); err != nil {
		t.Fatal(err)
	}
	return w
}

// ago is a record time d before now.
func (w *freshWorld) ago(d time.Duration) time.Time { return w.now.Add(-d) }

// certify is a TPM certification by tpm of the public key pub, at at.
func certify(tpm *tpmfake.TPM, pub crypto.PublicKey, at time.Time) *evidence.TPMAttestation {
	n := nonce()
	a, sig, kp := tpm.Certify(pub, tpmfake.ResidentAttrs, n)
	return &evidence.TPMAttestation{At: evidence.AtTime(at), Kind: evidence.TPMKindCertify, Attest: a, Signature: sig,
		AKPublic: tpm.AKPublic(), KeyPublic: kp, Nonce: n}
}

// snapshot is a key-policy snapshot of the new key's KMS key at at.
func snapshot(at time.Time) *evidence.KeyPolicySnapshot {
	return scenario.Snapshot(at, "arn:aws-eusc:kms:eusc-de-east-1:210987654321:key/3c9d2e71-8a4b-4f6c-b1d0-7e5a2c8f4b19", false)
}

// add signs pred about key by by and appends it to the log-to-be; escape,
// if set, rewrites the statement's JSON before it is signed.
func (w *freshWorld) add(t testing.TB, by scenario.Party, key evidence.KeyRef, pred evidence.Predicate, escape func([]byte) []byte) {
	t.Helper()
	st, err := evidence.NewStatement(pred, key)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := strictjson.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if escape != nil {
		payload = escape(payload)
	}
	env, err := evidence.Sign(context.Background(), evidence.PayloadType, payload, by.Signer)
	if err != nil {
		t.Fatal(err)
	}
	w.envs = append(w.envs, env)
}

// genuine adds the new key's genuine records: a TPM certification by the
// enrolled TPM hwAge old, and a policy snapshot an hour old.
func (w *freshWorld) genuine(t testing.TB, hwAge time.Duration) {
	w.add(t, w.p.Collector, w.p.NewRef, certify(w.tpm, w.p.NewKey.Public(), w.ago(hwAge)), nil)
	w.add(t, w.p.Collector, w.p.NewRef, snapshot(w.ago(time.Hour)), nil)
}

// log writes the records into a real embedded ledger and returns its
// directory and its checkpoint cosigned by the witness.
func (w *freshWorld) log(t testing.TB) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "log")
	l, err := posix.Open(ctx, posix.Config{Dir: dir, Signer: w.p.LogSigner, KeyIDs: evidence.SubjectKeyIDs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendBatch(ctx, w.envs); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	lv, err := note.NewVerifier(w.p.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(raw, note.VerifierList(lv))
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := note.Sign(n, w.witness)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cosigned
}

// gate runs the freshness gate on the world's log for keys (a key ID, or
// ID@sha256:HEX), at now, with the limits of PolicyYAMLFull.
func (w *freshWorld) gate(t *testing.T, keys ...string) *verify.Freshness {
	t.Helper()
	dir, cosigned := w.log(t)
	policy, err := verify.ParsePolicy([]byte(scenario.PolicyYAMLFull))
	if err != nil {
		t.Fatal(err)
	}
	g, err := verify.NewFreshnessGate(w.trust, policy.Freshness)
	if err != nil {
		t.Fatal(err)
	}
	var refs []evidence.KeyRef
	for _, k := range keys {
		ref, err := verify.ParseFreshKey(k)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	f, err := g.Check(verify.FreshnessOptions{Log: os.DirFS(dir), Checkpoint: cosigned, Keys: refs, Now: w.now})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// row returns the result row of key and kind.
func row(t *testing.T, f *verify.Freshness, key, kind string) verify.FreshRecord {
	t.Helper()
	for _, r := range f.Records {
		if r.Key == key && r.Kind == kind {
			return r
		}
	}
	t.Fatalf("no %s row for %s in %+v", kind, key, f.Records)
	return verify.FreshRecord{}
}

// explained is the row's reason and the reasons it gives for the records it
// did not count, as one string.
func explained(r verify.FreshRecord) string {
	s := r.Reason
	for _, n := range r.NotCounted {
		s += fmt.Sprintf("\nnot counted: entry %d (%s, spki sha256 %s): %s", n.Entry, n.Type, n.SPKISHA256, n.Reason)
	}
	return s
}

func wantRow(t *testing.T, f *verify.Freshness, key, kind string, fresh bool, says ...string) {
	t.Helper()
	r := row(t, f, key, kind)
	all := explained(r)
	t.Logf("%s %s: %s", kind, key, all)
	if r.Fresh != fresh {
		t.Errorf("%s %s: fresh = %v, want %v (%s)", kind, key, r.Fresh, fresh, all)
	}
	if !fresh && f.Fresh {
		t.Errorf("the gate passed with a stale %s row: %+v", kind, f)
	}
	for _, s := range says {
		if !strings.Contains(all, s) {
			t.Errorf("%s %s: %q does not say %q", kind, key, all, s)
		}
	}
}

// escapeID writes the new key's ID in the statement with \u escapes for its
// ':' and '/': the same JSON string to the parser, other bytes to a raw filter.
func escapeID(id string) func([]byte) []byte {
	esc := strings.NewReplacer(":", `\u003a`, "/", `\u002F`).Replace(id)
	return func(b []byte) []byte {
		out := strings.Replace(string(b), `"`+id+`"`, `"`+esc+`"`, 1)
		if out == string(b) {
			panic("escapeID: the key ID is not in the statement")
		}
		return []byte(out)
	}
}

// ATTACKS.md 40: a TPM record about another public key under the key's ID
// (verifiable or not) must make the key fail as a conflict, never fresh;
// likewise a policy snapshot about another public key.
func TestFreshnessOtherPublicKeySameID(t *testing.T) {
	for _, tc := range []struct {
		name  string
		other func(w *freshWorld) (evidence.Predicate, string)
	}{
		{"unverifiable TPM record", func(w *freshWorld) (evidence.Predicate, string) {
			return certify(tpmfake.New(), w.p.OtherKey.Public(), w.ago(time.Hour)), verify.FreshHardware
		}},
		{"verifiable TPM record", func(w *freshWorld) (evidence.Predicate, string) {
			return certify(w.tpm, w.p.OtherKey.Public(), w.ago(time.Hour)), verify.FreshHardware
		}},
		{"policy snapshot", func(w *freshWorld) (evidence.Predicate, string) {
			return snapshot(w.ago(time.Minute)), verify.FreshPolicy
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFreshWorld(t)
			w.genuine(t, 30*time.Hour) // the genuine attestation is stale (limit 24h)
			other, err := evidence.KeyDigest(w.p.OtherKey.Public())
			if err != nil {
				t.Fatal(err)
			}
			pred, kind := tc.other(w)
			w.add(t, w.p.Collector, evidence.KeyRef{ID: w.p.NewRef.ID, SPKISHA256: other}, pred, nil)
			f := w.gate(t, w.p.NewRef.ID)
			wantRow(t, f, w.p.NewRef.ID, kind, false, "another public key", other)
		})
	}
}

// ATTACKS.md 40: a hardware record about the exact key that fails hardware
// verification does not count, and the output says why.
func TestFreshnessUnverifiedHardwareRecord(t *testing.T) {
	for _, tc := range []struct {
		name string
		pred func(w *freshWorld) evidence.Predicate
		says string
	}{
		{"TPM AK not enrolled", func(w *freshWorld) evidence.Predicate {
			return certify(tpmfake.New(), w.p.NewKey.Public(), w.ago(time.Hour))
		}, "not enrolled"},
		{"PKCS #11 without proof of possession", func(w *freshWorld) evidence.Predicate {
			return &evidence.HSMAttestation{At: evidence.AtTime(w.ago(time.Hour)), Format: evidence.HSMFormatPKCS11,
				Token: evidence.TokenInfo{Serial: scenario.HSMSerial}, Attributes: evidence.KeyAttributes{KeyType: "EC"}}
		}, "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newFreshWorld(t)
			w.genuine(t, 30*time.Hour)
			w.add(t, w.p.Collector, w.p.NewRef, tc.pred(w), nil)
			f := w.gate(t, w.p.NewRef.ID)
			wantRow(t, f, w.p.NewRef.ID, verify.FreshHardware, false, "entry 2", "does not verify", tc.says)
		})
	}
}

// ATTACKS.md 40: a verifiable hsm-attestation signed by a collector the
// trust file does not allow hsm-attestation does not count, and the output
// names it and why.
func TestFreshnessCollectorNotAllowed(t *testing.T) {
	w := newFreshWorld(t)
	w.genuine(t, 30*time.Hour)
	att, err := scenario.SelfReported(w.p.NewKey, w.ago(time.Hour), scenario.HSMSerial)
	if err != nil {
		t.Fatal(err)
	}
	w.add(t, w.snapOnly, w.p.NewRef, att, nil)
	f := w.gate(t, w.p.NewRef.ID)
	wantRow(t, f, w.p.NewRef.ID, verify.FreshHardware, false, "entry 2", "kms-policy-exporter may not sign "+evidence.PredicateHSMAttestation)
}

// ATTACKS.md 39: records whose key ID is written with \u escapes name the
// key for the one parser, so the gate sees them: the key's only records
// make it fresh, and an escaped record about another public key makes it
// fail.
func TestFreshnessEscapedKeyID(t *testing.T) {
	t.Run("the key's records", func(t *testing.T) {
		w := newFreshWorld(t)
		esc := escapeID(w.p.NewRef.ID)
		w.add(t, w.p.Collector, w.p.NewRef, certify(w.tpm, w.p.NewKey.Public(), w.ago(time.Hour)), esc)
		w.add(t, w.p.Collector, w.p.NewRef, snapshot(w.ago(time.Hour)), esc)
		f := w.gate(t, w.p.NewRef.ID)
		wantRow(t, f, w.p.NewRef.ID, verify.FreshHardware, true, "entry 0")
		wantRow(t, f, w.p.NewRef.ID, verify.FreshPolicy, true, "entry 1")
		if !f.Fresh {
			t.Errorf("not fresh: %+v", f)
		}
	})
	t.Run("another public key", func(t *testing.T) {
		w := newFreshWorld(t)
		w.genuine(t, time.Hour)
		other, err := evidence.KeyDigest(w.p.OtherKey.Public())
		if err != nil {
			t.Fatal(err)
		}
		w.add(t, w.p.Collector, evidence.KeyRef{ID: w.p.NewRef.ID, SPKISHA256: other}, certify(tpmfake.New(), w.p.OtherKey.Public(), w.ago(time.Minute)), escapeID(w.p.NewRef.ID))
		f := w.gate(t, w.p.NewRef.ID)
		wantRow(t, f, w.p.NewRef.ID, verify.FreshHardware, false, "another public key", other)
	})
}

// The key's digest: given (ID@sha256:HEX), or established by verified
// hardware records; a snapshot's own claim never establishes it.
func TestFreshnessKeyDigest(t *testing.T) {
	t.Run("given, policy snapshot only", func(t *testing.T) {
		w := newFreshWorld(t)
		w.add(t, w.p.Collector, w.p.NewRef, snapshot(w.ago(time.Hour)), nil)
		f := w.gate(t, w.p.NewRef.ID+"@sha256:"+w.p.NewRef.SPKISHA256)
		wantRow(t, f, w.p.NewRef.ID, verify.FreshPolicy, true, "entry 0")
		wantRow(t, f, w.p.NewRef.ID, verify.FreshHardware, false, "no verified hardware record about "+w.p.NewRef.ID+" (spki sha256 "+w.p.NewRef.SPKISHA256+")")
		if r := row(t, f, w.p.NewRef.ID, verify.FreshPolicy); r.SPKISHA256 != w.p.NewRef.SPKISHA256 || r.DigestFrom != "given" {
			t.Errorf("digest %q from %q", r.SPKISHA256, r.DigestFrom)
		}
	})
	t.Run("ID only, policy snapshot only", func(t *testing.T) {
		// The collector's snapshot says which public key the ID names, but
		// nothing verified says so: the key fails.
		w := newFreshWorld(t)
		w.add(t, w.p.Collector, w.p.NewRef, snapshot(w.ago(time.Hour)), nil)
		f := w.gate(t, w.p.NewRef.ID)
		wantRow(t, f, w.p.NewRef.ID, verify.FreshPolicy, false, "no verified hardware record", "establishes its public key",
			"not counted: entry 0", "about a public key no verified hardware record establishes")
	})
	t.Run("ID only, established", func(t *testing.T) {
		w := newFreshWorld(t)
		w.genuine(t, time.Hour)
		f := w.gate(t, w.p.NewRef.ID)
		if r := row(t, f, w.p.NewRef.ID, verify.FreshPolicy); !f.Fresh || r.SPKISHA256 != w.p.NewRef.SPKISHA256 || r.DigestFrom != "entry 0" {
			t.Errorf("freshness %+v", f)
		}
	})
	t.Run("given, another public key under the ID", func(t *testing.T) {
		w := newFreshWorld(t)
		w.genuine(t, time.Hour)
		other, err := evidence.KeyDigest(w.p.OtherKey.Public())
		if err != nil {
			t.Fatal(err)
		}
		w.add(t, w.p.Collector, evidence.KeyRef{ID: w.p.NewRef.ID, SPKISHA256: other}, snapshot(w.ago(2*time.Hour)), nil)
		f := w.gate(t, w.p.NewRef.ID+"@sha256:"+w.p.NewRef.SPKISHA256)
		wantRow(t, f, w.p.NewRef.ID, verify.FreshHardware, false, "names another public key", other, "as given")
		wantRow(t, f, w.p.NewRef.ID, verify.FreshPolicy, false, "names another public key", other)
	})
	t.Run("given, not the one the hardware verifies", func(t *testing.T) {
		w := newFreshWorld(t)
		w.genuine(t, time.Hour)
		other, err := evidence.KeyDigest(w.p.OtherKey.Public())
		if err != nil {
			t.Fatal(err)
		}
		f := w.gate(t, w.p.NewRef.ID+"@sha256:"+other)
		wantRow(t, f, w.p.NewRef.ID, verify.FreshHardware, false, "names another public key", w.p.NewRef.SPKISHA256)
	})
	t.Run("TPM quote", func(t *testing.T) {
		// A verified quote attests the platform, not the key: it does not
		// count, and says so.
		w := newFreshWorld(t)
		w.genuine(t, 30*time.Hour)
		values := [][]byte{make([]byte, 32)}
		n := nonce()
		a, sig := w.tpm.Quote([]int{0}, values, n)
		w.add(t, w.p.Collector, w.p.NewRef, &evidence.TPMAttestation{At: evidence.AtTime(w.ago(time.Hour)), Kind: evidence.TPMKindQuote,
			Attest: a, Signature: sig, AKPublic: w.tpm.AKPublic(), PCRValues: values, Nonce: n}, nil)
		f := w.gate(t, w.p.NewRef.ID)
		wantRow(t, f, w.p.NewRef.ID, verify.FreshHardware, false, "entry 0 at", "not counted: entry 2", "attests a platform, not the key")
	})
}

// The gate takes the policy file's freshness section alone (ISSUE 15 item 5).
func TestFreshnessGateInputs(t *testing.T) {
	w := newFreshWorld(t)
	if _, err := verify.NewFreshnessGate(nil, nil); err == nil {
		t.Error("a gate without a trust file")
	}
	if _, err := verify.NewFreshnessGate(w.trust, &verify.FreshnessPolicy{HSMAttestation: verify.Duration(time.Hour)}); !errors.Is(err, verify.ErrPolicy) {
		t.Errorf("limits without maxAge for every type: %v", err)
	}
	g, err := verify.NewFreshnessGate(w.trust, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.genuine(t, time.Hour)
	dir, cosigned := w.log(t)
	run := func(keys ...evidence.KeyRef) (*verify.Freshness, error) {
		return g.Check(verify.FreshnessOptions{Log: os.DirFS(dir), Checkpoint: cosigned, Keys: keys, Now: w.now, MaxAge: 2 * time.Hour})
	}
	if f, err := run(evidence.KeyRef{ID: w.p.NewRef.ID}); err != nil || !f.Fresh || f.Records[0].LimitSeconds != 7200 {
		t.Errorf("--max-age alone: %+v, %v", f, err)
	}
	if _, err := run(evidence.KeyRef{ID: w.p.NewRef.ID}, w.p.NewRef); err == nil {
		t.Error("a key given twice")
	}
	if _, err := run(evidence.KeyRef{ID: w.p.NewRef.ID, SPKISHA256: "ABC"}); err == nil {
		t.Error("a malformed digest")
	}
	for _, bad := range []string{"", "k@sha256:" + strings.Repeat("A", 64)} {
		if _, err := verify.ParseFreshKey(bad); err == nil {
			t.Errorf("ParseFreshKey(%q) accepted", bad)
		}
	}
	if k, err := verify.ParseFreshKey("a@b"); err != nil || k.ID != "a@b" || k.SPKISHA256 != "" {
		t.Errorf("ParseFreshKey(a@b) = %+v, %v", k, err)
	}
}

// BenchmarkFreshness runs the gate over a log of 20,000 snapshots about 100
// other keys and the key's own two records. plain: JSON as keytrail writes
// it, which the pre-filter skips after decoding the envelope; escaped: every
// other key's ID written with \u escapes, so every record's signature is
// verified and its statement parsed (the pre-filter's worst case).
func BenchmarkFreshness(b *testing.B) {
	const others = 20000
	for _, escaped := range []bool{false, true} {
		name := "plain"
		if escaped {
			name = "escaped"
		}
		b.Run(name, func(b *testing.B) {
			w := newFreshWorld(b)
			other, err := evidence.KeyDigest(w.p.OtherKey.Public())
			if err != nil {
				b.Fatal(err)
			}
			for i := range others {
				k := evidence.KeyRef{ID: fmt.Sprintf("kms:eu-central-1/custody/other-%d/v1", i%100), SPKISHA256: other}
				var esc func([]byte) []byte
				if escaped {
					esc = escapeID(k.ID)
				}
				w.add(b, w.p.Collector, k, snapshot(w.ago(time.Duration(i)*time.Second)), esc)
			}
			w.genuine(b, time.Hour)
			dir, cosigned := w.log(b)
			g, err := verify.NewFreshnessGate(w.trust, &verify.FreshnessPolicy{MaxAge: verify.Duration(24 * time.Hour)})
			if err != nil {
				b.Fatal(err)
			}
			opts := verify.FreshnessOptions{Log: os.DirFS(dir), Checkpoint: cosigned, Keys: []evidence.KeyRef{{ID: w.p.NewRef.ID}}, Now: w.now}
			for b.Loop() {
				f, err := g.Check(opts)
				if err != nil || !f.Fresh {
					b.Fatalf("%+v, %v", f, err)
				}
			}
			b.ReportMetric(float64((others+2)*b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
