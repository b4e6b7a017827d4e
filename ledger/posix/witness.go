package posix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/transparency-dev/tessera/client"

	"github.com/keytrail/keytrail/internal/durable"
	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/internal/backend"
)

// witnessedFile is the latest checkpoint that met the witness policy, with
// its cosignatures, in Config.Dir beside checkpoint.
const witnessedFile = "checkpoint.witnessed"

var _ ledger.Witnessed = (*Log)(nil)

func (f files) witnessedPath() string { return filepath.Join(f.dir, witnessedFile) }

// startWitnessing starts witnessing the writer's checkpoints (see the
// package doc, "Witnessing"): the publisher tells the loop of each new
// checkpoint.
func (l *Log) startWitnessing() {
	var witnessed []byte
	if raw, err := readFile(l.files.witnessedPath(), maxCheckpointSize); err == nil {
		if _, err := l.parseCheckpoint(raw); err == nil {
			witnessed = raw
		}
	}
	latest := func() ([]byte, error) {
		cp, err := l.cps.latest()
		if err != nil {
			return nil, err
		}
		return cp.raw, nil
	}
	l.witnesses = backend.NewWitnessing(l.cfg.Witnesses, l.cfg.WitnessInterval, witnessed, latest, l.tilesConsistencyProof, l.publisher.publishCosigned, l.logger)
	l.publisher.mu.Lock()
	l.publisher.published = l.witnesses.Notify
	l.publisher.mu.Unlock()
}

// tilesConsistencyProof builds a consistency proof from the tiles, for the
// witnesses: the same proof ConsistencyProof returns, without the checks
// that refuse it once Close has begun (Close witnesses the last checkpoint).
func (l *Log) tilesConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	pb, err := client.NewProofBuilder(ctx, size2, l.files.readTile)
	if err != nil {
		return nil, fmt.Errorf("posix: consistency proof from tree size %d to %d of %s: %w", size1, size2, l.dir, err)
	}
	p, err := pb.ConsistencyProof(ctx, size1, size2)
	if err != nil {
		return nil, fmt.Errorf("posix: consistency proof from tree size %d to %d of %s: %w", size1, size2, l.dir, err)
	}
	return p, nil
}

// publishCosigned keeps cosigned, a checkpoint of this log with the
// cosignatures that met the witness policy. If it is still the published
// checkpoint (same size and root), checkpoint is rewritten with the
// cosignatures first; then checkpoint.witnessed is. Both are written durably,
// so a reader that finds checkpoint.witnessed finds checkpoint cosigned too
// unless the log has grown since.
func (p *publisher) publishCosigned(_ context.Context, cosigned []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp, err := p.cps.parse(cosigned)
	if err != nil {
		return fmt.Errorf("cosigned checkpoint: %w", err)
	}
	if p.have && cp.Size == p.size && bytes.Equal(cp.Hash, p.root) {
		if err := p.files.writeCheckpoint(cosigned); err != nil {
			return fmt.Errorf("writing the cosigned checkpoint of tree size %d: %w", cp.Size, err)
		}
		if _, err := p.cps.publishing(cosigned); err != nil {
			return fmt.Errorf("checkpoint %s just written: %w", p.cps.path, err)
		}
	}
	if err := durable.WriteFile(p.files.witnessedPath(), cosigned, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", witnessedFile, err)
	}
	return nil
}

// WitnessedCheckpoint returns the latest checkpoint that met the writer's
// witness policy, with its cosignatures, from checkpoint.witnessed:
// authenticated as every checkpoint read from Dir (Config.Verifier), and
// never ahead of the latest checkpoint. Without one, the error wraps
// ledger.ErrNotWitnessed.
func (l *Log) WitnessedCheckpoint(ctx context.Context) ([]byte, error) {
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.inflight.Done()
	raw, err := readFile(l.files.witnessedPath(), maxCheckpointSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("posix: %s: %w", l.dir, ledger.ErrNotWitnessed)
	}
	if err != nil {
		return nil, fmt.Errorf("posix: %w", err)
	}
	cp, err := l.parseCheckpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("posix: %s: %w", l.files.witnessedPath(), err)
	}
	latest, err := l.cps.latest()
	if err != nil {
		return nil, err
	}
	if cp.Size > latest.Size || cp.Size == latest.Size && !bytes.Equal(cp.Hash, latest.Hash) {
		return nil, fmt.Errorf("posix: %s: %w: size %d root %x, the latest checkpoint has size %d root %x",
			l.files.witnessedPath(), ErrCorrupt, cp.Size, cp.Hash, latest.Size, latest.Hash)
	}
	return raw, nil
}
