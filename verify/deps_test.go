package verify_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOfflineDependencies enforces what the auditor's verifier may depend on:
// no network client, no cgo, no ledger backend, no collector.
func TestOfflineDependencies(t *testing.T) {
	for _, pkg := range []string{"github.com/keytrail/keytrail/verify", "github.com/keytrail/keytrail/cmd/keytrail-verify"} {
		cmd := exec.Command("go", "list", "-deps", pkg)
		cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			switch {
			case dep == "net/http", dep == "net/rpc", dep == "runtime/cgo",
				strings.HasPrefix(dep, "google.golang.org/grpc"),
				strings.HasPrefix(dep, "github.com/keytrail/keytrail/ledger"),
				strings.HasPrefix(dep, "github.com/keytrail/keytrail/collectors"),
				dep == "github.com/transparency-dev/tessera",
				strings.HasPrefix(dep, "github.com/transparency-dev/tessera/client"),
				strings.HasPrefix(dep, "github.com/transparency-dev/tessera/storage"):
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
