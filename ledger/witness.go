package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotWitnessed: no checkpoint of the log has met its witness policy yet.
var ErrNotWitnessed = errors.New("ledger: no witnessed checkpoint")

// Cosigner gathers witnesses' cosignatures (https://c2sp.org/tlog-cosignature)
// on the checkpoints a ledger publishes; *witness.Cosigner is one. A backend
// given a Cosigner witnesses its checkpoints in the background, off the
// append path: see Witnessed.
type Cosigner interface {
	// Cosign returns signed, a checkpoint signed by the log, with the
	// cosignature lines of enough witnesses to meet the cosigner's policy
	// appended, or an error that says which witness refused and why. proof
	// returns the log's consistency proof between two tree sizes,
	// 0 < size1 < size2, for witnesses that last saw an older tree.
	Cosign(ctx context.Context, signed []byte, proof func(ctx context.Context, size1, size2 uint64) ([][]byte, error)) ([]byte, error)
}

// Witnessed is implemented by the backends that witness their checkpoints
// (ledger/posix, ledger/trillian). A writer with a Cosigner submits each
// checkpoint it publishes to the witnesses, at most once per witness
// interval and never on an Append's path (an Append is acknowledged once
// its checkpoint is durable, not once it is witnessed); when the policy is
// met it keeps the cosigned checkpoint, and if that checkpoint is still the
// latest, it republishes it with the cosignatures, so that Checkpoint returns
// it cosigned. Close witnesses the last checkpoint before it returns.
type Witnessed interface {
	// WitnessedCheckpoint returns the latest checkpoint that met the witness
	// policy, with its cosignatures; an error wrapping ErrNotWitnessed if
	// none has. It may be older than Checkpoint's while witnesses catch up.
	WitnessedCheckpoint(ctx context.Context) ([]byte, error)
}

// AcceptedCheckpoint returns the latest checkpoint of l that accept accepts,
// e.g. one that meets an auditor's witness quorum: l's latest checkpoint or,
// if l is Witnessed, the latest one l's witnesses cosigned. Until one is
// accepted it looks again every poll, until ctx ends; the error then says
// why the last candidates were refused.
func AcceptedCheckpoint(ctx context.Context, l Log, accept func(signed []byte) error, poll time.Duration) ([]byte, error) {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	for {
		var errs []error
		latest, err := l.Checkpoint(ctx)
		if err != nil {
			return nil, err
		}
		err = accept(latest)
		if err == nil {
			return latest, nil
		}
		errs = append(errs, fmt.Errorf("latest checkpoint: %w", err))
		if w, ok := l.(Witnessed); ok {
			cp, err := w.WitnessedCheckpoint(ctx)
			if err == nil {
				err = accept(cp)
			}
			if err == nil {
				return cp, nil
			}
			errs = append(errs, fmt.Errorf("witnessed checkpoint: %w", err))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no checkpoint accepted before %w: %w", ctx.Err(), errors.Join(errs...))
		case <-time.After(poll):
		}
	}
}
