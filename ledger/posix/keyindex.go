package posix

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/keytrail/keytrail/ledger"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
)

// Where the key index lives, relative to the log directory. tlog-tiles uses
// only "checkpoint" and "tile/", Tessera ".state/".
const (
	keyIndexDir  = ".keytrail"
	keyIndexFile = "keyindex"
)

// keyIndexMagic starts a key index file. The format, after it:
//
//	uvarint size                   leaves indexed: [0, size)
//	uvarint n, n × 32 bytes        compact range of [0, size): the subtree roots that
//	                               let the index check and extend the tree root
//	uvarint keys                   number of key IDs, then for each, in strictly ascending order:
//	  uvarint len, len bytes       the key ID
//	  uvarint count                how many leaves name it (≥ 1)
//	  uvarint first, (count-1) ×   the first index, then the (≥ 1) gaps to each next
//	  uvarint gap
//	32 bytes                       SHA-256 of everything before
const keyIndexMagic = "keytrail keyindex v1\n"

// maxKeyIDLen bounds a stored key ID, as tlog-tiles bounds the entries that name them.
const maxKeyIDLen = MaxEntrySize

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// keyIndex maps key IDs to the ascending indices of the leaves that name them.
// It is derived from the log alone, persisted to speed up the next process, and
// rebuilt from the log whenever the stored copy is missing, corrupt or of
// another tree.
type keyIndex struct {
	path   string
	keyIDs ledger.KeyIDsFunc
	logger *slog.Logger

	mu         sync.Mutex
	loaded     bool
	state      keyIndexState
	saved      bool   // the file holds state
	persistErr string // the last failure to save, logged once
}

type keyIndexState struct {
	size uint64
	rng  *compact.Range // covers [0, size)
	keys map[string][]uint64
}

func emptyKeyIndexState() keyIndexState {
	return keyIndexState{rng: rangeFactory.NewEmptyRange(0), keys: map[string][]uint64{}}
}

func newKeyIndex(dir string, keyIDs ledger.KeyIDsFunc, logger *slog.Logger) *keyIndex {
	return &keyIndex{
		path:   filepath.Join(dir, keyIndexDir, keyIndexFile),
		keyIDs: keyIDs,
		logger: logger,
	}
}

// lookup brings the index up to the latest checkpoint and returns keyID's leaves.
func (k *keyIndex) lookup(ctx context.Context, cps *checkpoints, f files, keyID string) ([]uint64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	// Read the checkpoint under the lock: checkpoints only grow, so the index
	// is never ahead of the checkpoint it is brought up to.
	cp, err := cps.latest()
	if err != nil {
		return nil, fmt.Errorf("posix: key index %s: %w", k.path, err)
	}
	if !k.loaded {
		k.state, k.saved = k.load(ctx, cp)
		k.loaded = true
	}
	if err := k.catchUp(ctx, cp, f); err != nil {
		return nil, err
	}
	if !k.saved {
		if err := k.persist(); err != nil {
			// The index is a cache: keep serving it from memory.
			if msg := err.Error(); msg != k.persistErr {
				k.persistErr = msg
				k.logger.WarnContext(ctx, "could not save key index", slog.String("path", k.path), slog.Any("error", err))
			}
		} else {
			k.saved, k.persistErr = true, ""
		}
	}
	return slices.Clone(k.state.keys[keyID]), nil
}

// load reads the stored index, or starts an empty one if it is unusable for a
// tree of checkpoint cp. saved reports whether the file holds what load returns.
func (k *keyIndex) load(ctx context.Context, cp *checkpoint) (s keyIndexState, saved bool) {
	raw, err := os.ReadFile(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		k.logger.InfoContext(ctx, "no key index yet, building it", slog.String("path", k.path))
		return emptyKeyIndexState(), false
	}
	if err == nil {
		if s, err = decodeKeyIndex(raw); err == nil {
			if s.size <= cp.Size {
				return s, true
			}
			err = fmt.Errorf("indexes %d leaves but the checkpoint has %d", s.size, cp.Size)
		}
	}
	k.logger.WarnContext(ctx, "rebuilding unusable key index", slog.String("path", k.path), slog.Any("error", err))
	return emptyKeyIndexState(), false
}

// catchUp indexes the leaves in [k.state.size, cp.Size). The new leaves are kept
// only if, appended to the indexed prefix, they reproduce cp's root; if not,
// the prefix is suspect and the whole log is indexed again. An index rebuilt
// from leaf 0 that still misses the root means the log contradicts its checkpoint.
func (k *keyIndex) catchUp(ctx context.Context, cp *checkpoint, f files) error {
	for {
		fromScratch := k.state.size == 0
		rng, added, err := k.extend(ctx, k.state, cp, f)
		if err != nil {
			return err
		}
		root, err := rootOf(rng)
		if err != nil {
			return fmt.Errorf("posix: key index %s: %w", k.path, err)
		}
		if !bytes.Equal(root, cp.Hash) {
			if fromScratch {
				return fmt.Errorf("posix: key index %s: %w: the first %d entries hash to root %x, the checkpoint says %x",
					k.path, ErrCorrupt, cp.Size, root, cp.Hash)
			}
			k.logger.WarnContext(ctx, "key index is not of a prefix of this log, rebuilding it",
				slog.String("path", k.path), slog.Uint64("indexed", k.state.size), slog.Uint64("checkpoint", cp.Size))
			k.state, k.saved = emptyKeyIndexState(), false
			continue
		}
		if rng.End() == k.state.size {
			return nil
		}
		for id, idxs := range added {
			k.state.keys[id] = append(k.state.keys[id], idxs...)
		}
		k.state.size, k.state.rng, k.saved = rng.End(), rng, false
		return nil
	}
}

