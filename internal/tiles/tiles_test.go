package tiles

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
)

// checkpointSizes are the tree sizes the fixture log publishes, in order. They
// hit partial tiles at level 0 (1, 2, 255, 257, 513, 70000), a full level-0
// tile with a partial level-1 tile (256), partial level-1 tiles (257, 513,
// 70000) and a partial level-2 tile (70000).
var checkpointSizes = []uint64{1, 2, 255, 256, 257, 513, 70000}

// fixtureLog is one real Tessera log grown through checkpointSizes, loaded
// into memory once its last checkpoint is published.
type fixtureLog struct {
	files   fstest.MapFS // every file, including the partials of old sizes
	cps     map[uint64]*flog.Checkpoint
	rawCP   []byte // the last checkpoint
	entries [][]byte
	tree    *testonly.Tree
}

var (
	fixtureMu sync.Mutex
	fixture   *fixtureLog
)

// getFixture builds the fixture log on first use. The first caller also checks
// the log on disk through os.DirFS, while Tessera still runs.
func getFixture(t *testing.T) *fixtureLog {
	t.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if fixture != nil {
		return fixture
	}
	l := newTesseraLog(t)
	fx := &fixtureLog{cps: map[uint64]*flog.Checkpoint{}, tree: testonly.New(rfc6962.DefaultHasher)}
	for _, size := range checkpointSizes {
		batch := testEntries(l.size, size-l.size)
		raw, cp := l.add(t, batch)
		fx.entries = append(fx.entries, batch...)
		fx.tree.AppendData(batch...)
		if got, want := cp.Hash, fx.tree.Hash(); !bytes.Equal(got, want) {
			t.Fatalf("Tessera checkpoint at size %d has root %x, in-memory tree %x", size, got, want)
		}
		fx.cps[size] = cp
		fx.rawCP = raw
	}
	// The log on disk, as a caller would open it.
	r := NewReader(os.DirFS(l.dir))
	raw, err := r.Checkpoint()
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, testOrigin, l.verifier)
	if err != nil {
		t.Fatalf("parsing checkpoint read from disk: %v", err)
	}
	if diff := cmp.Diff(fx.cps[l.size], cp); diff != "" {
		t.Fatalf("checkpoint on disk differs (-want +got):\n%s", diff)
	}
	checkLog(t, r, fx, l.size)
	// Through an os.Root, which keeps symbolic links inside the directory.
	root, err := os.OpenRoot(l.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := NewReader(root.FS()).VerifyEntries(l.size, cp.Hash, func(uint64, []byte) error { return nil }); err != nil {
		t.Fatalf("VerifyEntries through os.Root: %v", err)
	}
	fx.files = loadFS(t, l.dir)
	fixture = fx
	return fx
}

func TestReadTesseraLog(t *testing.T) {
	fx := getFixture(t)
	files := cloneFS(fx.files)
	for _, size := range checkpointSizes {
		t.Run(fmt.Sprintf("size=%d/partials", size), func(t *testing.T) {
			checkLog(t, NewReader(files), fx, size)
		})
	}
	// Like Tessera's garbage collector: the partials of grown tiles go away,
	// and old tree sizes are read from the first hashes of full tiles.
	if n := removeCollectedPartials(files); n == 0 {
		t.Fatal("no partial files to remove; the test does not test the fallback")
	}
	for _, size := range checkpointSizes {
		t.Run(fmt.Sprintf("size=%d/collected", size), func(t *testing.T) {
			checkLog(t, NewReader(files), fx, size)
		})
	}
}

