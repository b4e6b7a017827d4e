package posix

import (
	"bytes"
	"context"
	"fmt"

	"github.com/keytrail/keytrail/ledger"
	"github.com/transparency-dev/tessera"
)

var _ ledger.BatchAppender = (*Log)(nil)

// AppendBatch appends entries and returns their indices, in order, once a
// published checkpoint covers them all: what an Append of each would return,
// with the same exactly-once rule (an entry the log already holds, or that
// appears twice in entries, gets the index of its first copy and adds no
// leaf). It does the work of len(entries) concurrent Appends from the calling
// goroutine: the entries join one group commit together instead of each
// waiting on a goroutine of its own.
//
// On error, some entries may have been appended; appending them again (alone
// or in a batch) returns their indices. ctx behaves as for Append.
func (l *Log) AppendBatch(ctx context.Context, entries [][]byte) ([]uint64, error) {
	if l.add == nil {
		return nil, fmt.Errorf("posix: append to %s: %w", l.dir, ledger.ErrReadOnly)
	}
	for i, e := range entries {
		if len(e) > MaxEntrySize {
			return nil, fmt.Errorf("posix: append to %s: entry %d: %d bytes exceeds the tlog-tiles limit of %d bytes", l.dir, i, len(e), MaxEntrySize)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("posix: append to %s: %w", l.dir, err)
	}
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.inflight.Done()

	// Each distinct entry is looked up once in the leaf-hash map: found there
	// (its index is known), being appended by another caller (theirs: wait
	// for it), or claimed by this call (ours: sequence it). Copies within
	// entries take their first copy's index (same).
	idx := make([]uint64, len(entries))
	hashes := make([]leafHash, len(entries))
	var (
		ours   []int
		theirs []waiting
		first  map[leafHash]int
		same   []int
	)
	for i, e := range entries {
		h := hashLeaf(e)
		hashes[i] = h
		if len(entries) > 1 {
			if first == nil {
				first = make(map[leafHash]int, len(entries))
			}
			if j, ok := first[h]; ok {
				if same == nil {
					same = make([]int, len(entries))
					for k := range same {
						same[k] = k
					}
				}
				same[i] = j
				continue
			}
			first[h] = i
		}
		found, fl, claimed := l.dedup.claim(h)
		switch {
		case claimed:
			ours = append(ours, i)
		case fl != nil:
			theirs = append(theirs, waiting{i, fl})
		default:
			idx[i] = found
		}
	}

	// Sequence ours, in chunks that fit among the queued entries allowed;
	// every claim is ended, with the error of its chunk or of an earlier one.
	var err error
	for start := 0; start < len(ours); start += int(l.cfg.MaxOutstanding) {
		chunk := ours[start:min(start+int(l.cfg.MaxOutstanding), len(ours))]
		var errs []error
		if err == nil {
			errs = l.sequence(ctx, entries, chunk, idx)
		}
		for k, i := range chunk {
			e := err
			if errs != nil {
				e = errs[k]
			}
			l.dedup.end(hashes[i], idx[i], e)
			if err == nil {
				err = e
			}
		}
	}
	if err != nil {
		return nil, err
	}
	// Theirs: take the other caller's index or, if its append failed before
	// sequencing the entry, append the entry again (perhaps as the first).
	for _, w := range theirs {
		select {
		case <-w.fl.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("posix: append to %s: waiting for an identical append: %w", l.dir, ctx.Err())
		}
		if w.fl.err == nil {
			idx[w.i] = w.fl.idx
			continue
		}
		again, err := l.AppendBatch(ctx, entries[w.i:w.i+1])
		if err != nil {
			return nil, err
		}
		idx[w.i] = again[0]
	}

	var last uint64
	for i := range entries {
		if same != nil {
			idx[i] = idx[same[i]]
		}
		last = max(last, idx[i])
	}
	if len(entries) > 0 {
		if err := l.awaiter.await(ctx, last+1); err != nil {
			return nil, fmt.Errorf("posix: append to %s: entry %d sequenced, waiting for a checkpoint to cover it: %w", l.dir, last, err)
		}
		l.dedup.advance(ctx, l.awaiter.size.Load(), l.files)
	}
	return idx, nil
}

// waiting is an entry (at position i) whose identical append by another
// caller is in flight.
type waiting struct {
	i  int
	fl *flight
}

// sequence hands the entries at positions to Tessera as members of one group
// commit and sets their indices once they are sequenced and integrated (not
// yet covered by a published checkpoint). It returns each one's error, nil
// for those sequenced, or nil if all were.
//
// Tessera hashes each entry when it is added and writes it with its batch;
// the futures return (ignoring ctx) once the batch is written.
func (l *Log) sequence(ctx context.Context, entries [][]byte, positions []int, idx []uint64) []error {
	var errs []error // nil while every entry succeeds
	fail := func(k int, err error) {
		if errs == nil {
			errs = make([]error, len(positions))
		}
		errs[k] = err
	}
	failAll := func(err error) []error {
		for k := range positions {
			fail(k, err)
		}
		return errs
	}
	n := int64(len(positions))
	if err := l.slots.Acquire(ctx, n); err != nil {
		return failAll(fmt.Errorf("posix: append to %s: waiting for room for %d entries among %d queued: %w", l.dir, n, l.cfg.MaxOutstanding, err))
	}
	defer l.slots.Release(n)
	leader, err := l.gate.enter(ctx)
	if err != nil {
		return failAll(fmt.Errorf("posix: append to %s: waiting for the batch being written: %w", l.dir, err))
	}
	futures := make([]tessera.IndexFuture, len(positions))
	for k, i := range positions {
		// The copy keeps a caller that modifies its entry before
		// AppendBatch returns from making the bytes differ from the hash.
		futures[k] = l.add(ctx, tessera.NewEntry(bytes.Clone(entries[i])))
	}
	// Every future is resolved, even after an error: each entry's batch is
	// written or failed before the gate opens again.
	for k, f := range futures {
		r, err := f()
		if err != nil {
			if l.isClosed() {
				fail(k, fmt.Errorf("posix: append to %s: %w (%v)", l.dir, ledger.ErrClosed, err))
			} else {
				fail(k, fmt.Errorf("posix: append to %s: sequencing: %w", l.dir, err))
			}
			continue
		}
		idx[positions[k]] = r.Index
	}
	if leader {
		l.gate.done()
	}
	return errs
}
