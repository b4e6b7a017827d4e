package posix_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/keytrail/keytrail/ledger/posix"
)

// TestAppendBatchLargerThanQueue: a batch larger than MaxOutstanding goes to
// Tessera in chunks, and concurrent batches and single Appends competing for
// the queue's room all complete (room is taken per chunk, all at once, so
// that no two callers each hold part of what the other waits for).
func TestAppendBatchLargerThanQueue(t *testing.T) {
	s, v := newKey(t)
	l := openLog(t, posix.Config{Dir: t.TempDir(), Signer: s, Verifier: v, MaxOutstanding: 8})
	var wg sync.WaitGroup
	results := make([][]uint64, 6)
	batches := make([][][]byte, len(results))
	for b := range batches {
		batches[b] = entries(string(rune('a'+b)), 50)
		wg.Go(func() {
			idx, err := l.AppendBatch(t.Context(), batches[b])
			if err != nil {
				t.Errorf("batch %d: %v", b, err)
			}
			results[b] = idx
		})
	}
	single := appendAll(t, l, entries("single", 20))
	wg.Wait()
	seen := map[uint64]bool{}
	for _, i := range single {
		seen[i] = true
	}
	for b, idx := range results {
		for i, x := range idx {
			if seen[x] {
				t.Fatalf("index %d returned twice", x)
			}
			seen[x] = true
			e, err := l.Entry(t.Context(), x)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(e, batches[b][i]) {
				t.Errorf("Entry(%d) = %q, want %q", x, e, batches[b][i])
			}
		}
	}
	if len(seen) != 6*50+20 {
		t.Errorf("%d distinct indices, want %d", len(seen), 6*50+20)
	}
}
