// Package export writes any keytrail ledger as a C2SP tlog-tiles directory
// (https://c2sp.org/tlog-tiles): its latest checkpoint, the hash tiles and the
// entry bundles of the tree that checkpoint commits to, with partial tiles
// and bundles at the right edge. The result is an offline audit copy: one
// folder that any tlog-tiles reader (keytrail log prove, keytrail verify
// bundle --log) can check against the checkpoint's signature.
package export

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/ledger"
)

// Source is what Tiles reads: a ledger.Log has it.
type Source interface {
	// Checkpoint returns the latest signed checkpoint.
	Checkpoint(ctx context.Context) ([]byte, error)
	// Entry returns the exact bytes of leaf index.
	Entry(ctx context.Context, index uint64) ([]byte, error)
}

var _ Source = ledger.Log(nil)

// EntriesReader is implemented by backends that read many entries at once.
// Export uses it when the log has it, and Log.Entry otherwise.
type EntriesReader interface {
	// Entries returns the entries [start, start+n), all below the latest
	// checkpoint's size.
	Entries(ctx context.Context, start, n uint64) ([][]byte, error)
}

// ErrRootMismatch: the entries read from the log do not hash to the
// checkpoint's root; nothing is written.
var ErrRootMismatch = errors.New("export: the log's entries do not hash to its checkpoint's root")

// Result describes a finished export.
type Result struct {
	Checkpoint []byte // the exported checkpoint
	Size       uint64 // its tree size
	Files      int    // tiles, bundles and checkpoint written
}

// Tiles writes l's latest checkpoint and the tree it commits to into dir,
// which must not exist or be empty. With a verifier, the checkpoint must
// verify with it first. The directory is built beside dir and renamed into
// place only once every entry has been hashed and the root checked against
// the checkpoint, so dir is either absent or complete.
func Tiles(ctx context.Context, l Source, dir string, v note.Verifier) (Result, error) {
	raw, err := l.Checkpoint(ctx)
	if err != nil {
		return Result{}, err
	}
	var cp checkpoint.Checkpoint
	if v != nil {
		cp, _, err = checkpoint.Open(raw, v.Name(), v)
	} else {
		cp, err = checkpoint.ParseUnverified(raw)
	}
	if err != nil {
		return Result{}, fmt.Errorf("export: checkpoint: %w", err)
	}
	if des, err := os.ReadDir(dir); err == nil && len(des) > 0 {
		return Result{}, fmt.Errorf("export: %s exists and is not empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Result{}, fmt.Errorf("export: %w", err)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Result{}, fmt.Errorf("export: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".export-*")
	if err != nil {
		return Result{}, fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(tmp)

	w := &writer{dir: tmp, rng: (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)}
	read := func(start, n uint64) ([][]byte, error) {
		if er, ok := l.(EntriesReader); ok {
			return er.Entries(ctx, start, n)
		}
		out := make([][]byte, n)
		for i := range out {
			e, err := l.Entry(ctx, start+uint64(i))
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	for start := uint64(0); start < cp.Size; start += layout.EntryBundleWidth {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		n := min(cp.Size-start, layout.EntryBundleWidth)
		es, err := read(start, n)
		if err != nil {
			return Result{}, fmt.Errorf("export: entries [%d, %d): %w", start, start+n, err)
		}
		if uint64(len(es)) != n {
			return Result{}, fmt.Errorf("export: entries [%d, %d): got %d", start, start+n, len(es))
		}
		if err := w.bundle(start/layout.EntryBundleWidth, es); err != nil {
			return Result{}, err
		}
	}
	if err := w.finish(); err != nil {
		return Result{}, err
	}
	root := rfc6962.DefaultHasher.EmptyRoot()
	if cp.Size > 0 {
		if root, err = w.rng.GetRootHash(nil); err != nil {
			return Result{}, err
		}
	}
	if !bytes.Equal(root, cp.Root) {
		return Result{}, fmt.Errorf("%w: %d entries hash to %x, the checkpoint says %x", ErrRootMismatch, cp.Size, root, cp.Root)
	}
	if err := w.write(layout.CheckpointPath, raw); err != nil {
		return Result{}, err
	}
	os.Remove(dir) // an empty directory, if any (checked above)
	if err := os.Rename(tmp, dir); err != nil {
		return Result{}, fmt.Errorf("export: %w", err)
	}
	return Result{Checkpoint: raw, Size: cp.Size, Files: w.files}, nil
}

// writer builds hash tiles level by level as leaf hashes arrive in order.
type writer struct {
	dir    string
	rng    *compact.Range
	levels [][][]byte // hashes of the current, unfinished tile of each level
	index  []uint64   // index of that tile
	files  int
}

func (w *writer) bundle(index uint64, es [][]byte) error {
	var b []byte
	for _, e := range es {
		if len(e) > 1<<16-1 {
			return fmt.Errorf("export: an entry of bundle %d has %d bytes, more than tlog-tiles allows", index, len(e))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
		b = append(b, e...)
		h := rfc6962.DefaultHasher.HashLeaf(e)
		if err := w.rng.Append(h, nil); err != nil {
			return err
		}
		if err := w.push(0, h); err != nil {
			return err
		}
	}
	p := uint8(0)
	if len(es) < layout.EntryBundleWidth {
		p = uint8(len(es))
	}
	return w.write(layout.EntriesPath(index, p), b)
}

// push adds a hash to the tile of level; a full tile is written and its root
// pushed to the level above.
func (w *writer) push(level int, h []byte) error {
	for len(w.levels) <= level {
		w.levels = append(w.levels, nil)
		w.index = append(w.index, 0)
	}
	w.levels[level] = append(w.levels[level], h)
	if len(w.levels[level]) < layout.TileWidth {
		return nil
	}
	hashes := w.levels[level]
	if err := w.write(layout.TilePath(uint64(level), w.index[level], 0), bytes.Join(hashes, nil)); err != nil {
		return err
	}
	w.levels[level] = nil
	w.index[level]++
	return w.push(level+1, subtreeRoot(hashes))
}

// finish writes the partial tile of every level.
func (w *writer) finish() error {
	for level, hashes := range w.levels {
		if len(hashes) > 0 {
			if err := w.write(layout.TilePath(uint64(level), w.index[level], uint8(len(hashes))), bytes.Join(hashes, nil)); err != nil {
				return err
			}
		}
	}
	return nil
}

// subtreeRoot is the root of a perfect subtree whose leaves (or nodes) are hashes.
func subtreeRoot(hashes [][]byte) []byte {
	for len(hashes) > 1 {
		next := make([][]byte, len(hashes)/2)
		for i := range next {
			next[i] = rfc6962.DefaultHasher.HashChildren(hashes[2*i], hashes[2*i+1])
		}
		hashes = next
	}
	return hashes[0]
}

func (w *writer) write(rel string, data []byte) error {
	p := filepath.Join(w.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	w.files++
	return nil
}
