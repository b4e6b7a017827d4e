package posix

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/internal/backend"
	flog "github.com/transparency-dev/formats/log"
)

// checkpoint is a parsed checkpoint and the bytes it was parsed from.
type checkpoint struct {
	flog.Checkpoint
	raw []byte
}

// checkpoints reads the checkpoint file, parsing each new version once, and
// refuses a checkpoint that contradicts one seen before (a smaller tree, or
// another root for the same size).
type checkpoints struct {
	path  string
	read  func() ([]byte, error)
	parse func([]byte) (flog.Checkpoint, error)

	mu    sync.Mutex // serialises reads, so versions are seen in file order
	last  *checkpoint
	owned bool // this process publishes the file: last is its content
}

// latest returns the checkpoint currently in the file.
func (c *checkpoints) latest() (*checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owned && c.last != nil {
		return c.last, nil
	}
	raw, err := c.read()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return c.acceptLocked(raw)
}

// publishing records raw, just written to the file by this process, which
// from now on is the only one to write it: latest no longer rereads the file.
// raw is checked as a read would check it.
func (c *checkpoints) publishing(raw []byte) (*checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, err := c.acceptLocked(raw)
	if err != nil {
		return nil, err
	}
	c.owned = true
	return cp, nil
}

// own marks the file as written by this process alone from now on (the
// writer, after Open published or found a checkpoint of the whole tree).
func (c *checkpoints) own() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.owned = c.last != nil
}

func (c *checkpoints) acceptLocked(raw []byte) (*checkpoint, error) {
	if c.last != nil && bytes.Equal(raw, c.last.raw) {
		return c.last, nil
	}
	cp, err := c.parse(raw)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", c.path, err)
	}
	if last := c.last; last != nil {
		if cp.Size < last.Size || cp.Size == last.Size && !bytes.Equal(cp.Hash, last.Hash) {
			return nil, fmt.Errorf("checkpoint %s: %w: size %d root %x follows size %d root %x",
				c.path, ErrCorrupt, cp.Size, cp.Hash, last.Size, last.Hash)
		}
	}
	c.last = &checkpoint{Checkpoint: cp, raw: raw}
	return c.last, nil
}

// awaiter lets Appends wait until a published checkpoint covers their entries.
// A waiting Append kicks the publishing loop, which publishes a checkpoint of
// the whole integrated tree (coalescing the kicks that arrive meanwhile) and
// wakes the waiters when the published size grows. A failed publication is
// logged and retried while anyone waits: a waiter gives up only when its
// context ends or the log closes.
type awaiter struct {
	publish func(context.Context) (uint64, error)
	retry   time.Duration
	logger  *slog.Logger

	size    atomic.Uint64                 // size of the latest checkpoint published
	grown   atomic.Pointer[chan struct{}] // closed, and replaced, when size grows
	waiters atomic.Int64
	stopped atomic.Bool

	kick     chan struct{} // a waiter wants a checkpoint
	done     chan struct{} // closed by stop
	exited   chan struct{} // closed when the loop returns
	stopOnce sync.Once
}

func newAwaiter(publish func(context.Context) (uint64, error), published uint64, retry time.Duration, logger *slog.Logger) *awaiter {
	a := &awaiter{
		publish: publish,
		retry:   retry,
		logger:  logger,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	a.size.Store(published)
	ch := make(chan struct{})
	a.grown.Store(&ch)
	go a.loop()
	return a
}

// await returns once a checkpoint of at least size has been published. The
// caller's entry must already be integrated: the publication await asks for
// covers the tree as integrated when it starts.
func (a *awaiter) await(ctx context.Context, size uint64) error {
	if a.size.Load() >= size {
		return nil
	}
	a.waiters.Add(1)
	defer a.waiters.Add(-1)
	a.poke()
	for {
		// Load the channel before the size: advance stores the size before
		// it closes the channel, so a wakeup cannot be missed.
		grown := *a.grown.Load()
		if a.size.Load() >= size {
			return nil
		}
		if a.stopped.Load() {
			return ledger.ErrClosed
		}
		select {
		case <-grown:
		case <-ctx.Done():
			if a.size.Load() >= size {
				return nil
			}
			return ctx.Err()
		}
	}
}

func (a *awaiter) poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// loop publishes a checkpoint whenever a waiter asks for one.
func (a *awaiter) loop() {
	defer close(a.exited)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-a.done
		cancel()
	}()
	var lastErr string
	for {
		select {
		case <-a.kick:
		case <-a.done:
			return
		}
		size, err := a.publish(ctx)
		a.advance(size)
		if err != nil {
			// Log each distinct failure once; waiters keep waiting.
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				a.logger.Warn("publishing a checkpoint while appends wait", slog.Any("error", err))
			}
			if a.waiters.Load() > 0 {
				select {
				case <-time.After(a.retry):
					a.poke()
				case <-a.done:
					return
				}
			}
			continue
		}
		lastErr = ""
	}
}

// advance records a published size and wakes the waiters if it grew.
func (a *awaiter) advance(size uint64) {
	for {
		old := a.size.Load()
		if size <= old {
			return
		}
		if a.size.CompareAndSwap(old, size) {
			break
		}
	}
	ch := make(chan struct{})
	close(*a.grown.Swap(&ch))
}

// stop ends the loop and releases every waiter with ledger.ErrClosed.
func (a *awaiter) stop() {
	a.stopOnce.Do(func() {
		a.stopped.Store(true)
		close(a.done)
		<-a.exited
		ch := make(chan struct{})
		close(*a.grown.Swap(&ch))
	})
}

// parseCheckpoint authenticates raw with the verifier if there is one and parses it.
func (l *Log) parseCheckpoint(raw []byte) (flog.Checkpoint, error) {
	return backend.ParseCheckpoint(raw, l.cfg.Verifier, l.cfg.Signer)
}
