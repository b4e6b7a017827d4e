package posix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
)

// Size limits on the files read from the log directory. tlog-tiles fixes the
// largest tile and entry bundle; a checkpoint with a few cosignatures is well
// under a kilobyte.
const (
	maxCheckpointSize = 64 << 10
	maxTileSize       = layout.TileWidth * 32
	maxBundleSize     = layout.EntryBundleWidth * (2 + MaxEntrySize)
)

// files reads tlog-tiles resources from a directory, like tessera's
// client.FileFetcher but refusing files larger than tlog-tiles allows and
// wrapping errors (fs.ErrNotExist included) with the path.
type files struct {
	dir string
}

func (f files) checkpointPath() string {
	return filepath.Join(f.dir, filepath.FromSlash(layout.CheckpointPath))
}

func (f files) readCheckpoint() ([]byte, error) {
	return readFile(f.checkpointPath(), maxCheckpointSize)
}

// readTile is a client.TileFetcherFunc.
func (f files) readTile(_ context.Context, level, index uint64, p uint8) ([]byte, error) {
	return f.partialOrFull(p, maxTileSize, func(p uint8) string { return layout.TilePath(level, index, p) })
}

// readEntryBundle is a client.EntryBundleFetcherFunc.
func (f files) readEntryBundle(_ context.Context, index uint64, p uint8) ([]byte, error) {
	return f.partialOrFull(p, maxBundleSize, func(p uint8) string { return layout.EntriesPath(index, p) })
}

// partialOrFull reads the partial resource of width p or, failing that, the
// full one or the narrowest wider partial one: all begin with the same p
// hashes or entries. Tessera writes a partial resource only at the tree sizes
// where a batch ended, and deletes partial resources once the full one exists,
// so a tree size between two batches needs the next wider one.
func (f files) partialOrFull(p uint8, limit int64, path func(uint8) string) ([]byte, error) {
	b, err := readFile(filepath.Join(f.dir, filepath.FromSlash(path(p))), limit)
	if p == 0 || !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	full := filepath.Join(f.dir, filepath.FromSlash(path(0)))
	if b, err := readFile(full, limit); !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	des, _ := os.ReadDir(full + ".p")
	widths := make([]int, 0, len(des))
	for _, de := range des {
		if w, err := strconv.Atoi(de.Name()); err == nil && w > int(p) && w < layout.TileWidth && de.Name() == strconv.Itoa(w) {
			widths = append(widths, w)
		}
	}
	slices.Sort(widths)
	for _, w := range widths {
		if b, err := readFile(filepath.Join(f.dir, filepath.FromSlash(path(uint8(w)))), limit); !errors.Is(err, fs.ErrNotExist) {
			return b, err
		}
	}
	// The wider partial ones may have been deleted as the full one was written.
	if b, err := readFile(full, limit); !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	return nil, err
}

// entryBundle reads and parses entry bundle index of a tree of size treeSize,
// checking that it holds every entry of that tree it should.
func (f files) entryBundle(ctx context.Context, index, treeSize uint64) (api.EntryBundle, error) {
	p := layout.PartialTileSize(0, index, treeSize)
	raw, err := f.readEntryBundle(ctx, index, p)
	if err != nil {
		return api.EntryBundle{}, fmt.Errorf("entry bundle %d: %w", index, err)
	}
	var b api.EntryBundle
	if err := b.UnmarshalText(raw); err != nil {
		return api.EntryBundle{}, fmt.Errorf("entry bundle %s: %w: %v", layout.EntriesPath(index, p), ErrCorrupt, err)
	}
	want := int(p)
	if p == 0 {
		want = layout.EntryBundleWidth
	}
	if len(b.Entries) < want || len(b.Entries) > layout.EntryBundleWidth {
		return api.EntryBundle{}, fmt.Errorf("entry bundle %s: %w: holds %d entries, want %d", layout.EntriesPath(index, p), ErrCorrupt, len(b.Entries), want)
	}
	return b, nil
}

// readFile reads the file at path, failing with ErrCorrupt if it is larger than limit.
func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *fs.PathError names the file
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: %w: larger than %d bytes", path, ErrCorrupt, limit)
	}
	return b, nil
}