// checkLog checks everything the reader serves for the tree of size n against
// the in-memory tree and the checkpoint root.
func checkLog(t *testing.T, r *Reader, fx *fixtureLog, n uint64) {
	t.Helper()
	root := fx.cps[n].Hash
	rng := rand.New(rand.NewPCG(n, 1))

	t.Run("LeafHashes", func(t *testing.T) {
		got, err := r.LeafHashes(0, n, n)
		if err != nil {
			t.Fatal(err)
		}
		want := make([][]byte, n)
		for i := range want {
			want[i] = fx.tree.LeafHash(uint64(i))
		}
		if err := sameBytes(want, got); err != nil {
			t.Fatalf("LeafHashes(0, %d): %v", n, err)
		}
		from, to := n/3, n/2+1
		got, err = r.LeafHashes(from, to, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameBytes(want[from:to], got); err != nil {
			t.Fatalf("LeafHashes(%d, %d): %v", from, to, err)
		}
		if got, err := r.LeafHashes(n, n, n); err != nil || len(got) != 0 {
			t.Fatalf("LeafHashes(%d, %d) = %d hashes, %v; want none", n, n, len(got), err)
		}
	})

	t.Run("InclusionProof", func(t *testing.T) {
		for _, i := range sample(rng, n, 0) {
			got, err := r.InclusionProof(i, n)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, n, err)
			}
			want, err := fx.tree.InclusionProof(i, n)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("InclusionProof(%d, %d) differs (-want +got):\n%s", i, n, diff)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, n, fx.tree.LeafHash(i), got, root); err != nil {
				t.Fatalf("InclusionProof(%d, %d) does not verify against the checkpoint: %v", i, n, err)
			}
		}
	})

	t.Run("ConsistencyProof", func(t *testing.T) {
		sizes := sample(rng, n, 1)
		sizes = append(sizes, checkpointSizes...)
		for _, s1 := range sizes {
			if s1 == 0 || s1 > n {
				continue
			}
			got, err := r.ConsistencyProof(s1, n)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", s1, n, err)
			}
			want, err := fx.tree.ConsistencyProof(s1, n)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("ConsistencyProof(%d, %d) differs (-want +got):\n%s", s1, n, diff)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, s1, n, got, fx.tree.HashAt(s1), root); err != nil {
				t.Fatalf("ConsistencyProof(%d, %d) does not verify: %v", s1, n, err)
			}
		}
	})

	t.Run("Entries", func(t *testing.T) {
		for _, rg := range [][2]uint64{{0, n}, {n / 3, n/2 + 1}, {n - 1, n}, {n, n}} {
			var got [][]byte
			next := rg[0]
			err := r.Entries(rg[0], rg[1], n, func(i uint64, data []byte) error {
				if i != next {
					t.Fatalf("Entries gave index %d, want %d", i, next)
				}
				next++
				got = append(got, bytes.Clone(data))
				return nil
			})
			if err != nil {
				t.Fatalf("Entries(%d, %d, %d): %v", rg[0], rg[1], n, err)
			}
			if err := sameBytes(fx.entries[rg[0]:rg[1]], got); err != nil {
				t.Fatalf("Entries(%d, %d, %d): %v", rg[0], rg[1], n, err)
			}
		}
	})

	t.Run("VerifyEntries", func(t *testing.T) {
		next := uint64(0)
		err := r.VerifyEntries(n, root, func(i uint64, data []byte) error {
			if i != next {
				t.Fatalf("VerifyEntries gave index %d, want %d", i, next)
			}
			if !bytes.Equal(data, fx.entries[i]) {
				t.Fatalf("VerifyEntries gave entry %d = %q, want %q", i, data, fx.entries[i])
			}
			next++
			return nil
		})
		if err != nil {
			t.Fatalf("VerifyEntries(%d): %v", n, err)
		}
		if next != n {
			t.Fatalf("VerifyEntries gave %d entries, want %d", next, n)
		}
	})
}

// sameBytes reports the first difference between two lists of byte strings.
// (cmp.Diff is too slow for lists of 70,000.)
func sameBytes(want, got [][]byte) error {
	if len(want) != len(got) {
		return fmt.Errorf("got %d items, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(want[i], got[i]) {
			return fmt.Errorf("item %d is %x, want %x", i, got[i], want[i])
		}
	}
	return nil
}

// sample returns every index in [lo, n) for small n, and otherwise the edges
// of tiles and a few hundred random indices.
func sample(rng *rand.Rand, n, lo uint64) []uint64 {
	var out []uint64
	if n <= 600 {
		for i := lo; i < n; i++ {
			out = append(out, i)
		}
		return out
	}
	for _, i := range []uint64{0, 1, 2, 3, 254, 255, 256, 257, 511, 512, 65535, 65536, 65537, n - 2, n - 1} {
		if i >= lo && i < n {
			out = append(out, i)
		}
	}
	for range 300 {
		out = append(out, lo+rng.Uint64N(n-lo))
	}
	return out
}

