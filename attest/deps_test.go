package attest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOfflineDependencies: the attestation verifiers are pure and offline, like
// verify/, which will use them: no network client, no cgo, no ledger backend,
// no collector, and not verify itself.
func TestOfflineDependencies(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./...")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./...: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "net/http", dep == "net/rpc", dep == "runtime/cgo",
			strings.HasPrefix(dep, "google.golang.org/grpc"),
			strings.HasPrefix(dep, "github.com/keytrail/keytrail/ledger"),
			strings.HasPrefix(dep, "github.com/keytrail/keytrail/collectors"),
			strings.HasPrefix(dep, "github.com/keytrail/keytrail/verify"),
			strings.HasPrefix(dep, "github.com/transparency-dev/tessera"):
			t.Errorf("attest depends on %s", dep)
		}
	}
}
