package posix_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/ledger/posix"
	"github.com/transparency-dev/tessera"
	tposix "github.com/transparency-dev/tessera/storage/posix"
)

// checkOnce appends each entry again and checks that it gets its first index
// back and that the tree does not grow.
func checkOnce(t *testing.T, l *posix.Log, idx []uint64, es [][]byte) {
	t.Helper()
	_, v := checkpointSize(t, l)
	for i, e := range es {
		got, err := l.Append(t.Context(), e)
		if err != nil {
			t.Fatalf("Append(duplicate of %d): %v", idx[i], err)
		}
		if got != idx[i] {
			t.Errorf("Append(duplicate of %d) = %d", idx[i], got)
		}
	}
	if _, after := checkpointSize(t, l); after != v {
		t.Errorf("duplicates grew the tree from %d to %d", v, after)
	}
}

func checkpointSize(t *testing.T, l *posix.Log) ([]byte, uint64) {
	t.Helper()
	raw, err := l.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := checkpoint.ParseUnverified(raw)
	if err != nil {
		t.Fatal(err)
	}
	return raw, cp.Size
}

func TestExactlyOnce(t *testing.T) {
	s, v := newKey(t)
	dir := t.TempDir()
	l := openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
	es := entries("once", 10)
	idx := appendAll(t, l, es)
	checkOnce(t, l, idx, es)

	// A duplicate of an entry appended in the same batch as others.
	if got, err := l.Append(t.Context(), es[3]); err != nil || got != idx[3] {
		t.Fatalf("Append(es[3]) = %d, %v; want %d", got, err, idx[3])
	}
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Across a restart, with the map read from its file.
	l = openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
	checkOnce(t, l, idx, es)
	more := entries("more", 3)
	idx = append(idx, appendAll(t, l, more)...)
	es = append(es, more...)
	checkOnce(t, l, idx, es)
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	// The map is a cache: deleted, truncated mid-record, or corrupted, it is
	// rebuilt from the log before any append is accepted.
	path := filepath.Join(dir, ".keytrail", "leafhashes")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := len("keytrail leafhashes v1\n") + 32*len(es); len(orig) != want {
		t.Fatalf("leafhashes holds %d bytes, want %d", len(orig), want)
	}
	for _, damage := range []struct {
		name string
		data []byte
	}{
		{"deleted", nil},
		{"truncated mid-record", orig[:len(orig)-40]},
		{"only the header", orig[:len("keytrail leafhashes v1\n")]},
		{"flipped bit", flip(orig, len(orig)-5)},
		{"flipped bit in the first record", flip(orig, len("keytrail leafhashes v1\n"))},
		{"bad header", flip(orig, 0)},
		{"longer than the log", append(append([]byte{}, orig...), make([]byte, 64)...)},
	} {
		t.Run(damage.name, func(t *testing.T) {
			if damage.data == nil {
				os.Remove(path)
			} else if err := os.WriteFile(path, damage.data, 0o644); err != nil {
				t.Fatal(err)
			}
			l := openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
			checkOnce(t, l, idx, es)
			if err := l.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(orig) {
				t.Errorf("leafhashes not rebuilt to the log's %d hashes (%d bytes, want %d)", len(es), len(got), len(orig))
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 1
	return c
}

// TestExactlyOnceConcurrent: identical concurrent Appends produce one leaf.
func TestExactlyOnceConcurrent(t *testing.T) {
	s, v := newKey(t)
	l := openLog(t, posix.Config{Dir: t.TempDir(), Signer: s, Verifier: v})
	const writers, distinct = 64, 4
	es := entries("same", distinct)
	got := make([]uint64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			i, err := l.Append(t.Context(), es[w%distinct])
			if err != nil {
				t.Error(err)
			}
			got[w] = i
		})
	}
	wg.Wait()
	if _, size := checkpointSize(t, l); size != distinct {
		t.Fatalf("tree size %d after %d appends of %d distinct entries, want %d", size, writers, distinct, distinct)
	}
	for w := range writers {
		if got[w] != got[w%distinct] {
			t.Errorf("writer %d got %d, writer %d got %d for the same entry", w, got[w], w%distinct, got[w%distinct])
		}
		e, err := l.Entry(t.Context(), got[w])
		if err != nil {
			t.Fatal(err)
		}
		if string(e) != string(es[w%distinct]) {
			t.Errorf("entry %d = %q, want %q", got[w], e, es[w%distinct])
		}
	}
}

// TestExactlyOnceAfterUnpublishedCrash: a writer crashed after Tessera
// sequenced an entry but before any checkpoint covered it (so its Append was
// never acknowledged). The retried Append must return that entry's index.
func TestExactlyOnceAfterUnpublishedCrash(t *testing.T) {
	s, v := newKey(t)
	dir := t.TempDir()
	l := openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
	first := appendAll(t, l, entries("before", 3))
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Tessera alone, publishing no checkpoint for an hour; "crash" by
	// abandoning it without shutdown once the entry is sequenced.
	ctx, cancel := context.WithCancel(t.Context())
	driver, err := tposix.New(ctx, tposix.Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	appender, _, _, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(s).WithCheckpointInterval(time.Hour).WithCheckpointRepublishInterval(time.Hour).WithBatching(1, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	lost := []byte("sequenced, never acknowledged")
	seq, err := appender.Add(ctx, tessera.NewEntry(lost))()
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if seq.Index != uint64(len(first)) {
		t.Fatalf("sequenced at %d, want %d", seq.Index, len(first))
	}
	l = openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
	if _, size := checkpointSize(t, l); size != seq.Index+1 {
		t.Errorf("Open returned with a checkpoint of size %d, want %d (the whole tree)", size, seq.Index+1)
	}
	got, err := l.Append(t.Context(), lost)
	if err != nil {
		t.Fatal(err)
	}
	if got != seq.Index {
		t.Errorf("retried Append = %d, want %d", got, seq.Index)
	}
}

// TestWriterLock: a second writer waits for the first to close.
func TestWriterLockWaits(t *testing.T) {
	s, v := newKey(t)
	dir := t.TempDir()
	l := openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
	appendAll(t, l, entries("a", 1))
	// Another process is simulated by another open file description: the
	// in-process guard would refuse outright, so take the lock file directly.
	f, err := os.OpenFile(filepath.Join(dir, ".keytrail", "writer.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := lockFile(f); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := posix.Open(ctx, posix.Config{Dir: dir, Signer: s, Verifier: v, KeyIDs: testKeyIDs, Logger: quietLogger()}); err == nil {
		t.Fatal("Open succeeded while another writer holds the lock")
	}
	unlockFile(f)
	l = openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
	checkOnce(t, l, []uint64{0}, entries("a", 1))
}
