// Package ledgertest is the conformance suite of the ledger contract
// (package ledger): one set of tests that every backend's own tests run
// against real parts (ledger/posix on a temporary directory, ledger/trillian
// on a real Trillian with PostgreSQL and with MariaDB).
//
// The cases:
//
//   - AppendReadBack: indices are dense from 0, entries read back byte for
//     byte, the checkpoint verifies with the log's key and covers them.
//   - Proofs: after each of many waves (tree sizes 1 to a few hundred, across
//     tile and bundle boundaries), inclusion proofs of leaves at every kept
//     checkpoint and consistency proofs between every pair of them verify
//     against the signed roots and against roots recomputed from the entries.
//   - OutOfRange: entries, proofs and sizes beyond the checkpoint fail with
//     ledger.ErrOutOfRange; malformed sizes fail.
//   - Restart: acknowledged entries survive Close and reopening, the new
//     checkpoint is consistent with the old one (verified proof), and
//     appending continues at the next index.
//   - Duplicates: a byte-identical entry keeps its first index, before and
//     after a restart, and the tree does not grow.
//   - ConcurrentWriters: many goroutines append distinct entries and copies
//     of the same ones at once; every distinct entry gets one leaf.
//   - KeyIndex: the leaves naming each key, in order, before and after a restart.
//   - Batches (backends that implement ledger.BatchAppender): a batch's
//     entries read back at the indices returned, copies within a batch and
//     entries already logged keep their first index, concurrent batches and
//     single Appends sharing entries add one leaf per distinct entry, an
//     oversized entry fails the batch before anything is appended, and a
//     batch after a restart finds its entries.
//   - ReadOnly: a log opened without a signer refuses Append and serves reads.
//   - Closed: after Close every method fails with ledger.ErrClosed.
package ledgertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/ledger"
)

// Origin is the origin of the logs the suite creates.
const Origin = "example.com/keytrail/conformance"

// Config is what the suite opens a log with.
type Config struct {
	Signer   note.Signer // nil: open read-only
	Verifier note.Verifier
	KeyIDs   ledger.KeyIDsFunc
	// Witnesses, if set, cosign the writer's checkpoints (RunWitnessing).
	Witnesses ledger.Cosigner
}

// Opener opens one log: for appending if c.Signer is set, read-only
// otherwise. It is called again after Close to reopen the same log, and may
// be called for a reader while a writer is open.
type Opener func(t *testing.T, c Config) ledger.Log

// NewLog creates a fresh, empty log and returns its Opener.
type NewLog func(t *testing.T) Opener

// KeyIDs reads the suite's entries: "key=a;key=b;anything else".
func KeyIDs(entry []byte) ([]string, error) {
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

// Run runs every case against logs made by newLog.
func Run(t *testing.T, newLog NewLog) {
	s, v := newKey(t)
	h := &harness{signer: s, verifier: v}
	for _, c := range []struct {
		name string
		f    func(*testing.T, *harness, Opener)
	}{
		{"AppendReadBack", testAppendReadBack},
		{"Proofs", testProofs},
		{"OutOfRange", testOutOfRange},
		{"Restart", testRestart},
		{"Duplicates", testDuplicates},
		{"ConcurrentWriters", testConcurrentWriters},
		{"KeyIndex", testKeyIndex},
		{"Batches", testBatches},
		{"ReadOnly", testReadOnly},
		{"Closed", testClosed},
	} {
		t.Run(c.name, func(t *testing.T) { c.f(t, h, newLog(t)) })
	}
}

type harness struct {
	signer   note.Signer
	verifier note.Verifier
}

func (h *harness) writer(t *testing.T, open Opener) ledger.Log {
	t.Helper()
	return open(t, Config{Signer: h.signer, Verifier: h.verifier, KeyIDs: KeyIDs})
}

func (h *harness) reader(t *testing.T, open Opener) ledger.Log {
	t.Helper()
	return open(t, Config{Verifier: h.verifier, KeyIDs: KeyIDs})
}

func newKey(t testing.TB) (note.Signer, note.Verifier) {
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
	return s, v
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// checkpoint returns l's verified checkpoint.
func (h *harness) checkpoint(t *testing.T, l ledger.Log) flog.Checkpoint {
	t.Helper()
	raw, err := l.Checkpoint(ctx(t))
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, Origin, h.verifier)
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v\n%s", err, raw)
	}
	return *cp
}

