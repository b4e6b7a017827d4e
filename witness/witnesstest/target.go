package witnesstest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	fwitness "github.com/transparency-dev/formats/witness"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/witness"
)

// LitewitnessVersion is the torchwood release .ci/run installs.
const LitewitnessVersion = "v0.9.0"

// Target is a running witness.
type Target struct {
	Name     string // "keytrail" or "litewitness"
	URL      string // the submission prefix: add-checkpoint is URL + "/add-checkpoint"
	VKey     string // the witness's cosignature/v1 verifier key
	Verifier note.Verifier
	// Restart stops the witness and starts it again on the same state.
	Restart func(t testing.TB)
}

// Witness returns the target as a witness of a policy.
func (w *Target) Witness(t testing.TB) fwitness.Witness {
	t.Helper()
	u, err := url.Parse(w.URL)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := fwitness.New(w.VKey, u)
	if err != nil {
		t.Fatal(err)
	}
	return fw
}

// Post sends one add-checkpoint request and returns the answer.
func (w *Target) Post(t testing.TB, req witness.Request) (status int, contentType string, body []byte) {
	t.Helper()
	resp, err := http.Post(w.URL+"/add-checkpoint", "text/plain", bytes.NewReader(req.Marshal()))
	if err != nil {
		t.Fatalf("%s: add-checkpoint: %v", w.Name, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s: add-checkpoint: reading the answer: %v", w.Name, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// StartFunc starts a witness, with fresh state, of the logs whose signed-note
// verifier keys are given (each log's origin is its key's name).
type StartFunc func(t testing.TB, logVKeys ...string) *Target

// Targets are the witnesses every expectation runs against.
var Targets = []struct {
	Name  string
	Start StartFunc
}{
	{"keytrail", StartKeytrail},
	{"litewitness", StartLitewitness},
}

// newWitnessKey returns a fresh witness Ed25519 key named name: the private
// key, its signed-note signer key, and its cosignature/v1 verifier key.
func newWitnessKey(t testing.TB, name string) (ed25519.PrivateKey, string, string, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	// skey is PRIVATE+KEY+name+hash+base64(0x01 || seed); a name has no '+'.
	b64 := skey[len("PRIVATE+KEY+")+len(name)+1+8+1:]
	seed, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(seed) != 1+ed25519.SeedSize {
		t.Fatalf("unexpected signer key form: %v", err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fnote.NewVerifierForCosignatureV1(cvkey)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed[1:]), skey, cvkey, v
}

// StartKeytrail starts keytrail's witness (witness.Server) in process on
// 127.0.0.1, its state in a temporary directory.
func StartKeytrail(t testing.TB, logVKeys ...string) *Target {
	t.Helper()
	_, skey, cvkey, v := newWitnessKey(t, "keytrail.test/witness")
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	var vs []note.Verifier
	for _, k := range logVKeys {
		lv, err := note.NewVerifier(k)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, lv)
	}
	dir := t.TempDir()
	var mu sync.Mutex
	var srv *witness.Server
	start := func(t testing.TB) {
		s, err := witness.NewServer(witness.ServerConfig{Signer: signer, Logs: vs, StateDir: dir, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		srv = s
		mu.Unlock()
	}
	start(t)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s := srv
		mu.Unlock()
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		hs.Close()
		mu.Lock()
		defer mu.Unlock()
		srv.Close()
	})
	restart := func(t testing.TB) {
		mu.Lock()
		err := srv.Close()
		mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		start(t)
	}
	return &Target{Name: "keytrail", URL: hs.URL, VKey: cvkey, Verifier: v, Restart: restart}
}

// RequireLitewitness skips the test, or fails it under CI=true, unless
// litewitness and witnessctl are on PATH.
func RequireLitewitness(t testing.TB) {
	t.Helper()
	var missing []string
	for _, b := range []string{"litewitness", "witnessctl"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("%v not on PATH; install them with: go install filippo.io/torchwood/cmd/litewitness@%s filippo.io/torchwood/cmd/witnessctl@%s (or run .ci/run)",
		missing, LitewitnessVersion, LitewitnessVersion)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// StartLitewitness starts torchwood's litewitness on 127.0.0.1 with its own
// SQLite state in a temporary directory, the logs registered with witnessctl,
// and its key served by an SSH agent in this process.
func StartLitewitness(t testing.TB, logVKeys ...string) *Target {
	t.Helper()
	RequireLitewitness(t)
	const name = "litewitness.test/witness"
	priv, _, cvkey, v := newWitnessKey(t, name)

	// The agent's socket path must be short (sun_path is 108 bytes).
	sockDir, err := os.MkdirTemp("", "lw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "agent")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				agent.ServeAgent(keyring, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })

	db := filepath.Join(t.TempDir(), "litewitness.db")
	for _, k := range logVKeys {
		lv, err := note.NewVerifier(k)
		if err != nil {
			t.Fatal(err)
		}
		runTool(t, "witnessctl", "add-log", "-db", db, "-origin", lv.Name())
		runTool(t, "witnessctl", "add-key", "-db", db, "-origin", lv.Name(), "-key", k)
	}
	addr := freeAddr(t)
	keyHash := sha256.Sum256(priv.Public().(ed25519.PublicKey))

	var cmd *exec.Cmd
	var exited chan struct{} // closed when cmd has exited (and been waited for)
	var stderr *bytes.Buffer
	start := func(t testing.TB) {
		stderr = new(bytes.Buffer)
		cmd = exec.Command("litewitness", "-ssh-agent", sock, "-name", name, "-key", hex.EncodeToString(keyHash[:]),
			"-db", db, "-listen", addr)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited = make(chan struct{})
		go func(cmd *exec.Cmd, exited chan struct{}) {
			cmd.Wait()
			close(exited)
		}(cmd, exited)
		if err := waitHTTP("http://"+addr+"/", exited, 15*time.Second); err != nil {
			cmd.Process.Kill()
			<-exited
			t.Fatalf("litewitness did not start: %v\n%s", err, stderr)
		}
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	start(t)
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("litewitness output:\n%s", stderr)
		}
	})
	restart := func(t testing.TB) {
		stop()
		start(t)
	}
	return &Target{Name: "litewitness", URL: "http://" + addr, VKey: cvkey, Verifier: v, Restart: restart}
}

func runTool(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP waits until u answers, or the process exits, or d passes.
func waitHTTP(u string, exited <-chan struct{}, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("the process exited")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no answer from %s within %v", u, d)
}

// Policy is the witness policy "quorum of ws".
func Policy(t testing.TB, quorum int, ws ...*Target) fwitness.Group {
	t.Helper()
	g := fwitness.Group{N: quorum}
	for _, w := range ws {
		g.Components = append(g.Components, w.Witness(t))
	}
	return g
}

// NewCosigner returns a client that asks ws to cosign, quorum of them
// required.
func NewCosigner(t testing.TB, quorum int, ws ...*Target) *witness.Cosigner {
	t.Helper()
	c, err := witness.NewCosigner(witness.Config{Policy: Policy(t, quorum, ws...), Timeout: 10 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
