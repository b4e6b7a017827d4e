package receipt_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOfflineDependencies: the receipt verifier is part of the auditor's
// offline verifier, so it builds without cgo and depends on no network client,
// ledger backend or collector.
func TestOfflineDependencies(t *testing.T) {
	const pkg = "github.com/keytrail/keytrail/verify/receipt"
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
			strings.HasPrefix(dep, "github.com/keytrail/keytrail/collectors"):
			t.Errorf("%s depends on %s", pkg, dep)
		}
	}
}
