package ledgertest

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/witness"
	"github.com/keytrail/keytrail/witness/witnesstest"
)

// RunWitnessing runs the witnessing cases (ledger.Witnessed) against logs
// made by newLog, whose Opener must pass Config.Witnesses to the backend:
//
//   - Cosigns (with keytrail's witness and with litewitness): the
//     checkpoints a writer publishes get cosigned in the background; the
//     latest checkpoint carries the cosignature once appends pause, the
//     witnessed one always; after Close the last checkpoint is cosigned.
//   - Fork: a witness that has cosigned a fork of the log (a checkpoint the
//     log's key signed over another tree) refuses the real checkpoint; the
//     appends are still acknowledged, nothing is published as witnessed,
//     and Close reports the refusal as witness.ErrInconsistent.
//   - WitnessDown: appends do not wait for an unreachable witness; Close
//     reports it as witness.ErrUnavailable.
func RunWitnessing(t *testing.T, newLog NewLog) {
	for _, tg := range witnesstest.Targets {
		t.Run("Cosigns/"+tg.Name, func(t *testing.T) { testWitnessCosigns(t, newLog(t), tg.Start) })
	}
	t.Run("Fork", func(t *testing.T) { testWitnessFork(t, newLog(t)) })
	t.Run("WitnessDown", func(t *testing.T) { testWitnessDown(t, newLog(t)) })
}

// witnessKey is a log key with its verifier key string, which witnesses are
// configured with.
func witnessKey(t *testing.T) (*harness, string) {
	skey, vkey, err := note.GenerateKey(rand.Reader, Origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{signer: s, verifier: v}, vkey
}

func (h *harness) witnessedWriter(t *testing.T, open Opener, c ledger.Cosigner) ledger.Log {
	t.Helper()
	return open(t, Config{Signer: h.signer, Verifier: h.verifier, KeyIDs: KeyIDs, Witnesses: c})
}

// meets checks raw is the log's checkpoint with w's cosignature and returns it.
func (h *harness) meets(raw []byte, w *witnesstest.Target) (checkpoint.Checkpoint, error) {
	cp, _, err := checkpoint.OpenWitnessed(raw, Origin, h.verifier, []note.Verifier{w.Verifier}, 1)
	return cp, err
}

func testWitnessCosigns(t *testing.T, open Opener, start witnesstest.StartFunc) {
	h, vkey := witnessKey(t)
	w := start(t, vkey)
	l := h.witnessedWriter(t, open, witnesstest.NewCosigner(t, 1, w))
	appendAll(t, l, entries("w", 5))

	// The writer's loop cosigns the last checkpoint: Checkpoint returns it
	// cosigned, and it is the witnessed one.
	c, cancel := context.WithTimeout(ctx(t), 20*time.Second)
	defer cancel()
	accept := func(raw []byte) error {
		cp, err := h.meets(raw, w)
		if err == nil && cp.Size != 5 {
			err = errors.New("not the latest")
		}
		return err
	}
	raw, err := ledger.AcceptedCheckpoint(c, l, accept, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("no cosigned checkpoint of size 5: %v", err)
	}
	for {
		latest, err := l.Checkpoint(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if accept(latest) == nil {
			break
		}
		if c.Err() != nil {
			t.Fatalf("the latest checkpoint is not republished cosigned:\n%s", latest)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wc, err := l.(ledger.Witnessed).WitnessedCheckpoint(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := accept(wc); err != nil {
		t.Fatalf("witnessed checkpoint: %v\n%s", err, wc)
	}
	_ = raw

	// More appends, then Close: the last checkpoint is witnessed before
	// Close returns.
	appendAll(t, l, entries("x", 4))
	if err := l.Close(ctx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r := h.reader(t, open)
	latest, err := r.Checkpoint(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := h.meets(latest, w); err != nil || cp.Size != 9 {
		t.Fatalf("after Close the checkpoint is not cosigned at size 9 (%v):\n%s", err, latest)
	}
	if wc, err := r.(ledger.Witnessed).WitnessedCheckpoint(ctx(t)); err != nil {
		t.Fatal(err)
	} else if cp, err := h.meets(wc, w); err != nil || cp.Size != 9 {
		t.Fatalf("witnessed checkpoint after Close (%v):\n%s", err, wc)
	}

	// Reopened with no new entry, nothing is witnessed again.
	l = h.witnessedWriter(t, open, witnesstest.NewCosigner(t, 1, w))
	if err := l.Close(ctx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func testWitnessFork(t *testing.T, open Opener) {
	h, vkey := witnessKey(t)
	w := witnesstest.StartKeytrail(t, vkey)
	// The log's key signs a checkpoint of another tree of size 3, and the
	// witness cosigns it: the split view someone was shown.
	forkLog := witnesstest.Log{Origin: Origin, Signer: h.signer}
	fork := forkLog.Fork(t, 3)
	if status, _, body := w.Post(t, witness.Request{OldSize: 0, Checkpoint: fork}); status != http.StatusOK {
		t.Fatalf("the witness did not cosign the fork: HTTP %d %q", status, body)
	}

	l := h.witnessedWriter(t, open, witnesstest.NewCosigner(t, 1, w))
	if idx := appendAll(t, l, entries("f", 3)); len(idx) != 3 {
		t.Fatalf("appended %v", idx)
	}
	err := l.Close(ctx(t))
	if !errors.Is(err, witness.ErrInconsistent) {
		t.Fatalf("Close = %v, want witness.ErrInconsistent", err)
	}
	var we *witness.Error
	if !errors.As(err, &we) || we.Witness != w.Verifier.Name() || we.Checkpoint.Size != 3 {
		t.Fatalf("the error does not carry the witness and the checkpoint: %#v", we)
	}
	r := h.reader(t, open)
	if _, err := r.(ledger.Witnessed).WitnessedCheckpoint(ctx(t)); !errors.Is(err, ledger.ErrNotWitnessed) {
		t.Fatalf("WitnessedCheckpoint = %v, want ledger.ErrNotWitnessed", err)
	}
	latest, err := r.Checkpoint(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.meets(latest, w); err == nil {
		t.Fatalf("the refused checkpoint carries a cosignature:\n%s", latest)
	}
}

func testWitnessDown(t *testing.T, open Opener) {
	h, vkey := witnessKey(t)
	w := witnesstest.StartKeytrail(t, vkey)
	down := *w
	down.URL = "http://127.0.0.1:1" // nothing listens on port 1
	l := h.witnessedWriter(t, open, witnesstest.NewCosigner(t, 1, &down))
	c, cancel := context.WithTimeout(ctx(t), 30*time.Second)
	defer cancel()
	for i, e := range entries("d", 3) {
		if _, err := l.Append(c, e); err != nil {
			t.Fatalf("Append %d with the witness down: %v", i, err)
		}
	}
	if err := l.Close(ctx(t)); !errors.Is(err, witness.ErrUnavailable) {
		t.Fatalf("Close = %v, want witness.ErrUnavailable", err)
	}
}
