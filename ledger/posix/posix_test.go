package posix_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/posix"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "example.com/keytrail/test"

// newKey mints a fresh Ed25519 checkpoint key named testOrigin.
func newKey(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
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
	return s, v
}

// testKeyIDs reads entries of the form "key=a;key=b;anything else".
func testKeyIDs(entry []byte) ([]string, error) {
	var ids []string
	for _, f := range strings.Split(string(entry), ";") {
		if id, ok := strings.CutPrefix(f, "key="); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("no key")
	}
	return ids, nil
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openLog(t testing.TB, cfg posix.Config) *posix.Log {
	t.Helper()
	if cfg.KeyIDs == nil {
		cfg.KeyIDs = testKeyIDs
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	l, err := posix.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg.Dir, err)
	}
	t.Cleanup(func() {
		if err := l.Close(context.Background()); err != nil && !errors.Is(err, ledger.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// appendAll appends every entry concurrently and returns their indices.
func appendAll(t testing.TB, l ledger.Log, entries [][]byte) []uint64 {
	t.Helper()
	idx := make([]uint64, len(entries))
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Go(func() { idx[i], errs[i] = l.Append(t.Context(), e) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return idx
}

func entries(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%d;key=k%d", prefix, i, i%7)
	}
	return out
}

// parseCheckpoint authenticates and parses a checkpoint.
func parseCheckpoint(t testing.TB, raw []byte, v note.Verifier) *flog.Checkpoint {
	t.Helper()
	cp, _, _, err := flog.ParseCheckpoint(raw, v.Name(), v)
	if err != nil {
		t.Fatalf("ParseCheckpoint(%q): %v", raw, err)
	}
	return cp
}

func checkpointOf(t testing.TB, l ledger.Log, v note.Verifier) *flog.Checkpoint {
	t.Helper()
	raw, err := l.Checkpoint(t.Context())
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return parseCheckpoint(t, raw, v)
}

// readAll returns log entries [0, n) in index order.
func readAll(t testing.TB, l ledger.Log, n uint64) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range n {
		e, err := l.Entry(t.Context(), i)
		if err != nil {
			t.Fatalf("Entry(%d): %v", i, err)
		}
		out[i] = e
	}
	return out
}

// checkAppended checks that idx are exactly [first, first+len(idx)) and that the
// log holds each entry at its index.
func checkAppended(t testing.TB, l ledger.Log, first uint64, idx []uint64, want [][]byte) {
	t.Helper()
	sorted := slices.Sorted(slices.Values(idx))
	for i, got := range sorted {
		if got != first+uint64(i) {
			t.Fatalf("indices are not contiguous from %d: sorted[%d] = %d", first, i, got)
		}
	}
	for i, at := range idx {
		got, err := l.Entry(t.Context(), at)
		if err != nil {
			t.Fatalf("Entry(%d): %v", at, err)
		}
		if !bytes.Equal(got, want[i]) {
			t.Fatalf("Entry(%d) = %q, want %q", at, got, want[i])
		}
	}
}

func TestAppendReadBack(t *testing.T) {
	s, v := newKey(t)
	l := openLog(t, posix.Config{Dir: t.TempDir(), Signer: s, Verifier: v})

	if cp := checkpointOf(t, l, v); cp.Size != 0 || !bytes.Equal(cp.Hash, rfc6962.DefaultHasher.EmptyRoot()) {
		t.Fatalf("new log checkpoint = %d %x, want the empty tree", cp.Size, cp.Hash)
	}
	want := entries("a", 600)
	want = append(want, []byte{}, bytes.Repeat([]byte{0xff}, posix.MaxEntrySize), []byte("\x00\n binary \x01"))
	idx := appendAll(t, l, want)
	checkAppended(t, l, 0, idx, want)
	if cp := checkpointOf(t, l, v); cp.Size != uint64(len(want)) {
		t.Errorf("checkpoint size = %d, want %d", cp.Size, len(want))
	}

	if _, err := l.Append(t.Context(), make([]byte, posix.MaxEntrySize+1)); err == nil {
		t.Error("Append of an entry over 64 KiB succeeded")
	}
}

func TestAppendCopiesEntry(t *testing.T) {
	s, v := newKey(t)
	l := openLog(t, posix.Config{Dir: t.TempDir(), Signer: s, Verifier: v})
	buf := []byte("original")
	// Append gives up before a checkpoint covers the entry; the caller then
	// reuses its buffer.
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	if _, err := l.Append(ctx, buf); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append with an expiring context = %v, want DeadlineExceeded", err)
	}
	copy(buf, "mutated!")
	if idx := appendAll(t, l, [][]byte{[]byte("second")}); idx[0] != 1 {
		t.Fatalf("second entry at %d, want 1", idx[0])
	}
	got, err := l.Entry(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "original" {
		t.Errorf("Entry(0) = %q, want %q", got, "original")
	}

	// A context done before Append starts appends nothing.
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Append(done, []byte("never")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a done context = %v, want Canceled", err)
	}
	if idx := appendAll(t, l, [][]byte{[]byte("third")}); idx[0] != 2 {
		t.Errorf("third entry at %d, want 2", idx[0])
	}
}

// TestProofs appends in waves, keeping the signed checkpoint after each, and
// verifies inclusion and consistency proofs against them and against roots
// recomputed from the entries at every size.
func TestProofs(t *testing.T) {
	s, v := newKey(t)
	l := openLog(t, posix.Config{Dir: t.TempDir(), Signer: s, Verifier: v})

	var cps []*flog.Checkpoint
	n := 0
	for _, size := range []int{1, 2, 3, 4, 7, 8, 9, 255, 256, 257, 300, 511, 512, 513, 777} {
		appendAll(t, l, entries(fmt.Sprint("w", size), size-n))
		n = size
		cp := checkpointOf(t, l, v)
		if cp.Size != uint64(size) {
			t.Fatalf("checkpoint size = %d, want %d", cp.Size, size)
		}
		cps = append(cps, cp)
	}

	// Roots at every size, from the entries themselves.
	all := readAll(t, l, uint64(n))
	roots := make([][]byte, n+1)
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	roots[0] = rfc6962.DefaultHasher.EmptyRoot()
	for i, e := range all {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(e), nil); err != nil {
			t.Fatal(err)
		}
		if roots[i+1], _ = r.GetRootHash(nil); roots[i+1] == nil {
			t.Fatal("no root")
		}
	}
	for _, cp := range cps {
		if !bytes.Equal(roots[cp.Size], cp.Hash) {
			t.Fatalf("entries hash to %x at size %d, checkpoint says %x", roots[cp.Size], cp.Size, cp.Hash)
		}
	}

	ctx := t.Context()
	h := rfc6962.DefaultHasher
	for _, cp := range cps {
		step := max(1, cp.Size/50)
		for i := uint64(0); i < cp.Size; i += step {
			p, err := l.InclusionProof(ctx, i, cp.Size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, cp.Size, err)
			}
			if err := proof.VerifyInclusion(h, i, cp.Size, h.HashLeaf(all[i]), p, cp.Hash); err != nil {
				t.Fatalf("inclusion proof of %d in signed checkpoint %d: %v", i, cp.Size, err)
			}
		}
		for _, cp1 := range cps {
			if cp1.Size == 0 || cp1.Size > cp.Size {
				continue
			}
			p, err := l.ConsistencyProof(ctx, cp1.Size, cp.Size)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", cp1.Size, cp.Size, err)
			}
			if err := proof.VerifyConsistency(h, cp1.Size, cp.Size, p, cp1.Hash, cp.Hash); err != nil {
				t.Fatalf("consistency proof between signed checkpoints %d and %d: %v", cp1.Size, cp.Size, err)
			}
		}
	}
	// Tree sizes no checkpoint was published at.
	for _, size2 := range []uint64{5, 100, 256, 258, 600, 776, 777} {
		for _, size1 := range []uint64{1, 2, 6, 99, 255, 256, 257, 300, 599, 777} {
			if size1 > size2 {
				continue
			}
			p, err := l.ConsistencyProof(ctx, size1, size2)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", size1, size2, err)
			}
			if err := proof.VerifyConsistency(h, size1, size2, p, roots[size1], roots[size2]); err != nil {
				t.Fatalf("consistency proof %d -> %d: %v", size1, size2, err)
			}
		}
		for _, i := range []uint64{0, 1, size2 / 2, size2 - 1} {
			p, err := l.InclusionProof(ctx, i, size2)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, size2, err)
			}
			if err := proof.VerifyInclusion(h, i, size2, h.HashLeaf(all[i]), p, roots[size2]); err != nil {
				t.Fatalf("inclusion proof of %d in %d: %v", i, size2, err)
			}
		}
	}
}

