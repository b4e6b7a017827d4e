package posix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keytrail/keytrail/ledger/internal/backend"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
)

// Where the leaf-hash map and the writer lock live, beside the key index.
const (
	leafHashesFile = "leafhashes"
	writerLockFile = "writer.lock"
)

// leafHashesMagic starts the leaf-hash file; after it come 32-byte RFC 6962
// leaf hashes, the i-th being the hash of leaf i. A trailing partial record (a
// write cut short by a crash) is ignored.
const leafHashesMagic = "keytrail leafhashes v1\n"

// leafHash is an RFC 6962 leaf hash.
type leafHash [32]byte

func hashLeaf(entry []byte) leafHash { return leafHash(rfc6962.DefaultHasher.HashLeaf(entry)) }

// dedup makes appends exactly-once: it maps the leaf hash of every entry in the
// log (and of every entry sequenced by this writer) to its first index, and
// coalesces concurrent appends of one entry into one leaf. See the package doc,
// "Exactly-once appends".
type dedup struct {
	path   string
	logger *slog.Logger

	mu       sync.Mutex
	index    map[leafHash]uint64  // leaf hash → first index holding it
	inflight map[leafHash]*flight // appends being sequenced
	pending  map[uint64]leafHash  // sequenced by this writer, not yet in the file
	size     uint64               // the file holds the hashes of [0, size)
	file     *os.File             // open for appending; nil if writing failed
	failed   string               // the last write failure, logged once
	gapAt    uint64               // the first index advance found unreported
	gapSince time.Time            // when it found it
}

// flight is one append being sequenced; identical appends wait on it.
type flight struct {
	done chan struct{}
	idx  uint64
	err  error
}

func newDedup(dir string, logger *slog.Logger) *dedup {
	return &dedup{
		path:     filepath.Join(dir, keyIndexDir, leafHashesFile),
		logger:   logger,
		index:    map[leafHash]uint64{},
		inflight: map[leafHash]*flight{},
		pending:  map[uint64]leafHash{},
	}
}

// load reads the leaf-hash file and brings it up to cp, the latest published
// checkpoint, which must cover every entry in the tree (the caller waits for
// that). The hashes read, with those of the entries past them, must reproduce
// cp's root; otherwise the file is rebuilt from the log alone.
func (d *dedup) load(ctx context.Context, cp *checkpoint, f files) error {
	hashes, err := d.read(cp.Size)
	if err != nil {
		d.logger.WarnContext(ctx, "rebuilding unusable leaf-hash map", slog.String("path", d.path), slog.Any("error", err))
		hashes = nil
	}
	for {
		fromScratch := len(hashes) == 0
		all, err := d.extend(ctx, hashes, cp, f)
		if err != nil {
			return err
		}
		rng := rangeFactory.NewEmptyRange(0)
		for _, h := range all {
			if err := rng.Append(h[:], nil); err != nil {
				return fmt.Errorf("posix: leaf-hash map %s: %w", d.path, err)
			}
		}
		root, err := rootOf(rng)
		if err != nil {
			return fmt.Errorf("posix: leaf-hash map %s: %w", d.path, err)
		}
		if !bytes.Equal(root, cp.Hash) {
			if fromScratch {
				return fmt.Errorf("posix: leaf-hash map %s: %w: the first %d entries hash to root %x, the checkpoint says %x",
					d.path, ErrCorrupt, cp.Size, root, cp.Hash)
			}
			d.logger.WarnContext(ctx, "leaf-hash map is not of a prefix of this log, rebuilding it", slog.String("path", d.path))
			hashes = nil
			continue
		}
		for i, h := range all {
			if _, dup := d.index[h]; !dup {
				d.index[h] = uint64(i)
			}
		}
		return d.rewrite(ctx, all, len(hashes))
	}
}

// read returns the whole records of the leaf-hash file, at most max of them.
func (d *dedup) read(max uint64) ([]leafHash, error) {
	raw, err := os.ReadFile(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(raw, []byte(leafHashesMagic)) {
		return nil, errors.New("not a leaf-hash file")
	}
	raw = raw[len(leafHashesMagic):]
	n := uint64(len(raw) / 32)
	if n > max {
		return nil, fmt.Errorf("holds %d leaf hashes but the checkpoint has %d leaves", n, max)
	}
	hashes := make([]leafHash, n)
	for i := range hashes {
		copy(hashes[i][:], raw[i*32:])
	}
	return hashes, nil
}

// extend returns hashes followed by the leaf hashes of the entries
// [len(hashes), cp.Size), read from the log.
func (d *dedup) extend(ctx context.Context, hashes []leafHash, cp *checkpoint, f files) ([]leafHash, error) {
	from := uint64(len(hashes))
	if from >= cp.Size {
		return hashes, nil
	}
	all := make([]leafHash, from, cp.Size)
	copy(all, hashes)
	for ri := range layout.Range(from, cp.Size-from, cp.Size) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("posix: leaf-hash map %s: catching up at leaf %d of %d: %w", d.path, len(all), cp.Size, err)
		}
		b, err := f.entryBundle(ctx, ri.Index, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("posix: leaf-hash map %s: %w", d.path, err)
		}
		for _, e := range b.Entries[ri.First : ri.First+ri.N] {
			all = append(all, hashLeaf(e))
		}
	}
	return all, nil
}

