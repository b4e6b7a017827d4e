package tiles

import (
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "example.com/keytrail/tiles-test"

// tesseraLog is a real log written by Tessera's POSIX storage into a
// temporary directory.
type tesseraLog struct {
	dir      string
	verifier note.Verifier
	appender *tessera.Appender
	awaiter  *tessera.PublicationAwaiter
	size     uint64
}

// newTesseraLog starts a Tessera POSIX log in a new temporary directory. The
// appender is shut down when the test ends.
func newTesseraLog(t testing.TB) *tesseraLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	driver, err := posix.New(ctx, posix.Config{Path: dir})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithCheckpointInterval(100*time.Millisecond).
		WithBatching(1024, 10*time.Millisecond).
		WithPushback(1<<20).
		// Partial tiles are removed by the tests themselves, deterministically.
		WithGarbageCollectionInterval(0))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := shutdown(sctx); err != nil {
			t.Errorf("shutting down Tessera: %v", err)
		}
		cancel()
	})
	return &tesseraLog{
		dir:      dir,
		verifier: verifier,
		appender: appender,
		awaiter:  tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 10*time.Millisecond),
	}
}

// add appends entries, waits until a checkpoint covers all of them, and
// returns that checkpoint (raw and parsed).
func (l *tesseraLog) add(t testing.TB, entries [][]byte) ([]byte, *flog.Checkpoint) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	futures := make([]tessera.IndexFuture, len(entries))
	for i, e := range entries {
		futures[i] = l.appender.Add(ctx, tessera.NewEntry(e))
	}
	var raw []byte
	for i, f := range futures {
		idx, cp, err := l.awaiter.Await(ctx, f)
		if err != nil {
			t.Fatalf("awaiting entry %d: %v", l.size+uint64(i), err)
		}
		if want := l.size + uint64(i); idx.Index != want || idx.IsDup {
			t.Fatalf("entry assigned index %+v, want %d", idx, want)
		}
		raw = cp
	}
	l.size += uint64(len(entries))
	cp, _, _, err := flog.ParseCheckpoint(raw, testOrigin, l.verifier)
	if err != nil {
		t.Fatalf("parsing checkpoint: %v", err)
	}
	if cp.Size != l.size {
		t.Fatalf("checkpoint has size %d, want %d", cp.Size, l.size)
	}
	return raw, cp
}

// testEntries returns n deterministic entries starting at index from. They
// vary in length and include an empty entry (index 3) and one of the maximal
// size 65535 (index 300).
func testEntries(from, n uint64) [][]byte {
	out := make([][]byte, 0, n)
	for i := from; i < from+n; i++ {
		switch i {
		case 3:
			out = append(out, []byte{})
		case 300:
			big := make([]byte, maxEntrySize)
			for j := range big {
				big[j] = byte(j * 7)
			}
			out = append(out, big)
		default:
			out = append(out, []byte(fmt.Sprintf("entry %d %s", i, strings.Repeat("x", int(i%17)))))
		}
	}
	return out
}

// loadFS reads the log in dir (without Tessera's private .state directory)
// into memory.
func loadFS(t testing.TB, dir string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".state" {
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		m[rel] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// cloneFS deep-copies m so that a test can tamper with the copy.
func cloneFS(m fstest.MapFS) fstest.MapFS {
	c := make(fstest.MapFS, len(m))
	for k, v := range m {
		f := *v
		f.Data = append([]byte(nil), v.Data...)
		c[k] = &f
	}
	return c
}

// removeCollectedPartials deletes, like Tessera's garbage collector, every
// partial tile and entry bundle whose full version exists.
func removeCollectedPartials(m fstest.MapFS) int {
	n := 0
	for _, k := range slices.Sorted(maps.Keys(m)) {
		full, _, ok := strings.Cut(k, ".p/")
		if !ok {
			continue
		}
		if _, exists := m[full]; exists {
			delete(m, k)
			n++
		}
	}
	return n
}

// writeTiles is an independent writer of the tlog-tiles layout, written from
// the spec: it returns the checkpoint-less file set of the log of entries,
// with a partial tile or bundle only for the tree's own size.
func writeTiles(entries [][]byte) fstest.MapFS {
	m := fstest.MapFS{}
	n := uint64(len(entries))
	for i := uint64(0); i < n; i += layout.EntryBundleWidth {
		end := min(i+layout.EntryBundleWidth, n)
		var b []byte
		for _, e := range entries[i:end] {
			b = append(b, byte(len(e)>>8), byte(len(e)))
			b = append(b, e...)
		}
		idx := i / layout.EntryBundleWidth
		m[layout.EntriesPath(idx, layout.PartialTileSize(0, idx, n))] = &fstest.MapFile{Data: b}
	}
	// level holds the hashes at tree level 8L: MTH of 256^L consecutive leaves.
	level := make([][]byte, n)
	for i, e := range entries {
		level[i] = rfc6962.DefaultHasher.HashLeaf(e)
	}
	for l := uint64(0); len(level) > 0; l++ {
		var next [][]byte
		for i := 0; i < len(level); i += layout.TileWidth {
			end := min(i+layout.TileWidth, len(level))
			var tile []byte
			for _, h := range level[i:end] {
				tile = append(tile, h...)
			}
			idx := uint64(i / layout.TileWidth)
			m[layout.TilePath(l, idx, layout.PartialTileSize(l, idx, n))] = &fstest.MapFile{Data: tile}
			if end-i == layout.TileWidth {
				next = append(next, mth(level[i:end]))
			}
		}
		level = next
	}
	return m
}

// mth is the RFC 6962 Merkle tree hash of a power-of-two number of hashes.
func mth(hs [][]byte) []byte {
	if len(hs) == 1 {
		return hs[0]
	}
	return rfc6962.DefaultHasher.HashChildren(mth(hs[:len(hs)/2]), mth(hs[len(hs)/2:]))
}