func TestSyntheticMatchesTessera(t *testing.T) {
	// writeTiles, used by the fuzz targets and the large test, writes exactly
	// the files Tessera writes for the same entries.
	fx := getFixture(t)
	n := checkpointSizes[len(checkpointSizes)-1]
	want := writeTiles(fx.entries[:n])
	for path, f := range want {
		got, ok := fx.files[path]
		if !ok {
			t.Errorf("Tessera wrote no %s", path)
			continue
		}
		if !bytes.Equal(got.Data, f.Data) {
			t.Errorf("Tessera's %s differs from the spec's", path)
		}
	}
}

// tamperSize is the tree size the tamper tests read: 2 full tiles, a partial
// level-0 tile of width 1 and a partial level-1 tile of width 2.
const tamperSize = 513

func TestTamper(t *testing.T) {
	fx := getFixture(t)
	root := fx.cps[tamperSize].Hash
	leafHash := func(e []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(e) }

	for _, tc := range []struct {
		name   string
		tamper func(m fstest.MapFS)
		// wantErr and wantMsg are what VerifyEntries must return.
		wantErr error
		wantMsg []string
		// badInclusion lists leaves whose inclusion proof must not verify.
		badInclusion []uint64
		// badConsistency lists sizes whose consistency proof to tamperSize must not verify.
		badConsistency []uint64
	}{{
		name: "entry byte",
		tamper: func(m fstest.MapFS) {
			m["tile/entries/001"].Data[2] ^= 1 // first byte of entry 256
		},
		wantErr: ErrTileMismatch,
		wantMsg: []string{"entry 256", "tile/entries/001", "tile/0/001"},
	}, {
		name: "entry byte and leaf hash",
		tamper: func(m fstest.MapFS) {
			m["tile/entries/001"].Data[2] ^= 1
			e := m["tile/entries/001"].Data[2 : 2+len(fx.entries[256])]
			setHash(m, "tile/0/001", 0, leafHash(e))
		},
		wantErr: ErrTileMismatch,
		wantMsg: []string{"tile/1/000.p/2", "hash 1", "[256, 512)"},
		// Proofs that use the forged leaf hash or a node above it in tile
		// 0/001 fail; the level-1 hash above it is intact.
		badInclusion:   []uint64{257, 300},
		badConsistency: []uint64{257, 300},
	}, {
		name: "entry byte, leaf hash and level-1 hash",
		tamper: func(m fstest.MapFS) {
			m["tile/entries/001"].Data[2] ^= 1
			e := m["tile/entries/001"].Data[2 : 2+len(fx.entries[256])]
			setHash(m, "tile/0/001", 0, leafHash(e))
			setHash(m, "tile/1/000.p/2", 1, mth(splitHashes(m["tile/0/001"].Data)))
		},
		wantErr:        ErrRootMismatch,
		wantMsg:        []string{fmt.Sprintf("%x", root)},
		badInclusion:   []uint64{0, 255, 512},
		badConsistency: []uint64{1, 255, 256},
	}, {
		name: "last entry and its leaf hash",
		tamper: func(m fstest.MapFS) {
			f := m["tile/entries/002.p/1"]
			f.Data[len(f.Data)-1] ^= 1
			setHash(m, "tile/0/002.p/1", 0, leafHash(f.Data[2:]))
		},
		wantErr:        ErrRootMismatch,
		wantMsg:        []string{fmt.Sprintf("%x", root), "tree size 513"},
		badInclusion:   []uint64{0, 256, 511},
		badConsistency: []uint64{1, 256, 300, 512},
	}, {
		name: "leaf hash",
		tamper: func(m fstest.MapFS) {
			m["tile/0/000"].Data[5*32] ^= 1
		},
		wantErr:        ErrTileMismatch,
		wantMsg:        []string{"entry 5", "tile/0/000"},
		badInclusion:   []uint64{4},
		badConsistency: []uint64{5, 7},
	}, {
		name: "level-1 hash",
		tamper: func(m fstest.MapFS) {
			m["tile/1/000.p/2"].Data[32] ^= 1
		},
		wantErr:        ErrTileMismatch,
		wantMsg:        []string{"tile/1/000.p/2", "hash 1"},
		badInclusion:   []uint64{0, 100, 512},
		badConsistency: []uint64{1, 100, 256},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := cloneFS(fx.files)
			tc.tamper(m)
			r := NewReader(m)
			calls := 0
			err := r.VerifyEntries(tamperSize, root, func(uint64, []byte) error { calls++; return nil })
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("VerifyEntries = %v, want %v", err, tc.wantErr)
			}
			for _, s := range tc.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("VerifyEntries error %q does not mention %q", err, s)
				}
			}
			for _, i := range tc.badInclusion {
				p, err := r.InclusionProof(i, tamperSize)
				if err != nil {
					t.Fatalf("InclusionProof(%d): %v", i, err)
				}
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, tamperSize, fx.tree.LeafHash(i), p, root); err == nil {
					t.Errorf("inclusion proof of %d from tampered tiles verifies", i)
				}
			}
			for _, s1 := range tc.badConsistency {
				p, err := r.ConsistencyProof(s1, tamperSize)
				if err != nil {
					t.Fatalf("ConsistencyProof(%d): %v", s1, err)
				}
				if err := proof.VerifyConsistency(rfc6962.DefaultHasher, s1, tamperSize, p, fx.tree.HashAt(s1), root); err == nil {
					t.Errorf("consistency proof from %d from tampered tiles verifies", s1)
				}
			}
		})
	}
}

