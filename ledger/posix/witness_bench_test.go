package posix_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/ledger/posix"
	"github.com/keytrail/keytrail/witness/witnesstest"
)

// BenchmarkAppendWitnessing measures what witnessing costs the append path,
// in one run: two logs, one without witnesses and one whose checkpoints
// keytrail's witness (in process on 127.0.0.1, its state synced before each
// answer) cosigns at the default interval, take turns appending the same
// number of distinct 1 KiB entries from the same number of workers, in
// rounds of alternating order, so that the machine's drift hits both alike.
// It reports each log's entries/s over all its rounds and their ratio,
// on/off (docs/benchmarks.md).
func BenchmarkAppendWitnessing(b *testing.B) {
	for _, workers := range []int{1, 2048} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
			if err != nil {
				b.Fatal(err)
			}
			s, err := note.NewSigner(skey)
			if err != nil {
				b.Fatal(err)
			}
			w := witnesstest.StartKeytrail(b, vkey)
			off := openLog(b, posix.Config{Dir: b.TempDir(), Signer: s})
			on := openLog(b, posix.Config{Dir: b.TempDir(), Signer: s, Witnesses: witnesstest.NewCosigner(b, 1, w)})
			const rounds = 6
			per := max(b.N/rounds, 1)
			var tOff, tOn time.Duration
			b.ResetTimer()
			for r := range rounds {
				first, second, tFirst, tSecond := off, on, &tOff, &tOn
				if r%2 == 1 {
					first, second, tFirst, tSecond = on, off, &tOn, &tOff
				}
				*tFirst += appendRound(b, first, workers, uint64(r*per), per)
				*tSecond += appendRound(b, second, workers, uint64(r*per), per)
			}
			b.StopTimer()
			n := float64(per * rounds)
			b.ReportMetric(n/tOff.Seconds(), "off-entries/s")
			b.ReportMetric(n/tOn.Seconds(), "on-entries/s")
			b.ReportMetric(tOff.Seconds()/tOn.Seconds(), "on/off")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// appendRound appends entries [from, from+n) to l from workers goroutines,
// each appending one after another, and returns the time it took.
func appendRound(b *testing.B, l *posix.Log, workers int, from uint64, n int) time.Duration {
	ctx := context.Background()
	var next atomic.Uint64
	next.Store(from)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	start := time.Now()
	for range workers {
		wg.Go(func() {
			e := make([]byte, benchEntrySize)
			for {
				i := next.Add(1) - 1
				if i >= from+uint64(n) {
					return
				}
				binary.BigEndian.PutUint64(e, i)
				if _, err := l.Append(ctx, e); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return d
}
