package trillian_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tpb "github.com/google/trillian"
	tclient "github.com/google/trillian/client"
	"github.com/google/trillian/types"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/keytrail/keytrail/internal/tiles"
	"github.com/keytrail/keytrail/internal/trilliantest"
	"github.com/keytrail/keytrail/ledger/export"
	"github.com/keytrail/keytrail/ledger/ledgertest"
	"github.com/keytrail/keytrail/ledger/trillian"
)

const benchEntrySize = 1 << 10

// benchWorkers is the number of concurrent appenders (KEYTRAIL_BENCH_WORKERS, default 512).
func benchWorkers() int {
	if n, err := strconv.Atoi(os.Getenv("KEYTRAIL_BENCH_WORKERS")); err == nil && n > 0 {
		return n
	}
	return 512
}

// BenchmarkIngest measures, on one Trillian + PostgreSQL in one run, raw
// Trillian QueueLeaf (acknowledged once queued) and keytrail's Append
// (acknowledged once sequenced, verified and covered by a signed checkpoint),
// each with benchWorkers() concurrent appenders of distinct 1 KiB entries.
func BenchmarkIngest(b *testing.B) {
	env := trilliantest.Start(b, trilliantest.PostgreSQL, trilliantest.Options{})
	var run atomic.Int64
	b.Run("raw-QueueLeaf", func(b *testing.B) {
		tree := env.CreateTree(b)
		prefix := run.Add(1)
		runAppends(b, benchWorkers(), func(ctx context.Context, e []byte) error {
			binary.BigEndian.PutUint64(e[16:], uint64(prefix))
			_, err := env.Log.QueueLeaf(ctx, &tpb.QueueLeafRequest{LogId: tree, Leaf: &tpb.LogLeaf{LeafValue: e}})
			return err
		})
		// Let the signer sequence the backlog before anything else is
		// measured: it would otherwise compete with the next run.
		waitSize(b, env, tree, uint64(b.N))
	})
	b.Run("keytrail-Append", func(b *testing.B) {
		tree := env.CreateTree(b)
		s, _ := newKey(b)
		l, err := trillian.Open(b.Context(), trillian.Config{Addr: env.Addr, TreeID: tree, StateDir: b.TempDir(), Signer: s, KeyIDs: ledgertest.KeyIDs, Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close(context.Background())
		prefix := run.Add(1)
		runAppends(b, benchWorkers(), func(ctx context.Context, e []byte) error {
			binary.BigEndian.PutUint64(e[16:], uint64(prefix))
			_, err := l.Append(ctx, e)
			return err
		})
	})
}

// waitSize waits until the tree's root has at least n leaves.
func waitSize(tb testing.TB, env *trilliantest.Env, tree int64, n uint64) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := env.Log.GetLatestSignedLogRoot(context.Background(), &tpb.GetLatestSignedLogRootRequest{LogId: tree})
		if err != nil {
			tb.Fatal(err)
		}
		var root types.LogRootV1
		if err := root.UnmarshalBinary(resp.GetSignedLogRoot().GetLogRoot()); err != nil {
			tb.Fatal(err)
		}
		if root.TreeSize >= n {
			return
		}
	}
	tb.Fatalf("tree %d did not reach %d leaves", tree, n)
}

