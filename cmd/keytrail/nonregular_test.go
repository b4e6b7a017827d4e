package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
)

// TestNonRegularInputs (ATTACKS.md 44): every file a command reads as input
// may be a FIFO, a device or a socket planted by someone without keys. Each
// is refused at once with exit 2 naming the path, never waited on: a FIFO
// opened for reading blocks until a writer comes, which would hang the
// verifier forever. A FIFO inside a --log copy fails log.completeness (exit
// 1) naming the file, also at once.
func TestNonRegularInputs(t *testing.T) {
	dir := t.TempDir()
	demo := filepath.Join(dir, "demo")
	if code, _, stderr := run(t, newRoot(), 2*time.Minute, "demo", "--dir", demo); code != 0 {
		t.Fatalf("demo: exit %d\n%s", code, stderr)
	}
	bundles, _ := filepath.Glob(filepath.Join(demo, "bundles", "*.json"))
	rotations, _ := filepath.Glob(filepath.Join(demo, "rotations", "*.json"))
	if len(bundles) != 1 || len(rotations) != 1 {
		t.Fatalf("demo wrote bundles %v and rotations %v", bundles, rotations)
	}
	bundle, rotation := bundles[0], rotations[0]
	trust, policy := filepath.Join(demo, "trust.json"), filepath.Join(demo, "policy.yaml")
	keys := filepath.Join(demo, "keys")

	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	// Log copies with a FIFO for the checkpoint, and for an entry bundle.
	logCP, logTile := filepath.Join(dir, "log-cp"), filepath.Join(dir, "log-tile")
	for _, d := range []string{logCP, logTile} {
		if err := os.CopyFS(d, os.DirFS(filepath.Join(demo, "log"))); err != nil {
			t.Fatal(err)
		}
	}
	cpFIFO := filepath.Join(logCP, "checkpoint")
	os.Remove(cpFIFO)
	mkfifo(t, cpFIFO)
	// The demo's tree has fewer than 256 entries: its entries are in the
	// partial bundle whose width is the tree size (older partials remain).
	cp, err := os.ReadFile(filepath.Join(demo, "log", "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	size := strings.Split(string(cp), "\n")[1]
	tileFIFO := filepath.Join(logTile, "tile", "entries", "000.p", size)
	os.Remove(tileFIFO)
	mkfifo(t, tileFIFO)

	verifyArgs := func(extra ...string) []string {
		return append([]string{"bundle", "--trust", trust, "--policy", policy}, extra...)
	}
	freshArgs := func(extra ...string) []string {
		return append([]string{"freshness", "--trust", trust, "--key", "k", "--max-age", "24h"}, extra...)
	}
	verifyRoot := func() *cobra.Command { return cli.NewVerifyRoot() }
	keytrailVerify := func(args ...string) []string { return append([]string{"verify"}, args...) }
	for _, c := range []struct {
		name string
		root func() *cobra.Command
		args []string
		path string // the path the error must name
		code int
	}{
		{"bundle", verifyRoot, verifyArgs(fifo), fifo, 2},
		{"bundle (keytrail)", newRoot, keytrailVerify(verifyArgs(fifo)...), fifo, 2},
		{"bundle a device", verifyRoot, verifyArgs("/dev/zero"), "/dev/zero", 2},
		{"--trust", verifyRoot, []string{"bundle", "--trust", fifo, "--policy", policy, bundle}, fifo, 2},
		{"--policy", verifyRoot, []string{"bundle", "--trust", trust, "--policy", fifo, bundle}, fifo, 2},
		{"--since", verifyRoot, verifyArgs("--since", fifo, bundle), fifo, 2},
		{"--log checkpoint", verifyRoot, verifyArgs("--log", logCP, bundle), cpFIFO, 2},
		{"--log entry bundle", verifyRoot, verifyArgs("--log", logTile, bundle), filepath.ToSlash(strings.TrimPrefix(tileFIFO, logTile+"/")), 1},
		{"freshness --trust", verifyRoot, []string{"freshness", "--trust", fifo, "--log", filepath.Join(demo, "log"), "--key", "k", "--max-age", "1h"}, fifo, 2},
		{"freshness --checkpoint", verifyRoot, freshArgs("--log", filepath.Join(demo, "log"), "--checkpoint", fifo), fifo, 2},
		{"freshness --log checkpoint", verifyRoot, freshArgs("--log", logCP), "checkpoint", 2},
		{"freshness --policy", verifyRoot, freshArgs("--log", filepath.Join(demo, "log"), "--policy", fifo), fifo, 2},
		{"bundle build --rotation", newRoot, []string{"bundle", "build", "--ledger", filepath.Join(demo, "log"), "--log-vkey", filepath.Join(keys, "log.key.pub"), "--signer", filepath.Join(keys, "custody-operator.pem"), "--rotation", fifo, "-o", filepath.Join(dir, "out.json")}, fifo, 2},
		{"bundle build --since", newRoot, []string{"bundle", "build", "--ledger", filepath.Join(demo, "log"), "--log-vkey", filepath.Join(keys, "log.key.pub"), "--signer", filepath.Join(keys, "custody-operator.pem"), "--rotation", rotation, "--since", fifo, "-o", filepath.Join(dir, "out.json")}, fifo, 2},
		{"bundle build --signer", newRoot, []string{"bundle", "build", "--ledger", filepath.Join(demo, "log"), "--log-vkey", filepath.Join(keys, "log.key.pub"), "--signer", fifo, "--rotation", rotation, "-o", filepath.Join(dir, "out.json")}, fifo, 2},
		{"log append", newRoot, []string{"log", "append", "--ledger", filepath.Join(dir, "no-ledger"), "--log-key", filepath.Join(keys, "log.key"), fifo}, fifo, 2},
		{"log prove --leaf", newRoot, []string{"log", "prove", "--tiles", filepath.Join(demo, "log"), "--vkey", filepath.Join(keys, "log.key.pub"), "--index", "0", "--leaf", fifo}, fifo, 2},
		{"log prove --tiles checkpoint", newRoot, []string{"log", "prove", "--tiles", logCP, "--vkey", filepath.Join(keys, "log.key.pub"), "--index", "0", "--leaf", bundle}, "checkpoint", 2},
		{"collect push", newRoot, []string{"collect", "push", "--server", "http://127.0.0.1:1", fifo}, fifo, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(t, c.root(), time.Second, c.args...)
			out := stdout + stderr
			if code != c.code || !strings.Contains(out, c.path) || !strings.Contains(out, "not a regular file") {
				t.Errorf("exit %d, want %d, naming %s as not a regular file:\n%s", code, c.code, c.path, out)
			}
		})
	}
}

// run runs root with args in this process and fails the test if it has not
// returned within d: a command blocked on a FIFO never returns.
func run(t *testing.T, root *cobra.Command, d time.Duration, args ...string) (int, string, string) {
	t.Helper()
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		code := cli.Execute(root, args, &stdout, &stderr)
		done <- result{code, stdout.String(), stderr.String()}
	}()
	select {
	case r := <-done:
		return r.code, r.stdout, r.stderr
	case <-time.After(d):
		t.Fatalf("%s: still running after %v (blocked on a FIFO?)", strings.Join(args, " "), d)
		return 0, "", ""
	}
}

// mkfifo makes a FIFO at path. Cleanup opens it for reading and writing
// (which never blocks on Linux) and closes it, releasing any reader a
// failing test left blocked in open.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
}
