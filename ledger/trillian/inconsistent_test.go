package trillian_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	tpb "github.com/google/trillian"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keytrail/keytrail/internal/trilliantest"
	"github.com/keytrail/keytrail/ledger/ledgertest"
	"github.com/keytrail/keytrail/ledger/trillian"
)

// logBuffer collects log lines, for checking that an alert was raised.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(from, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, "state"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRefusesInconsistentTree: keytrail never signs a root that does not
// extend the last checkpoint it signed. A Trillian tree that is not the one
// the state describes (a fork, a rewound or replaced database) is refused
// with an alert, both when it has other leaves at the same size and when it
// is smaller.
func TestRefusesInconsistentTree(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.PostgreSQL, trilliantest.Options{})
	s, v := newKey(t)
	stateA := t.TempDir()
	a := openWriter(t, env, env.CreateTree(t), stateA, s, v)
	for _, e := range []string{"a0;key=k", "a1;key=k", "a2;key=k"} {
		if _, err := a.Append(t.Context(), []byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	signedA := checkpointOf(t, a, v)
	a.Close(t.Context())

	for _, tc := range []struct {
		name    string
		entries []string
	}{
		{"same size, other leaves", []string{"b0", "b1", "b2"}},
		{"smaller tree", []string{"b0"}},
		{"longer tree with another prefix", []string{"b0", "b1", "b2", "b3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			treeB := env.CreateTree(t)
			stateB := t.TempDir()
			b := openWriter(t, env, treeB, stateB, s, v)
			for _, e := range tc.entries {
				if _, err := b.Append(t.Context(), []byte(e)); err != nil {
					t.Fatal(err)
				}
			}
			b.Close(t.Context())

			// Tree B with tree A's state: as if the database had been swapped.
			forked := t.TempDir()
			copyDir(t, stateA, forked)
			var logs logBuffer
			_, err := trillian.Open(t.Context(), trillian.Config{
				Addr: env.Addr, TreeID: treeB, StateDir: forked,
				Signer: s, Verifier: v, KeyIDs: ledgertest.KeyIDs,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if !errors.Is(err, trillian.ErrInconsistent) {
				t.Fatalf("Open on a forked tree = %v, want ErrInconsistent", err)
			}
			if !strings.Contains(logs.String(), "ALERT") {
				t.Errorf("no ALERT logged; logs:\n%s", logs.String())
			}
			// Nothing was signed over the state: it still holds A's checkpoint.
			r, err := trillian.Open(t.Context(), trillian.Config{Addr: env.Addr, TreeID: treeB, StateDir: forked, Verifier: v, KeyIDs: ledgertest.KeyIDs, Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(context.Background())
			if got := checkpointOf(t, r, v); got.Size != signedA.Size || !bytes.Equal(got.Hash, signedA.Hash) {
				t.Errorf("state now holds size %d root %x, want A's size %d root %x", got.Size, got.Hash, signedA.Size, signedA.Hash)
			}
		})
	}
}

// TestStateFileDamage: a damaged state file, or one signed by another key, is
// refused rather than silently replaced.
func TestStateFileDamage(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.PostgreSQL, trilliantest.Options{})
	s, v := newKey(t)
	state := t.TempDir()
	tree := env.CreateTree(t)
	l := openWriter(t, env, tree, state, s, v)
	if _, err := l.Append(t.Context(), []byte("x;key=k")); err != nil {
		t.Fatal(err)
	}
	l.Close(t.Context())
	p := filepath.Join(state, "state")
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range []int{0, len(good) / 2, len(good) - 1} {
		bad := bytes.Clone(good)
		bad[[]int{0, len(good) / 2, len(good) - 1}[i]] ^= 1
		if err := os.WriteFile(p, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := trillian.Open(t.Context(), trillian.Config{Addr: env.Addr, TreeID: tree, StateDir: state, Signer: s, Verifier: v, KeyIDs: ledgertest.KeyIDs, Logger: quietLogger()})
		if err == nil {
			t.Errorf("Open with a state file damaged at byte %d succeeded", i)
		}
	}
	// Another key's state is refused too.
	if err := os.WriteFile(p, good, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, v2 := newKey(t)
	if _, err := trillian.Open(t.Context(), trillian.Config{Addr: env.Addr, TreeID: tree, StateDir: state, Signer: s2, Verifier: v2, KeyIDs: ledgertest.KeyIDs, Logger: quietLogger()}); err == nil {
		t.Error("Open with another key's state succeeded")
	}
}

// TestReaderRefusesRollback (ATTACKS.md 10): a reader that has served a
// checkpoint refuses a state file that goes back to an older one.
func TestReaderRefusesRollback(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.PostgreSQL, trilliantest.Options{})
	s, v := newKey(t)
	state := t.TempDir()
	tree := env.CreateTree(t)
	w := openWriter(t, env, tree, state, s, v)
	if _, err := w.Append(t.Context(), []byte("one;key=k")); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(state, "state"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(t.Context(), []byte("two;key=k")); err != nil {
		t.Fatal(err)
	}
	r, err := trillian.Open(t.Context(), trillian.Config{Addr: env.Addr, TreeID: tree, StateDir: state, Verifier: v, KeyIDs: ledgertest.KeyIDs, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if cp := checkpointOf(t, r, v); cp.Size != 2 {
		t.Fatalf("reader sees size %d, want 2", cp.Size)
	}
	if err := os.WriteFile(filepath.Join(state, "state"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Checkpoint(t.Context()); !errors.Is(err, trillian.ErrInconsistent) {
		t.Fatalf("Checkpoint after the state went back = %v, want ErrInconsistent", err)
	}
	if _, err := r.InclusionProof(t.Context(), 0, 2); err == nil {
		t.Fatal("InclusionProof served after the state went back")
	}
}

// TestCrashAfterQueueLeaf: a writer that crashed after QueueLeaf, before
// acknowledging, left the leaf queued (or sequenced) in Trillian. The next
// writer checkpoints it on open, and a retried Append returns its index
// without adding a second leaf.
func TestCrashAfterQueueLeaf(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.PostgreSQL, trilliantest.Options{})
	s, v := newKey(t)
	state := t.TempDir()
	tree := env.CreateTree(t)
	w := openWriter(t, env, tree, state, s, v)
	if _, err := w.Append(t.Context(), []byte("acked;key=k")); err != nil {
		t.Fatal(err)
	}
	w.Close(t.Context())
	lost := []byte("queued, never acknowledged;key=k")
	if _, err := env.Log.QueueLeaf(t.Context(), &tpb.QueueLeafRequest{LogId: tree, Leaf: &tpb.LogLeaf{LeafValue: lost, LeafIdentityHash: rfc6962.DefaultHasher.HashLeaf(lost)}}); err != nil {
		t.Fatal(err)
	}
	w = openWriter(t, env, tree, state, s, v)
	idx, err := w.Append(t.Context(), lost)
	if err != nil {
		t.Fatal(err)
	}
	if idx != 1 {
		t.Errorf("retried Append = %d, want 1", idx)
	}
	// Once more, now that the checkpoint covers it (the duplicate's index
	// comes from Trillian by hash, checked with an inclusion proof).
	if idx, err := w.Append(t.Context(), lost); err != nil || idx != 1 {
		t.Errorf("Append again = %d, %v; want 1", idx, err)
	}
	if cp := checkpointOf(t, w, v); cp.Size != 2 {
		t.Errorf("tree size %d, want 2", cp.Size)
	}
}
