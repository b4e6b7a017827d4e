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
			return nil, fmt.Errorf("posix: append to %s: entry %d of the batch: %d bytes exceeds the tlog-tiles limit of %d bytes", l.dir, i, len(e), MaxEntrySize)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("posix: append to %s: %w", l.dir, err)
	}
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.inflight.Done()

	idx := make([]uint64, len(entries))
	// Each distinct entry is claimed once; copies take the first one's index.
	first := make(map[leafHash]int, len(entries))
	same := make([]int, len(entries)) // position whose index entry i takes
	hashes := make([]leafHash, len(entries))
	var ours []int   // positions this call sequences
	var theirs []int // positions an identical append elsewhere is sequencing
	flights := make(map[int]*flight)
	for i, e := range entries {
		h := hashLeaf(e)
		hashes[i] = h
		if j, ok := first[h]; ok {
			same[i] = j
			continue
		}
		first[h], same[i] = i, i
		found, fl, claimed := l.dedup.claim(h)
		switch {
		case claimed:
			ours = append(ours, i)
		case fl != nil:
			theirs = append(theirs, i)
			flights[i] = fl
		default:
			idx[i] = found
		}
	}

	// Sequence ours, in chunks that fit among the queued entries allowed.
	var err error
	for start := 0; start < len(ours); start += int(l.cfg.MaxOutstanding) {
		chunk := ours[start:min(start+int(l.cfg.MaxOutstanding), len(ours))]
		errs := make([]error, len(chunk))
		if err == nil {
			errs = l.sequenceBatch(ctx, entries, chunk, idx)
		} else {
			for k := range errs {
				errs[k] = err
			}
		}
		for k, i := range chunk {
			l.dedup.end(hashes[i], idx[i], errs[k])
			if err == nil {
				err = errs[k]
			}
		}
	}
	if err != nil {
		return nil, err
	}
	// Identical appends elsewhere: take their index, or append again as
	// Append does if theirs failed.
	for _, i := range theirs {
		fl := flights[i]
		select {
		case <-fl.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("posix: append to %s: waiting for an identical append: %w", l.dir, ctx.Err())
		}
		if fl.err == nil {
			idx[i] = fl.idx
			continue
		}
		if idx[i], err = l.Append(ctx, entries[i]); err != nil {
			return nil, err
		}
	}

	var last uint64
	for i := range entries {
		idx[i] = idx[same[i]]
		last = max(last, idx[i])
	}
	if len(entries) > 0 {
		if err := l.awaiter.await(ctx, last+1); err != nil {
			return nil, fmt.Errorf("posix: append to %s: entries up to %d sequenced, waiting for a checkpoint to cover them: %w", l.dir, last, err)
		}
		l.dedup.advance(ctx, l.awaiter.size.Load(), l.files)
	}
	return idx, nil
}

// sequenceBatch hands the entries at positions to Tessera as members of one
// group commit and sets their indices once they are sequenced and integrated.
// It returns each one's error, nil for those sequenced.
func (l *Log) sequenceBatch(ctx context.Context, entries [][]byte, positions []int, idx []uint64) []error {
	errs := make([]error, len(positions))
	all := func(err error) []error {
		for k := range errs {
			errs[k] = err
		}
		return errs
	}
	n := int64(len(positions))
	if err := l.slots.Acquire(ctx, n); err != nil {
		return all(fmt.Errorf("posix: append to %s: waiting for room for %d entries among %d queued: %w", l.dir, n, l.cfg.MaxOutstanding, err))
	}
	defer l.slots.Release(n)
	leader, err := l.gate.enter(ctx)
	if err != nil {
		return all(fmt.Errorf("posix: append to %s: waiting for the batch being written: %w", l.dir, err))
	}
	futures := make([]tessera.IndexFuture, len(positions))
	for k, i := range positions {
		// As in sequence: the copy keeps the hashed bytes fixed.
		futures[k] = l.add(ctx, tessera.NewEntry(bytes.Clone(entries[i])))
	}
	// Every future is resolved, even after an error: each entry's batch is
	// written or failed before the gate opens again.
	for k, f := range futures {
		r, err := f()
		if err != nil {
			if l.isClosed() {
				errs[k] = fmt.Errorf("posix: append to %s: %w (%v)", l.dir, ledger.ErrClosed, err)
			} else {
				errs[k] = fmt.Errorf("posix: append to %s: sequencing: %w", l.dir, err)
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
