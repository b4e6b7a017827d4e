package verify_test

import (
	"context"
	"testing"

	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify"
)

func build(t testing.TB, mutate func([]scenario.Step) []scenario.Step) *scenario.Built {
	t.Helper()
	b, err := scenario.Build(context.Background(), "test", mutate)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func run(t testing.TB, b *scenario.Built, raw []byte, opts verify.Options) *verify.Result {
	t.Helper()
	v, err := verify.New(b.Trust, b.Policy)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.VerifyBundle(raw, opts)
	if err != nil {
		t.Fatalf("VerifyBundle: %v", err)
	}
	return res
}

func TestCompliantRotationVerifies(t *testing.T) {
	b := build(t, nil)
	res := run(t, b, b.BundleBytes, verify.Options{})
	if !res.Verified {
		j, _ := strictjson.MarshalIndent(res)
		t.Fatalf("not verified: %s", j)
	}
	if got, want := len(b.Bundle.Entries), 7; got != want {
		t.Errorf("bundle has %d entries, want %d", got, want)
	}
}
