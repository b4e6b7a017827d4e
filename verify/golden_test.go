package verify_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify"
)

func TestGoldenFiles(t *testing.T) {
	want, err := scenario.Golden(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "testdata", "golden")
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w) {
			t.Errorf("%s differs from what the generator makes; run: go run ./testdata/golden/gen.go", name)
		}
	}
	trust, err := verify.ParseTrust(mustRead(t, dir, "trust.json"))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := verify.ParsePolicy(mustRead(t, dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(trust, policy)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.VerifyBundle(mustRead(t, dir, "bundle.json"), verify.Options{Since: mustRead(t, dir, "checkpoint")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified {
		t.Fatalf("golden bundle does not verify: %v", res.Err())
	}
	if c := res.Check(verify.CheckConsistency); c.Status != verify.Pass {
		t.Errorf("consistency with the same checkpoint: %s %s", c.Status, c.Reason)
	}
}

func mustRead(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
