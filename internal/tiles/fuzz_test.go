package tiles

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// fuzzSize is the size of the log the fuzz targets read: two full level-0
// tiles, a partial level-0 tile of width 88 and a partial level-1 tile of
// width 2.
const fuzzSize = 600

// fuzzLog is a small log written by writeTiles (which TestSyntheticMatchesTessera
// checks against Tessera), small enough to copy on every fuzz input.
type fuzzLog struct {
	files   fstest.MapFS
	entries [][]byte
	tree    *testonly.Tree
	root    []byte
	// Precomputed for exercise, which must be fast: the in-memory tree
	// recomputes hashes on every call.
	leafHashes  [][]byte
	roots       map[uint64][]byte // by tree size
	inclusion   map[uint64][][]byte
	consistency map[uint64][][]byte
}

var (
	// Between them, these proofs use every tile of the fuzz log. A proof
	// costs hundreds of hashes, and each fuzz input must be quick.
	fuzzIndices = []uint64{7, 300, 512}
	fuzzSizes   = []uint64{7, 300}
)

func newFuzzLog() *fuzzLog {
	entries := make([][]byte, fuzzSize)
	for i := range entries {
		entries[i] = []byte(fmt.Sprintf("e%d", i))
	}
	entries[7] = nil
	tree := testonly.New(rfc6962.DefaultHasher)
	tree.AppendData(entries...)
	l := &fuzzLog{
		files: writeTiles(entries), entries: entries, tree: tree, root: tree.Hash(),
		roots: map[uint64][]byte{}, inclusion: map[uint64][][]byte{}, consistency: map[uint64][][]byte{},
	}
	for i := range entries {
		l.leafHashes = append(l.leafHashes, tree.LeafHash(uint64(i)))
	}
	for _, i := range fuzzIndices {
		l.inclusion[i], _ = tree.InclusionProof(i, fuzzSize)
	}
	for _, s := range fuzzSizes {
		l.roots[s] = tree.HashAt(s)
		l.consistency[s], _ = tree.ConsistencyProof(s, fuzzSize)
	}
	return l
}

// paths returns the log's files whose path starts with prefix, sorted.
func (l *fuzzLog) paths(prefix string) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(l.files)) {
		if strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	return out
}

// with returns a copy of the log's files with the file at path replaced by data.
func (l *fuzzLog) with(path string, data []byte) fstest.MapFS {
	m := maps.Clone(l.files)
	m[path] = &fstest.MapFile{Data: data}
	return m
}

// exercise runs every Reader method over the log of size fuzzSize in fsys and
// checks that whatever is accepted is right: a proof that verifies against
// the true root is the true proof, and VerifyEntries passes only if it saw
// exactly the true entries.
func (l *fuzzLog) exercise(t *testing.T, fsys fstest.MapFS) (verified bool) {
	r := NewReader(fsys)
	_, _ = r.LeafHashes(0, fuzzSize, fuzzSize)
	for _, i := range fuzzIndices {
		p, err := r.InclusionProof(i, fuzzSize)
		if err != nil {
			continue
		}
		if proof.VerifyInclusion(rfc6962.DefaultHasher, i, fuzzSize, l.leafHashes[i], p, l.root) == nil {
			if err := sameBytes(l.inclusion[i], p); err != nil {
				t.Fatalf("a wrong inclusion proof of %d verifies: %v", i, err)
			}
		}
	}
	for _, s1 := range fuzzSizes {
		p, err := r.ConsistencyProof(s1, fuzzSize)
		if err != nil {
			continue
		}
		if proof.VerifyConsistency(rfc6962.DefaultHasher, s1, fuzzSize, p, l.roots[s1], l.root) == nil {
			if err := sameBytes(l.consistency[s1], p); err != nil {
				t.Fatalf("a wrong consistency proof from %d verifies: %v", s1, err)
			}
		}
	}
	_ = r.Entries(250, 520, fuzzSize, func(uint64, []byte) error { return nil })
	var got [][]byte
	err := r.VerifyEntries(fuzzSize, l.root, func(_ uint64, data []byte) error {
		got = append(got, bytes.Clone(data))
		return nil
	})
	if err != nil {
		return false
	}
	if err := sameBytes(l.entries, got); err != nil {
		t.Fatalf("VerifyEntries passed with wrong entries: %v", err)
	}
	return true
}

// mutate builds a file from orig: patch itself if raw, otherwise the first
// keep bytes of orig with patch XORed in at offset at (growing the file if
// needed). Fuzz inputs stay small, so the fuzzer can minimise them quickly,
// while mutations of an 8 KiB tile still reach the checks behind the length
// checks.
func mutate(orig []byte, raw bool, keep, at uint16, patch []byte) []byte {
	if raw {
		return patch
	}
	data := bytes.Clone(orig[:min(int(keep), len(orig))])
	off := int(at) % (len(data) + 1)
	if need := off + len(patch); need > len(data) {
		data = append(data, make([]byte, need-len(data))...)
	}
	for i, b := range patch {
		data[off+i] ^= b
	}
	return data
}

