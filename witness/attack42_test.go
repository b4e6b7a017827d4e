package witness_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/witness"
	"github.com/keytrail/keytrail/witness/witnesstest"
)

// ATTACKS.md class 42: a witness without memory cosigns any checkpoint the
// log signed, so a fork gets cosigned too. keytrail's witness keeps the size
// and root it cosigned per log and cosigns only what provably extends them.

func attack42(t *testing.T, check func(*testing.T, *witnesstest.Target, *witnesstest.Log)) {
	l := witnesstest.NewLog(t, "keytrail.test/log")
	check(t, witnesstest.StartKeytrail(t, l.VKey), l)
}

// TestAttack42_SameSizeFork: a checkpoint of a size already cosigned, signed
// by the log's key, with another root is refused (409), from any old size.
func TestAttack42_SameSizeFork(t *testing.T) { attack42(t, witnesstest.RefusesSameSizeFork) }

// TestAttack42_Rollback: a smaller checkpoint than the one cosigned is refused.
func TestAttack42_Rollback(t *testing.T) { attack42(t, witnesstest.RefusesRollback) }

// TestAttack42_MissingProof: growth without a consistency proof is refused (422).
func TestAttack42_MissingProof(t *testing.T) { attack42(t, witnesstest.RefusesMissingProof) }

// TestAttack42_InvalidProof: a proof that does not verify, including the
// real proof towards a forked root, is refused (422).
func TestAttack42_InvalidProof(t *testing.T) { attack42(t, witnesstest.RefusesInvalidProof) }

// TestAttack42_StateAcrossRestart: the state survives a restart.
func TestAttack42_StateAcrossRestart(t *testing.T) {
	attack42(t, witnesstest.KeepsStateAcrossRestart)
}

// TestAttack42_StateDurableBeforeAnswer: once the witness has answered with
// a cosignature, its state file already holds the size and root: a copy of
// the state directory taken right then (the witness still running, as if it
// crashed) refuses a fork of that size.
func TestAttack42_StateDurableBeforeAnswer(t *testing.T) {
	l := witnesstest.NewLog(t, "keytrail.test/log")
	skey, _ := newVKey(t, "keytrail.test/witness")
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	s, err := witness.NewServer(witness.ServerConfig{Signer: signer, Logs: []note.Verifier{l.Verifier}, StateDir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := witness.NewServer(witness.ServerConfig{Signer: signer, Logs: []note.Verifier{l.Verifier}, StateDir: dir, Logger: quiet}); err == nil {
		t.Fatal("a second witness opened the same state")
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	l.Grow(7)
	w := &witnesstest.Target{Name: "keytrail", URL: hs.URL, Verifier: signerVerifier(t, skey)}
	witnesstest.MustCosign(t, w, l, 0, 7)

	crashed := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crashed, "state.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := witness.NewServer(witness.ServerConfig{Signer: signer, Logs: []note.Verifier{l.Verifier}, StateDir: crashed, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	hs2 := httptest.NewServer(s2)
	defer hs2.Close()
	w2 := &witnesstest.Target{Name: "keytrail (copied state)", URL: hs2.URL, Verifier: w.Verifier}
	if status, _, body := w2.Post(t, witness.Request{OldSize: 7, Checkpoint: l.Fork(t, 7)}); status != http.StatusConflict {
		t.Fatalf("a fork against the copied state: HTTP %d %q, want 409", status, body)
	}
	if status, _, body := w2.Post(t, witness.Request{OldSize: 0, Checkpoint: l.Fork(t, 7)}); status != http.StatusConflict || string(body) != "7\n" {
		t.Fatalf("old size 0 against the copied state: HTTP %d %q, want 409 \"7\\n\"", status, body)
	}
}

func signerVerifier(t *testing.T, skey string) note.Verifier {
	t.Helper()
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s.Verifier()
}

// TestAttack42_ConcurrentSubmissionsNeverRollBack: clients racing with
// checkpoints of different sizes (each following the witness's 409 size)
// cannot roll the witness back: the size it keeps at the end is the largest
// it cosigned, because the check and the write are one step.
func TestAttack42_ConcurrentSubmissionsNeverRollBack(t *testing.T) {
	l := witnesstest.NewLog(t, "keytrail.test/log")
	w := witnesstest.StartKeytrail(t, l.VKey)
	l.Grow(40)
	var mu sync.Mutex
	var largest uint64 // the largest size the witness cosigned
	var wg sync.WaitGroup
	for size := uint64(1); size <= 40; size++ {
		cp := l.Checkpoint(t, size)
		wg.Go(func() {
			old := uint64(0)
			for range 50 {
				var p [][]byte
				if old != 0 && old < size {
					p = l.Proof(t, old, size)
				}
				status, _, body := w.Post(t, witness.Request{OldSize: old, Proof: p, Checkpoint: cp})
				if status == http.StatusOK {
					mu.Lock()
					largest = max(largest, size)
					mu.Unlock()
				}
				if status != http.StatusConflict {
					return
				}
				k, err := strconv.ParseUint(strings.TrimSpace(string(body)), 10, 64)
				if err != nil || k > size {
					return // the witness is past this checkpoint: refused for good
				}
				old = k
			}
		})
	}
	wg.Wait()
	if largest != 40 {
		t.Fatalf("the largest size cosigned is %d, want 40", largest)
	}
	status, _, body := w.Post(t, witness.Request{OldSize: 0, Checkpoint: l.Checkpoint(t, 40)})
	if status != http.StatusConflict || string(body) != "40\n" {
		t.Fatalf("the witness keeps HTTP %d %q, want 409 \"40\\n\": it rolled back", status, body)
	}
}
