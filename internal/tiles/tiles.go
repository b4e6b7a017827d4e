// Package tiles reads a transparency log stored as a C2SP tlog-tiles directory
// (https://c2sp.org/tlog-tiles): the checkpoint, hash tiles and entry bundles,
// offline and without network access.
//
// It serves any tlog-tiles log, not only keytrail's, and handles full and
// partial tiles: for a tree of size N the tile at (level, index) has the width
// the spec assigns it, read from the partial file ".p/W" or, when the log has
// grown and removed that file, from the first W hashes of the full tile.
//
// # Trust
//
// Everything read from the directory is untrusted and bounded in size. The
// proofs this package returns are made from hash tiles; they mean something
// only once the caller verifies them against a root taken from a checkpoint
// whose signature the caller has verified. [Reader.Checkpoint] returns the
// checkpoint's bytes without parsing them.
//
// [Reader.VerifyEntries] is the one check this package makes on its own: it
// hashes every entry, compares each leaf hash and each stored subtree hash with
// the hash tiles, and compares the tree root with the root the caller trusts.
//
// # Errors
//
// Errors wrap one of the sentinels below (test them with errors.Is) and name
// the file they concern.
package tiles

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/keytrail/keytrail/internal/regfile"
)

// Sentinel errors. Every error returned by a Reader wraps at most one of them.
var (
	// ErrOutOfRange: an index, range or tree size the request cannot be served
	// for, such as a leaf index at or beyond the tree size, an empty tree, or a
	// consistency proof from size 0.
	ErrOutOfRange = errors.New("tiles: out of range")
	// ErrMissing: a file the request needs is absent. It wraps fs.ErrNotExist.
	ErrMissing = fmt.Errorf("tiles: missing file (%w)", fs.ErrNotExist)
	// ErrMalformed: a file is too large, too short, of the wrong length, or does
	// not decode.
	ErrMalformed = errors.New("tiles: malformed file")
	// ErrTileMismatch: the files disagree with each other: an entry does not
	// hash to its leaf hash in the level-0 tile, or a hash in a tile of level 1
	// or more is not the hash of the subtree below it.
	ErrTileMismatch = errors.New("tiles: tile hash mismatch")
	// ErrRootMismatch: the root computed from the log is not the expected root.
	ErrRootMismatch = errors.New("tiles: root mismatch")
)

const (
	// hashSize is the size of a SHA-256 Merkle tree hash.
	hashSize = sha256.Size
	// maxCheckpointSize bounds the checkpoint file.
	maxCheckpointSize = 64 << 10
	// maxTileSize is the size of a full hash tile; no tile file may be larger.
	maxTileSize = layout.TileWidth * hashSize
	// maxEntrySize is the largest entry a uint16 length prefix can describe.
	maxEntrySize = 1<<16 - 1
	// maxBundleSize is the size of a full entry bundle of maximal entries; no
	// entry bundle file may be larger.
	maxBundleSize = layout.EntryBundleWidth * (2 + maxEntrySize)
)

var (
	hasher       = rfc6962.DefaultHasher
	rangeFactory = compact.RangeFactory{Hash: hasher.HashChildren}
)

// Reader reads a tlog-tiles log from a file system whose root is the log's
// root (the directory holding "checkpoint" and "tile/"). Only regular files
// are read, each within a size bound: a file's mode is checked with fs.Stat
// before it is opened and on the opened file before it is read.
//
// Callers on disk use internal/regfile's DirFS: it keeps symbolic links from
// leading out of the directory, and its Open never blocks. os.DirFS and an
// os.Root's FS block in Open on a FIFO; with them a FIFO put in place of a
// file after the Stat (ATTACKS.md 44) hangs the Reader. A Reader holds no state besides fsys and is safe for concurrent use
// if fsys is.
type Reader struct {
	fsys fs.FS
}

// NewReader returns a Reader of the log stored in fsys.
func NewReader(fsys fs.FS) *Reader {
	return &Reader{fsys: fsys}
}

// Checkpoint returns the raw bytes of the log's "checkpoint" file, which must
// be at most 64 KiB. It does not parse them: the caller verifies the signed
// note before it trusts anything in it.
func (r *Reader) Checkpoint() ([]byte, error) {
	return r.readFile(layout.CheckpointPath, maxCheckpointSize, nil)
}