// FuzzHashTile feeds arbitrary bytes, or mutations of the real bytes, as one
// of the hash tiles.
func FuzzHashTile(f *testing.F) {
	l := newFuzzLog()
	paths := slices.DeleteFunc(l.paths("tile/"), func(p string) bool { return strings.HasPrefix(p, "tile/entries/") })
	for i, p := range paths {
		n := uint16(len(l.files[p].Data))
		sel := uint8(i)
		f.Add(sel, false, n, uint16(0), []byte{})        // the real tile
		f.Add(sel, false, n-1, uint16(0), []byte{})      // a byte short
		f.Add(sel, false, n-32, uint16(0), []byte{})     // a hash short
		f.Add(sel, false, n, n, make([]byte, 32))        // a hash too many
		f.Add(sel, false, n, uint16(40), []byte{1})      // hash 1 changed
		f.Add(sel, true, uint16(0), uint16(0), []byte{}) // empty
		f.Add(sel, true, uint16(0), uint16(0), bytes.Repeat([]byte{7}, 64))
	}
	f.Fuzz(func(t *testing.T, sel uint8, raw bool, keep, at uint16, patch []byte) {
		p := paths[int(sel)%len(paths)]
		data := mutate(l.files[p].Data, raw, keep, at, patch)
		if l.exercise(t, l.with(p, data)) && !bytes.Equal(data, l.files[p].Data) {
			t.Fatalf("VerifyEntries passed with %s = %x", p, data)
		}
	})
}

// FuzzEntryBundle feeds arbitrary bytes, or mutations of the real bytes, as
// one of the entry bundles.
func FuzzEntryBundle(f *testing.F) {
	l := newFuzzLog()
	paths := l.paths("tile/entries/")
	for i, p := range paths {
		n := uint16(len(l.files[p].Data))
		sel := uint8(i)
		f.Add(sel, false, n, uint16(0), []byte{})        // the real bundle
		f.Add(sel, false, n-1, uint16(0), []byte{})      // a byte short
		f.Add(sel, false, n, n, []byte{0})               // a dangling byte
		f.Add(sel, false, n, n, []byte{0, 0})            // an extra empty entry
		f.Add(sel, false, n, uint16(1), []byte{1})       // first length changed
		f.Add(sel, false, n, uint16(3), []byte{1})       // first entry changed
		f.Add(sel, true, uint16(0), uint16(0), []byte{}) // empty
		f.Add(sel, true, uint16(0), uint16(0), make([]byte, 1000))
		f.Add(sel, true, uint16(0), uint16(0), []byte{0xff, 0xff, 1})
	}
	f.Fuzz(func(t *testing.T, sel uint8, raw bool, keep, at uint16, patch []byte) {
		p := paths[int(sel)%len(paths)]
		data := mutate(l.files[p].Data, raw, keep, at, patch)
		if l.exercise(t, l.with(p, data)) && !bytes.Equal(data, l.files[p].Data) {
			t.Fatalf("VerifyEntries passed with %s = %x", p, data)
		}
	})
}

// FuzzRequests asks for arbitrary indices and sizes of a good log. Whatever
// the reader answers must be right for that size: tree sizes below the log's
// are served from the first hashes of full tiles when their partial files do
// not exist.
func FuzzRequests(f *testing.F) {
	l := newFuzzLog()
	r := NewReader(l.files)
	for _, s := range [][3]uint64{{0, 0, 0}, {0, 1, 1}, {5, 300, 600}, {255, 256, 512}, {600, 600, 600}, {1, 600, 601}, {1 << 63, 1<<64 - 1, 1<<64 - 1}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, index, size1, size2 uint64) {
		check := func(what string, err error) {
			t.Helper()
			if err != nil && !errors.Is(err, ErrOutOfRange) && !errors.Is(err, ErrMissing) {
				t.Fatalf("%s: unexpected error %v", what, err)
			}
		}
		if p, err := r.InclusionProof(index, size2); err == nil {
			if index >= size2 || size2 > fuzzSize {
				t.Fatalf("InclusionProof(%d, %d) succeeded", index, size2)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size2, l.tree.LeafHash(index), p, l.tree.HashAt(size2)); err != nil {
				t.Fatalf("InclusionProof(%d, %d) does not verify: %v", index, size2, err)
			}
		} else {
			check("InclusionProof", err)
		}
		if p, err := r.ConsistencyProof(size1, size2); err == nil {
			if size1 == 0 || size1 > size2 || (size2 > fuzzSize && size1 != size2) {
				t.Fatalf("ConsistencyProof(%d, %d) succeeded", size1, size2)
			}
			if size1 == size2 {
				// The empty proof; the roots must be equal, which needs no tile.
				if len(p) != 0 {
					t.Fatalf("ConsistencyProof(%d, %d) = %x, want empty", size1, size2, p)
				}
			} else if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, p, l.tree.HashAt(size1), l.tree.HashAt(size2)); err != nil {
				t.Fatalf("ConsistencyProof(%d, %d) does not verify: %v", size1, size2, err)
			}
		} else {
			check("ConsistencyProof", err)
		}
		from, to := index, size1
		if to-from > 2*fuzzSize {
			to = from + 2*fuzzSize
		}
		if hs, err := r.LeafHashes(from, to, size2); err == nil {
			for i, h := range hs {
				if want := l.tree.LeafHash(from + uint64(i)); !bytes.Equal(h, want) {
					t.Fatalf("LeafHashes(%d, %d, %d)[%d] = %x, want %x", from, to, size2, i, h, want)
				}
			}
		} else {
			check("LeafHashes", err)
		}
		err := r.Entries(from, to, size2, func(i uint64, data []byte) error {
			if !bytes.Equal(data, l.entries[i]) {
				t.Fatalf("Entries gave entry %d = %q, want %q", i, data, l.entries[i])
			}
			return nil
		})
		check("Entries", err)
		if size2 <= fuzzSize {
			if size2 > 0 {
				if err := r.VerifyEntries(size2, l.tree.HashAt(size2), func(uint64, []byte) error { return nil }); err != nil {
					check("VerifyEntries", err)
				}
			}
		} else if err := r.VerifyEntries(size2, l.root, func(uint64, []byte) error { return nil }); err == nil {
			t.Fatalf("VerifyEntries(%d) of a log of %d passed", size2, fuzzSize)
		}
	})
}
