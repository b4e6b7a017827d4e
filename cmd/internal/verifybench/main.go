// Command verifybench measures the offline verifier as an auditor runs it: it
// mints a bundle of -entries records proven against a log of -log leaves, then
// runs keytrail-verify's command in a child process and reports its wall time,
// entries per second and peak RSS against the bundle's size, next to the floor
// (the same count of raw DSSE P-256 verifications, leaf hashes and inclusion
// proofs, on all cores) measured in the same run.
//
//	go run ./cmd/internal/verifybench -entries 10000 -log 1000000 -runs 5
//
// On a machine shared with other work, -quiet starts every floor and
// verifier run alike when the machine is idle and repeats a run that other
// processes disturbed (Linux: /proc/stat).
//
// The numbers are recorded in docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/internal/scenario"
)

const childEnv = "KEYTRAIL_VERIFYBENCH_CHILD"

func main() {
	if os.Getenv(childEnv) != "" {
		// The child is keytrail-verify itself. It reports its own peak RSS
		// (VmHWM): the rusage of a child started from this large parent would
		// carry the parent's high-water mark across exec.
		code := cli.Execute(cli.NewVerifyRoot(), os.Args[1:], os.Stdout, os.Stderr)
		status, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmHWM:") {
				fmt.Fprintln(os.Stderr, line)
			}
		}
		os.Exit(code)
	}
	entries := flag.Int("entries", 10_000, "records in the bundle")
	logSize := flag.Int("log", 1_000_000, "leaves in the log")
	runs := flag.Int("runs", 5, "verifier runs (the median is reported)")
	kind := flag.String("kind", scenario.LargeReceipts, "the bulk of the bundle: receipts (each with its own signature to verify) or snapshots (key-policy snapshots)")
	quiet := flag.Bool("quiet", false, "on a shared machine: start each floor and verifier run when other processes are idle, and repeat a run (up to 4 times) during which they used more than 5% of its wall time in CPU")
	flag.Parse()
	repeated := 0
	undisturbed := func(run func() (wall, cpu time.Duration)) time.Duration {
		for try := 0; ; try++ {
			if try > 0 {
				repeated++
			}
			if *quiet {
				waitQuiet()
			}
			b0 := busy()
			wall, cpu := run()
			if !*quiet || busy()-b0-cpu <= wall/20 || try == 4 {
				return wall
			}
		}
	}

	ctx := context.Background()
	t0 := time.Now()
	b, err := scenario.LargeOf(ctx, *entries, *logSize, *kind)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "verifybench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	files := map[string][]byte{"bundle.json": b.BundleBytes, "trust.json": b.TrustJSON, "policy.yaml": []byte(scenario.PolicyYAML)}
	for n, d := range files {
		if err := os.WriteFile(filepath.Join(dir, n), d, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("fixture: %d entries in a %d-leaf log, bundle %.1f MiB, made in %v\n",
		*entries, *logSize, float64(len(b.BundleBytes))/(1<<20), time.Since(t0).Round(time.Millisecond))
	fmt.Printf("machine: %d CPUs, %s\n", runtime.NumCPU(), runtime.Version())

	floor := make([]time.Duration, *runs)
	for i := range floor {
		floor[i] = undisturbed(func() (time.Duration, time.Duration) { return floorRun(b) })
	}
	var walls []time.Duration
	var rss []int64
	for range *runs {
		var out []byte
		wall := undisturbed(func() (time.Duration, time.Duration) {
			cmd := exec.Command(os.Args[0], "bundle", "--trust", filepath.Join(dir, "trust.json"),
				"--policy", filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "bundle.json"))
			cmd.Env = append(os.Environ(), childEnv+"=1")
			start := time.Now()
			o, err := cmd.CombinedOutput()
			wall := time.Since(start)
			if err != nil {
				log.Fatalf("verifier failed: %v\n%s", err, o)
			}
			out = o
			return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		})
		walls = append(walls, wall)
		var kb int64
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			}
		}
		if kb == 0 {
			log.Fatalf("child reported no VmHWM:\n%s", out)
		}
		rss = append(rss, kb*1024)
	}
	fw, vw := median(floor), median(walls)
	if *quiet {
		fmt.Printf("quiet:    %d disturbed runs repeated\n", repeated)
	}
	fmt.Printf("floor:    %8.0f entries/s  (%v for %d entries; median of %d)\n", float64(*entries)/fw.Seconds(), fw.Round(time.Millisecond), *entries, *runs)
	fmt.Printf("verifier: %8.0f entries/s  (%v wall, whole process: start, read, verify; median of %d)\n", float64(*entries)/vw.Seconds(), vw.Round(time.Millisecond), *runs)
	fmt.Printf("ratio:    %.2fx the floor\n", vw.Seconds()/fw.Seconds())
	slices.Sort(rss)
	fmt.Printf("peak RSS: %.1f MiB = %.2fx the bundle (max of %d runs)\n", float64(rss[len(rss)-1])/(1<<20), float64(rss[len(rss)-1])/float64(len(b.BundleBytes)), *runs)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// floorRun times scenario.Floor: the least any verifier of the bundle must
// do. It returns the wall time and this process's CPU time during the run.
func floorRun(b *scenario.Built) (wall, cpu time.Duration) {
	f, err := scenario.NewFloor(b)
	if err != nil {
		log.Fatal(err)
	}
	c0 := selfCPU()
	start := time.Now()
	if err := f.Run(); err != nil {
		log.Fatal(err)
	}
	return time.Since(start), selfCPU() - c0
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// busy is the CPU time the whole machine has spent busy (/proc/stat: all
// but idle and iowait), in clock ticks of 10 ms.
func busy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		log.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var sum int64
	for i, x := range strings.Fields(line)[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(x, 10, 64)
		sum += n
	}
	return time.Duration(sum) * 10 * time.Millisecond
}

// waitQuiet waits (at most a minute) until the machine is idle for 300 ms.
func waitQuiet() {
	for range 200 {
		b0 := busy()
		time.Sleep(300 * time.Millisecond)
		if busy()-b0 <= 30*time.Millisecond {
			return
		}
	}
}