// LeafHashes returns the leaf hashes of the leaves [from, to) of the tree of
// size treeSize, read from the level-0 hash tiles. It requires
// from <= to <= treeSize and treeSize > 0; from == to returns no hashes. The
// hashes are as the tiles hold them: the caller verifies them with inclusion
// proofs against a trusted root, or uses VerifyEntries.
func (r *Reader) LeafHashes(from, to, treeSize uint64) ([][]byte, error) {
	if err := checkRange(from, to, treeSize); err != nil {
		return nil, err
	}
	out := make([][]byte, 0, min(to-from, 1<<16))
	for ri := range layout.Range(from, to-from, treeSize) {
		hashes, _, _, err := r.hashTile(0, ri.Index, treeSize, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, hashes[ri.First:ri.First+ri.N]...)
	}
	return out, nil
}

// InclusionProof returns the RFC 6962 inclusion proof of the leaf at index in
// the tree of size treeSize, computed from the hash tiles. It requires
// index < treeSize. The caller must verify the proof against a trusted root.
func (r *Reader) InclusionProof(index, treeSize uint64) ([][]byte, error) {
	if index >= treeSize {
		return nil, fmt.Errorf("%w: leaf index %d is not below tree size %d", ErrOutOfRange, index, treeSize)
	}
	nodes, err := proof.Inclusion(index, treeSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutOfRange, err)
	}
	return r.proofHashes(nodes, treeSize)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees of
// sizes size1 and size2, computed from the hash tiles of the tree of size
// size2. It requires 0 < size1 <= size2: consistency with the empty tree is
// not something a proof can show. The proof is empty when size1 == size2. The
// caller must verify the proof against two trusted roots.
func (r *Reader) ConsistencyProof(size1, size2 uint64) ([][]byte, error) {
	if size1 == 0 {
		return nil, fmt.Errorf("%w: consistency proof from tree size 0 (to %d)", ErrOutOfRange, size2)
	}
	if size1 > size2 {
		return nil, fmt.Errorf("%w: consistency proof from tree size %d to smaller size %d", ErrOutOfRange, size1, size2)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutOfRange, err)
	}
	return r.proofHashes(nodes, size2)
}