func TestOutOfRange(t *testing.T) {
	s, v := newKey(t)
	l := openLog(t, posix.Config{Dir: t.TempDir(), Signer: s, Verifier: v})
	ctx := t.Context()
	appendAll(t, l, entries("x", 10))

	for _, tc := range []struct {
		name    string
		call    func() error
		isRange bool
	}{
		{"entry at size", func() error { _, err := l.Entry(ctx, 10); return err }, true},
		{"entry far beyond", func() error { _, err := l.Entry(ctx, 1<<40); return err }, true},
		{"inclusion tree beyond checkpoint", func() error { _, err := l.InclusionProof(ctx, 0, 11); return err }, true},
		{"inclusion index at tree size", func() error { _, err := l.InclusionProof(ctx, 5, 5); return err }, true},
		{"inclusion in empty tree", func() error { _, err := l.InclusionProof(ctx, 0, 0); return err }, true},
		{"consistency beyond checkpoint", func() error { _, err := l.ConsistencyProof(ctx, 1, 11); return err }, true},
		{"consistency from zero", func() error { _, err := l.ConsistencyProof(ctx, 0, 5); return err }, false},
		{"consistency backwards", func() error { _, err := l.ConsistencyProof(ctx, 6, 5); return err }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, ledger.ErrOutOfRange); got != tc.isRange {
				t.Errorf("errors.Is(%v, ErrOutOfRange) = %v, want %v", err, got, tc.isRange)
			}
		})
	}
	if p, err := l.ConsistencyProof(ctx, 10, 10); err != nil || len(p) != 0 {
		t.Errorf("ConsistencyProof(10, 10) = %d hashes, %v; want none", len(p), err)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, v := newKey(t)
	ctx := t.Context()
	cfg := posix.Config{Dir: dir, Signer: s, Verifier: v, KeyIDs: testKeyIDs, Logger: quietLogger()}

	l, err := posix.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := entries("first", 300)
	appendAll(t, l, first)
	before := readAll(t, l, 300)
	cp1 := checkpointOf(t, l, v)
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// A closed log refuses everything.
	if err := l.Close(ctx); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if _, err := l.Append(ctx, []byte("late")); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := l.Entry(ctx, 0); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("Entry after Close = %v, want ErrClosed", err)
	}

	l = openLog(t, cfg)
	if diff := cmp.Diff(before, readAll(t, l, 300)); diff != "" {
		t.Fatalf("entries changed across reopen (-before +after):\n%s", diff)
	}
	if cp := checkpointOf(t, l, v); cp.Size != cp1.Size || !bytes.Equal(cp.Hash, cp1.Hash) {
		t.Fatalf("checkpoint after reopen = %d %x, want %d %x", cp.Size, cp.Hash, cp1.Size, cp1.Hash)
	}
	second := entries("second", 20)
	idx := appendAll(t, l, second)
	checkAppended(t, l, 300, idx, second)
	cp2 := checkpointOf(t, l, v)
	p, err := l.ConsistencyProof(ctx, cp1.Size, cp2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp1.Size, cp2.Size, p, cp1.Hash, cp2.Hash); err != nil {
		t.Errorf("log after reopen is not consistent with before: %v", err)
	}
}

