package scenario

import (
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
)

// MemLog is an in-memory RFC 6962 log with signed checkpoints, for tests,
// golden files and benchmarks that need a log of a given shape fast. It
// implements evidence.LogSource. It is not safe for concurrent use.
type MemLog struct {
	// Witnesses cosign every checkpoint after the log signs it.
	Witnesses []note.Signer

	origin  string
	signer  note.Signer
	tree    *testonly.Tree
	entries map[uint64][]byte
	keys    map[string][]uint64
}

// NewMemLog returns an empty log signing checkpoints with signer.
func NewMemLog(origin string, signer note.Signer) *MemLog {
	return &MemLog{origin: origin, signer: signer, tree: testonly.New(rfc6962.DefaultHasher), entries: map[uint64][]byte{}, keys: map[string][]uint64{}}
}

// Append adds an entry, indexes it by the key IDs it names, and returns its index.
func (l *MemLog) Append(_ context.Context, e []byte) (uint64, error) {
	i := l.tree.Size()
	l.tree.AppendData(e)
	l.entries[i] = e
	ids, err := evidence.SubjectKeyIDs(e)
	if err == nil {
		for _, id := range ids {
			l.keys[id] = append(l.keys[id], i)
		}
	}
	return i, nil
}

// AppendFiller adds n leaves whose contents are not kept (Entry fails for them):
// unrelated traffic for benchmarks of large logs.
func (l *MemLog) AppendFiller(n int) {
	var b [16]byte
	for range n {
		i := l.tree.Size()
		copy(b[:], fmt.Sprintf("filler %09d", i))
		l.tree.Append(rfc6962.DefaultHasher.HashLeaf(b[:]))
	}
}

// Size is the number of leaves.
func (l *MemLog) Size() uint64 { return l.tree.Size() }

// Checkpoint signs a checkpoint for the current size.
func (l *MemLog) Checkpoint(context.Context) ([]byte, error) {
	return l.CheckpointAt(l.tree.Size())
}

// CheckpointAt signs a checkpoint for an earlier size.
func (l *MemLog) CheckpointAt(size uint64) ([]byte, error) {
	if size > l.tree.Size() {
		return nil, fmt.Errorf("memlog: size %d beyond %d", size, l.tree.Size())
	}
	body := checkpoint.Checkpoint{Origin: l.origin, Size: size, Root: l.tree.HashAt(size)}.Marshal()
	return note.Sign(&note.Note{Text: string(body)}, append([]note.Signer{l.signer}, l.Witnesses...)...)
}

// KeyIndex returns the indices of entries naming keyID.
func (l *MemLog) KeyIndex(_ context.Context, keyID string) ([]uint64, error) {
	return l.keys[keyID], nil
}

// Entry returns an entry's bytes.
func (l *MemLog) Entry(_ context.Context, i uint64) ([]byte, error) {
	e, ok := l.entries[i]
	if !ok {
		return nil, fmt.Errorf("memlog: entry %d not kept", i)
	}
	return e, nil
}

// InclusionProof returns the proof of leaf i in the tree of size size.
func (l *MemLog) InclusionProof(_ context.Context, i, size uint64) ([][]byte, error) {
	return l.tree.InclusionProof(i, size)
}

// ConsistencyProof returns the proof between two sizes.
func (l *MemLog) ConsistencyProof(_ context.Context, s1, s2 uint64) ([][]byte, error) {
	return l.tree.ConsistencyProof(s1, s2)
}
