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
	largeMu sync.Mutex
	large   = map[string]*scenario.Built{}
)

// largeBundle is the benchmark bundle whose bulk is of kind (scenario.LargeOf):
// signing receipts (two signatures per entry: the envelope's and the
// receipt's own) or key-policy snapshots (the envelope's only).
func largeBundle(b *testing.B, kind string) *scenario.Built {
	largeMu.Lock()
	defer largeMu.Unlock()
	if l := large[kind]; l != nil {
		return l
	}
	l, err := scenario.LargeOf(context.Background(), benchEntries, benchLog, kind)
	if err != nil {
		b.Fatal(err)
	}
	large[kind] = l
	return l
}

func BenchmarkVerifyBundle(b *testing.B) {
	for _, kind := range []string{scenario.LargeReceipts, scenario.LargeSnapshots} {
		b.Run(kind, func(b *testing.B) { benchVerify(b, largeBundle(b, kind)) })
	}
}

func benchVerify(b *testing.B, l *scenario.Built) {
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
	for _, kind := range []string{scenario.LargeReceipts, scenario.LargeSnapshots} {
		b.Run(kind, func(b *testing.B) { benchFloor(b, largeBundle(b, kind)) })
	}
}

func benchFloor(b *testing.B, l *scenario.Built) {
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