func runAppends(b *testing.B, workers int, add func(context.Context, []byte) error) {
	b.Helper()
	b.SetBytes(benchEntrySize)
	var (
		next      atomic.Int64
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies []time.Duration
		firstErr  atomic.Pointer[error]
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
				t0 := time.Now()
				if err := add(ctx, e); err != nil {
					firstErr.CompareAndSwap(nil, &err)
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
	if err := firstErr.Load(); err != nil {
		b.Fatal(*err)
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// TestProofLatencyLarge fills a Trillian + PostgreSQL tree with
// KEYTRAIL_BENCH_LARGE entries (e.g. 1000000) and measures keytrail serving
// proofs and entries from it. It is a measurement, run on demand:
//
//	KEYTRAIL_BENCH_LARGE=1000000 go test -run TestProofLatencyLarge -v -timeout 2h ./ledger/trillian/
func TestProofLatencyLarge(t *testing.T) {
	n, _ := strconv.ParseUint(os.Getenv("KEYTRAIL_BENCH_LARGE"), 10, 64)
	if n == 0 {
		t.Skip("set KEYTRAIL_BENCH_LARGE=1000000 to measure proof latency at that size")
	}
	env := trilliantest.Start(t, trilliantest.PostgreSQL, trilliantest.Options{BatchSize: 5000})
	ctx := context.Background()
	// The tree is filled with pre-sequenced leaves (AddSequencedLeaves in
	// batches), which is faster than QueueLeaf; keytrail reads and proves it
	// the same way.
	tree, err := tclient.CreateAndInitTree(ctx, &tpb.CreateTreeRequest{Tree: &tpb.Tree{
		TreeState: tpb.TreeState_ACTIVE, TreeType: tpb.TreeType_PREORDERED_LOG,
		DisplayName: "bench", MaxRootDuration: durationpb.New(time.Hour),
	}}, env.Admin, env.Log)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 1000
	t0 := time.Now()
	var wg sync.WaitGroup
	var next atomic.Uint64
	for range 4 {
		wg.Go(func() {
			for {
				start := next.Add(batch) - batch
				if start >= n {
					return
				}
				var leaves []*tpb.LogLeaf
				for i := start; i < min(start+batch, n); i++ {
					leaves = append(leaves, &tpb.LogLeaf{LeafIndex: int64(i), LeafValue: fmt.Appendf(nil, "large-%d;key=k%d;%0200d", i, i%1000, i)})
				}
				if _, err := env.Log.AddSequencedLeaves(ctx, &tpb.AddSequencedLeavesRequest{LogId: tree.TreeId, Leaves: leaves}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitSize(t, env, tree.TreeId, n)
	t.Logf("filled %d leaves in %v", n, time.Since(t0).Round(time.Second))

	s, v := newKey(t)
	t1 := time.Now()
	l := openWriter(t, env, tree.TreeId, t.TempDir(), s, v)
	cp := checkpointOf(t, l, v)
	t.Logf("keytrail caught up (read, hashed and verified %d leaves, signed): %v", cp.Size, time.Since(t1).Round(time.Millisecond))

	measure := func(name string, count int, f func(i uint64) error) {
		lat := make([]time.Duration, 0, count)
		for range count {
			i := rand.Uint64N(cp.Size)
			t0 := time.Now()
			if err := f(i); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		t.Logf("%-32s p50 %6.2f ms  p99 %6.2f ms  (%d calls)", name, ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), count)
	}
	measure("InclusionProof(i, size)", 2000, func(i uint64) error { _, err := l.InclusionProof(ctx, i, cp.Size); return err })
	measure("ConsistencyProof(i+1, size)", 2000, func(i uint64) error { _, err := l.ConsistencyProof(ctx, i+1, cp.Size); return err })
	measure("Entry(i)", 2000, func(i uint64) error { _, err := l.Entry(ctx, i); return err })
	t2 := time.Now()
	ids, err := l.KeyIndex(ctx, "k7")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first KeyIndex (reads and indexes the whole log): %v, %d leaves name k7", time.Since(t2).Round(time.Millisecond), len(ids))

	// The offline audit copy of the whole log, and proofs from it.
	dir := filepath.Join(t.TempDir(), "tiles")
	t3 := time.Now()
	res, err := export.Tiles(ctx, l, dir, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("log export --tiles of %d entries: %v, %d files", res.Size, time.Since(t3).Round(time.Millisecond), res.Files)
	r := tiles.NewReader(os.DirFS(dir))
	measure("tiles InclusionProof (log prove)", 2000, func(i uint64) error { _, err := r.InclusionProof(i, cp.Size); return err })
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TestIngestRatio alternates raw QueueLeaf and keytrail Append rounds on one
// Trillian + PostgreSQL, so that both see the same machine load, and reports
// each round's entries/s and the ratio. It is a measurement, run on demand:
//
//	KEYTRAIL_BENCH_INGEST=20000 KEYTRAIL_BENCH_WORKERS=1024 go test -run TestIngestRatio -v ./ledger/trillian/
func TestIngestRatio(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("KEYTRAIL_BENCH_INGEST"))
	if n <= 0 {
		t.Skip("set KEYTRAIL_BENCH_INGEST=20000 (entries per round) to measure")
	}
	rounds := 3
	if r, err := strconv.Atoi(os.Getenv("KEYTRAIL_BENCH_ROUNDS")); err == nil && r > 0 {
		rounds = r
	}
	env := trilliantest.Start(t, trilliantest.PostgreSQL, trilliantest.Options{})
	workers := benchWorkers()
	s, _ := newKey(t)
	var ratios []float64
	for r := range rounds {
		rawTree := env.CreateTree(t)
		raw := rate(t, n, workers, func(ctx context.Context, e []byte) error {
			_, err := env.Log.QueueLeaf(ctx, &tpb.QueueLeafRequest{LogId: rawTree, Leaf: &tpb.LogLeaf{LeafValue: e}})
			return err
		})
		waitSize(t, env, rawTree, uint64(n))
		poll, _ := time.ParseDuration(os.Getenv("KEYTRAIL_BENCH_POLL"))
		l, err := trillian.Open(t.Context(), trillian.Config{Addr: env.Addr, TreeID: env.CreateTree(t), StateDir: t.TempDir(), Signer: s, KeyIDs: ledgertest.KeyIDs, Logger: quietLogger(), PollInterval: poll})
		if err != nil {
			t.Fatal(err)
		}
		kt := rate(t, n, workers, func(ctx context.Context, e []byte) error {
			_, err := l.Append(ctx, e)
			return err
		})
		l.Close(context.Background())
		ratios = append(ratios, kt/raw)
		t.Logf("round %d: raw QueueLeaf %6.0f entries/s, keytrail Append %6.0f entries/s: %.2fx (%d workers, %d entries of 1 KiB)", r, raw, kt, kt/raw, workers, n)
	}
	slices.Sort(ratios)
	t.Logf("median ratio keytrail/raw: %.2fx", ratios[len(ratios)/2])
}

// rate appends n distinct 1 KiB entries from workers goroutines and returns entries/s.
func rate(t *testing.T, n, workers int, add func(context.Context, []byte) error) float64 {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	tag := rand.Uint64()
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			e := make([]byte, benchEntrySize)
			binary.BigEndian.PutUint64(e[8:], uint64(w))
			binary.BigEndian.PutUint64(e[16:], tag)
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				binary.BigEndian.PutUint64(e, uint64(i))
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				err := add(ctx, e)
				cancel()
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d appends failed", f)
	}
	return float64(n) / time.Since(start).Seconds()
}
