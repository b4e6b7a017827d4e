package verify_test

import (
	"context"
	"sync"
	"testing"

	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify"
)

// The benchmark of docs/benchmarks.md: a 10,000-entry bundle proven against a
// 1,000,000-entry log, next to the floor, measured in the same run:
//
//	go test -run '^$' -bench 'VerifyBundle|Floor' -benchtime 10x ./verify/
const (
	benchEntries = 10_000
	benchLog     = 1_000_000
)

var (
	largeOnce sync.Once
	large     *scenario.Built
	largeErr  error
)

func largeBundle(b *testing.B) *scenario.Built {
	largeOnce.Do(func() { large, largeErr = scenario.Large(context.Background(), benchEntries, benchLog) })
	if largeErr != nil {
		b.Fatal(largeErr)
	}
	return large
}

func BenchmarkVerifyBundle(b *testing.B) {
	l := largeBundle(b)
	v, err := verify.New(l.Trust, l.Policy)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(l.BundleBytes)))
	b.ResetTimer()
	for b.Loop() {
		res, err := v.VerifyBundle(l.BundleBytes, verify.Options{})
		if err != nil || !res.Verified {
			b.Fatalf("not verified: %v %v", err, res.Err())
		}
	}
	b.ReportMetric(float64(benchEntries*b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkFloor is the least work any verifier of the same bundle must do
// (scenario.Floor), on all cores like VerifyBundle.
func BenchmarkFloor(b *testing.B) {
	l := largeBundle(b)
	f, err := scenario.NewFloor(l)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(l.BundleBytes)))
	b.ResetTimer()
	for b.Loop() {
		if err := f.Run(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchEntries*b.N)/b.Elapsed().Seconds(), "entries/s")
}