func TestOpenRefusals(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, v := newKey(t)
	openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})

	other, otherV := newKey(t)
	for _, tc := range []struct {
		name string
		cfg  posix.Config
	}{
		{"no dir", posix.Config{KeyIDs: testKeyIDs}},
		{"no KeyIDs", posix.Config{Dir: dir}},
		{"second writer in process", posix.Config{Dir: dir, Signer: s, KeyIDs: testKeyIDs}},
		{"verifier of another key", posix.Config{Dir: t.TempDir(), Signer: s, Verifier: otherV, KeyIDs: testKeyIDs}},
		{"reader of a missing dir", posix.Config{Dir: filepath.Join(dir, "missing"), KeyIDs: testKeyIDs}},
		{"reader verifying with another key", posix.Config{Dir: dir, Verifier: otherV, KeyIDs: testKeyIDs}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = quietLogger()
			l, err := posix.Open(ctx, tc.cfg)
			if err == nil {
				// Readers open lazily; the first read must fail.
				_, err = l.Checkpoint(ctx)
				l.Close(ctx)
			}
			if err == nil {
				t.Error("no error")
			}
		})
	}

	// Another key (same origin) must not take over an existing log.
	dir2 := t.TempDir()
	l := openLog(t, posix.Config{Dir: dir2, Signer: s})
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if l, err := posix.Open(ctx, posix.Config{Dir: dir2, Signer: other, KeyIDs: testKeyIDs, Logger: quietLogger()}); err == nil {
		l.Close(ctx)
		t.Error("Open with another signer of an existing log succeeded")
	}
}

