package server

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestWorkersRunEachOnce: every function given to run runs exactly once, also
// when more are blocked at once than there are idle workers, and an idle
// worker takes the next one.
func TestWorkersRunEachOnce(t *testing.T) {
	w := newWorkers()
	const n = 500
	var ran [n]atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		w.run(func() {
			defer wg.Done()
			<-release // all n block at once: n workers
			ran[i].Add(1)
		})
	}
	close(release)
	wg.Wait()
	// Second round, one at a time: idle workers from the first round take them.
	for i := range n {
		wg.Add(1)
		w.run(func() {
			defer wg.Done()
			ran[i].Add(1)
		})
		wg.Wait()
	}
	for i := range n {
		if got := ran[i].Load(); got != 2 {
			t.Fatalf("function %d ran %d times, want 2", i, got)
		}
	}
}
