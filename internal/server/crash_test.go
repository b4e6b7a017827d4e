package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keytrail/keytrail/ingest"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/ingesttest"
	"github.com/keytrail/keytrail/internal/server"
)

// buildKeytrail builds cmd/keytrail into a temporary directory.
func buildKeytrail(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keytrail")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/keytrail/keytrail/cmd/keytrail")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serverProc is keytrail serve running as a child process.
type serverProc struct {
	cmd *exec.Cmd
	url string
}

func startServe(t *testing.T, bin, dir string, extra ...string) *serverProc {
	t.Helper()
	addrFile := filepath.Join(dir, "addr")
	os.Remove(addrFile)
	stderr, err := os.OpenFile(filepath.Join(dir, "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	args := append([]string{"serve", "--ledger", filepath.Join(dir, "log"), "--log-key", filepath.Join(dir, "log.key"),
		"--trust", filepath.Join(dir, "trust.json"), "--listen", "127.0.0.1:0", "--addr-file", addrFile}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProc{cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && strings.HasSuffix(string(b), "\n") {
			p.url = "http://" + strings.TrimSpace(string(b))
			if resp, err := http.Get(p.url + ingest.PathHealth); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return p
				}
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			log, _ := os.ReadFile(filepath.Join(dir, "serve.log"))
			t.Fatalf("keytrail serve did not come up:\n%s", log)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *serverProc) kill9() {
	p.cmd.Process.Kill() // SIGKILL
	p.cmd.Wait()
}

// TestCrash kills keytrail serve with SIGKILL at random moments of sustained
// load, 20 times, restarting it each time. Afterwards every acknowledged index
// still holds the envelope it was acknowledged for, every checkpoint any
// answer carried is consistent with the final one, and envelopes sent again
// (acknowledged or not) are never logged twice.
func TestCrash(t *testing.T) {
	const crashes = 20
	bin := buildKeytrail(t)
	dir := t.TempDir()
	fx, err := ingesttest.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.Write(dir); err != nil {
		t.Fatal(err)
	}

	// Envelopes are signed ahead: the load is limited by the server, not by us.
	ctx := context.Background()
	var pool [][]byte
	for i := range 6000 {
		e, err := fx.Receipt(ctx, nil, "crash", i)
		if err != nil {
			t.Fatal(err)
		}
		pool = append(pool, e)
	}

	var (
		mu          sync.Mutex
		acked       = map[uint64][]byte{} // index → envelope
		ackedIndex  = map[string]uint64{} // envelope → index
		checkpoints [][]byte
		next        int // next unsent envelope of pool
	)
	record := func(envs [][]byte, res *ingest.SubmitResponse) error {
		mu.Lock()
		defer mu.Unlock()
		for i, s := range res.Entries {
			if prev, ok := acked[s.Index]; ok && !bytes.Equal(prev, envs[i]) {
				return fmt.Errorf("index %d acknowledged for two different envelopes", s.Index)
			}
			if prev, ok := ackedIndex[string(envs[i])]; ok && prev != s.Index {
				return fmt.Errorf("envelope acknowledged at index %d, then again at %d", prev, s.Index)
			}
			acked[s.Index] = envs[i]
			ackedIndex[string(envs[i])] = s.Index
		}
		checkpoints = append(checkpoints, []byte(res.Checkpoint))
		return nil
	}
	// take returns a batch: mostly new envelopes, sometimes ones sent before.
	take := func(r *rand.Rand) [][]byte {
		mu.Lock()
		defer mu.Unlock()
		n := 1 + r.IntN(32)
		var out [][]byte
		for range n {
			if next > 0 && r.IntN(8) == 0 {
				out = append(out, pool[r.IntN(next)]) // a resubmission
			} else if next < len(pool) {
				out = append(out, pool[next])
				next++
			}
		}
		return out
	}

	httpc := &http.Client{Timeout: 10 * time.Second}
	var loadErr error
	for round := range crashes + 1 {
		p := startServe(t, bin, dir)
		client, err := ingest.NewClient(p.url, &ingest.ClientOptions{HTTPClient: httpc, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		if round == crashes {
			// The last start: check everything, then stop it.
			defer p.kill9()
			checkAfterCrashes(t, p.url, fx, acked, checkpoints)
			t.Logf("%d crashes, %d entries acknowledged, %d checkpoints checked", crashes, len(acked), len(checkpoints))
			return
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var errMu sync.Mutex
		for w := range 6 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for {
					select {
					case <-stop:
						return
					default:
					}
					envs := take(r)
					if len(envs) == 0 {
						return
					}
					res, err := client.Submit(ctx, envs)
					if err != nil {
						if errors.Is(err, ingest.ErrRejected) || errors.Is(err, ingest.ErrBadAnswer) {
							errMu.Lock()
							loadErr = errors.Join(loadErr, err)
							errMu.Unlock()
						}
						continue // the server is gone: the batch is not acknowledged
					}
					if err := record(envs, res); err != nil {
						errMu.Lock()
						loadErr = errors.Join(loadErr, err)
						errMu.Unlock()
					}
				}
			})
		}
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		p.kill9()
		close(stop)
		wg.Wait()
		if loadErr != nil {
			t.Fatalf("round %d: %v", round, loadErr)
		}
	}
}

func checkAfterCrashes(t *testing.T, url string, fx *ingesttest.Fixture, acked map[uint64][]byte, cps [][]byte) {
	t.Helper()
	if len(acked) == 0 {
		t.Fatal("no entry was acknowledged")
	}
	get := func(path string) []byte {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b.Bytes())
		}
		return b.Bytes()
	}
	v := mustVerifier(t, fx.LogVKey)
	final, _, err := checkpoint.Open(get(ingest.PathCheckpoint), ingesttest.Origin, v)
	if err != nil {
		t.Fatal(err)
	}
	for idx, env := range acked {
		if got := get(fmt.Sprintf("/v1/entries/%d", idx)); !bytes.Equal(got, env) {
			t.Fatalf("acknowledged index %d holds another envelope after the crashes", idx)
		}
	}
	// Every entry of the log is distinct: nothing was logged twice.
	seen := map[string]uint64{}
	for i := range final.Size {
		e := get(fmt.Sprintf("/v1/entries/%d", i))
		if j, dup := seen[string(e)]; dup {
			t.Fatalf("entries %d and %d are the same envelope", j, i)
		}
		seen[string(e)] = i
	}
	roots := map[uint64][]byte{}
	for _, raw := range cps {
		c, _, err := checkpoint.Open(raw, ingesttest.Origin, v)
		if err != nil {
			t.Fatalf("checkpoint from an answer: %v", err)
		}
		if c.Size > final.Size {
			t.Fatalf("a checkpoint of size %d was seen, but the log restarted at %d", c.Size, final.Size)
		}
		if r, ok := roots[c.Size]; ok && !bytes.Equal(r, c.Root) {
			t.Fatalf("two checkpoints of size %d with different roots", c.Size)
		}
		roots[c.Size] = c.Root
		if c.Size == final.Size {
			if !bytes.Equal(c.Root, final.Root) {
				t.Fatalf("checkpoint of size %d has another root than the final one", c.Size)
			}
			continue
		}
		var cr server.ConsistencyResponse
		if err := json.Unmarshal(get(fmt.Sprintf("/v1/proofs/consistency?from=%d&to=%d", c.Size, final.Size)), &cr); err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, c.Size, final.Size, cr.Proof, c.Root, final.Root); err != nil {
			t.Fatalf("checkpoint of size %d is not consistent with the final one (%d): %v", c.Size, final.Size, err)
		}
	}
}
