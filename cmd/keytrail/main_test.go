package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/collectors/tpm"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/ingesttest"
	"github.com/keytrail/keytrail/internal/strictjson"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"keytrail":        main,
		"keytrail-verify": func() { cli.Main(cli.NewVerifyRoot()) },
	})
}

// TestScripts runs the CLI scripts in testdata/script: every command, its
// output and its exit status (0 ok, 1 verification failed, 2 usage or input).
func TestScripts(t *testing.T) {
	testdata, err := filepath.Abs("../../testdata")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		// $TESTDATA is the repository's testdata (vendor attestation samples).
		// [cgo]: this test binary has the TPM simulator and PKCS #11.
		// [ci]: the env var CI is "true"; a script may skip for a missing
		// real part only with [!ci], and must fail under CI (see "fatal").
		Condition: scriptCondition,
		Setup: func(env *testscript.Env) error {
			env.Setenv("TESTDATA", testdata)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":         cmdExits,
			"tamper":        cmdTamper,
			"unpack":        cmdUnpack,
			"tamper-file":   cmdTamperFile,
			"ingestfixture": cmdIngestFixture,
			"waitaddr":      cmdWaitAddr,
			"fatal":         cmdFatal,
		},
	})
}

// exits CODE PROG ARGS... runs PROG and checks its exit status is CODE; its
// output is kept for stdout/stderr checks.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// fatal MSG fails the script with MSG: after "[!ci] skip", the line that
// makes a missing real part fail under CI.
func cmdFatal(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: fatal MSG")
	}
	ts.Fatalf("%s", strings.Join(args, " "))
}

// tamper IN OUT MODE [ARGS] writes a changed copy of the bundle IN to OUT:
//
//	payload-byte              change one byte of the signed manifest, keep the signature
//	drop-entry N KEYFILE      remove entry N and re-sign with the operator key KEYFILE
func cmdTamper(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: tamper IN OUT MODE [ARGS]")
	}
	raw, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	var out []byte
	switch args[2] {
	case "payload-byte":
		// The members in the order a bundle file needs (manifest first).
		var f struct {
			MediaType json.RawMessage `json:"mediaType"`
			Manifest  json.RawMessage `json:"manifest"`
			Entries   json.RawMessage `json:"entries"`
		}
		ts.Check(json.Unmarshal(raw, &f))
		env, err := evidence.ParseEnvelope(f.Manifest, evidence.MaxBundleBytes)
		ts.Check(err)
		env.Payload[len(env.Payload)/2] ^= 0x01
		f.Manifest, err = strictjson.Marshal(env)
		ts.Check(err)
		out, err = json.Marshal(f)
		ts.Check(err)
	case "drop-entry":
		if len(args) != 5 {
			ts.Fatalf("usage: tamper IN OUT drop-entry N KEYFILE")
		}
		n, _ := strconv.Atoi(args[3])
		s, err := readSigner(ts.MkAbs(args[4]))
		ts.Check(err)
		b := readBundle(ts, raw)
		b.Entries = append(b.Entries[:n:n], b.Entries[n+1:]...)
		out, err = evidence.SignBundle(context.Background(), b, s)
		ts.Check(err)
	default:
		ts.Fatalf("tamper: unknown mode %q", args[2])
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), out, 0o644))
}

// readBundle decodes a bundle file without authenticating it (test tooling).
func readBundle(ts *testscript.TestScript, raw []byte) *evidence.Bundle {
	var b evidence.Bundle
	ts.Check(evidence.ReadBundle(raw, evidence.BundleReader{
		Authenticate: func(*evidence.Envelope) error { return nil },
		Manifest: func(m *evidence.Manifest) error {
			b = evidence.Bundle{Rotation: m.Rotation, Checkpoint: m.Checkpoint, Consistency: m.Consistency}
			return nil
		},
		Entry: func(_ int, e evidence.Entry) error { b.Entries = append(b.Entries, e); return nil },
	}))
	return &b
}

// unpack BUNDLE DIR writes each entry's envelope of BUNDLE to DIR/eN.json and
// the rotation descriptor to DIR/rotation.json.
func cmdUnpack(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: unpack BUNDLE DIR")
	}
	raw, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	b := readBundle(ts, raw)
	dir := ts.MkAbs(args[1])
	ts.Check(os.MkdirAll(dir, 0o755))
	for i, e := range b.Entries {
		ts.Check(os.WriteFile(filepath.Join(dir, "e"+strconv.Itoa(i)+".json"), e.Envelope, 0o644))
	}
	rot, err := strictjson.Marshal(b.Rotation)
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Join(dir, "rotation.json"), rot, 0o644))
}

// ingestfixture DIR N writes a collector fixture to DIR (trust.json, log.key,
// log.key.pub, receipts.pem, operator.pem), N signed receipts r0.json ...
// by the enrolled collector, and stranger.json signed by an unknown key.
func cmdIngestFixture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: ingestfixture DIR N")
	}
	dir := ts.MkAbs(args[0])
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	ts.Check(os.MkdirAll(dir, 0o755))
	fx, err := ingesttest.New()
	ts.Check(err)
	ts.Check(fx.Write(dir))
	ctx := context.Background()
	for i := range n {
		e, err := fx.Receipt(ctx, nil, "script", i)
		ts.Check(err)
		ts.Check(os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%d.json", i)), e, 0o644))
	}
	e, err := fx.Receipt(ctx, fx.Stranger, "script", 0)
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Join(dir, "stranger.json"), e, 0o644))
}

// waitaddr FILE VAR waits (up to 30s) for keytrail serve --addr-file FILE and
// sets VAR to the server's URL.
func cmdWaitAddr(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitaddr FILE VAR")
	}
	p := ts.MkAbs(args[0])
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(p); err == nil && strings.HasSuffix(string(b), "\n") {
			ts.Setenv(args[1], "http://"+strings.TrimSpace(string(b)))
			return
		}
	}
	ts.Fatalf("no address in %s after 30s", args[0])
}

// tamper-file FILE OFFSET flips the low bit of the byte at OFFSET in FILE.
func cmdTamperFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tamper-file FILE OFFSET")
	}
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	if off >= len(b) {
		ts.Fatalf("tamper-file: %s has %d bytes", args[0], len(b))
	}
	b[off] ^= 1
	ts.Check(os.WriteFile(p, b, 0o644))
}

// scriptCondition is the scripts' conditions: [cgo], this test binary has the
// TPM simulator and PKCS #11; [ci], the env var CI is "true" (a script may
// skip for a missing real part only with [!ci], and must fail under CI).
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "cgo":
		return tpm.SimulatorAvailable, nil
	case "ci":
		return os.Getenv("CI") == "true", nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}
