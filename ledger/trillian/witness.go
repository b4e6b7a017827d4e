package trillian

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	tpb "github.com/google/trillian"

	"github.com/keytrail/keytrail/internal/durable"
	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/internal/backend"
)

// witnessedFile, in Config.StateDir, is the latest checkpoint that met the
// witness policy, with its cosignatures.
const witnessedFile = "witnessed"

var _ ledger.Witnessed = (*Log)(nil)

// startWitnessing starts witnessing the writer's checkpoints (package doc,
// "Witnessing"); sign tells the loop of each new checkpoint.
func (l *Log) startWitnessing() {
	var witnessed []byte
	if raw, err := os.ReadFile(filepath.Join(l.cfg.StateDir, witnessedFile)); err == nil && len(raw) <= maxCheckpointSize {
		if _, err := l.parseCheckpoint(raw); err == nil {
			witnessed = raw
		}
	}
	latest := func() ([]byte, error) {
		l.mu.RLock()
		defer l.mu.RUnlock()
		if l.cp == nil || l.cp.raw == nil {
			return nil, fmt.Errorf("trillian: %s: no checkpoint signed yet", l.what)
		}
		return l.cp.raw, nil
	}
	l.witnesses = backend.NewWitnessing(l.cfg.Witnesses, l.cfg.WitnessInterval, witnessed, latest, l.witnessProof, l.publishCosigned, l.logger)
}

// witnessProof is Trillian's consistency proof between two sizes, for the
// witnesses (it works while Close witnesses the last checkpoint).
func (l *Log) witnessProof(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	resp, err := l.client.GetConsistencyProof(ctx, &tpb.GetConsistencyProofRequest{LogId: l.cfg.TreeID, FirstTreeSize: int64(size1), SecondTreeSize: int64(size2)})
	if err != nil {
		return nil, fmt.Errorf("trillian: %s: GetConsistencyProof(%d, %d): %w", l.what, size1, size2, err)
	}
	if resp.GetProof() == nil {
		return nil, fmt.Errorf("trillian: %s: GetConsistencyProof(%d, %d): %w: no proof", l.what, size1, size2, ErrInconsistent)
	}
	return resp.GetProof().GetHashes(), nil
}

// publishCosigned keeps cosigned, a checkpoint of this tree with cosignatures
// that met the witness policy: in the state file if it is still the latest
// checkpoint, then in the witnessed file, both written durably.
func (l *Log) publishCosigned(_ context.Context, cosigned []byte) error {
	l.followMu.Lock()
	defer l.followMu.Unlock()
	cp, err := l.parseCheckpoint(cosigned)
	if err != nil {
		return fmt.Errorf("cosigned checkpoint: %w", err)
	}
	l.mu.RLock()
	cur := l.cp
	l.mu.RUnlock()
	if cur != nil && cur.rng != nil && cp.Size == cur.size && bytes.Equal(cp.Hash, cur.root) {
		if err := writeState(l.cfg.StateDir, state{raw: cosigned, rng: cur.rng}); err != nil {
			return fmt.Errorf("persisting the cosigned checkpoint of size %d: %w", cp.Size, err)
		}
		l.mu.Lock()
		l.cp = &signed{raw: cosigned, size: cur.size, root: cur.root, rng: cur.rng}
		l.mu.Unlock()
	}
	if err := durable.WriteFile(filepath.Join(l.cfg.StateDir, witnessedFile), cosigned, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", witnessedFile, err)
	}
	return nil
}

// WitnessedCheckpoint returns the latest checkpoint that met the writer's
// witness policy, from the state directory, authenticated as the state
// file's is, and never ahead of the latest checkpoint. Without one, the
// error wraps ledger.ErrNotWitnessed.
func (l *Log) WitnessedCheckpoint(ctx context.Context) ([]byte, error) {
	latest, err := l.latest()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(l.cfg.StateDir, witnessedFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("trillian: %s: %w", l.what, ledger.ErrNotWitnessed)
	}
	if err != nil {
		return nil, fmt.Errorf("trillian: %s: %w", l.what, err)
	}
	if len(raw) > maxCheckpointSize {
		return nil, fmt.Errorf("trillian: %s: larger than %d bytes", path, maxCheckpointSize)
	}
	cp, err := l.parseCheckpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("trillian: %s: %w", path, err)
	}
	if cp.Size > latest.size || cp.Size == latest.size && !bytes.Equal(cp.Hash, latest.root) {
		return nil, fmt.Errorf("trillian: %s: %w: size %d root %x, the latest checkpoint has size %d root %x",
			path, ErrInconsistent, cp.Size, cp.Hash, latest.size, latest.root)
	}
	return raw, nil
}
