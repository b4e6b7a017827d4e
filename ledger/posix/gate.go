package posix

import (
	"context"
	"sync"
	"time"
)

// gate keeps at most one batch of entries in Tessera at a time (group commit).
//
// Tessera's queue cuts a batch BatchMaxAge after its first entry, even while
// an earlier batch is still being written, so a steady stream of Appends
// becomes a train of small batches, each paying the same fixed set of synced
// files. Now that an Append returns as soon as its batch is integrated (the
// checkpoint no longer gathers every waiting appender into one burst every
// 100 ms), that train never merges back. The gate restores big batches under
// load without delaying a lone Append: the first entry (the leader) goes to
// Tessera at once and opens a window of BatchMaxAge in which others join it
// (Tessera puts them in the same batch); entries arriving after the window
// wait until the leader's batch is written, then go together as the next one.
type gate struct {
	window time.Duration

	mu   sync.Mutex
	busy bool          // a batch is forming or being written
	open bool          // the forming batch still takes entries
	gen  uint64        // counts batches, so a late timer closes only its own window
	next chan struct{} // closed when the batch being written is done
}

func newGate(window time.Duration) *gate {
	return &gate{window: window, next: make(chan struct{})}
}

// enter waits until entry may go to Tessera, within ctx. If leader is true,
// the caller must call done once its entry's batch is written (or failed).
func (g *gate) enter(ctx context.Context) (leader bool, err error) {
	g.mu.Lock()
	for {
		if !g.busy {
			g.busy, g.open = true, true
			g.gen++
			gen := g.gen
			g.mu.Unlock()
			time.AfterFunc(g.window, func() { g.close(gen) })
			return true, nil
		}
		if g.open {
			g.mu.Unlock()
			return false, nil
		}
		next := g.next
		g.mu.Unlock()
		select {
		case <-next:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		g.mu.Lock()
	}
}

// close ends the window of batch gen, if it is still forming.
func (g *gate) close(gen uint64) {
	g.mu.Lock()
	if g.gen == gen {
		g.open = false
	}
	g.mu.Unlock()
}

// done: the leader's batch is written; the entries waiting go next.
func (g *gate) done() {
	g.mu.Lock()
	g.busy, g.open = false, false
	close(g.next)
	g.next = make(chan struct{})
	g.mu.Unlock()
}