// setHash replaces hash j of the tile at path.
func setHash(m fstest.MapFS, path string, j int, h []byte) {
	copy(m[path].Data[j*32:], h)
}

func splitHashes(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 32 {
		out, b = append(out, b[:32]), b[32:]
	}
	return out
}

func TestBadFiles(t *testing.T) {
	fx := getFixture(t)
	const n = tamperSize
	root := fx.cps[n].Hash
	nop := func(uint64, []byte) error { return nil }

	type call struct {
		name string
		run  func(r *Reader) error
	}
	leafHashes := func(from, to uint64) call {
		return call{fmt.Sprintf("LeafHashes(%d,%d,%d)", from, to, n), func(r *Reader) error { _, err := r.LeafHashes(from, to, n); return err }}
	}
	entries := func(from, to uint64) call {
		return call{fmt.Sprintf("Entries(%d,%d,%d)", from, to, n), func(r *Reader) error { return r.Entries(from, to, n, nop) }}
	}
	inclusion := func(i uint64) call {
		return call{fmt.Sprintf("InclusionProof(%d,%d)", i, n), func(r *Reader) error { _, err := r.InclusionProof(i, n); return err }}
	}
	verify := call{"VerifyEntries", func(r *Reader) error { return r.VerifyEntries(n, root, nop) }}
	checkpoint := call{"Checkpoint", func(r *Reader) error { _, err := r.Checkpoint(); return err }}

	for _, tc := range []struct {
		name    string
		tamper  func(m fstest.MapFS)
		calls   []call
		wantErr error
		wantMsg []string
	}{{
		name:    "missing full tile",
		tamper:  func(m fstest.MapFS) { delete(m, "tile/0/001") },
		calls:   []call{leafHashes(256, 257), inclusion(257), verify},
		wantErr: ErrMissing,
		wantMsg: []string{"tile/0/001"},
	}, {
		name:    "missing partial tile and full tile",
		tamper:  func(m fstest.MapFS) { delete(m, "tile/0/002.p/1"); delete(m, "tile/0/002") },
		calls:   []call{leafHashes(512, 513), inclusion(0), verify},
		wantErr: ErrMissing,
		wantMsg: []string{"tile/0/002.p/1", "tile/0/002"},
	}, {
		name:    "missing level-1 tile",
		tamper:  func(m fstest.MapFS) { delete(m, "tile/1/000.p/2"); delete(m, "tile/1/000") },
		calls:   []call{inclusion(512), verify},
		wantErr: ErrMissing,
		wantMsg: []string{"tile/1/000.p/2"},
	}, {
		name:    "missing entry bundle",
		tamper:  func(m fstest.MapFS) { delete(m, "tile/entries/001") },
		calls:   []call{entries(300, 301), verify},
		wantErr: ErrMissing,
		wantMsg: []string{"tile/entries/001"},
	}, {
		name:    "missing checkpoint",
		tamper:  func(m fstest.MapFS) { delete(m, "checkpoint") },
		calls:   []call{checkpoint},
		wantErr: ErrMissing,
		wantMsg: []string{"checkpoint"},
	}, {
		name:    "truncated tile by a byte",
		tamper:  func(m fstest.MapFS) { truncate(m, "tile/0/001", 1) },
		calls:   []call{leafHashes(256, 257), verify},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/0/001", "8191 bytes"},
	}, {
		name:    "truncated tile by a hash",
		tamper:  func(m fstest.MapFS) { truncate(m, "tile/0/001", 32) },
		calls:   []call{leafHashes(256, 257), verify},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/0/001", "8160 bytes"},
	}, {
		name:    "full tile too long",
		tamper:  func(m fstest.MapFS) { grow(m, "tile/0/001", 32) },
		calls:   []call{leafHashes(256, 257), verify},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/0/001", "8224 bytes"},
	}, {
		name:    "partial tile too long",
		tamper:  func(m fstest.MapFS) { grow(m, "tile/0/002.p/1", 32) },
		calls:   []call{leafHashes(512, 513), verify},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/0/002.p/1"},
	}, {
		name:    "partial tile empty",
		tamper:  func(m fstest.MapFS) { truncate(m, "tile/1/000.p/2", 64) },
		calls:   []call{inclusion(0), verify},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/1/000.p/2", "0 bytes"},
	}, {
		name: "tile is a directory",
		tamper: func(m fstest.MapFS) {
			delete(m, "tile/0/002.p/1")
			m["tile/0/002.p/1/x"] = &fstest.MapFile{}
		},
		calls:   []call{leafHashes(512, 513)},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/0/002.p/1", "not a regular file"},
	}, {
		name:    "bundle with a dangling byte",
		tamper:  func(m fstest.MapFS) { grow(m, "tile/entries/002.p/1", 1) },
		calls:   []call{entries(512, 513), verify},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/entries/002.p/1", "dangling"},
	}, {
		name: "bundle with an extra entry",
		tamper: func(m fstest.MapFS) {
			f := m["tile/entries/002.p/1"]
			f.Data = append(f.Data, 0, 1, 'x')
		},
		calls:   []call{entries(512, 513), verify},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/entries/002.p/1", "more than 1 entries"},
	}, {
		name: "bundle with a missing entry",
		tamper: func(m fstest.MapFS) {
			f := m["tile/entries/000"]
			f.Data = f.Data[:len(f.Data)-2-len(fx.entries[255])]
		},
		calls:   []call{entries(0, 1), verify},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/entries/000", "255 entries, want 256"},
	}, {
		name: "bundle of many empty entries",
		tamper: func(m fstest.MapFS) {
			m["tile/entries/000"] = &fstest.MapFile{Data: make([]byte, maxBundleSize)}
		},
		calls:   []call{entries(0, 1), verify},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/entries/000", "more than 256 entries"},
	}, {
		name: "bundle too large",
		tamper: func(m fstest.MapFS) {
			m["tile/entries/000"] = &fstest.MapFile{Data: make([]byte, maxBundleSize+1)}
		},
		calls:   []call{entries(0, 1), verify},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/entries/000", "limit"},
	}, {
		name: "bundle entry overruns",
		tamper: func(m fstest.MapFS) {
			f := m["tile/entries/002.p/1"]
			f.Data[0], f.Data[1] = 0xff, 0xff
		},
		calls:   []call{entries(512, 513), verify},
		wantErr: ErrMalformed,
		wantMsg: []string{"tile/entries/002.p/1", "needs 65535 bytes"},
	}, {
		name: "checkpoint too large",
		tamper: func(m fstest.MapFS) {
			m["checkpoint"] = &fstest.MapFile{Data: bytes.Repeat([]byte("a"), maxCheckpointSize+1)}
		},
		calls:   []call{checkpoint},
		wantErr: ErrMalformed,
		wantMsg: []string{"checkpoint", "limit 65536"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := cloneFS(fx.files)
			tc.tamper(m)
			r := NewReader(m)
			for _, c := range tc.calls {
				err := c.run(r)
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("%s = %v, want %v", c.name, err, tc.wantErr)
					continue
				}
				if tc.wantErr == ErrMissing && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s = %v, does not wrap fs.ErrNotExist", c.name, err)
				}
				for _, s := range tc.wantMsg {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%s error %q does not mention %q", c.name, err, s)
					}
				}
			}
		})
	}
}