// Entries calls fn, in index order, with each entry [from, to) of the tree of
// size treeSize, read from the entry bundles. It requires
// from <= to <= treeSize and treeSize > 0; from == to calls fn never.
//
// The entries are not checked against the hash tiles or any root: the caller
// verifies each one (for example with an inclusion proof of its leaf hash
// against a trusted root) or uses VerifyEntries instead.
//
// data is valid only until fn returns; fn must copy it to keep it. An error
// from fn stops the walk and is returned as is.
func (r *Reader) Entries(from, to, treeSize uint64, fn func(index uint64, data []byte) error) error {
	if err := checkRange(from, to, treeSize); err != nil {
		return err
	}
	var buf []byte
	for ri := range layout.Range(from, to-from, treeSize) {
		entries, _, data, err := r.entryBundle(ri.Index, treeSize, buf)
		if err != nil {
			return err
		}
		buf = data
		first := ri.Index * layout.EntryBundleWidth
		for j := ri.First; j < ri.First+ri.N; j++ {
			if err := fn(first+uint64(j), entries[j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// VerifyEntries checks the whole log of size treeSize against root and streams
// every entry, in index order, to fn. It:
//
//   - hashes each entry as an RFC 6962 leaf and checks that it equals the leaf
//     hash in the level-0 hash tile (ErrTileMismatch otherwise), before fn sees
//     the entry;
//   - checks every hash in the tiles of level 1 and above against the subtree
//     it covers (ErrTileMismatch), so that the tiles proofs are made from are
//     checked too;
//   - computes the tree root from the leaf hashes with a compact range and
//     compares it with root (ErrRootMismatch, with both roots in the message).
//
// Whatever fn concluded about the entries is valid only if VerifyEntries
// returns nil: the root is known to match only after the last entry. data is
// valid only until fn returns; fn must copy it to keep it. An error from fn
// stops the walk and is returned as is.
//
// treeSize must be positive and root must be 32 bytes.
func (r *Reader) VerifyEntries(treeSize uint64, root []byte, fn func(index uint64, data []byte) error) error {
	if treeSize == 0 {
		return fmt.Errorf("%w: tree size 0 has no entries to verify", ErrOutOfRange)
	}
	if len(root) != hashSize {
		return fmt.Errorf("%w: expected root has %d bytes, want %d", ErrRootMismatch, len(root), hashSize)
	}

	// Tiles of level 1 and above are checked as the compact range creates the
	// nodes they hold: a hash at tile level L is the node at tree level 8L.
	type cursor struct {
		loaded bool
		index  uint64
		path   string
		hashes [][]byte
		buf    []byte
	}
	var (
		cursors  [64 / layout.TileHeight]cursor
		visitErr error
	)
	visit := func(id compact.NodeID, h []byte) {
		if visitErr != nil || id.Level == 0 || id.Level%layout.TileHeight != 0 {
			return
		}
		level := uint64(id.Level / layout.TileHeight)
		if level >= uint64(len(cursors)) {
			visitErr = fmt.Errorf("%w: node at tree level %d", ErrOutOfRange, id.Level)
			return
		}
		index, j := id.Index/layout.TileWidth, id.Index%layout.TileWidth
		c := &cursors[level]
		if !c.loaded || c.index != index {
			hashes, path, data, err := r.hashTile(level, index, treeSize, c.buf)
			if err != nil {
				visitErr = err
				return
			}
			*c = cursor{loaded: true, index: index, path: path, hashes: hashes, buf: data}
		}
		if j >= uint64(len(c.hashes)) {
			visitErr = fmt.Errorf("%w: %s has %d hashes, node %d needs hash %d", ErrMalformed, c.path, len(c.hashes), id.Index, j)
			return
		}
		if !bytes.Equal(c.hashes[j], h) {
			first, last := id.Coverage()
			visitErr = fmt.Errorf("%w: %s hash %d is %x, but the subtree of leaves [%d, %d) hashes to %x",
				ErrTileMismatch, c.path, j, c.hashes[j], first, last, h)
		}
	}

	cr := rangeFactory.NewEmptyRange(0)
	var bundleBuf, tileBuf []byte
	for ri := range layout.Range(0, treeSize, treeSize) {
		entries, bundlePath, data, err := r.entryBundle(ri.Index, treeSize, bundleBuf)
		if err != nil {
			return err
		}
		bundleBuf = data
		hashes, tilePath, data, err := r.hashTile(0, ri.Index, treeSize, tileBuf)
		if err != nil {
			return err
		}
		tileBuf = data
		if len(entries) != len(hashes) {
			// Cannot happen: both widths come from the same tree size.
			return fmt.Errorf("%w: %s has %d entries but %s has %d hashes", ErrTileMismatch, bundlePath, len(entries), tilePath, len(hashes))
		}
		first := ri.Index * layout.EntryBundleWidth
		for j, e := range entries {
			index := first + uint64(j)
			lh := hasher.HashLeaf(e)
			if !bytes.Equal(lh, hashes[j]) {
				return fmt.Errorf("%w: entry %d (%s) hashes to %x, but %s holds %x",
					ErrTileMismatch, index, bundlePath, lh, tilePath, hashes[j])
			}
			if err := cr.Append(lh, visit); err != nil {
				return fmt.Errorf("tiles: compact range at entry %d: %w", index, err)
			}
			if visitErr != nil {
				return visitErr
			}
			if err := fn(index, e); err != nil {
				return err
			}
		}
	}
	if cr.End() != treeSize {
		return fmt.Errorf("%w: verified %d entries, want %d", ErrOutOfRange, cr.End(), treeSize)
	}
	got, err := cr.GetRootHash(nil)
	if err != nil {
		return fmt.Errorf("tiles: computing root: %w", err)
	}
	if !bytes.Equal(got, root) {
		return fmt.Errorf("%w: entries of tree size %d hash to root %x, expected root %x", ErrRootMismatch, treeSize, got, root)
	}
	return nil
}

// checkRange validates a [from, to) range of a tree of size treeSize.
func checkRange(from, to, treeSize uint64) error {
	switch {
	case treeSize == 0:
		return fmt.Errorf("%w: tree size 0 has no entries", ErrOutOfRange)
	case from > to:
		return fmt.Errorf("%w: range [%d, %d) is reversed", ErrOutOfRange, from, to)
	case to > treeSize:
		return fmt.Errorf("%w: range [%d, %d) goes beyond tree size %d", ErrOutOfRange, from, to, treeSize)
	}
	return nil
}

// proofHashes fetches the hashes of nodes from the tiles of the tree of size
// treeSize and rehashes them into a proof.
func (r *Reader) proofHashes(nodes proof.Nodes, treeSize uint64) ([][]byte, error) {
	tiles := make(map[[2]uint64][][]byte)
	hashes := make([][]byte, 0, len(nodes.IDs))
	for _, id := range nodes.IDs {
		h, err := r.node(id, treeSize, tiles)
		if err != nil {
			return nil, err
		}
		hashes = append(hashes, h)
	}
	hashes, err := nodes.Rehash(hashes, hasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("tiles: rehashing proof: %w", err)
	}
	return hashes, nil
}

// node returns the hash of the perfect subtree id of the tree of size
// treeSize, computed from the tile that holds it. tiles caches parsed tiles.
func (r *Reader) node(id compact.NodeID, treeSize uint64, tiles map[[2]uint64][][]byte) ([]byte, error) {
	tileLevel, tileIndex, nodeLevel, nodeIndex := layout.NodeCoordsToTileAddress(uint64(id.Level), id.Index)
	key := [2]uint64{tileLevel, tileIndex}
	hashes, ok := tiles[key]
	if !ok {
		var err error
		hashes, _, _, err = r.hashTile(tileLevel, tileIndex, treeSize, nil)
		if err != nil {
			return nil, err
		}
		tiles[key] = hashes
	}
	first := nodeIndex << nodeLevel
	last := first + 1<<nodeLevel
	if last > uint64(len(hashes)) {
		return nil, fmt.Errorf("%w: node (level %d, index %d) needs hashes [%d, %d) of tile %s, which has %d",
			ErrOutOfRange, id.Level, id.Index, first, last, layout.TilePath(tileLevel, tileIndex, layout.PartialTileSize(tileLevel, tileIndex, treeSize)), len(hashes))
	}
	if nodeLevel == 0 {
		return hashes[first], nil
	}
	cr := rangeFactory.NewEmptyRange(0)
	for _, h := range hashes[first:last] {
		if err := cr.Append(h, nil); err != nil {
			return nil, fmt.Errorf("tiles: hashing node (level %d, index %d): %w", id.Level, id.Index, err)
		}
	}
	return cr.GetRootHash(nil)
}

// width returns the number of hashes (or entries) of the tile at (level,
// index) in the tree of size treeSize: 256 for a full tile, 1 to 255 for a
// partial one. It fails if the tree has no such tile.
func width(level, index, treeSize uint64) (int, error) {
	var sizeAtLevel uint64
	if level < 64/layout.TileHeight {
		sizeAtLevel = treeSize >> (level * layout.TileHeight)
	}
	full := sizeAtLevel / layout.TileWidth
	switch {
	case index < full:
		return layout.TileWidth, nil
	case index == full && sizeAtLevel%layout.TileWidth != 0:
		return int(sizeAtLevel % layout.TileWidth), nil
	}
	return 0, fmt.Errorf("%w: tree size %d has no tile at level %d, index %d", ErrOutOfRange, treeSize, level, index)
}

// hashTile reads the hash tile at (level, index) of the tree of size treeSize
// and returns its hashes (exactly as many as the tree gives the tile), the path
// read, and the buffer holding the file, reusing buf. Each hash has capacity
// 32, so appending to one cannot overwrite another.
func (r *Reader) hashTile(level, index, treeSize uint64, buf []byte) ([][]byte, string, []byte, error) {
	w, err := width(level, index, treeSize)
	if err != nil {
		return nil, "", buf, err
	}
	p := layout.PartialTileSize(level, index, treeSize)
	path, data, full, err := r.readTiled(layout.TilePath(level, index, 0), layout.TilePath(level, index, p), p, maxTileSize, buf)
	if err != nil {
		return nil, path, data, err
	}
	want := w
	if full {
		want = layout.TileWidth
	}
	if len(data) != want*hashSize {
		return nil, path, data, fmt.Errorf("%w: %s has %d bytes, want %d (%d hashes)", ErrMalformed, path, len(data), want*hashSize, want)
	}
	var t api.HashTile
	if err := t.UnmarshalText(data); err != nil {
		return nil, path, data, fmt.Errorf("%w: %s: %v", ErrMalformed, path, err)
	}
	hashes := t.Nodes[:w]
	for i, h := range hashes {
		hashes[i] = h[:len(h):len(h)]
	}
	return hashes, path, data, nil
}

// entryBundle reads the entry bundle at index of the tree of size treeSize and
// returns its entries (exactly as many as the tree gives the bundle), the path
// read, and the buffer holding the file, reusing buf. Each entry has capacity
// equal to its length.
func (r *Reader) entryBundle(index, treeSize uint64, buf []byte) ([][]byte, string, []byte, error) {
	w, err := width(0, index, treeSize)
	if err != nil {
		return nil, "", buf, err
	}
	p := layout.PartialTileSize(0, index, treeSize)
	path, data, full, err := r.readTiled(layout.EntriesPath(index, 0), layout.EntriesPath(index, p), p, maxBundleSize, buf)
	if err != nil {
		return nil, path, data, err
	}
	want := w
	if full {
		want = layout.EntryBundleWidth
	}
	// Count the entries before decoding, so that a file of empty entries
	// cannot make the decoder allocate millions of slices.
	n, err := countEntries(data, want)
	if err != nil {
		return nil, path, data, fmt.Errorf("%w: %s: %v", ErrMalformed, path, err)
	}
	if n != want {
		return nil, path, data, fmt.Errorf("%w: %s has %d entries, want %d", ErrMalformed, path, n, want)
	}
	var b api.EntryBundle
	if err := b.UnmarshalText(data); err != nil {
		return nil, path, data, fmt.Errorf("%w: %s: %v", ErrMalformed, path, err)
	}
	if len(b.Entries) != want {
		return nil, path, data, fmt.Errorf("%w: %s decodes to %d entries, want %d", ErrMalformed, path, len(b.Entries), want)
	}
	entries := b.Entries[:w]
	for i, e := range entries {
		entries[i] = e[:len(e):len(e)]
	}
	return entries, path, data, nil
}

// countEntries counts the uint16 length-prefixed entries in data, giving up
// once there are more than max of them.
func countEntries(data []byte, max int) (int, error) {
	n := 0
	for i := 0; i < len(data); n++ {
		if len(data)-i < 2 {
			return 0, fmt.Errorf("dangling byte at offset %d", i)
		}
		size := int(binary.BigEndian.Uint16(data[i:]))
		i += 2
		if len(data)-i < size {
			return 0, fmt.Errorf("entry %d at offset %d needs %d bytes, %d left", n, i, size, len(data)-i)
		}
		i += size
		if n == max {
			return 0, fmt.Errorf("more than %d entries", max)
		}
	}
	return n, nil
}

// readTiled reads a tile or entry bundle. If p is 0 it reads fullPath. If p is
// positive it reads partialPath and, if that file does not exist (a grown log
// may have removed it), fullPath. It reports which path it read and whether it
// was the full one.
func (r *Reader) readTiled(fullPath, partialPath string, p uint8, limit int, buf []byte) (string, []byte, bool, error) {
	if p == 0 {
		data, err := r.readFile(fullPath, limit, buf)
		return fullPath, data, true, err
	}
	data, err := r.readFile(partialPath, limit, buf)
	if err == nil || !errors.Is(err, ErrMissing) {
		return partialPath, data, false, err
	}
	data, err = r.readFile(fullPath, limit, buf)
	if errors.Is(err, ErrMissing) {
		return partialPath, data, true, fmt.Errorf("%w: %s (nor full %s)", ErrMissing, partialPath, fullPath)
	}
	return fullPath, data, true, err
}

// readFile reads the regular file name, which may hold at most limit bytes,
// into buf (reused if large enough) and returns the bytes.
func (r *Reader) readFile(name string, limit int, buf []byte) ([]byte, error) {
	fi, err := fs.Stat(r.fsys, name)
	if err != nil {
		return buf[:0], openError(name, err)
	}
	if !fi.Mode().IsRegular() {
		return buf[:0], fmt.Errorf("%w: %s is not a regular file (%s)", ErrMalformed, name, regfile.Kind(fi.Mode()))
	}
	if fi.Size() > int64(limit) {
		return buf[:0], fmt.Errorf("%w: %s has %d bytes, limit %d", ErrMalformed, name, fi.Size(), limit)
	}
	f, err := r.fsys.Open(name)
	if err != nil {
		return buf[:0], openError(name, err)
	}
	defer f.Close()
	// Checked again on what was opened: the file may have been replaced.
	if fi, err = f.Stat(); err != nil {
		return buf[:0], fmt.Errorf("tiles: opening %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return buf[:0], fmt.Errorf("%w: %s is not a regular file (%s)", ErrMalformed, name, regfile.Kind(fi.Mode()))
	}

	// Read at most limit+1 bytes: one more than allowed proves the file grew.
	if want := int(fi.Size()) + 1; cap(buf) < want {
		buf = make([]byte, 0, want)
	}
	buf = buf[:0]
	lr := io.LimitReader(f, int64(limit)+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf[:0], fmt.Errorf("tiles: reading %s: %w", name, err)
		}
	}
	if len(buf) > limit {
		return buf[:0], fmt.Errorf("%w: %s has more than %d bytes", ErrMalformed, name, limit)
	}
	return buf, nil
}

// openError wraps an error from opening name.
func openError(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrMissing, name)
	}
	return fmt.Errorf("tiles: opening %s: %w", name, err)
}
