package trillian

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keytrail/keytrail/ledger"
)

// keyIndex maps key IDs to the ascending indices of the leaves that name them,
// in memory (see the package doc).
type keyIndex struct {
	keyIDs ledger.KeyIDsFunc

	mu   sync.Mutex
	rng  *compact.Range // covers [0, size)
	keys map[string][]uint64
}

// lookup brings the index up to cp and returns keyID's leaves. New leaves are
// kept only if, appended to the indexed prefix, they reproduce cp's root.
func (k *keyIndex) lookup(ctx context.Context, l *Log, cp *signed, keyID string) ([]uint64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.rng == nil {
		k.rng, k.keys = rangeFactory.NewEmptyRange(0), map[string][]uint64{}
	}
	if cp.size > k.rng.End() {
		rng, err := rangeFactory.NewRange(0, k.rng.End(), cloneHashes(k.rng.Hashes()))
		if err != nil {
			return nil, err
		}
		added := map[string][]uint64{}
		for rng.End() < cp.size {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			start := rng.End()
			vals, err := l.leaves(ctx, start, min(cp.size-start, uint64(l.cfg.FetchBatch)))
			if err != nil {
				return nil, fmt.Errorf("trillian: key index of %s: %w", l.what, err)
			}
			for i, v := range vals {
				if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(v), nil); err != nil {
					return nil, err
				}
				ids, err := k.keyIDs(v)
				if err != nil {
					continue
				}
				ids = slices.Clone(ids)
				slices.Sort(ids)
				for _, id := range slices.Compact(ids) {
					if id != "" {
						added[id] = append(added[id], start+uint64(i))
					}
				}
			}
		}
		root, err := rootOf(rng)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(root, cp.root) {
			return nil, fmt.Errorf("trillian: key index of %s: %w: leaves [0, %d) hash to %x, the checkpoint says %x", l.what, ErrInconsistent, cp.size, root, cp.root)
		}
		for id, idx := range added {
			k.keys[id] = append(k.keys[id], idx...)
		}
		k.rng = rng
	}
	// Leaves past cp (a reader whose index ran ahead of an older checkpoint
	// never happens: checkpoints only grow) are filtered all the same.
	var out []uint64
	for _, i := range k.keys[keyID] {
		if i < cp.size {
			out = append(out, i)
		}
	}
	return out, nil
}