func truncate(m fstest.MapFS, path string, n int) {
	f := m[path]
	f.Data = f.Data[:len(f.Data)-n]
}

func grow(m fstest.MapFS, path string, n int) {
	f := m[path]
	f.Data = append(f.Data, make([]byte, n)...)
}

func TestOutOfRange(t *testing.T) {
	fx := getFixture(t)
	r := NewReader(fx.files)
	const n = tamperSize
	root := fx.cps[n].Hash
	nop := func(uint64, []byte) error { return nil }
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"InclusionProof index == size", func() error { _, err := r.InclusionProof(n, n); return err }},
		{"InclusionProof index > size", func() error { _, err := r.InclusionProof(1<<63, n); return err }},
		{"InclusionProof size 0", func() error { _, err := r.InclusionProof(0, 0); return err }},
		{"ConsistencyProof size1 0", func() error { _, err := r.ConsistencyProof(0, n); return err }},
		{"ConsistencyProof both 0", func() error { _, err := r.ConsistencyProof(0, 0); return err }},
		{"ConsistencyProof size1 > size2", func() error { _, err := r.ConsistencyProof(n+1, n); return err }},
		{"LeafHashes beyond size", func() error { _, err := r.LeafHashes(0, n+1, n); return err }},
		{"LeafHashes reversed", func() error { _, err := r.LeafHashes(5, 4, n); return err }},
		{"LeafHashes size 0", func() error { _, err := r.LeafHashes(0, 0, 0); return err }},
		{"Entries beyond size", func() error { return r.Entries(n, n+1, n, nop) }},
		{"Entries reversed", func() error { return r.Entries(1, 0, n, nop) }},
		{"Entries size 0", func() error { return r.Entries(0, 0, 0, nop) }},
		{"VerifyEntries size 0", func() error { return r.VerifyEntries(0, rfc6962.DefaultHasher.EmptyRoot(), nop) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("got %v, want ErrOutOfRange", err)
			}
		})
	}

	t.Run("ConsistencyProof same size", func(t *testing.T) {
		p, err := r.ConsistencyProof(n, n)
		if err != nil || len(p) != 0 {
			t.Fatalf("ConsistencyProof(%d, %d) = %x, %v; want an empty proof", n, n, p, err)
		}
	})

	t.Run("VerifyEntries bad root", func(t *testing.T) {
		for _, bad := range [][]byte{nil, root[:31], append(bytes.Clone(root), 0), fx.cps[257].Hash} {
			err := r.VerifyEntries(n, bad, nop)
			if !errors.Is(err, ErrRootMismatch) {
				t.Errorf("VerifyEntries(root %x) = %v, want ErrRootMismatch", bad, err)
			}
		}
		err := r.VerifyEntries(n, fx.cps[257].Hash, nop)
		for _, s := range []string{fmt.Sprintf("%x", root), fmt.Sprintf("%x", fx.cps[257].Hash)} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("VerifyEntries error %q does not show root %s", err, s)
			}
		}
	})

	t.Run("VerifyEntries wrong size", func(t *testing.T) {
		// The full tiles hold the first 514 leaves, but they are not the
		// tree whose root is the size-513 checkpoint's.
		if err := r.VerifyEntries(n+1, root, nop); !errors.Is(err, ErrRootMismatch) {
			t.Fatalf("VerifyEntries(%d) = %v, want ErrRootMismatch", n+1, err)
		}
	})

	t.Run("VerifyEntries stops on fn error", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := r.VerifyEntries(n, root, func(i uint64, _ []byte) error {
			calls++
			if i == 300 {
				return stop
			}
			return nil
		})
		if err != stop || calls != 301 {
			t.Fatalf("VerifyEntries = %v after %d calls, want %v after 301", err, calls, stop)
		}
	})

	t.Run("proofs are bound to their sizes", func(t *testing.T) {
		// ATTACKS.md case 2: a valid proof fails for other sizes.
		const s1 = 300
		p, err := r.ConsistencyProof(s1, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, sz := range [][2]uint64{{s1 - 1, n}, {s1 + 1, n}, {s1, 2 * n}, {s1, n / 2}, {s1, n - 1}} {
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, sz[0], sz[1], p, fx.tree.HashAt(s1), root); err == nil {
				t.Errorf("consistency proof %d->%d verifies as %d->%d", s1, n, sz[0], sz[1])
			}
		}
		ip, err := r.InclusionProof(s1, n)
		if err != nil {
			t.Fatal(err)
		}
		// (An RFC 6962 inclusion proof of 300 in 513 is also one in 514: the
		// size only shapes the path. The root is what binds it.)
		for _, sz := range [][2]uint64{{s1 + 1, n}, {s1 - 1, n}, {s1, n - 1}, {s1, 2 * n}, {n, n}} {
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, sz[0], sz[1], fx.tree.LeafHash(s1), ip, root); err == nil {
				t.Errorf("inclusion proof of %d in %d verifies as %d in %d", s1, n, sz[0], sz[1])
			}
		}
	})
}
