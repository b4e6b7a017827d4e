package verify_test

import (
	"context"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/internal/tiles"
	"github.com/keytrail/keytrail/ledger/export"
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

// The log scan of docs/benchmarks.md ("Verifying with --log"): a compliant
// rotation's bundle verified against a tlog-tiles copy of a log of
// benchScanLog entries, next to its floor, measured in the same run: reading
// the copy, hashing every entry and checking the tiles and root against the
// copy's checkpoint (tiles.Reader.VerifyEntries), which any verifier that
// reads the whole log must do.
//
//	go test -run '^$' -bench 'LogScan' -benchtime 5x ./verify/
const benchScanLog = 200_000

var (
	scanOnce sync.Once
	scanLog  struct {
		b   *scenario.Built
		raw []byte
		dir string
		err error
	}
)

// scanFixture logs a compliant rotation among benchScanLog signed receipts of
// another key (the same envelope again and again: each is parsed like a
// distinct one) and exports the log.
func scanFixture(b *testing.B) (*scenario.Built, []byte, fs.FS) {
	scanOnce.Do(func() {
		ctx := context.Background()
		bt, err := scenario.Build(ctx, "bench", nil)
		if err != nil {
			scanLog.err = err
			return
		}
		r, err := bt.Parties.Receipt(bt.OtherKey, scenario.Start.Add(time.Hour), "other-1", "")
		if err != nil {
			scanLog.err = err
			return
		}
		other, err := scenario.OtherKeyEvent(bt.Parties, bt.Rotation)
		if err != nil {
			scanLog.err = err
			return
		}
		other.Event, other.Record = nil, r
		filler, err := other.Sign(ctx)
		if err != nil {
			scanLog.err = err
			return
		}
		l := scenario.NewMemLog(bt.Origin, bt.LogSigner)
		for i := 0; i < benchScanLog; i++ {
			env := filler
			if j := i - benchScanLog/2; j >= 0 && j < len(bt.Records) {
				env = bt.Records[j]
			}
			if _, err := l.Append(ctx, env); err != nil {
				scanLog.err = err
				return
			}
		}
		v, err := note.NewVerifier(bt.LogVerifier)
		if err != nil {
			scanLog.err = err
			return
		}
		bun, err := evidence.BuildBundle(ctx, l, bt.Rotation, evidence.BuildOptions{Origin: bt.Origin, LogVerifier: v})
		if err != nil {
			scanLog.err = err
			return
		}
		if scanLog.raw, err = bt.Resign(ctx, bun); err != nil {
			scanLog.err = err
			return
		}
		scanLog.dir, err = os.MkdirTemp("", "keytrail-scan-bench-")
		if err == nil {
			_, err = export.Tiles(ctx, l, scanLog.dir, v)
		}
		scanLog.b, scanLog.err = bt, err
	})
	if scanLog.err != nil {
		b.Fatal(scanLog.err)
	}
	return scanLog.b, scanLog.raw, os.DirFS(scanLog.dir)
}

func BenchmarkLogScan(b *testing.B) {
	bt, raw, fsys := scanFixture(b)
	v, err := verify.New(bt.Trust, bt.Policy)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := v.VerifyBundle(raw, verify.Options{Log: fsys})
		if err != nil || !res.Verified || res.Check(verify.CheckLogCompleteness).Status != verify.Pass {
			b.Fatalf("not verified: %v %v", err, res.Err())
		}
	}
	b.ReportMetric(float64(benchScanLog*b.N)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkLogScanFloor(b *testing.B) {
	bt, _, fsys := scanFixture(b)
	v, err := note.NewVerifier(bt.LogVerifier)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		r := tiles.NewReader(fsys)
		raw, err := r.Checkpoint()
		if err != nil {
			b.Fatal(err)
		}
		cp, _, err := checkpoint.Open(raw, bt.Origin, v)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.VerifyEntries(cp.Size, cp.Root, func(uint64, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchScanLog*b.N)/b.Elapsed().Seconds(), "entries/s")
}