func TestConcurrentAppenders(t *testing.T) {
	const goroutines, each = 50, 40
	s, v := newKey(t)
	l := openLog(t, posix.Config{Dir: t.TempDir(), Signer: s, Verifier: v})

	got := make([][]uint64, goroutines)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				idx, err := l.Append(t.Context(), fmt.Appendf(nil, "g%d-%d", g, i))
				if err != nil {
					errs <- err
					return
				}
				got[g] = append(got[g], idx)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[uint64]string{}
	for g := range goroutines {
		for i, idx := range got[g] {
			want := fmt.Sprintf("g%d-%d", g, i)
			if prev, dup := seen[idx]; dup {
				t.Fatalf("index %d given to both %s and %s", idx, prev, want)
			}
			seen[idx] = want
			e, err := l.Entry(t.Context(), idx)
			if err != nil || string(e) != want {
				t.Fatalf("Entry(%d) = %q, %v; want %q", idx, e, err, want)
			}
		}
	}
	if cp := checkpointOf(t, l, v); cp.Size != goroutines*each {
		t.Errorf("checkpoint size = %d, want %d", cp.Size, goroutines*each)
	}
}

// TestReadOnlyWhileWriting reads a log through a second, read-only Log while
// the writer appends.
func TestReadOnlyWhileWriting(t *testing.T) {
	dir := t.TempDir()
	s, v := newKey(t)
	w := openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
	appendAll(t, w, entries("pre", 10))

	before := listFiles(t, dir)
	r := openLog(t, posix.Config{Dir: dir, Verifier: v})
	unverified := openLog(t, posix.Config{Dir: dir})
	if after := listFiles(t, dir); !slices.Equal(before, after) {
		t.Errorf("read-only Open changed the directory:\n%s", cmp.Diff(before, after))
	}
	if _, err := r.Append(t.Context(), []byte("nope")); !errors.Is(err, ledger.ErrReadOnly) {
		t.Errorf("read-only Append = %v, want ErrReadOnly", err)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 5 {
			appendAll(t, w, entries(fmt.Sprint("during", i), 100))
		}
	}()
	var last uint64
	h := rfc6962.DefaultHasher
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		cp := checkpointOf(t, r, v)
		if cp.Size < last {
			t.Fatalf("reader saw the tree shrink from %d to %d", last, cp.Size)
		}
		last = cp.Size
		i := cp.Size - 1
		e, err := r.Entry(t.Context(), i)
		if err != nil {
			t.Fatalf("reader Entry(%d): %v", i, err)
		}
		p, err := r.InclusionProof(t.Context(), i, cp.Size)
		if err != nil {
			t.Fatalf("reader InclusionProof(%d, %d): %v", i, cp.Size, err)
		}
		if err := proof.VerifyInclusion(h, i, cp.Size, h.HashLeaf(e), p, cp.Hash); err != nil {
			t.Fatalf("reader's inclusion proof: %v", err)
		}
		if _, err := unverified.Entry(t.Context(), i); err != nil {
			t.Fatalf("unverified reader Entry(%d): %v", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if cp := checkpointOf(t, r, v); cp.Size != 510 {
		t.Errorf("reader's final checkpoint size = %d, want 510", cp.Size)
	}
	ids, err := r.KeyIndex(t.Context(), "k3")
	if err != nil || len(ids) == 0 {
		t.Errorf("reader KeyIndex(k3) = %v, %v", ids, err)
	}
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTamperedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s, v := newKey(t)
	w := openLog(t, posix.Config{Dir: dir, Signer: s})
	appendAll(t, w, entries("x", 3))
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	// Claim a bigger tree under the same signature.
	forged := bytes.Replace(raw, []byte("\n3\n"), []byte("\n4\n"), 1)
	if err := os.WriteFile(filepath.Join(dir, "checkpoint"), forged, 0o644); err != nil {
		t.Fatal(err)
	}
	r := openLog(t, posix.Config{Dir: dir, Verifier: v})
	if _, err := r.Entry(t.Context(), 3); err == nil || errors.Is(err, ledger.ErrOutOfRange) {
		t.Errorf("Entry(3) under a forged checkpoint = %v, want a signature error", err)
	}
}

func Example() {
	dir, err := os.MkdirTemp("", "keytrail-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/keytrail")
	if err != nil {
		panic(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	l, err := posix.Open(ctx, posix.Config{
		Dir:    dir,
		Signer: signer,
		KeyIDs: func(entry []byte) ([]string, error) { return []string{"hsm-key-1"}, nil },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	defer l.Close(ctx)

	idx, err := l.Append(ctx, []byte(`{"payloadType":"application/vnd.in-toto+json"}`))
	if err != nil {
		panic(err)
	}
	keys, err := l.KeyIndex(ctx, "hsm-key-1")
	if err != nil {
		panic(err)
	}
	fmt.Println(idx, keys)
	// Output: 0 [0]
}
