package posix

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// checkpointTmp is where a checkpoint is written before it is renamed over
// the published one (in .keytrail/, so on the same file system, and named
// nothing tlog-tiles uses).
const checkpointTmp = "checkpoint.tmp"

// tesseraHold is the checkpoint interval Tessera is given: long enough that
// its publisher never finds the published checkpoint old enough to replace
// (it publishes only when the checkpoint file is missing; see guardedSigner).
const tesseraHold = 100 * 365 * 24 * time.Hour

// errNotTessera is what guardedSigner answers Tessera once keytrail publishes.
var errNotTessera = errors.New("posix: keytrail publishes this log's checkpoints, not Tessera")

// guardedSigner is the checkpoint signer handed to Tessera. Tessera needs one
// to open a log (and signs the empty tree when it creates one); once the
// writer takes over publishing, it refuses, so that Tessera can never write a
// checkpoint racing with keytrail's (an older tree written over a newer one).
type guardedSigner struct {
	note.Signer
	off atomic.Bool
}

func (g *guardedSigner) Sign(msg []byte) ([]byte, error) {
	if g.off.Load() {
		return nil, errNotTessera
	}
	return g.Signer.Sign(msg)
}

// publisher signs and publishes checkpoints of the tree Tessera has
// integrated: see the package doc, "Checkpoints".
type publisher struct {
	signer     note.Signer
	integrated func(context.Context) (uint64, error) // Tessera's integrated tree size
	files      files
	cps        *checkpoints

	mu        sync.Mutex // serialises publications
	have      bool       // a checkpoint is published
	size      uint64     // the size of the published checkpoint
	root      []byte     // and its root
	published func()     // if set, told of each new checkpoint (witnessing); must not block
}

// publish publishes a checkpoint of the whole integrated tree, unless the
// published one already covers it, and returns the published size.
func (p *publisher) publish(ctx context.Context) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	size, err := p.integrated(ctx)
	if err != nil {
		return p.size, fmt.Errorf("integrated tree size: %w", err)
	}
	if p.have && size <= p.size {
		return p.size, nil
	}
	root, err := p.rootOf(ctx, size)
	if err != nil {
		return p.size, err
	}
	// Every checkpoint handed out must be consistent with every later one:
	// prove it from the tiles before signing.
	if p.have && p.size > 0 {
		pb, err := client.NewProofBuilder(ctx, size, p.files.readTile)
		if err != nil {
			return p.size, fmt.Errorf("consistency proof from tree size %d to %d: %w", p.size, size, err)
		}
		cp, err := pb.ConsistencyProof(ctx, p.size, size)
		if err != nil {
			return p.size, fmt.Errorf("consistency proof from tree size %d to %d: %w", p.size, size, err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, p.size, size, cp, p.root, root); err != nil {
			return p.size, fmt.Errorf("%w: the tiles' tree of size %d (root %x) does not extend the published checkpoint of size %d (root %x): %v",
				ErrCorrupt, size, root, p.size, p.root, err)
		}
	}
	// The note Tessera's WithCheckpointSigner makes, byte for byte.
	text := flog.Checkpoint{Origin: p.signer.Name(), Size: size, Hash: root}.Marshal()
	raw, err := note.Sign(&note.Note{Text: string(text)}, p.signer)
	if err != nil {
		return p.size, fmt.Errorf("signing the checkpoint of tree size %d: %w", size, err)
	}
	if err := p.files.writeCheckpoint(raw); err != nil {
		return p.size, fmt.Errorf("writing the checkpoint of tree size %d: %w", size, err)
	}
	p.have, p.size, p.root = true, size, root
	// Check it as any reader would (authenticated if there is a verifier, and
	// not behind any checkpoint seen before) and serve it from memory.
	cp, err := p.cps.publishing(raw)
	if err != nil {
		return p.size, fmt.Errorf("checkpoint %s just written: %w", p.cps.path, err)
	}
	if cp.Size != size {
		return p.size, fmt.Errorf("checkpoint %s: %w: wrote tree size %d, parsed %d", p.cps.path, ErrCorrupt, size, cp.Size)
	}
	if p.published != nil {
		p.published()
	}
	return size, nil
}

// rootOf computes the root of the tree of size from the tiles Tessera wrote.
// Tessera writes a batch's entry bundles, then its tiles, then its tree state
// (each file synced), so the tiles of every integrated size are on disk: this
// root is the one readers recompute from them.
func (p *publisher) rootOf(ctx context.Context, size uint64) ([]byte, error) {
	if size == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	nodes, err := client.FetchRangeNodes(ctx, size, p.files.readTile)
	if err != nil {
		return nil, fmt.Errorf("root of tree size %d from the tiles: %w", size, err)
	}
	rng, err := rangeFactory.NewRange(0, size, nodes)
	if err != nil {
		return nil, fmt.Errorf("root of tree size %d from the tiles: %w", size, err)
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return nil, fmt.Errorf("root of tree size %d from the tiles: %w", size, err)
	}
	return root, nil
}

// writeCheckpoint replaces the checkpoint file with raw, durably: the bytes
// are synced before the rename, and the directory after it, so that a crash
// leaves the old checkpoint or the new one, never a torn or vanished one.
func (f files) writeCheckpoint(raw []byte) error {
	tmp := filepath.Join(f.dir, keyIndexDir, checkpointTmp)
	if err := os.MkdirAll(filepath.Dir(tmp), 0o755); err != nil {
		return err
	}
	w, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = w.Write(raw)
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.checkpointPath())
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(f.checkpointPath()))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
