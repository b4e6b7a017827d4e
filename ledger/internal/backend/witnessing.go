package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/ledger"
)

// DefaultWitnessInterval is the shortest time between two witnessing rounds of
// a log under load: each round asks every witness once, whatever the number
// of checkpoints published meanwhile.
const DefaultWitnessInterval = time.Second

// maxWitnessRetry caps the wait before retrying a failed round.
const maxWitnessRetry = time.Minute

// Witnessing submits a writer's published checkpoints to its witnesses in the
// background (ledger.Witnessed describes the contract). Notify is all the
// append path does: a non-blocking send. One round at a time witnesses the
// latest published checkpoint; rounds start at most once per interval, and a
// failed round is retried, with a growing delay, while its checkpoint is
// still the latest unwitnessed one.
type Witnessing struct {
	cosigner ledger.Cosigner
	interval time.Duration
	latest   func() ([]byte, error)                                           // the latest published checkpoint
	proof    func(ctx context.Context, size1, size2 uint64) ([][]byte, error) // the log's consistency proofs
	publish  func(ctx context.Context, cosigned []byte) error                 // keep a cosigned checkpoint
	logger   *slog.Logger

	round   sync.Mutex // one round at a time
	mu      sync.Mutex // guards the fields below
	done    checkpoint.Checkpoint
	hasDone bool  // done is the last checkpoint witnessed
	lastErr error // the last round's error, nil if it succeeded

	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

// NewWitnessing starts the witnessing loop. witnessed, if not nil, is the
// last checkpoint the log's witnesses cosigned (from an earlier run): a
// latest checkpoint with its size and root is not witnessed again.
func NewWitnessing(c ledger.Cosigner, interval time.Duration, witnessed []byte,
	latest func() ([]byte, error),
	proof func(ctx context.Context, size1, size2 uint64) ([][]byte, error),
	publish func(ctx context.Context, cosigned []byte) error,
	logger *slog.Logger) *Witnessing {
	if interval <= 0 {
		interval = DefaultWitnessInterval
	}
	w := &Witnessing{cosigner: c, interval: interval, latest: latest, proof: proof, publish: publish, logger: logger,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	if witnessed != nil {
		if cp, err := checkpoint.ParseUnverified(witnessed); err == nil {
			w.done, w.hasDone = cp, true
		}
	}
	go w.loop()
	w.Notify()
	return w
}

// Notify tells the loop a checkpoint was published. It never blocks.
func (w *Witnessing) Notify() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Witnessing) loop() {
	defer close(w.stopped)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-w.stop
		cancel()
	}()
	retry := w.interval
	var timer <-chan time.Time
	for {
		select {
		case <-w.kick:
		case <-timer:
		case <-w.stop:
			return
		}
		timer = nil
		start := time.Now()
		did, err := w.witness(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			timer = time.After(retry)
			retry = min(2*retry, maxWitnessRetry)
		} else {
			retry = w.interval
		}
		if did {
			// The next round waits for the interval to pass.
			select {
			case <-time.After(w.interval - time.Since(start)):
			case <-w.stop:
				return
			}
		}
	}
}

// witness runs one round: it witnesses the latest checkpoint unless it is
// already witnessed. did reports whether witnesses were asked.
func (w *Witnessing) witness(ctx context.Context) (did bool, err error) {
	w.round.Lock()
	defer w.round.Unlock()
	latest, err := w.latest()
	if err != nil {
		return false, w.record(fmt.Errorf("reading the latest checkpoint: %w", err))
	}
	cp, err := checkpoint.ParseUnverified(latest)
	if err != nil {
		return false, w.record(err)
	}
	// The witnesses get the checkpoint as the log signed it, whatever
	// cosignatures the published one carries.
	signed, err := checkpoint.FirstSignature(latest)
	if err != nil {
		return false, w.record(err)
	}
	w.mu.Lock()
	already := w.hasDone && w.done.Size == cp.Size && bytes.Equal(w.done.Root, cp.Root)
	w.mu.Unlock()
	if already || cp.Size == 0 {
		return false, nil
	}
	cosigned, err := w.cosigner.Cosign(ctx, signed, w.proof)
	if err == nil && !bytes.HasPrefix(cosigned, signed) {
		err = errors.New("the cosigner changed the checkpoint it was given")
	}
	if err == nil {
		err = w.publish(ctx, cosigned)
	}
	if err != nil {
		return true, w.record(fmt.Errorf("witnessing checkpoint %s: %w", cp, err))
	}
	w.mu.Lock()
	w.done, w.hasDone, w.lastErr = cp, true, nil
	w.mu.Unlock()
	return true, nil
}

// record keeps err as the last error and logs it if it differs from the one
// before.
func (w *Witnessing) record(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lastErr == nil || w.lastErr.Error() != err.Error() {
		w.logger.Error("witnessing the log's checkpoint failed; appends go on, bundles needing a witness quorum wait", slog.Any("error", err))
	}
	w.lastErr = err
	return err
}

// Flush witnesses the latest checkpoint now, unless it already is, and
// returns that round's error. The loop keeps running.
func (w *Witnessing) Flush(ctx context.Context) error {
	_, err := w.witness(ctx)
	return err
}

// Stop ends the loop, cancelling a round in flight, and waits for it.
func (w *Witnessing) Stop() {
	w.once.Do(func() {
		close(w.stop)
		<-w.stopped
	})
}
