package tiles

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// writeLargeLog writes a log of n entries of 16 to 47 bytes to a new
// temporary directory and returns the directory and the root.
func writeLargeLog(tb testing.TB, n int) (string, []byte) {
	tb.Helper()
	entries := make([][]byte, n)
	for i := range entries {
		e := make([]byte, 16+i%32)
		binary.BigEndian.PutUint64(e, uint64(i))
		entries[i] = e
	}
	dir := tb.TempDir()
	for p, f := range writeTiles(entries) {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, f.Data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	for _, e := range entries {
		if err := cr.Append(rfc6962.DefaultHasher.HashLeaf(e), nil); err != nil {
			tb.Fatal(err)
		}
	}
	root, err := cr.GetRootHash(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return dir, root
}

// TestLargeLog checks a log of a million entries on disk: a partial tile at
// every level 0 to 2, and VerifyEntries within the few seconds the verifier
// needs.
func TestLargeLog(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a log of 1,000,000 entries; skipped with -short")
	}
	const n = 1_000_000
	dir, root := writeLargeLog(t, n)
	r := NewReader(os.DirFS(dir))

	start := time.Now()
	count := uint64(0)
	err := r.VerifyEntries(n, root, func(i uint64, data []byte) error {
		if i != count || binary.BigEndian.Uint64(data) != i {
			t.Fatalf("entry %d out of order or wrong", i)
		}
		count++
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("VerifyEntries: %v", err)
	}
	if count != n {
		t.Fatalf("VerifyEntries gave %d entries, want %d", count, n)
	}
	t.Logf("VerifyEntries of %d entries took %v", n, elapsed)
	// Generous against slow machines; it takes well under a second on a laptop.
	if elapsed > 30*time.Second {
		t.Errorf("VerifyEntries of %d entries took %v", n, elapsed)
	}

	for _, i := range []uint64{0, 65535, 65536, 999_423, n - 1} {
		leaf, err := r.LeafHashes(i, i+1, n)
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.InclusionProof(i, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, n, leaf[0], p, root); err != nil {
			t.Errorf("inclusion proof of %d: %v", i, err)
		}
	}
}

func BenchmarkVerifyEntries(b *testing.B) {
	const n = 1 << 18
	dir, root := writeLargeLog(b, n)
	r := NewReader(os.DirFS(dir))
	nop := func(uint64, []byte) error { return nil }
	for b.Loop() {
		if err := r.VerifyEntries(n, root, nop); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInclusionProof(b *testing.B) {
	const n = 1 << 18
	dir, _ := writeLargeLog(b, n)
	r := NewReader(os.DirFS(dir))
	i := uint64(0)
	for b.Loop() {
		if _, err := r.InclusionProof(i%n, n); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}
