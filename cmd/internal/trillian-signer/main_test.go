package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes runs the built command with bad flags (status 2) and with a
// database that does not answer (status 1, before any ready file).
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "trillian-signer")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ready := filepath.Join(dir, "ready")
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown storage", []string{"--storage_system=spanner"}, 2, `"spanner" is not postgresql or mysql`},
		{"zero batch", []string{"--storage_system=postgresql", "--batch_size=0"}, 2, "must be positive"},
		{"argument", []string{"--storage_system=postgresql", "extra"}, 2, "unexpected arguments"},
		{"unknown flag", []string{"--etcd_servers=x"}, 2, "flag provided but not defined"},
		// Nothing listens on port 1.
		{"no postgresql", []string{"--storage_system=postgresql", "--postgresql_uri=postgresql://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", "--ready_file=" + ready}, 1, "storage postgresql: database not accessible"},
		{"no mysql", []string{"--storage_system=mysql", "--mysql_uri=root@tcp(127.0.0.1:1)/x?timeout=2s", "--ready_file=" + ready}, 1, "storage mysql: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bin, tc.args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("exit: %v, want status %d\n%s", err, tc.code, out)
			}
			if !strings.Contains(string(out), tc.msg) {
				t.Errorf("output does not say %q:\n%s", tc.msg, out)
			}
			if _, err := os.Stat(ready); err == nil {
				t.Errorf("ready file written by a signer that failed")
			}
		})
	}
}
