package posix_test

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keytrail/keytrail/ledger/posix"
	"github.com/transparency-dev/tessera"
	tposix "github.com/transparency-dev/tessera/storage/posix"
)

// benchCases are the loads the append benchmarks run: a lone append on an idle
// log (its latency), one appender appending back to back, and fixed pools of
// closed-loop appenders (throughput).
var benchCases = []struct {
	name    string
	workers int
	gap     time.Duration // idle time before each append
}{
	{"lone", 1, 150 * time.Millisecond},
	{"workers=1", 1, 0},
	{"workers=1024", 1024, 0},
	{"workers=2048", 2048, 0},
	{"workers=4096", 4096, 0},
}

const benchEntrySize = 1 << 10

// BenchmarkAppend measures durable appends through *posix.Log: each returns
// once its entry is fsynced, integrated and covered by a published checkpoint.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			s, _ := newKey(b)
			l := openLog(b, posix.Config{Dir: b.TempDir(), Signer: s})
			runAppends(b, bc.workers, bc.gap, func(ctx context.Context, e []byte) error {
				_, err := l.Append(ctx, e)
				return err
			})
			if err := l.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRawTesseraAppend does the same with Tessera alone, with the options
// posix.Open uses by default: Appender.Add, then PublicationAwaiter.Await.
func BenchmarkRawTesseraAppend(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, _ := newKey(b)
			driver, err := tposix.New(ctx, tposix.Config{Path: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			opts := tessera.NewAppendOptions().
				WithCheckpointSigner(s).
				WithBatching(posix.DefaultBatchMaxSize, posix.DefaultBatchMaxAge).
				WithCheckpointInterval(100 * time.Millisecond).
				WithPushback(posix.DefaultMaxOutstanding)
			appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, opts)
			if err != nil {
				b.Fatal(err)
			}
			awaiter := tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 2*time.Millisecond)
			runAppends(b, bc.workers, bc.gap, func(ctx context.Context, e []byte) error {
				_, _, err := awaiter.Await(ctx, appender.Add(ctx, tessera.NewEntry(e)))
				return err
			})
			if err := shutdown(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// runAppends appends b.N distinct 1 KiB entries from a pool of workers, each
// appending one entry after another, and reports entries/s and the median and
// 99th percentile latency of an append. With a gap, each worker idles that long
// before each append, so the log is idle when it starts: then only the
// latencies are meaningful.
func runAppends(b *testing.B, workers int, gap time.Duration, add func(context.Context, []byte) error) {
	b.Helper()
	b.SetBytes(benchEntrySize)
	var (
		next      atomic.Int64
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, b.N)
		errOnce   sync.Once
		firstErr  error
	)
	ctx := b.Context()
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			e := make([]byte, benchEntrySize)
			binary.BigEndian.PutUint64(e[8:], uint64(w))
			var mine []time.Duration
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					break
				}
				binary.BigEndian.PutUint64(e, uint64(i))
				time.Sleep(gap)
				t0 := time.Now()
				if err := add(ctx, e); err != nil {
					errOnce.Do(func() { firstErr = err })
					break
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	if gap == 0 {
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
