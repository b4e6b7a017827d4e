package verify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/ledger/posix"
	"github.com/keytrail/keytrail/verify"
)

// onDisk logs steps (and one unrelated record) in a real embedded ledger and
// builds the rotation's bundle from it.
type onDisk struct {
	*scenario.Built
	dir string
	log *posix.Log
}

func logOnDisk(t *testing.T, mutate func([]scenario.Step) []scenario.Step) *onDisk {
	t.Helper()
	ctx := context.Background()
	b := build(t, nil) // parties, trust and policy
	dir := filepath.Join(t.TempDir(), "log")
	l, err := posix.Open(ctx, posix.Config{Dir: dir, Signer: b.LogSigner, KeyIDs: evidence.SubjectKeyIDs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	steps := b.Steps(b.Rotation)
	if mutate != nil {
		steps = mutate(steps)
	}
	other, err := scenario.OtherKeyEvent(b.Parties, b.Rotation)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append([]scenario.Step{other}, steps...) {
		env, err := s.Sign(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	return &onDisk{Built: b, dir: dir, log: l}
}

func (d *onDisk) bundle(t *testing.T, r evidence.Rotation) *evidence.Bundle {
	t.Helper()
	v, err := note.NewVerifier(d.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	bun, err := evidence.BuildBundle(context.Background(), d.log, r, evidence.BuildOptions{Origin: d.Origin, LogVerifier: v})
	if err != nil {
		t.Fatal(err)
	}
	return bun
}

func (d *onDisk) verify(t *testing.T, bun *evidence.Bundle) *verify.Result {
	t.Helper()
	raw, err := d.Resign(context.Background(), bun)
	if err != nil {
		t.Fatal(err)
	}
	return run(t, d.Built, raw, verify.Options{Log: os.DirFS(d.dir)})
}

func TestCompletenessFromRealLedger(t *testing.T) {
	d := logOnDisk(t, nil)
	bun := d.bundle(t, d.Rotation)
	if res := d.verify(t, bun); !res.Verified || res.Check(verify.CheckLogCompleteness).Status != verify.Pass {
		t.Fatalf("complete bundle: %v", res.Err())
	}

	// An entry left out, the bundle re-signed: the log shows it.
	dropped := *bun
	dropped.Entries = append(append([]evidence.Entry{}, bun.Entries[:2]...), bun.Entries[3:]...)
	res := d.verify(t, &dropped)
	c := res.Check(verify.CheckLogCompleteness)
	if res.Verified || c.Status != verify.Fail || !errors.Is(c.Err(), verify.ErrIncomplete) {
		t.Fatalf("dropped entry: %s %v", c.Status, c.Err())
	}
	if len(c.Failures) != 1 || !strings.HasPrefix(c.Failures[0], "entry 3 (") {
		t.Errorf("failures = %v, want entry 3 alone", c.Failures)
	}
}

// A rollback logged after the window: the rotation's events belong in its
// bundle whatever their time, so narrowing the window does not leave it out;
// an operator who drops it is caught by the log.
func TestCompletenessRotationEventOutsideWindow(t *testing.T) {
	d := logOnDisk(t, func(s []scenario.Step) []scenario.Step {
		last := s[len(s)-1]
		rb := *last.Event
		rb.Event, rb.Reason = evidence.EventRollback, "new key misbehaved"
		end, _ := evidence.ParseTime(d0.Rotation.Window.End)
		rb.At = evidence.AtTime(end.Add(time.Hour))
		return append(s, scenario.Step{By: last.By, Key: d0.Rotation.NewKey, Event: &rb})
	})
	bun := d.bundle(t, d.Rotation) // the rollback is outside the window
	res := d.verify(t, bun)
	if c := res.Check(verify.CheckRotationStructure); res.Verified || c.Status != verify.Fail || !strings.Contains(c.Reason, "rolled back") {
		t.Fatalf("rollback outside the window, carried: %s %s", c.Status, c.Reason)
	}
	dropped := *bun
	dropped.Entries = bun.Entries[:len(bun.Entries)-1]
	res = d.verify(t, &dropped)
	c := res.Check(verify.CheckLogCompleteness)
	if res.Verified || c.Status != verify.Fail || !strings.Contains(c.Reason, "rollback by") {
		t.Fatalf("rollback outside the window, dropped: verified=%v %s %s", res.Verified, c.Status, c.Reason)
	}
	// Widening the window brings the rollback in, and the rules reject it.
	wide := d.Rotation
	wide.Window.End = evidence.FormatTime(scenario.Start.Add(30 * 24 * time.Hour))
	res = d.verify(t, d.bundle(t, wide))
	if c := res.Check(verify.CheckRotationStructure); res.Verified || c.Status != verify.Fail || !strings.Contains(c.Reason, "rolled back") {
		t.Fatalf("rollback inside the window: %s %s", c.Status, c.Reason)
	}
}

// d0 gives mutate functions the rotation of the scenario being built.
var d0 = func() *scenario.Built {
	b, err := scenario.Build(context.Background(), "test", nil)
	if err != nil {
		panic(err)
	}
	return b
}()

func TestCompletenessLogCopyChecks(t *testing.T) {
	d := logOnDisk(t, nil)
	bun := d.bundle(t, d.Rotation)

	// A log copy whose entry was altered does not match the checkpoint.
	tampered := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(tampered, os.DirFS(d.dir)); err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(tampered, "tile", "entries", "000.p", "8")
	data, err := os.ReadFile(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-3] ^= 1
	if err := os.WriteFile(bundlePath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	raw, _ := d.Resign(context.Background(), bun)
	res := run(t, d.Built, raw, verify.Options{Log: os.DirFS(tampered)})
	if c := res.Check(verify.CheckLogCompleteness); res.Verified || c.Status != verify.Fail {
		t.Fatalf("tampered log copy: %s %s", c.Status, c.Reason)
	}

	// A log copy older than the bundle cannot prove completeness.
	ctx := context.Background()
	older := filepath.Join(t.TempDir(), "older")
	if err := os.CopyFS(older, os.DirFS(d.dir)); err != nil {
		t.Fatal(err)
	}
	env, _ := scenario.OtherKeyEvent(d.Parties, d.Rotation)
	extra, _ := env.Sign(ctx)
	if _, err := d.log.Append(ctx, append(extra, ' ')); err != nil {
		t.Fatal(err)
	}
	newer := d.bundle(t, d.Rotation)
	raw, _ = d.Resign(ctx, newer)
	res = run(t, d.Built, raw, verify.Options{Log: os.DirFS(older)})
	if c := res.Check(verify.CheckLogCompleteness); res.Verified || c.Status != verify.Fail || !strings.Contains(c.Reason, "older than the bundle") {
		t.Fatalf("older log copy: %s %s", c.Status, c.Reason)
	}
	// A newer copy is fine: it is proven consistent with the bundle's checkpoint.
	raw, _ = d.Resign(ctx, bun)
	if res := run(t, d.Built, raw, verify.Options{Log: os.DirFS(d.dir)}); !res.Verified {
		t.Fatalf("newer log copy: %v", res.Err())
	}
}

// A collector may not sign a request in a person's name.
func TestRequestSignedByCollector(t *testing.T) {
	b := build(t, func(s []scenario.Step) []scenario.Step {
		s[0].By = d0.Collector
		return s
	})
	res := run(t, b, b.BundleBytes, verify.Options{})
	if c := res.Check(verify.CheckEntriesSignature); res.Verified || c.Status != verify.Fail || !errors.Is(c.Err(), verify.ErrNotAllowed) {
		t.Fatalf("collector-signed request: %s %s", c.Status, c.Reason)
	}
}
