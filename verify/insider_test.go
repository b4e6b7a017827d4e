package verify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/ledger/export"
	"github.com/keytrail/keytrail/verify"
)

// relog logs b's rotation records and then extra in a new log, and builds
// and signs the rotation's bundle from it. The log is returned so that a
// test can log more after the bundle was built.
func relog(t testing.TB, b *scenario.Built, extra ...[]byte) ([]byte, *scenario.MemLog) {
	t.Helper()
	ctx := context.Background()
	l := scenario.NewMemLog(b.Origin, b.LogSigner)
	for _, env := range append(slices.Clone(b.Records), extra...) {
		if _, err := l.Append(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	return bundleOf(t, b, l, b.Rotation), l
}

// bundleOf builds and signs the bundle of rotation r from log l.
func bundleOf(t testing.TB, b *scenario.Built, l *scenario.MemLog, r evidence.Rotation) []byte {
	t.Helper()
	ctx := context.Background()
	v, err := note.NewVerifier(b.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	bun, err := evidence.BuildBundle(ctx, l, r, evidence.BuildOptions{Origin: b.Origin, LogVerifier: v})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Resign(ctx, bun)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// logCopy writes l as a tlog-tiles directory, as an auditor receives it
// ('keytrail log export'), and returns it.
func logCopy(t testing.TB, b *scenario.Built, l *scenario.MemLog) fs.FS {
	t.Helper()
	v, err := note.NewVerifier(b.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "log")
	if _, err := export.Tiles(context.Background(), l, dir, v); err != nil {
		t.Fatal(err)
	}
	return os.DirFS(dir)
}

// signStep signs one step of a rotation.
func signStep(t testing.TB, s scenario.Step) []byte {
	t.Helper()
	env, err := s.Sign(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// serviceEvent is a lifecycle event of rotation r by the rotation service
// (the scenario's collector) at t.
func serviceEvent(b *scenario.Built, key evidence.KeyRef, typ string, at time.Time) scenario.Step {
	ev := &evidence.LifecycleEvent{At: evidence.AtTime(at), Event: typ, RotationID: b.Rotation.ID, Actor: evidence.Actor{ID: b.Collector.ID}}
	switch typ {
	case evidence.EventRollback:
		ev.Reason = "new key misbehaved"
	case evidence.EventPromote:
		ev.RotationID = "" // outside any rotation
	}
	return scenario.Step{By: b.Collector, Key: key, Event: ev}
}

// ATTACKS.md 32: completeness bounded by the bundle's own checkpoint. A
// record about the rotation logged after the bundle was built (a rollback,
// a promote of the old key) is read from a current log copy, whatever the
// bundle's checkpoint, and fails the rotation.
func TestAttack32_RecordLoggedAfterTheBundle(t *testing.T) {
	b := build(t, nil)
	for _, tc := range []struct {
		name  string
		step  scenario.Step
		check string
		err   error
	}{
		{"rollback", serviceEvent(b, b.Rotation.NewKey, evidence.EventRollback, scenario.Start.Add(30*time.Hour)), verify.CheckRotationStructure, verify.ErrStructure},
		{"old key promoted again", serviceEvent(b, b.Rotation.OldKey, evidence.EventPromote, scenario.Start.Add(30*time.Hour)), verify.CheckKeysLifecycle, verify.ErrKeyLifecycle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, l := relog(t, b)
			wantVerified(t, run(t, b, raw, verify.Options{Log: logCopy(t, b, l)}))
			if _, err := l.Append(context.Background(), signStep(t, tc.step)); err != nil {
				t.Fatal(err)
			}
			res := run(t, b, raw, verify.Options{Log: logCopy(t, b, l)})
			wantFail(t, res, tc.check, tc.err)
			c := wantFail(t, res, verify.CheckLogCompleteness, verify.ErrIncomplete)
			if !strings.Contains(c.Reason, "logged after its checkpoint") || !strings.Contains(c.Reason, tc.check) {
				t.Errorf("log.completeness does not name the late record and the check it changes: %s", c.Reason)
			}
		})
	}
}

// ATTACKS.md 33: the window as a blindfold. The old key signs a day after
// its destroy, honestly logged; a bundle whose window ends at the destroy
// leaves the receipt out, and a log copy brings it back to the never rules.
func TestAttack33_SignatureAfterDestroyOutsideTheWindow(t *testing.T) {
	b, err := scenario.BuildPolicy(context.Background(), "", func(pr *scenario.PolicyRotation) {
		destroy := pr.Event(evidence.EventDestroy, pr.Rotation.OldKey)
		pr.Rotation.Window.End = destroy.Event.Time
		late, err := pr.Parties.Receipt(pr.Parties.OldKey, destroy.Time().Add(24*time.Hour), "after-destroy-1", "")
		if err != nil {
			t.Fatal(err)
		}
		pr.Steps = append(pr.Steps, scenario.Step{By: pr.Parties.Collector, Key: pr.Rotation.OldKey, Record: late})
	})
	if err != nil {
		t.Fatal(err)
	}
	// The bundle is honest to its window: without the log, nothing shows.
	wantVerified(t, run(t, b, b.BundleBytes, verify.Options{}))
	res := run(t, b, b.BundleBytes, verify.Options{Log: logCopy(t, b, b.Log)})
	wantFail(t, res, verify.CheckReceiptsAfterDisable, verify.ErrReceiptTiming)
	c := wantFail(t, res, verify.CheckKeysLifecycle, verify.ErrKeyLifecycle)
	if !strings.Contains(c.Reason, "after its destroy") {
		t.Errorf("keys.lifecycle: %s", c.Reason)
	}
	wantFail(t, res, verify.CheckLogCompleteness, verify.ErrIncomplete)
}

// ATTACKS.md 37: fail-open classification. A key class the policy does not
// list fails every check that depends on it, never skips it.
func TestAttack37_UnknownKeyClass(t *testing.T) {
	b := build(t, nil)
	p, err := verify.ParsePolicy([]byte(strings.Replace(scenario.PolicyYAML, "hot-signing: {}", "cold-storage: {minStrength: vendor-attested}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(b.Trust, p)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.VerifyBundle(b.BundleBytes, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{verify.CheckRotationWindow, verify.CheckResidency, verify.CheckKeysHardware} {
		wantFail(t, res, name, verify.ErrKeyClass)
	}
}

// ATTACKS.md 38: claims that travel beside the evidence. The residency claim
// in force is decided from the log: an operator who leaves the authority's
// newer claim out of the bundle is caught by the log copy, and the claim
// counts there.
func TestAttack38_ResidencyClaimLeftOut(t *testing.T) {
	ctx := context.Background()
	b, err := scenario.BuildPolicy(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The authority later (still before the window's end) says the HSM
	// moved to the US.
	moved := &evidence.ResidencyClaim{At: evidence.AtTime(scenario.Start.Add(time.Hour)), Subject: evidence.ResidencySubject{Kind: evidence.ResidencyHSM, Serial: scenario.HSMSerial}, Region: "us-east-1", Jurisdiction: "US"}
	envs, err := b.SignClaims(ctx, []*evidence.ResidencyClaim{moved})
	if err != nil {
		t.Fatal(err)
	}
	raw, l := relog(t, b, append(slices.Clone(b.Residency), envs[0])...)
	// Built honestly, the bundle carries the newer claim: FAIL even offline.
	wantFail(t, run(t, b, raw, verify.Options{}), verify.CheckResidency, verify.ErrResidency)
	// The operator drops it and re-signs: the log copy shows it.
	bun := bundleOfLog(t, b, l)
	bun.Entries = slices.DeleteFunc(bun.Entries, func(e evidence.Entry) bool { return bytes.Equal(e.Envelope, envs[0]) })
	dropped, err := b.Resign(ctx, bun)
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, b, dropped, verify.Options{Log: logCopy(t, b, l)})
	wantFail(t, res, verify.CheckResidency, verify.ErrResidency)
	c := wantFail(t, res, verify.CheckLogCompleteness, verify.ErrIncomplete)
	if !strings.Contains(c.Reason, "residency-claim") {
		t.Errorf("log.completeness does not name the claim: %s", c.Reason)
	}
}

// bundleOfLog builds b's rotation's bundle from l, unsigned.
func bundleOfLog(t testing.TB, b *scenario.Built, l *scenario.MemLog) *evidence.Bundle {
	t.Helper()
	v, err := note.NewVerifier(b.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	bun, err := evidence.BuildBundle(context.Background(), l, b.Rotation, evidence.BuildOptions{Origin: b.Origin, LogVerifier: v})
	if err != nil {
		t.Fatal(err)
	}
	return bun
}

// escaped re-spells, in a statement's JSON, every occurrence of each of
// values with its first character as a \u escape: the same statement to a
// JSON parser, other bytes to a byte search.
func escaped(payload []byte, values ...string) []byte {
	for _, v := range values {
		payload = bytes.ReplaceAll(payload, []byte(`"`+v+`"`), []byte(fmt.Sprintf(`"\u%04x%s"`, v[0], v[1:])))
	}
	return payload
}

// ATTACKS.md 39: two parsers, two meanings. A record that writes the
// rotation's key ID, digest and rotation ID with \u escapes is the same
// record to the parser: bundle build and the rules see it, and so does the
// log scan, so the operator cannot drop it.
func TestAttack39_EscapedRecordIsSeenByCompleteness(t *testing.T) {
	ctx := context.Background()
	b := build(t, nil)
	rb := serviceEvent(b, b.Rotation.NewKey, evidence.EventRollback, scenario.Start.Add(5*time.Hour))
	st, err := evidence.NewStatement(rb.Event, rb.Key)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := strictjson.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	payload = escaped(payload, b.Rotation.NewKey.ID, b.Rotation.NewKey.SPKISHA256, b.Rotation.ID)
	if bytes.Contains(payload, []byte(b.Rotation.ID)) || bytes.Contains(payload, []byte(b.Rotation.NewKey.SPKISHA256)) {
		t.Fatal("the payload still spells a value plainly")
	}
	env := signRecordAs(t, evidence.PayloadType, payload, b.Collector.Signer)
	raw, l := relog(t, b, env)
	// Bundle build carries it, and the rules reject the rollback.
	wantFail(t, run(t, b, raw, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
	// Dropped from the bundle, the log scan finds it.
	bun := bundleOfLog(t, b, l)
	bun.Entries = slices.DeleteFunc(bun.Entries, func(e evidence.Entry) bool { return bytes.Equal(e.Envelope, env) })
	dropped, err := b.Resign(ctx, bun)
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, b, dropped, verify.Options{Log: logCopy(t, b, l)})
	wantFail(t, res, verify.CheckLogCompleteness, verify.ErrIncomplete)
	wantFail(t, res, verify.CheckRotationStructure, verify.ErrStructure)
}

// FuzzMayRelateSound: the log scan's pre-filter never skips a payload that
// the parser says relates to the rotation (or is a residency claim).
func FuzzMayRelateSound(f *testing.F) {
	b := build(f, nil)
	for _, env := range b.Records {
		e, err := evidence.ParseEnvelope(env, evidence.MaxRecordBytes)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Payload)
		f.Add(escaped(e.Payload, b.Rotation.OldKey.ID, b.Rotation.ID))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		st, pred, err := evidence.ParseStatement(payload)
		if err != nil {
			return
		}
		_, claim := pred.(*evidence.ResidencyClaim)
		if (claim || b.Rotation.Relate(st.Keys(), pred).About()) && !verify.MayRelate(payload, b.Rotation) {
			t.Fatalf("the pre-filter skips a related record: %q", payload)
		}
	})
}

// ATTACKS.md 41: optional checks that silently SKIP. The result lists what
// did not run, and a policy that requires a check fails a bundle on its SKIP.
func TestAttack41_RequiredChecksDoNotSkip(t *testing.T) {
	b := build(t, nil)
	res := run(t, b, b.BundleBytes, verify.Options{})
	wantVerified(t, res)
	for _, want := range []string{verify.CheckLogCompleteness, verify.CheckConsistency} {
		if !slices.ContainsFunc(res.Skipped, func(s string) bool { return strings.HasPrefix(s, want+": ") }) {
			t.Errorf("Skipped %q does not list %s", res.Skipped, want)
		}
	}
	p, err := verify.ParsePolicy([]byte(scenario.PolicyYAML + "require: [log.completeness, checkpoint.consistency]\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(b.Trust, p)
	if err != nil {
		t.Fatal(err)
	}
	res, err = v.VerifyBundle(b.BundleBytes, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified {
		t.Fatal("verified with required checks skipped")
	}
	// With the log copy and an earlier checkpoint, both run and pass.
	raw, l := relog(t, b)
	since, err := l.CheckpointAt(3)
	if err != nil {
		t.Fatal(err)
	}
	res, err = v.VerifyBundle(raw, verify.Options{Log: logCopy(t, b, l), Since: since})
	if err != nil {
		t.Fatal(err)
	}
	wantVerified(t, res)
	if _, err := verify.ParsePolicy([]byte(scenario.PolicyYAML + "require: [log.completenes]\n")); err == nil || !strings.Contains(err.Error(), "is not a check") {
		t.Errorf("a misspelt required check: %v", err)
	}
}

// A log copy must extend the checkpoint the auditor already trusts: one
// older than it (or forked from it) proves nothing about what was logged
// since.
func TestLogCopyOlderThanTrustedCheckpoint(t *testing.T) {
	ctx := context.Background()
	b := build(t, nil)
	raw, l := relog(t, b)
	other, err := scenario.OtherKeyEvent(b.Parties, b.Rotation)
	if err != nil {
		t.Fatal(err)
	}
	env := signStep(t, other)
	if _, err := l.Append(ctx, append(slices.Clone(env), ' ')); err != nil {
		t.Fatal(err)
	}
	copyOld := logCopy(t, b, l)
	if _, err := l.Append(ctx, append(slices.Clone(env), ' ', ' ')); err != nil {
		t.Fatal(err)
	}
	since, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, b, raw, verify.Options{Log: copyOld, Since: since})
	c := wantFail(t, res, verify.CheckLogCompleteness, verify.ErrIncomplete)
	if !strings.Contains(c.Reason, "older than the trusted --since checkpoint") {
		t.Errorf("log.completeness: %s", c.Reason)
	}
}

// A split view is reported with its evidence (issue 15 item 4): the two
// signed checkpoints, as the log signed them, in the result and its JSON.
func TestSplitViewCarriesItsEvidence(t *testing.T) {
	ctx := context.Background()
	b := build(t, nil)
	// The log operator signs a fork of the same size as the bundle's tree.
	fork := scenario.NewMemLog(b.Origin, b.LogSigner)
	for i := uint64(0); i < b.Log.Size(); i++ {
		if _, err := fork.Append(ctx, []byte(fmt.Sprintf("fork %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	forked, err := fork.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, b, b.BundleBytes, verify.Options{Since: forked})
	c := wantFail(t, res, verify.CheckConsistency, verify.ErrConsistency)
	ie := new(verify.InconsistencyError)
	if !errors.As(c.Err(), &ie) || !bytes.Equal(ie.Older, forked) || ie.Newer == nil {
		t.Fatalf("error %v carries no evidence", c.Err())
	}
	if c.Inconsistency == nil || c.Inconsistency.Older != string(forked) || c.Inconsistency.Newer != b.Bundle.Checkpoint {
		t.Fatalf("check carries %+v", c.Inconsistency)
	}
	j, err := strictjson.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(j, []byte(`"inconsistency":{"older":`)) {
		t.Errorf("JSON result lacks the evidence: %s", j)
	}
}
