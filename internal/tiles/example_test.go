package tiles_test

import (
	"fmt"
	"testing/fstest"

	"github.com/keytrail/keytrail/internal/tiles"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// A log of three entries: one partial entry bundle and one partial hash tile,
// as a tlog-tiles writer stores them. Callers use os.DirFS(dir).
func Example() {
	h := rfc6962.DefaultHasher
	entries := []string{"alpha", "beta", "gamma"}
	var bundle, tile []byte
	for _, e := range entries {
		bundle = append(bundle, byte(len(e)>>8), byte(len(e)))
		bundle = append(bundle, e...)
		tile = append(tile, h.HashLeaf([]byte(e))...)
	}
	fsys := fstest.MapFS{
		"tile/entries/000.p/3": {Data: bundle},
		"tile/0/000.p/3":       {Data: tile},
	}
	// In real use the size and root come from a checkpoint whose signature
	// the caller has verified.
	const size = 3
	root := h.HashChildren(h.HashChildren(h.HashLeaf([]byte("alpha")), h.HashLeaf([]byte("beta"))), h.HashLeaf([]byte("gamma")))

	r := tiles.NewReader(fsys)
	p, err := r.InclusionProof(1, size)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("inclusion of 1:", proof.VerifyInclusion(h, 1, size, h.HashLeaf([]byte("beta")), p, root))

	// What the callback concludes counts only if VerifyEntries returns nil.
	var seen []string
	err = r.VerifyEntries(size, root, func(i uint64, data []byte) error {
		seen = append(seen, string(data))
		return nil
	})
	fmt.Println("verify entries:", err, seen)

	_, err = r.InclusionProof(size, size)
	fmt.Println(err)
	// Output:
	// inclusion of 1: <nil>
	// verify entries: <nil> [alpha beta gamma]
	// tiles: out of range: leaf index 3 is not below tree size 3
}
