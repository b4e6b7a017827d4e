package trillian_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/internal/trilliantest"
	"github.com/keytrail/keytrail/ledger/ledgertest"
	"github.com/keytrail/keytrail/ledger/trillian"
)

func newKey(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, ledgertest.Origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func openWriter(t *testing.T, env *trilliantest.Env, tree int64, state string, s note.Signer, v note.Verifier) *trillian.Log {
	t.Helper()
	l, err := trillian.Open(t.Context(), trillian.Config{
		Addr: env.Addr, TreeID: tree, StateDir: state,
		Signer: s, Verifier: v, KeyIDs: ledgertest.KeyIDs, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatalf("trillian.Open: %v", err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return l
}

func checkpointOf(t *testing.T, l *trillian.Log, v note.Verifier) flog.Checkpoint {
	t.Helper()
	raw, err := l.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cp, _, _, err := flog.ParseCheckpoint(raw, ledgertest.Origin, v)
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v", err)
	}
	return *cp
}

// ingest appends distinct entries from workers goroutines until stop is
// closed, and returns every acknowledged entry with its index.
type ingest struct {
	mu    sync.Mutex
	acked map[string]uint64
	errs  atomic.Int64
	wg    sync.WaitGroup
	stop  chan struct{}
	n     atomic.Int64
}

func startIngest(t *testing.T, l *trillian.Log, workers int) *ingest {
	in := &ingest{acked: map[string]uint64{}, stop: make(chan struct{})}
	for w := range workers {
		in.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-in.stop:
					return
				default:
				}
				e := fmt.Appendf(nil, "fault-w%d-%d;key=k%d", w, i, i%5)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				idx, err := l.Append(ctx, e)
				cancel()
				if err != nil {
					in.errs.Add(1)
					t.Logf("Append: %v", err)
					continue
				}
				in.n.Add(1)
				in.mu.Lock()
				in.acked[string(e)] = idx
				in.mu.Unlock()
			}
		})
	}
	return in
}

func (in *ingest) finish() map[string]uint64 {
	close(in.stop)
	in.wg.Wait()
	return in.acked
}

// waitGrowth waits until n more entries are acknowledged.
func (in *ingest) waitGrowth(t *testing.T, n int64) {
	t.Helper()
	target := in.n.Load() + n
	deadline := time.Now().Add(2 * time.Minute)
	for in.n.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("ingest stalled at %d acknowledged entries, want %d", in.n.Load(), target)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkAfterFault checks that every acknowledged entry is at its index, and
// that the first checkpoint after the fault is consistent with the last one
// before it.
func checkAfterFault(t *testing.T, l *trillian.Log, v note.Verifier, pre, post flog.Checkpoint, acked map[string]uint64) {
	t.Helper()
	if post.Size < pre.Size {
		t.Fatalf("checkpoint shrank across the fault: %d -> %d", pre.Size, post.Size)
	}
	p, err := l.ConsistencyProof(t.Context(), pre.Size, post.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, pre.Size, post.Size, p, pre.Hash, post.Hash); err != nil {
		t.Fatalf("consistency proof from the last pre-fault checkpoint (%d) to the first post-fault one (%d): %v", pre.Size, post.Size, err)
	}
	final := checkpointOf(t, l, v)
	all, err := l.Entries(t.Context(), 0, final.Size)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range all {
		if seen[string(e)] {
			t.Errorf("entry %q appears twice (second at %d)", e, i)
		}
		seen[string(e)] = true
	}
	for e, idx := range acked {
		if idx >= final.Size || !bytes.Equal(all[idx], []byte(e)) {
			t.Errorf("acknowledged entry %q at %d is lost (final size %d)", e, idx, final.Size)
		}
	}
	t.Logf("%d entries acknowledged; checkpoints %d (pre-fault) -> %d (post-fault) -> %d (final)", len(acked), pre.Size, post.Size, final.Size)
}

// firstAfter polls l's checkpoint until it grows past size.
func firstAfter(t *testing.T, l *trillian.Log, v note.Verifier, size uint64) flog.Checkpoint {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cp := checkpointOf(t, l, v)
		if cp.Size > size {
			return cp
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint past size %d after the fault", size)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFaultSignerKilled kills the Trillian log signer in the middle of
// sustained ingest and starts a new one.
func TestFaultSignerKilled(t *testing.T) {
	for _, db := range trilliantest.DBs {
		t.Run(db, func(t *testing.T) {
			env := trilliantest.Start(t, db, trilliantest.Options{})
			s, v := newKey(t)
			l := openWriter(t, env, env.CreateTree(t), t.TempDir(), s, v)
			in := startIngest(t, l, 16)
			in.waitGrowth(t, 300)
			env.StopSigner()
			pre := checkpointOf(t, l, v)
			stalled := in.n.Load()
			time.Sleep(500 * time.Millisecond)
			if moved := in.n.Load() - stalled; moved > 32 {
				t.Errorf("%d appends acknowledged with no signer running", moved)
			}
			env.StartSigner()
			post := firstAfter(t, l, v, pre.Size)
			in.waitGrowth(t, 300)
			acked := in.finish()
			if n := in.errs.Load(); n > 0 {
				t.Errorf("%d appends failed", n)
			}
			checkAfterFault(t, l, v, pre, post, acked)
		})
	}
}

// TestFaultPostgresRestart restarts the PostgreSQL cluster in the middle of
// sustained ingest.
func TestFaultPostgresRestart(t *testing.T) {
	versions, _ := filepath.Glob("/etc/postgresql/*")
	if _, err := exec.LookPath("pg_ctlcluster"); err != nil || len(versions) == 0 || os.Geteuid() != 0 {
		msg := "restarting PostgreSQL needs pg_ctlcluster and root (run under .ci/run)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	version := filepath.Base(versions[0])
	pg := func(action string) error {
		out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action).CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_ctlcluster %s: %v: %s", action, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	env := trilliantest.Start(t, trilliantest.PostgreSQL, trilliantest.Options{})
	// Whatever happens, leave the cluster running for everyone else.
	t.Cleanup(func() {
		if trilliantestUp() {
			return
		}
		if err := pg("start"); err != nil {
			t.Errorf("restarting PostgreSQL after the test: %v", err)
		}
	})
	s, v := newKey(t)
	l := openWriter(t, env, env.CreateTree(t), t.TempDir(), s, v)
	in := startIngest(t, l, 16)
	in.waitGrowth(t, 300)
	pre := checkpointOf(t, l, v)
	if err := pg("restart"); err != nil {
		t.Fatal(err)
	}
	post := firstAfter(t, l, v, pre.Size)
	in.waitGrowth(t, 300)
	acked := in.finish()
	t.Logf("%d appends failed and were not acknowledged (allowed: they are not acknowledged)", in.errs.Load())
	checkAfterFault(t, l, v, pre, post, acked)
}

func trilliantestUp() bool {
	out, err := exec.Command("pg_isready", "-h", "127.0.0.1", "-p", "5432").CombinedOutput()
	return err == nil && strings.Contains(string(out), "accepting")
}