// rewrite brings the file to hold all: it appends to the file when its first
// kept records are still there, and rewrites it otherwise. The file is a cache
// (see load), so a failure is logged, not returned: appends stay exactly-once
// through the in-memory map, and the next open rebuilds the file from the log.
func (d *dedup) rewrite(ctx context.Context, all []leafHash, kept int) error {
	if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
		return fmt.Errorf("posix: leaf-hash map %s: %w", d.path, err)
	}
	var buf bytes.Buffer
	var file *os.File
	var err error
	if kept > 0 {
		file, err = os.OpenFile(d.path, os.O_RDWR, 0o644)
		if err == nil {
			// Drop a partial record left by a crash before appending.
			err = file.Truncate(int64(len(leafHashesMagic) + 32*kept))
		}
		if err == nil {
			_, err = file.Seek(0, io.SeekEnd)
		}
	} else {
		tmp := d.path + ".tmp"
		file, err = os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err == nil {
			buf.WriteString(leafHashesMagic)
			_, err = file.Write(buf.Bytes())
			buf.Reset()
		}
		if err == nil {
			err = os.Rename(tmp, d.path)
		}
	}
	if err != nil {
		if file != nil {
			file.Close()
		}
		return fmt.Errorf("posix: leaf-hash map %s: %w", d.path, err)
	}
	for _, h := range all[kept:] {
		buf.Write(h[:])
	}
	if _, err := file.Write(buf.Bytes()); err != nil {
		file.Close()
		return fmt.Errorf("posix: leaf-hash map %s: %w", d.path, err)
	}
	d.file = file
	d.size = uint64(len(all))
	return nil
}

// claim looks h up without waiting: the index of its first copy if the log
// holds it (fl nil, claimed false); the flight of an identical append being
// sequenced (fl set: its done channel closes when it ends); or, if neither,
// claimed is true and the caller must sequence the entry and then call end
// with the result, while identical appends wait for it.
func (d *dedup) claim(h leafHash) (idx uint64, fl *flight, claimed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if idx, ok := d.index[h]; ok {
		return idx, nil, false
	}
	if fl, ok := d.inflight[h]; ok {
		return 0, fl, false
	}
	d.inflight[h] = &flight{done: make(chan struct{})}
	return 0, nil, true
}

// end records the outcome of sequencing the entry of hash h, claimed by claim.
func (d *dedup) end(h leafHash, idx uint64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fl := d.inflight[h]
	delete(d.inflight, h)
	if err == nil {
		if _, dup := d.index[h]; !dup {
			d.index[h] = idx
		}
		if idx >= d.size {
			d.pending[idx] = h
		}
	}
	fl.idx, fl.err = idx, err
	close(fl.done)
}

// advance appends to the file the hashes of [d.size, size), a prefix of the
// log covered by a published checkpoint, as far as this writer has seen them
// sequenced. An index it has not seen (its Append has not yet called end, or
// Tessera's Add failed after sequencing it after all) stops the file there;
// once that gap is older than gapWait, the entry is read from the log and its
// hash added to the map too.
func (d *dedup) advance(ctx context.Context, size uint64, f files) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if size <= d.size {
		return
	}
	var buf []byte
	for i := d.size; i < size; i++ {
		h, ok := d.pending[i]
		if !ok {
			if d.gapAt != i || d.gapSince.IsZero() {
				d.gapAt, d.gapSince = i, time.Now()
				break
			}
			if time.Since(d.gapSince) < gapWait {
				break
			}
			e, err := readEntry(ctx, f, i, size)
			if err != nil {
				d.fail(ctx, fmt.Errorf("reading entry %d: %w", i, err))
				break
			}
			h = hashLeaf(e)
			if _, dup := d.index[h]; !dup {
				d.index[h] = i
			}
		}
		delete(d.pending, i)
		buf = append(buf, h[:]...)
		d.size = i + 1
	}
	if d.file == nil || len(buf) == 0 {
		return
	}
	if _, err := d.file.Write(buf); err != nil {
		// A partial record is ignored on load; later records would be
		// misplaced, so stop writing until the next open rebuilds the file.
		d.fail(ctx, err)
		d.file.Close()
		d.file = nil
	}
}

// gapWait is how long advance waits for an Append to report an index it has
// not seen before reading that entry from the log.
const gapWait = time.Second

func (d *dedup) fail(ctx context.Context, err error) {
	if msg := err.Error(); msg != d.failed {
		d.failed = msg
		d.logger.WarnContext(ctx, "could not extend leaf-hash map (appends stay exactly-once; it is rebuilt on next open)",
			slog.String("path", d.path), slog.Any("error", err))
	}
}

func (d *dedup) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.file == nil {
		return nil
	}
	err := d.file.Close()
	d.file = nil
	return err
}

// readEntry reads entry index of a tree of size treeSize straight from the files.
func readEntry(ctx context.Context, f files, index, treeSize uint64) ([]byte, error) {
	b, err := f.entryBundle(ctx, index/layout.EntryBundleWidth, treeSize)
	if err != nil {
		return nil, err
	}
	return b.Entries[index%layout.EntryBundleWidth], nil
}

// lockWriter takes the directory's writer lock, waiting for another process to
// release it until ctx ends. Exactly-once appends need one writer at a time:
// two would each miss the other's newest entries.
func lockWriter(ctx context.Context, dir string, logger *slog.Logger) (*os.File, error) {
	return backend.LockWriter(ctx, filepath.Join(dir, keyIndexDir, writerLockFile), logger)
}
