package export_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/internal/tiles"
	"github.com/keytrail/keytrail/ledger/export"
	"github.com/keytrail/keytrail/ledger/ledgertest"
	"github.com/keytrail/keytrail/ledger/posix"
)

const origin = "example.com/export-test"

func newKey(t testing.TB) (note.Signer, note.Verifier) {
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	return s, v
}

// TestTilesSizes exports logs of sizes around every tile boundary, up to a
// partial level-2 tile, and checks the directory with the offline reader:
// every entry hashes into the tiles and to the checkpoint's root, and proofs
// computed from the tiles verify.
func TestTilesSizes(t *testing.T) {
	s, v := newKey(t)
	log := scenario.NewMemLog(origin, s)
	for _, size := range []uint64{0, 1, 2, 255, 256, 257, 511, 512, 1000, 65535, 65536, 65537, 70000} {
		for log.Size() < size {
			if _, err := log.Append(t.Context(), fmt.Appendf(nil, "entry %d", log.Size())); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			res, err := export.Tiles(t.Context(), log, dir, v)
			if err != nil {
				t.Fatal(err)
			}
			cp, _, _, err := flog.ParseCheckpoint(res.Checkpoint, origin, v)
			if err != nil || cp.Size != size {
				t.Fatalf("exported checkpoint: %v, size %d", err, cp.Size)
			}
			r := tiles.NewReader(os.DirFS(dir))
			raw, err := r.Checkpoint()
			if err != nil || !bytes.Equal(raw, res.Checkpoint) {
				t.Fatalf("checkpoint file: %v", err)
			}
			if size == 0 {
				return
			}
			n := uint64(0)
			if err := r.VerifyEntries(size, cp.Hash, func(i uint64, data []byte) error {
				if want := fmt.Sprintf("entry %d", i); string(data) != want {
					return fmt.Errorf("entry %d = %q", i, data)
				}
				n++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if n != size {
				t.Fatalf("VerifyEntries saw %d entries, want %d", n, size)
			}
			for _, i := range []uint64{0, size / 3, size / 2, size - 1} {
				p, err := r.InclusionProof(i, size)
				if err != nil {
					t.Fatal(err)
				}
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, size, rfc6962.DefaultHasher.HashLeaf(fmt.Appendf(nil, "entry %d", i)), p, cp.Hash); err != nil {
					t.Errorf("inclusion of %d in %d from the export: %v", i, size, err)
				}
			}
		})
	}
}

// TestTilesOfEmbeddedLog: the export of an embedded ledger has the same
// checkpoint and the same full tiles and bundles as the ledger's own directory.
func TestTilesOfEmbeddedLog(t *testing.T) {
	s, v := newKey(t)
	src := t.TempDir()
	l, err := posix.Open(t.Context(), posix.Config{Dir: src, Signer: s, Verifier: v, KeyIDs: ledgertest.KeyIDs})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(t.Context())
	var wg sync.WaitGroup
	for i := range 600 {
		wg.Go(func() {
			if _, err := l.Append(t.Context(), fmt.Appendf(nil, "e%d;key=k", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := export.Tiles(t.Context(), l, dir, v); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"checkpoint", "tile/0/000", "tile/0/001", "tile/entries/000", "tile/entries/001"} {
		a, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between the ledger and its export", rel)
		}
	}
}

// TestTilesRefusals: a checkpoint that does not verify, or entries that do
// not hash to its root, leave no directory behind; a non-empty target is refused.
func TestTilesRefusals(t *testing.T) {
	s, v := newKey(t)
	_, other := newKey(t)
	log := scenario.NewMemLog(origin, s)
	for i := range 10 {
		log.Append(t.Context(), fmt.Appendf(nil, "entry %d", i))
	}
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := export.Tiles(t.Context(), log, dir, other); err == nil {
		t.Error("exported with a checkpoint that does not verify")
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory left behind: %v", err)
	}
	if _, err := export.Tiles(t.Context(), lying{log}, dir, v); !errors.Is(err, export.ErrRootMismatch) {
		t.Errorf("export of entries that miss the root = %v, want ErrRootMismatch", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory left behind: %v", err)
	}
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "x"), nil, 0o644)
	if _, err := export.Tiles(t.Context(), log, dir, v); err == nil {
		t.Error("exported into a non-empty directory")
	}
}

// lying serves one entry that is not the one logged.
type lying struct{ *scenario.MemLog }

func (l lying) Entry(ctx context.Context, i uint64) ([]byte, error) {
	if i == 4 {
		return []byte("forged"), nil
	}
	return l.MemLog.Entry(ctx, i)
}
