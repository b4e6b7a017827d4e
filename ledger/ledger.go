// Package ledger is keytrail's append-only Merkle log: the contract every backend meets.
//
// A ledger stores each record (the exact bytes of a DSSE envelope) as one leaf of an
// RFC 6962 Merkle tree, and publishes C2SP signed-note checkpoints
// (https://c2sp.org/tlog-checkpoint) that commit to the tree. Backends live in
// sibling packages: ledger/posix is the embedded default (Tessera's POSIX storage,
// a C2SP tlog-tiles directory), ledger/trillian keeps the log in a Trillian log
// server; ledger/open opens either from a --ledger value.
//
// The contract, for every backend:
//   - Append returns an index only once the entry is durably sequenced, integrated
//     into the tree, and covered by a published checkpoint.
//   - Appends are exactly-once: Append of a byte-identical entry returns the
//     original index (the first leaf holding those bytes) and adds no leaf;
//     concurrent identical Appends produce one leaf and all return its index.
//     The backend enforces this itself, across restarts and crashes, before it
//     accepts an append; best-effort deduplication is not enough.
//   - Proofs and entries are returned for any tree size up to the latest checkpoint;
//     requests beyond it fail with ErrOutOfRange.
//   - KeyIndex is a cache derived from the log alone: it can be deleted and rebuilt.
//   - Entries are at most 65,535 bytes (tlog-tiles' limit, so that every log can
//     be exported as tiles); a backend may refuse empty ones (Trillian does).
//     keytrail's entries, DSSE envelopes, are never empty.
//
// ledger/ledgertest is this contract as a conformance suite; every backend's
// tests run it (ledger/posix, and ledger/trillian on PostgreSQL and MariaDB).
package ledger

import (
	"context"
	"errors"
	"fmt"
)

// Errors returned by every backend; test them with errors.Is.
var (
	// ErrOutOfRange: an index or tree size beyond what the log has published.
	ErrOutOfRange = errors.New("ledger: out of range")
	// ErrClosed: the ledger was closed.
	ErrClosed = errors.New("ledger: closed")
	// ErrReadOnly: an append on a ledger opened without a checkpoint signer.
	ErrReadOnly = errors.New("ledger: opened read-only")
)

// Log is the ledger contract. Implementations are safe for concurrent use.
type Log interface {
	// Append adds entry as a leaf and returns its index once the entry is durably
	// integrated and a published checkpoint covers it. If the log already holds
	// a byte-identical entry, Append returns that entry's index and adds nothing.
	Append(ctx context.Context, entry []byte) (uint64, error)
	// Checkpoint returns the latest published checkpoint, a C2SP signed note.
	Checkpoint(ctx context.Context) ([]byte, error)
	// InclusionProof returns the RFC 6962 inclusion proof of leaf index in the tree
	// of size treeSize.
	InclusionProof(ctx context.Context, index, treeSize uint64) ([][]byte, error)
	// ConsistencyProof returns the RFC 6962 consistency proof between two tree sizes,
	// 0 < size1 <= size2.
	ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error)
	// Entry returns the exact bytes of leaf index.
	Entry(ctx context.Context, index uint64) ([]byte, error)
	// KeyIndex returns, in ascending order, the indices of the leaves whose records
	// name keyID as a subject, up to the latest checkpoint.
	KeyIndex(ctx context.Context, keyID string) ([]uint64, error)
	// Close flushes and releases the ledger.
	Close(ctx context.Context) error
}

// BatchAppender is implemented by backends that append many entries together
// more cheaply than one Append each (ledger/posix).
type BatchAppender interface {
	// AppendBatch appends entries and returns their indices, in order, once
	// a published checkpoint covers them all: what an Append of each would
	// return, exactly-once alike (an entry the log holds, or that appears
	// twice in entries, gets the index of its first copy and adds no leaf).
	// On error some entries may have been appended; appending them again
	// returns their indices.
	AppendBatch(ctx context.Context, entries [][]byte) ([]uint64, error)
}

// AppendAll appends entries and returns their indices, in order: in one
// AppendBatch if l implements BatchAppender, else by one Append after
// another. On error some entries may have been appended; appending them
// again returns their indices.
func AppendAll(ctx context.Context, l Log, entries [][]byte) ([]uint64, error) {
	if ba, ok := l.(BatchAppender); ok {
		return ba.AppendBatch(ctx, entries)
	}
	idx := make([]uint64, len(entries))
	for i, e := range entries {
		var err error
		if idx[i], err = l.Append(ctx, e); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return idx, nil
}

// KeyIDsFunc extracts the key IDs an entry names. The ledger calls it to build
// its key index; it must be deterministic. An error means the entry names no key.
type KeyIDsFunc func(entry []byte) ([]string, error)
