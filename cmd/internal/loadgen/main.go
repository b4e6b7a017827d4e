// Command loadgen measures keytrail serve: durable, signature-checked
// submissions over loopback, next to raw appends to the same ledger in the
// same run (docs/benchmarks.md).
//
//	go run ./cmd/internal/loadgen                       # raw, rawbatch, batch, single phases
//	go run ./cmd/internal/loadgen -fill 1000000 -phases fill   # server RSS at 1M entries
//
// Phases, in order, on one ledger directory:
//
//	raw       posix.Log.Append in this process, -raw-appenders goroutines
//	rawbatch  posix.Log.AppendBatch in this process, -clients goroutines appending -batch entries at a time
//	batch     keytrail serve (a child process), -clients clients posting batches of -batch envelopes
//	single    the same server, -single-clients clients posting one envelope per request
//	fill      the same server, batches until the log holds -fill entries; the server's RSS
//
// Every envelope is a distinct ~1 KiB signing receipt signed (ECDSA P-256) by an
// enrolled collector; envelopes are signed before a phase's clock starts.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/ingest"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/ingesttest"
	"github.com/keytrail/keytrail/ledger/posix"
)

var (
	bin           = flag.String("keytrail", "", "keytrail binary (default: go build ./cmd/keytrail)")
	dirFlag       = flag.String("dir", "", "working directory (default: a temporary one, removed after)")
	phases        = flag.String("phases", "raw,rawbatch,batch,single", "phases to run: raw, rawbatch, batch, single, fill")
	duration      = flag.Duration("duration", 8*time.Second, "length of each timed phase")
	rawAppenders  = flag.Int("raw-appenders", 4096, "concurrent appenders of the raw phase")
	clients       = flag.Int("clients", 16, "concurrent clients of the batch phase")
	batch         = flag.Int("batch", 256, "envelopes per batch request")
	singleClients = flag.Int("single-clients", 64, "concurrent clients of the single phase (by Little's law 64 clients at 1,000 requests/s wait 64 ms on average)")
	fill          = flag.Int("fill", 1000000, "log size the fill phase reaches")
	maxBody       = flag.Int64("max-body", 1<<20, "the server's --max-body")
	cpuProfile    = flag.String("cpuprofile", "", "write a CPU profile of this process (the raw phase runs here) to this file")
	settle        = flag.Duration("settle", 10*time.Second, "before each phase after the first, sync(2) and wait this long, so that one phase's disk writeback does not load the next")
	serverProfile = flag.String("server-cpuprofile", "", "write a CPU profile of the server to this file")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	dir := *dirFlag
	if dir == "" {
		d, err := os.MkdirTemp("", "keytrail-loadgen")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if *bin == "" {
		*bin = filepath.Join(dir, "keytrail")
		out, err := exec.Command("go", "build", "-o", *bin, "./cmd/keytrail").CombinedOutput()
		if err != nil {
			log.Fatalf("go build: %v\n%s", err, out)
		}
	}
	fx, err := ingesttest.New()
	if err != nil {
		log.Fatal(err)
	}
	if err := fx.Write(dir); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("loadgen: GOMAXPROCS=%d, %s, phases %s, %v each\n", runtime.GOMAXPROCS(0), runtime.Version(), *phases, *duration)
	want := map[string]bool{}
	for _, p := range strings.Split(*phases, ",") {
		want[p] = true
	}
	ledgerDir := filepath.Join(dir, "log")
	first := true
	pause := func() {
		if !first && *settle > 0 {
			syscall.Sync()
			time.Sleep(*settle)
		}
		first = false
	}
	if want["raw"] {
		pause()
		raw(ctx, fx, ledgerDir, false)
	}
	if want["rawbatch"] {
		pause()
		raw(ctx, fx, ledgerDir, true)
	}
	if want["batch"] || want["single"] || want["fill"] {
		pause()
		srv := startServer(dir)
		defer srv.stop()
		if want["batch"] {
			batchPhase(ctx, fx, srv)
		}
		if want["single"] {
			pause()
			singlePhase(ctx, fx, srv)
		}
		if want["fill"] {
			pause()
			fillPhase(ctx, fx, srv)
		}
		fmt.Printf("server: %s\n", srv.rss())
	}
}

// sign makes n distinct signed envelopes, on every core.
func sign(ctx context.Context, fx *ingesttest.Fixture, tag string, n int) [][]byte {
	out := make([][]byte, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				e, err := fx.Receipt(ctx, nil, tag, i)
				if err != nil {
					log.Fatal(err)
				}
				out[i] = e
			}
		})
	}
	wg.Wait()
	return out
}