func entries(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%d;key=k%d;key=all", prefix, i, i%3)
	}
	return out
}

func appendAll(t *testing.T, l ledger.Log, es [][]byte) []uint64 {
	t.Helper()
	idx := make([]uint64, len(es))
	for i, e := range es {
		var err error
		if idx[i], err = l.Append(ctx(t), e); err != nil {
			t.Fatalf("Append(%q): %v", e, err)
		}
	}
	return idx
}

// appendParallel appends es concurrently (the way a busy writer batches) and
// returns their indices.
func appendParallel(t *testing.T, l ledger.Log, es [][]byte) []uint64 {
	t.Helper()
	idx := make([]uint64, len(es))
	errs := make([]error, len(es))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i, e := range es {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			idx[i], errs[i] = l.Append(ctx(t), e)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return idx
}

// rootAt recomputes the root of the first n entries.
func rootAt(t *testing.T, all [][]byte, n uint64) []byte {
	t.Helper()
	r := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for _, e := range all[:n] {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(e), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readAll(t *testing.T, l ledger.Log, n uint64) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	for i := range n {
		e, err := l.Entry(ctx(t), i)
		if err != nil {
			t.Fatalf("Entry(%d): %v", i, err)
		}
		out[i] = e
	}
	return out
}

func testAppendReadBack(t *testing.T, h *harness, open Opener) {
	l := h.writer(t, open)
	cp := h.checkpoint(t, l)
	if cp.Size != 0 || !bytes.Equal(cp.Hash, rfc6962.DefaultHasher.EmptyRoot()) {
		t.Fatalf("new log's checkpoint: size %d root %x, want the empty tree", cp.Size, cp.Hash)
	}
	es := entries("readback", 20)
	es = append(es, bytes.Repeat([]byte{0xff}, 60000), []byte("\x00binary\n\r"))
	idx := appendAll(t, l, es)
	for i := range idx {
		if idx[i] != uint64(i) {
			t.Fatalf("entry %d got index %d", i, idx[i])
		}
	}
	cp = h.checkpoint(t, l)
	if cp.Size != uint64(len(es)) {
		t.Fatalf("checkpoint size %d, want %d", cp.Size, len(es))
	}
	got := readAll(t, l, cp.Size)
	for i := range es {
		if !bytes.Equal(got[i], es[i]) {
			t.Errorf("Entry(%d) = %.40q, want %.40q", i, got[i], es[i])
		}
	}
	if root := rootAt(t, es, cp.Size); !bytes.Equal(root, cp.Hash) {
		t.Errorf("checkpoint root %x, entries hash to %x", cp.Hash, root)
	}
}

func testProofs(t *testing.T, h *harness, open Opener) {
	l := h.writer(t, open)
	var all [][]byte
	var cps []flog.Checkpoint
	// Wave sizes cross the 256-leaf tile and bundle boundary.
	for w, n := range []int{1, 1, 2, 3, 7, 16, 50, 100, 76, 1, 60} {
		es := entries(fmt.Sprintf("wave%d", w), n)
		var idx []uint64
		if n > 8 {
			idx = appendParallel(t, l, es)
		} else {
			idx = appendAll(t, l, es)
		}
		// Parallel appends may be sequenced in any order.
		order := make([][]byte, n)
		for i, x := range idx {
			if x < uint64(len(all)) || x >= uint64(len(all)+n) {
				t.Fatalf("wave %d: index %d outside [%d, %d)", w, x, len(all), len(all)+n)
			}
			order[x-uint64(len(all))] = es[i]
		}
		all = append(all, order...)
		cp := h.checkpoint(t, l)
		if cp.Size != uint64(len(all)) {
			t.Fatalf("after wave %d: checkpoint size %d, want %d", w, cp.Size, len(all))
		}
		if root := rootAt(t, all, cp.Size); !bytes.Equal(root, cp.Hash) {
			t.Fatalf("after wave %d: checkpoint root %x, entries hash to %x", w, cp.Hash, root)
		}
		cps = append(cps, cp)
	}
	for _, cp := range cps {
		for _, i := range sample(cp.Size) {
			p, err := l.InclusionProof(ctx(t), i, cp.Size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, cp.Size, err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, rfc6962.DefaultHasher.HashLeaf(all[i]), p, cp.Hash); err != nil {
				t.Errorf("inclusion proof of %d in %d: %v", i, cp.Size, err)
			}
		}
	}
	for a, c1 := range cps {
		for _, c2 := range cps[a:] {
			p, err := l.ConsistencyProof(ctx(t), c1.Size, c2.Size)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", c1.Size, c2.Size, err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, c1.Size, c2.Size, p, c1.Hash, c2.Hash); err != nil {
				t.Errorf("consistency proof %d -> %d: %v", c1.Size, c2.Size, err)
			}
		}
	}
}

// sample picks leaves of a tree of size n: the ends, powers of two around, some between.
func sample(n uint64) []uint64 {
	set := map[uint64]bool{0: true, n - 1: true, n / 2: true}
	for p := uint64(1); p < n; p *= 2 {
		set[p-1], set[p] = true, true
	}
	var out []uint64
	for i := range set {
		if i < n {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

func testOutOfRange(t *testing.T, h *harness, open Opener) {
	l := h.writer(t, open)
	appendAll(t, l, entries("range", 5))
	n := h.checkpoint(t, l).Size
	c := ctx(t)
	for name, f := range map[string]func() error{
		"Entry(size)":                      func() error { _, err := l.Entry(c, n); return err },
		"Entry(huge)":                      func() error { _, err := l.Entry(c, 1<<62); return err },
		"Entry(max)":                       func() error { _, err := l.Entry(c, ^uint64(0)); return err },
		"InclusionProof(max, max)":         func() error { _, err := l.InclusionProof(c, ^uint64(0), ^uint64(0)); return err },
		"InclusionProof(size, size)":       func() error { _, err := l.InclusionProof(c, n, n); return err },
		"InclusionProof(0, size+1)":        func() error { _, err := l.InclusionProof(c, 0, n+1); return err },
		"InclusionProof(3, 3)":             func() error { _, err := l.InclusionProof(c, 3, 3); return err },
		"ConsistencyProof(1, size+1)":      func() error { _, err := l.ConsistencyProof(c, 1, n+1); return err },
		"ConsistencyProof(size+1, size+2)": func() error { _, err := l.ConsistencyProof(c, n+1, n+2); return err },
	} {
		if err := f(); !errors.Is(err, ledger.ErrOutOfRange) {
			t.Errorf("%s = %v, want ErrOutOfRange", name, err)
		}
	}
	for name, f := range map[string]func() error{
		"ConsistencyProof(0, 1)": func() error { _, err := l.ConsistencyProof(c, 0, 1); return err },
		"ConsistencyProof(3, 2)": func() error { _, err := l.ConsistencyProof(c, 3, 2); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s succeeded", name)
		}
	}
	if p, err := l.ConsistencyProof(c, n, n); err != nil || len(p) != 0 {
		t.Errorf("ConsistencyProof(size, size) = %d hashes, %v; want an empty proof", len(p), err)
	}
}

func testRestart(t *testing.T, h *harness, open Opener) {
	l := h.writer(t, open)
	first := entries("before", 30)
	appendParallel(t, l, first[:20])
	appendAll(t, l, first[20:])
	before := h.checkpoint(t, l)
	want := readAll(t, l, before.Size)
	if err := l.Close(ctx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for round := range 2 {
		l = h.writer(t, open)
		after := h.checkpoint(t, l)
		if after.Size < before.Size {
			t.Fatalf("round %d: checkpoint shrank from %d to %d across a restart", round, before.Size, after.Size)
		}
		got := readAll(t, l, before.Size)
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("round %d: Entry(%d) = %q after restart, want %q", round, i, got[i], want[i])
			}
		}
		more := entries(fmt.Sprintf("after%d", round), 5)
		idx := appendAll(t, l, more)
		if idx[0] != after.Size {
			t.Errorf("round %d: first append after restart at %d, want %d", round, idx[0], after.Size)
		}
		now := h.checkpoint(t, l)
		p, err := l.ConsistencyProof(ctx(t), before.Size, now.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, before.Size, now.Size, p, before.Hash, now.Hash); err != nil {
			t.Fatalf("round %d: checkpoint after restart is not consistent with the one before: %v", round, err)
		}
		want = readAll(t, l, now.Size)
		before = now
		if err := l.Close(ctx(t)); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func testDuplicates(t *testing.T, h *harness, open Opener) {
	l := h.writer(t, open)
	es := entries("dup", 10)
	idx := appendAll(t, l, es)
	check := func(stage string) {
		t.Helper()
		size := h.checkpoint(t, l).Size
		for i, e := range es {
			got, err := l.Append(ctx(t), e)
			if err != nil {
				t.Fatalf("%s: Append(duplicate): %v", stage, err)
			}
			if got != idx[i] {
				t.Errorf("%s: Append(duplicate of %d) = %d", stage, idx[i], got)
			}
		}
		// Duplicates appended concurrently with each other.
		got := appendParallel(t, l, append(slices.Clone(es), es...))
		for i, g := range got {
			if g != idx[i%len(es)] {
				t.Errorf("%s: concurrent duplicate of %d got %d", stage, idx[i%len(es)], g)
			}
		}
		if after := h.checkpoint(t, l).Size; after != size {
			t.Errorf("%s: duplicates grew the tree from %d to %d", stage, size, after)
		}
	}
	check("same session")
	if err := l.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	l = h.writer(t, open)
	check("after restart")
}

func testConcurrentWriters(t *testing.T, h *harness, open Opener) {
	l := h.writer(t, open)
	const writers, each = 16, 25
	var (
		mu  sync.Mutex
		got = map[string]uint64{}
		wg  sync.WaitGroup
	)
	shared := entries("shared", 10)
	for w := range writers {
		wg.Go(func() {
			mine := entries(fmt.Sprintf("w%d", w), each)
			for i, e := range mine {
				for _, x := range [][]byte{e, shared[(w+i)%len(shared)]} {
					idx, err := l.Append(ctx(t), x)
					if err != nil {
						t.Errorf("writer %d: Append: %v", w, err)
						return
					}
					mu.Lock()
					if prev, ok := got[string(x)]; ok && prev != idx {
						t.Errorf("entry %q at %d and at %d", x, prev, idx)
					}
					got[string(x)] = idx
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	cp := h.checkpoint(t, l)
	if want := uint64(writers*each + len(shared)); cp.Size != want || uint64(len(got)) != want {
		t.Fatalf("checkpoint size %d, %d distinct entries acknowledged; want %d", cp.Size, len(got), want)
	}
	checkAcknowledged(t, l, cp, got)
}

// checkAcknowledged reads the whole tree of cp: every acknowledged entry (by
// its bytes) is at its index, and the entries hash to cp's root.
func checkAcknowledged(t *testing.T, l ledger.Log, cp flog.Checkpoint, got map[string]uint64) {
	t.Helper()
	all := readAll(t, l, cp.Size)
	for e, i := range got {
		if string(all[i]) != e {
			t.Errorf("Entry(%d) = %q, acknowledged for %q", i, all[i], e)
		}
	}
	if root := rootAt(t, all, cp.Size); !bytes.Equal(root, cp.Hash) {
		t.Errorf("checkpoint root %x, entries hash to %x", cp.Hash, root)
	}
}

func testKeyIndex(t *testing.T, h *harness, open Opener) {
	l := h.writer(t, open)
	es := append(entries("ki", 12), []byte("names no key"), []byte("key=k1;key=k1;twice"))
	idx := appendAll(t, l, es)
	want := map[string][]uint64{}
	for i, e := range es {
		ids, err := KeyIDs(e)
		if err != nil {
			continue
		}
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			want[id] = append(want[id], idx[i])
		}
	}
	check := func(l ledger.Log) {
		t.Helper()
		for id, w := range want {
			got, err := l.KeyIndex(ctx(t), id)
			if err != nil {
				t.Fatalf("KeyIndex(%q): %v", id, err)
			}
			if !slices.Equal(got, w) {
				t.Errorf("KeyIndex(%q) = %v, want %v", id, got, w)
			}
		}
		if got, err := l.KeyIndex(ctx(t), "absent"); err != nil || len(got) != 0 {
			t.Errorf("KeyIndex(absent) = %v, %v", got, err)
		}
	}
	check(l)
	more := entries("ki2", 4)
	for i, x := range appendAll(t, l, more) {
		ids, _ := KeyIDs(more[i])
		for _, id := range ids {
			want[id] = append(want[id], x)
		}
	}
	check(l)
	if err := l.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	check(h.writer(t, open))
}

func testBatches(t *testing.T, h *harness, open Opener) {
	l := h.writer(t, open)
	ba, ok := l.(ledger.BatchAppender)
	if !ok {
		t.Skipf("%T does not implement ledger.BatchAppender", l)
	}
	// checkBatch appends batch and checks that each entry reads back at its
	// index, that copies share one, and that the tree grew by want leaves.
	checkBatch := func(stage string, batch [][]byte, want uint64) []uint64 {
		t.Helper()
		before := h.checkpoint(t, l).Size
		idx, err := ba.AppendBatch(ctx(t), batch)
		if err != nil {
			t.Fatalf("%s: AppendBatch: %v", stage, err)
		}
		if len(idx) != len(batch) {
			t.Fatalf("%s: AppendBatch returned %d indices for %d entries", stage, len(idx), len(batch))
		}
		cp := h.checkpoint(t, l)
		if cp.Size != before+want {
			t.Errorf("%s: tree grew from %d to %d, want %d new leaves", stage, before, cp.Size, want)
		}
		at := map[string]uint64{}
		for i, e := range batch {
			if idx[i] >= cp.Size {
				t.Fatalf("%s: entry %d got index %d, beyond the checkpoint (size %d) returned after AppendBatch", stage, i, idx[i], cp.Size)
			}
			if prev, ok := at[string(e)]; ok && prev != idx[i] {
				t.Errorf("%s: copies of one entry at %d and %d", stage, prev, idx[i])
			}
			at[string(e)] = idx[i]
			got, err := l.Entry(ctx(t), idx[i])
			if err != nil {
				t.Fatalf("%s: Entry(%d): %v", stage, idx[i], err)
			}
			if !bytes.Equal(got, e) {
				t.Errorf("%s: Entry(%d) = %q, want %q", stage, idx[i], got, e)
			}
		}
		return idx
	}

	if idx, err := ba.AppendBatch(ctx(t), nil); err != nil || len(idx) != 0 {
		t.Errorf("AppendBatch(nil) = %v, %v; want no indices, no error", idx, err)
	}
	fresh := entries("batch", 150)
	first := checkBatch("distinct entries and copies", append(slices.Clone(fresh), fresh[3], fresh[0], fresh[3]), 150)
	single, err := l.Append(ctx(t), []byte("single;key=k1"))
	if err != nil {
		t.Fatal(err)
	}
	mixed := [][]byte{[]byte("single;key=k1"), fresh[7], []byte("new;key=k2")}
	idx := checkBatch("entries already logged", mixed, 1)
	if idx[0] != single || idx[1] != first[7] {
		t.Errorf("logged entries got %d and %d in a batch, were at %d and %d", idx[0], idx[1], single, first[7])
	}

	// Concurrent batches and single Appends sharing entries.
	before := h.checkpoint(t, l).Size
	shared := entries("bshared", 20)
	const batches, each = 8, 40
	var (
		mu  sync.Mutex
		got = map[string]uint64{}
		wg  sync.WaitGroup
	)
	record := func(e []byte, i uint64) {
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := got[string(e)]; ok && prev != i {
			t.Errorf("entry %q at %d and at %d", e, prev, i)
		}
		got[string(e)] = i
	}
	for b := range batches {
		wg.Go(func() {
			batch := append(entries(fmt.Sprintf("b%d", b), each), shared...)
			slices.Reverse(batch[b%2*each:]) // vary the order of the shared ones
			idx, err := ba.AppendBatch(ctx(t), batch)
			if err != nil {
				t.Errorf("batch %d: %v", b, err)
				return
			}
			for i, e := range batch {
				record(e, idx[i])
			}
		})
		wg.Go(func() {
			e := shared[b%len(shared)]
			i, err := l.Append(ctx(t), e)
			if err != nil {
				t.Errorf("Append: %v", err)
				return
			}
			record(e, i)
		})
	}
	wg.Wait()
	cp := h.checkpoint(t, l)
	if want := before + batches*each + uint64(len(shared)); cp.Size != want {
		t.Errorf("after concurrent batches: tree of %d, want %d", cp.Size, want)
	}
	checkAcknowledged(t, l, cp, got)

	// An oversized entry fails the batch before anything is appended.
	if _, err := ba.AppendBatch(ctx(t), [][]byte{[]byte("ok;key=k0"), bytes.Repeat([]byte("x"), 1<<16)}); err == nil {
		t.Error("AppendBatch with a 65,536-byte entry succeeded")
	}
	if after := h.checkpoint(t, l).Size; after != cp.Size {
		t.Errorf("a failed batch grew the tree from %d to %d", cp.Size, after)
	}

	if err := l.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := ba.AppendBatch(ctx(t), fresh[:1]); !errors.Is(err, ledger.ErrClosed) {
		t.Errorf("AppendBatch after Close = %v, want ErrClosed", err)
	}
	l = h.writer(t, open)
	ba = l.(ledger.BatchAppender)
	again := checkBatch("after restart", fresh, 0)
	if !slices.Equal(again, first[:len(fresh)]) {
		t.Errorf("after restart the batch got indices %v, want %v", again, first[:len(fresh)])
	}
	r := h.reader(t, open)
	if rb, ok := r.(ledger.BatchAppender); ok {
		if _, err := rb.AppendBatch(ctx(t), fresh[:1]); !errors.Is(err, ledger.ErrReadOnly) {
			t.Errorf("reader AppendBatch = %v, want ErrReadOnly", err)
		}
	}
}

func testReadOnly(t *testing.T, h *harness, open Opener) {
	w := h.writer(t, open)
	es := entries("ro", 5)
	appendAll(t, w, es)
	r := h.reader(t, open)
	if _, err := r.Append(ctx(t), []byte("x")); !errors.Is(err, ledger.ErrReadOnly) {
		t.Errorf("reader Append = %v, want ErrReadOnly", err)
	}
	cp := h.checkpoint(t, r)
	if cp.Size != uint64(len(es)) {
		t.Errorf("reader checkpoint size %d, want %d", cp.Size, len(es))
	}
	got := readAll(t, r, cp.Size)
	for i := range es {
		if !bytes.Equal(got[i], es[i]) {
			t.Errorf("reader Entry(%d) = %q", i, got[i])
		}
	}
	// The reader follows the writer.
	appendAll(t, w, entries("ro2", 2))
	if cp := h.checkpoint(t, r); cp.Size != uint64(len(es)+2) {
		t.Errorf("reader checkpoint size %d after the writer appended, want %d", cp.Size, len(es)+2)
	}
}

func testClosed(t *testing.T, h *harness, open Opener) {
	l := h.writer(t, open)
	appendAll(t, l, entries("closed", 2))
	if err := l.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	c := ctx(t)
	for name, f := range map[string]func() error{
		"Append":           func() error { _, err := l.Append(c, []byte("late")); return err },
		"Checkpoint":       func() error { _, err := l.Checkpoint(c); return err },
		"Entry":            func() error { _, err := l.Entry(c, 0); return err },
		"InclusionProof":   func() error { _, err := l.InclusionProof(c, 0, 1); return err },
		"ConsistencyProof": func() error { _, err := l.ConsistencyProof(c, 1, 2); return err },
		"KeyIndex":         func() error { _, err := l.KeyIndex(c, "k0"); return err },
		"Close":            func() error { return l.Close(c) },
	} {
		if err := f(); !errors.Is(err, ledger.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}
