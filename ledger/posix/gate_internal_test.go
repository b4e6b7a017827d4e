package posix

import (
	"context"
	"testing"
	"time"
)

// TestGate: the first entry leads at once, entries within the window join its
// batch, later ones wait for the leader's batch to be written, then go
// together (one of them leading the next batch), and a waiter whose context
// ends gives up.
func TestGate(t *testing.T) {
	g := newGate(20 * time.Millisecond)
	ctx := t.Context()
	if leader, err := g.enter(ctx); err != nil || !leader {
		t.Fatalf("first enter = %v, %v; want leader", leader, err)
	}
	if leader, err := g.enter(ctx); err != nil || leader {
		t.Fatalf("enter within the window = %v, %v; want a joiner", leader, err)
	}
	time.Sleep(200 * time.Millisecond) // the window closes

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := g.enter(short); err == nil {
		t.Fatal("enter after the window returned before the batch was written")
	}

	results := make(chan bool, 3)
	for range 3 {
		go func() {
			leader, err := g.enter(ctx)
			if err != nil {
				t.Error(err)
			}
			results <- leader
		}()
	}
	select {
	case <-results:
		t.Fatal("a waiter went before the leader's batch was written")
	case <-time.After(30 * time.Millisecond):
	}
	g.done()
	leaders := 0
	for range 3 {
		select {
		case l := <-results:
			if l {
				leaders++
			}
		case <-time.After(time.Second):
			t.Fatal("waiters not released by done")
		}
	}
	if leaders != 1 {
		t.Errorf("%d leaders among the released entries, want 1", leaders)
	}
}