// extend reads the leaves [s.size, cp.Size) and returns the compact range of
// [0, cp.Size) and the leaves each key ID names among them. It leaves s untouched.
func (k *keyIndex) extend(ctx context.Context, s keyIndexState, cp *checkpoint, f files) (*compact.Range, map[string][]uint64, error) {
	if s.size >= cp.Size {
		return s.rng, nil, nil
	}
	rng, err := rangeFactory.NewRange(0, s.size, slices.Clone(s.rng.Hashes()))
	if err != nil {
		return nil, nil, fmt.Errorf("posix: key index %s: %w", k.path, err)
	}
	added := map[string][]uint64{}
	var ids []string
	for ri := range layout.Range(s.size, cp.Size-s.size, cp.Size) {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("posix: key index %s: catching up at leaf %d of %d: %w", k.path, rng.End(), cp.Size, err)
		}
		b, err := f.entryBundle(ctx, ri.Index, cp.Size)
		if err != nil {
			return nil, nil, fmt.Errorf("posix: key index %s: %w", k.path, err)
		}
		for i, e := range b.Entries[ri.First : ri.First+ri.N] {
			idx := ri.Index*layout.EntryBundleWidth + uint64(ri.First) + uint64(i)
			if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(e), nil); err != nil {
				return nil, nil, fmt.Errorf("posix: key index %s: %w", k.path, err)
			}
			got, err := k.keyIDs(e)
			if err != nil {
				continue // the entry names no key
			}
			ids = append(ids[:0], got...)
			slices.Sort(ids)
			for _, id := range slices.Compact(ids) {
				if id == "" || len(id) > maxKeyIDLen {
					continue
				}
				added[id] = append(added[id], idx)
			}
		}
	}
	return rng, added, nil
}

func rootOf(r *compact.Range) ([]byte, error) {
	if r.End() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	return r.GetRootHash(nil)
}

// persist writes the index atomically: a synced temporary file renamed over the
// old one, then the directory synced.
func (k *keyIndex) persist() (err error) {
	dir := filepath.Dir(k.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, keyIndexFile+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(encodeKeyIndex(k.state)); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), k.path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func encodeKeyIndex(s keyIndexState) []byte {
	b := []byte(keyIndexMagic)
	b = binary.AppendUvarint(b, s.size)
	hashes := s.rng.Hashes()
	b = binary.AppendUvarint(b, uint64(len(hashes)))
	for _, h := range hashes {
		b = append(b, h...)
	}
	ids := make([]string, 0, len(s.keys))
	for id := range s.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
		idxs := s.keys[id]
		b = binary.AppendUvarint(b, uint64(len(idxs)))
		prev := uint64(0)
		for i, idx := range idxs {
			if i == 0 {
				b = binary.AppendUvarint(b, idx)
			} else {
				b = binary.AppendUvarint(b, idx-prev)
			}
			prev = idx
		}
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// decodeKeyIndex parses an encoded index, checking its checksum and that it is
// canonical: sorted unique key IDs, strictly ascending indices below size.
func decodeKeyIndex(b []byte) (keyIndexState, error) {
	var s keyIndexState
	if len(b) < len(keyIndexMagic)+sha256.Size || !bytes.HasPrefix(b, []byte(keyIndexMagic)) {
		return s, errors.New("not a key index file")
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return s, errors.New("checksum mismatch")
	}
	d := decoder{b: body[len(keyIndexMagic):]}
	s.size = d.uvarint()
	nh := d.count(sha256.Size)
	hashes := make([][]byte, 0, nh)
	for range nh {
		hashes = append(hashes, bytes.Clone(d.bytes(sha256.Size)))
	}
	nk := d.count(3)
	s.keys = make(map[string][]uint64, nk)
	prevID := ""
	for i := range nk {
		id := string(d.bytes(int(d.uvarintMax(maxKeyIDLen))))
		if d.err == nil && (id == "" || i > 0 && id <= prevID) {
			d.fail("key IDs not sorted and unique")
		}
		prevID = id
		n := d.count(1)
		if d.err == nil && n == 0 {
			d.fail("key ID with no leaves")
		}
		idxs := make([]uint64, 0, n)
		for j := range n {
			v := d.uvarint()
			if j > 0 {
				if v == 0 {
					d.fail("indices not strictly ascending")
				}
				v += idxs[j-1]
			}
			if d.err == nil && (v >= s.size || j > 0 && v < idxs[j-1]) {
				d.fail("index out of range")
			}
			idxs = append(idxs, v)
		}
		s.keys[id] = idxs
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return keyIndexState{}, d.err
	}
	rng, err := rangeFactory.NewRange(0, s.size, hashes)
	if err != nil {
		return keyIndexState{}, err
	}
	s.rng = rng
	return s, nil
}

// decoder reads uvarints and byte strings, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	// A final byte of zero after continuation bytes pads a shorter encoding.
	if n <= 0 || n > 1 && d.b[n-1] == 0 {
		d.fail("truncated, overlong or non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarintMax(max uint64) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail("length out of range")
		return 0
	}
	return v
}

// count reads a number of items each at least minSize bytes long, failing if
// the rest of the input cannot hold that many.
func (d *decoder) count(minSize int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/minSize) {
		d.fail("count exceeds the remaining bytes")
		return 0
	}
	return int(v)
}

func (d *decoder) bytes(n int) []byte {
	if n > len(d.b) {
		d.fail("truncated")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
