// Package witnesstest runs witnesses for tests: keytrail's own (witness.Server,
// in process) and torchwood's litewitness (a real witness keytrail did not
// write, started from PATH), and holds the expectations of
// c2sp.org/tlog-witness that both must meet, run against a small log whose
// checkpoints it signs.
package witnesstest

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

// Log is a transparency log for tests: an RFC 6962 tree of small leaves and
// a note key that signs its checkpoints.
type Log struct {
	Origin   string
	Signer   note.Signer
	Verifier note.Verifier
	VKey     string // the log's signed-note verifier key
	tree     *testonly.Tree
}

// NewLog returns an empty log with a fresh key named origin.
func NewLog(t testing.TB, origin string) *Log {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
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
	return &Log{Origin: origin, Signer: s, Verifier: v, VKey: vkey, tree: testonly.New(rfc6962.DefaultHasher)}
}

// Grow appends n leaves.
func (l *Log) Grow(n int) {
	for range n {
		l.tree.AppendData(fmt.Appendf(nil, "%s leaf %d", l.Origin, l.tree.Size()))
	}
}

// Size is the number of leaves.
func (l *Log) Size() uint64 { return l.tree.Size() }

// Root is the root hash of the tree of the given size.
func (l *Log) Root(size uint64) []byte { return l.tree.HashAt(size) }

// Checkpoint returns the log's signed checkpoint of the tree of the given size.
func (l *Log) Checkpoint(t testing.TB, size uint64) []byte {
	t.Helper()
	return l.sign(t, size, l.tree.HashAt(size), l.Signer)
}

// Fork returns a checkpoint of the given size with another root, signed by
// the log's key: what a log operator shows one party to fork the log.
func (l *Log) Fork(t testing.TB, size uint64) []byte {
	t.Helper()
	root := rfc6962.DefaultHasher.HashLeaf(fmt.Appendf(nil, "fork of %s at %d", l.Origin, size))
	return l.sign(t, size, root, l.Signer)
}

// SignedBy returns the checkpoint of the given size signed by signer instead
// of the log's key.
func (l *Log) SignedBy(t testing.TB, size uint64, signer note.Signer) []byte {
	t.Helper()
	return l.sign(t, size, l.tree.HashAt(size), signer)
}

func (l *Log) sign(t testing.TB, size uint64, root []byte, s note.Signer) []byte {
	t.Helper()
	raw, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: l.Origin, Size: size, Hash: root}.Marshal())}, s)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Proof returns the consistency proof between two sizes.
func (l *Log) Proof(t testing.TB, size1, size2 uint64) [][]byte {
	t.Helper()
	p, err := l.tree.ConsistencyProof(size1, size2)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ProofFunc serves the log's consistency proofs, as a ledger does.
func (l *Log) ProofFunc(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	if size1 == 0 || size1 > size2 || size2 > l.tree.Size() {
		return nil, fmt.Errorf("no consistency proof from size %d to %d in a tree of size %d", size1, size2, l.tree.Size())
	}
	return l.tree.ConsistencyProof(size1, size2)
}
