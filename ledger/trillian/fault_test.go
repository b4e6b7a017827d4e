package trillian_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
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

	"github.com/keytrail/keytrail/internal/trilliansigner"
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
	checkConsistent(t, l, pre, post, "the last pre-fault checkpoint", "the first post-fault one")
	final := checkAcked(t, l, v, acked)
	t.Logf("%d entries acknowledged; checkpoints %d (pre-fault) -> %d (post-fault) -> %d (final)", len(acked), pre.Size, post.Size, final.Size)
}

// checkConsistent verifies Trillian's consistency proof from checkpoint from
// to checkpoint to, both signed by keytrail.
func checkConsistent(t *testing.T, l *trillian.Log, from, to flog.Checkpoint, fromName, toName string) {
	t.Helper()
	if to.Size < from.Size {
		t.Fatalf("checkpoint shrank across the fault: %d (%s) -> %d (%s)", from.Size, fromName, to.Size, toName)
	}
	p, err := l.ConsistencyProof(t.Context(), from.Size, to.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from.Size, to.Size, p, from.Hash, to.Hash); err != nil {
		t.Fatalf("consistency proof from %s (%d) to %s (%d): %v", fromName, from.Size, toName, to.Size, err)
	}
}

// checkAcked checks that every acknowledged entry is at its index in the
// tree of the latest checkpoint, and that no entry is in it twice. It
// returns that checkpoint.
func checkAcked(t *testing.T, l *trillian.Log, v note.Verifier, acked map[string]uint64) flog.Checkpoint {
	t.Helper()
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
	return final
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

// signerKills is how many times TestFaultSignerKilled kills the signer per
// database.
const signerKills = 5

// TestFaultSignerKilled runs the Trillian log signer as a child process
// (cmd/internal/trillian-signer, built from Trillian's own packages) and kills
// it with SIGKILL signerKills times, at random moments, during sustained
// ingest through the ledger, on each database; a new signer process is
// started after each kill. For each kill: no more appends are acknowledged
// while no signer runs than the killed signer had already integrated, and
// the first checkpoint after the restart is consistent with the last one
// seen before the kill and with the last one during the outage. At the end:
// no append failed, every acknowledged entry is at its index, none is logged
// twice, and the final checkpoint is consistent with the one before the
// first kill.
func TestFaultSignerKilled(t *testing.T) {
	bin := trilliantest.BuildSigner(t)
	for _, db := range trilliantest.DBs {
		t.Run(db, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("random kill moments: seed %d", seed)
			rnd := mrand.New(mrand.NewPCG(seed, 0))
			env := trilliantest.Start(t, db, trilliantest.Options{SignerBinary: bin})
			s, v := newKey(t)
			l := openWriter(t, env, env.CreateTree(t), t.TempDir(), s, v)
			in := startIngest(t, l, 16)
			in.waitGrowth(t, 300)
			first := checkpointOf(t, l, v)
			midTx := 0
			for k := range signerKills {
				// A random moment: after 0-199 more acknowledged entries
				// and then, for even kills, 0-2 signer pass intervals
				// more; odd kills wait for the database server to show
				// the signer with a transaction open (mid-pass).
				in.waitGrowth(t, rnd.Int64N(200))
				pre := checkpointOf(t, l, v)
				var inTx bool
				if k%2 == 1 {
					inTx = waitSignerInTransaction(t, env)
				} else {
					time.Sleep(time.Duration(rnd.Int64N(int64(2 * trilliansigner.DefaultInterval))))
				}
				pid := env.SignerPID()
				env.KillSigner(t)
				if inTx {
					midTx++
				}
				stalled := in.n.Load()
				time.Sleep(300 * time.Millisecond)
				if moved := in.n.Load() - stalled; moved > 32 {
					t.Errorf("kill %d: %d appends acknowledged with no signer running", k+1, moved)
				}
				outage := checkpointOf(t, l, v)
				env.StartSigner(t)
				post := firstAfter(t, l, v, outage.Size)
				checkConsistent(t, l, pre, post, "the last checkpoint before the kill", "the first after the restart")
				checkConsistent(t, l, outage, post, "the last checkpoint without a signer", "the first after the restart")
				t.Logf("kill %d (signer pid %d -> %d, transaction seen open just before: %v): checkpoints %d (before the kill) -> %d (no signer) -> %d (first after the restart)",
					k+1, pid, env.SignerPID(), inTx, pre.Size, outage.Size, post.Size)
			}
			if midTx == 0 {
				t.Errorf("no kill was made while the signer had a transaction open")
			}
			in.waitGrowth(t, 300)
			acked := in.finish()
			if n := in.errs.Load(); n > 0 {
				t.Errorf("%d appends failed", n)
			}
			final := checkAcked(t, l, v, acked)
			checkConsistent(t, l, first, final, "the checkpoint before the first kill", "the final one")
			t.Logf("%d entries acknowledged; checkpoints %d (before the first kill) -> %d (final)", len(acked), first.Size, final.Size)
		})
	}
}

// waitSignerInTransaction polls the database server until it shows the child
// signer with a transaction open, and reports whether it did within 10 s.
func waitSignerInTransaction(t *testing.T, env *trilliantest.Env) bool {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		open, err := env.SignerInTransaction(t.Context())
		if err != nil {
			t.Fatalf("is the signer in a transaction: %v", err)
		}
		if open {
			return true
		}
	}
	t.Logf("the signer showed no open transaction for 10 s; killing it anyway")
	return false
}

// TestFaultPostgresRestart restarts the PostgreSQL cluster in the middle of
// sustained ingest. The log signer runs as a child process, as in a
// deployment, and must ride out the restart (reconnect) without being
// restarted itself.
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
	env := trilliantest.Start(t, trilliantest.PostgreSQL, trilliantest.Options{SignerBinary: trilliantest.BuildSigner(t)})
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
	env.CheckSigner(t) // the same process, still running
	t.Logf("%d appends failed and were not acknowledged (allowed: they are not acknowledged)", in.errs.Load())
	checkAfterFault(t, l, v, pre, post, acked)
}

func trilliantestUp() bool {
	out, err := exec.Command("pg_isready", "-h", "127.0.0.1", "-p", "5432").CombinedOutput()
	return err == nil && strings.Contains(string(out), "accepting")
}
