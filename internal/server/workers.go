package server

import "time"

// workerIdle is how long an idle append worker waits for more work before it
// exits.
const workerIdle = 5 * time.Second

// workers runs functions on goroutines that outlive them. Each append blocks
// for its batch, so an entry needs a goroutine of its own; but a fresh
// goroutine starts with a small stack, and Tessera's append path (its
// per-entry OpenTelemetry attribute sets) grows it every time: 5% of the
// server's CPU in batched ingestion went to copying stacks. A worker keeps its
// grown stack for the next entry. There is no bound here: the caller bounds
// the work in flight (Config.MaxInflightEntries), and idle workers exit after
// workerIdle.
type workers struct {
	tasks chan func()
}

func newWorkers() *workers { return &workers{tasks: make(chan func())} }

// run runs f on an idle worker, or on a new one if none is idle.
func (w *workers) run(f func()) {
	select {
	case w.tasks <- f:
	default:
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		f()
		f = nil
		t.Reset(workerIdle)
		select {
		case f = <-w.tasks:
		case <-t.C:
			return
		}
	}
}
