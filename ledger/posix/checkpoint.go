package posix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keytrail/keytrail/ledger"
	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
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

	mu   sync.Mutex // serialises reads, so versions are seen in file order
	last *checkpoint
}

// latest returns the checkpoint currently in the file.
func (c *checkpoints) latest() (*checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	raw, err := c.read()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
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

// parseCheckpoint authenticates raw with the verifier if there is one and parses it.
func (l *Log) parseCheckpoint(raw []byte) (flog.Checkpoint, error) {
	var cp flog.Checkpoint
	if v := l.cfg.Verifier; v != nil {
		c, _, _, err := flog.ParseCheckpoint(raw, v.Name(), v)
		if err != nil {
			return cp, err
		}
		cp = *c
	} else {
		// Nothing to authenticate with: parse the note as unverified.
		_, err := note.Open(raw, nil)
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) {
			return cp, fmt.Errorf("malformed signed note: %v", err)
		}
		n := unverified.Note
		if s := l.cfg.Signer; s != nil {
			signed := false
			for _, sig := range n.UnverifiedSigs {
				signed = signed || sig.Name == s.Name() && sig.Hash == s.KeyHash()
			}
			if !signed {
				return cp, fmt.Errorf("no signature by %q (key hash %08x)", s.Name(), s.KeyHash())
			}
		}
		if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
			return cp, err
		}
		if s := l.cfg.Signer; s != nil && cp.Origin != s.Name() {
			return cp, fmt.Errorf("origin %q, want the signer's name %q", cp.Origin, s.Name())
		}
	}
	if len(cp.Hash) != 32 {
		return cp, fmt.Errorf("root hash of %d bytes, want 32", len(cp.Hash))
	}
	return cp, nil
}

// awaiter lets Appends wait until a published checkpoint covers their entries.
// Unlike tessera.PublicationAwaiter, it reads the checkpoint file only while
// some Append waits, wakes waiters only when the tree grows (without a lock
// they must all take in turn), and does not fail every waiter on one bad read:
// a waiter gives up only when its context ends or the log closes.
type awaiter struct {
	cps    *checkpoints
	period time.Duration
	logger *slog.Logger

	size    atomic.Uint64                 // size of the latest checkpoint seen
	grown   atomic.Pointer[chan struct{}] // closed, and replaced, when size grows
	waiters atomic.Int64
	stopped atomic.Bool

	kick     chan struct{} // wakes the poller when the first waiter arrives
	done     chan struct{} // closed by stop
	stopOnce sync.Once
}

func newAwaiter(cps *checkpoints, period time.Duration, logger *slog.Logger) *awaiter {
	a := &awaiter{
		cps:    cps,
		period: period,
		logger: logger,
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	ch := make(chan struct{})
	a.grown.Store(&ch)
	go a.poll()
	return a
}

// await returns once a checkpoint of at least size has been published.
func (a *awaiter) await(ctx context.Context, size uint64) error {
	if a.size.Load() >= size {
		return nil
	}
	if a.waiters.Add(1) == 1 {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	defer a.waiters.Add(-1)
	for {
		// Load the channel before the size: poll stores the size before it
		// closes the channel, so a wakeup cannot be missed.
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

// poll rereads the checkpoint every period while anyone waits.
func (a *awaiter) poll() {
	t := time.NewTicker(a.period)
	defer t.Stop()
	var lastErr string
	for {
		if a.waiters.Load() == 0 {
			select {
			case <-a.kick:
			case <-a.done:
				return
			}
		}
		select {
		case <-t.C:
		case <-a.done:
			return
		}
		cp, err := a.cps.latest()
		if err != nil {
			// Log each distinct failure once; waiters keep waiting.
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				a.logger.Warn("reading checkpoint while appends wait", slog.Any("error", err))
			}
			continue
		}
		lastErr = ""
		if cp.Size > a.size.Load() {
			a.size.Store(cp.Size)
			a.wake()
		}
	}
}

func (a *awaiter) wake() {
	ch := make(chan struct{})
	close(*a.grown.Swap(&ch))
}

// stop ends polling and releases every waiter with ledger.ErrClosed.
func (a *awaiter) stop() {
	a.stopOnce.Do(func() {
		a.stopped.Store(true)
		close(a.done)
		a.wake()
	})
}