// raw appends in this process, one entry per Append from -raw-appenders
// goroutines, or (batches) -batch entries per AppendBatch from -clients
// goroutines: the batch phase's shape without HTTP or signature checks.
func raw(ctx context.Context, fx *ingesttest.Fixture, dir string, batches bool) {
	l, err := posix.Open(ctx, posix.Config{Dir: dir, Signer: fx.LogSigner, KeyIDs: evidence.SubjectKeyIDs,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		log.Fatal(err)
	}
	// Distinct entries of the same size as the signed envelopes: a template
	// envelope with a counter written into its signature (not checked here).
	tmpl := sign(ctx, fx, "raw-template", 1)[0]
	at := bytes.Index(tmpl, []byte(`"sig":"`)) + len(`"sig":"`)
	var n atomic.Uint64
	var seq atomic.Uint64
	deadline := time.Now().Add(*duration)
	start := time.Now()
	cpu0 := selfCPU()
	next := func() []byte {
		e := bytes.Clone(tmpl)
		copy(e[at:], fmt.Sprintf("%016d", seq.Add(1)))
		return e
	}
	var wg sync.WaitGroup
	appenders, per := *rawAppenders, 1
	if batches {
		appenders, per = *clients, *batch
	}
	for range appenders {
		wg.Go(func() {
			es := make([][]byte, per)
			for time.Now().Before(deadline) {
				for i := range es {
					es[i] = next()
				}
				var err error
				if batches {
					_, err = l.AppendBatch(ctx, es)
				} else {
					_, err = l.Append(ctx, es[0])
				}
				if err != nil {
					log.Fatal(err)
				}
				n.Add(uint64(per))
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	cpu := selfCPU() - cpu0
	if batches {
		fmt.Printf("rawbatch %d appenders × %d-entry batches: %d entries in %.1fs = %.0f entries/s (posix.Log.AppendBatch, durable, no signature check); CPU %.0f µs/entry\n",
			appenders, per, n.Load(), el.Seconds(), float64(n.Load())/el.Seconds(), perEntry(cpu, n.Load()))
	} else {
		fmt.Printf("raw     %d appenders: %d entries in %.1fs = %.0f entries/s (posix.Log.Append, durable, no signature check); CPU %.0f µs/entry\n",
			appenders, n.Load(), el.Seconds(), float64(n.Load())/el.Seconds(), perEntry(cpu, n.Load()))
	}
	if err := l.Close(ctx); err != nil {
		log.Fatal(err)
	}
}

type server struct {
	cmd *exec.Cmd
	url string
}

func startServer(dir string) *server {
	addrFile := filepath.Join(dir, "addr")
	os.Remove(addrFile)
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(*bin, "serve", "--ledger", filepath.Join(dir, "log"), "--log-key", filepath.Join(dir, "log.key"),
		"--trust", filepath.Join(dir, "trust.json"), "--listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--max-body", fmt.Sprint(*maxBody),
		// Every load client is on 127.0.0.1: no per-client connection cap.
		"--max-client-conns", "0")
	if *serverProfile != "" {
		cmd.Args = append(cmd.Args, "--cpuprofile", *serverProfile)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	s := &server{cmd: cmd}
	for deadline := time.Now().Add(time.Minute); ; {
		if b, err := os.ReadFile(addrFile); err == nil && strings.HasSuffix(string(b), "\n") {
			s.url = "http://" + strings.TrimSpace(string(b))
			return s
		}
		if time.Now().After(deadline) {
			log.Fatal("keytrail serve did not start; see serve.log")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
}

// rss reads the server's resident and peak memory.
func (s *server) rss() string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return "RSS unknown: " + err.Error()
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, ", ")
}

func (s *server) logSize() uint64 {
	resp, err := http.Get(s.url + ingest.PathCheckpoint)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c, err := checkpoint.ParseUnverified(b)
	if err != nil {
		log.Fatal(err)
	}
	return c.Size
}

func newClient(s *server, conns int) *ingest.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	c, err := ingest.NewClient(s.url, &ingest.ClientOptions{HTTPClient: &http.Client{Transport: tr, Timeout: time.Minute},
		MaxAttempts: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		log.Fatal(err)
	}
	return c
}

func batchPhase(ctx context.Context, fx *ingesttest.Fixture, s *server) {
	// Enough envelopes for 20,000/s over the phase.
	need := int(20000*duration.Seconds()) + *clients**batch
	envs := sign(ctx, fx, "batch", need)
	c := newClient(s, *clients)
	var next atomic.Int64
	var acked, fails atomic.Uint64
	deadline := time.Now().Add(*duration)
	start := time.Now()
	srv0, cli0 := s.cpu(), selfCPU()
	var wg sync.WaitGroup
	for range *clients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				hi := int(next.Add(int64(*batch)))
				if hi > len(envs) {
					return
				}
				res, err := c.Submit(ctx, envs[hi-*batch:hi])
				if err != nil {
					fails.Add(1)
					continue
				}
				acked.Add(uint64(len(res.Entries)))
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	srvCPU, cliCPU := s.cpu()-srv0, selfCPU()-cli0
	fmt.Printf("batch   %d clients × %d-envelope batches: %d entries acknowledged in %.1fs = %.0f entries/s (%d failed requests); CPU server %.0f µs/entry, load generator %.0f µs/entry\n",
		*clients, *batch, acked.Load(), el.Seconds(), float64(acked.Load())/el.Seconds(), fails.Load(),
		perEntry(srvCPU, acked.Load()), perEntry(cliCPU, acked.Load()))
}

func singlePhase(ctx context.Context, fx *ingesttest.Fixture, s *server) {
	need := int(4000*duration.Seconds()) + *singleClients
	envs := sign(ctx, fx, "single", need)
	c := newClient(s, *singleClients)
	var next atomic.Int64
	var fails atomic.Uint64
	lat := make([][]time.Duration, *singleClients)
	deadline := time.Now().Add(*duration)
	start := time.Now()
	srv0 := s.cpu()
	var wg sync.WaitGroup
	for w := range *singleClients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= len(envs) {
					return
				}
				t := time.Now()
				if _, err := c.Submit(ctx, envs[i:i+1]); err != nil {
					fails.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	q := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	srvCPU := s.cpu() - srv0
	fmt.Printf("single  %d clients: %d requests in %.1fs = %.0f requests/s, latency p50 %v p99 %v max %v (%d failed); CPU server %.0f µs/request\n",
		*singleClients, len(all), el.Seconds(), float64(len(all))/el.Seconds(),
		q(0.50).Round(time.Millisecond), q(0.99).Round(time.Millisecond), q(1).Round(time.Millisecond), fails.Load(),
		perEntry(srvCPU, uint64(len(all))))
}

func fillPhase(ctx context.Context, fx *ingesttest.Fixture, s *server) {
	c := newClient(s, *clients)
	size := s.logSize()
	start := time.Now()
	// Signers and senders overlap: chunks of envelopes are signed while the
	// previous ones are sent.
	chunks := make(chan [][]byte, 4)
	go func() {
		defer close(chunks)
		for i := int(size); i < *fill; i += 50000 {
			chunks <- sign(ctx, fx, fmt.Sprintf("fill-%d", i), min(50000, *fill-i))
		}
	}()
	for envs := range chunks {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range *clients {
			wg.Go(func() {
				for {
					hi := int(next.Add(int64(*batch)))
					lo := hi - *batch
					if lo >= len(envs) {
						return
					}
					for {
						if _, err := c.Submit(ctx, envs[lo:min(hi, len(envs))]); err == nil {
							break
						}
						time.Sleep(100 * time.Millisecond)
					}
				}
			})
		}
		wg.Wait()
		size = s.logSize()
		fmt.Printf("fill    log size %d after %.0fs; server %s\n", size, time.Since(start).Seconds(), s.rss())
	}
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpu is the server's user+system CPU time (Linux /proc, 100 ticks/s).
func (s *server) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func perEntry(d time.Duration, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}
