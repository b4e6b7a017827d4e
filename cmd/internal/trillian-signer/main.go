// Command trillian-signer is Trillian v1.8.0's log signer built from
// Trillian's own packages, for keytrail's fault tests: ledger/trillian's
// TestFaultSignerKilled builds it, runs it as a child process and kills it
// with SIGKILL during sustained ingest. It is not shipped to users
// (docs/deploy-trillian.md installs Trillian's trillian_log_signer).
//
// It runs what internal/trilliantest runs in-process (internal/trilliansigner):
// Trillian's storage provider for PostgreSQL or MySQL/MariaDB, no quota, and
// no election (master of every tree, as Trillian's --force_master). Its flags
// are the subset of trillian_log_signer's that keytrail's tests use, with
// Trillian's names and defaults; the storage flags (--postgresql_uri,
// --mysql_uri, --mysql_max_conns, ...) are registered by Trillian's storage
// packages themselves. Two flags are keytrail's own: --ready_file and
// --exit_on_stdin_eof.
//
//	trillian-signer --storage_system=postgresql \
//	    --postgresql_uri='postgresql://postgres@127.0.0.1:5432/trillian?sslmode=disable&pool_max_conns=16' \
//	    --sequencer_interval=20ms --batch_size=2000 --num_sequencers=1 \
//	    --ready_file=/tmp/signer.ready
//
// SIGINT or SIGTERM stop it after the pass in progress is abandoned (exit 0);
// a storage that cannot be opened or reached exits 1; bad flags exit 2.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/google/trillian/extension"
	"github.com/google/trillian/monitoring"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/storage"
	"github.com/google/trillian/util/election2"
	"k8s.io/klog/v2"

	// Trillian's storage providers, as its cmd/internal/provider registers
	// them, without the quota managers (no quota here).
	_ "github.com/google/trillian/storage/mysql"
	_ "github.com/google/trillian/storage/postgresql"

	"github.com/keytrail/keytrail/internal/trilliansigner"
)

var (
	storageSystem     = flag.String("storage_system", "mysql", fmt.Sprintf("Storage system to use. One of: %v", storage.Providers()))
	sequencerInterval = flag.Duration("sequencer_interval", 100*time.Millisecond, "Time between each sequencing pass through all logs")
	batchSize         = flag.Int("batch_size", 1000, "Max number of leaves to process per batch")
	numSequencers     = flag.Int("num_sequencers", 10, "Number of sequencer workers to run in parallel")
	readyFile         = flag.String("ready_file", "", "keytrail: once the database answers and the sequencing loop runs, write this process's ID to this file (atomically)")
	exitOnStdinEOF    = flag.Bool("exit_on_stdin_eof", false, "keytrail: stop when standard input reaches end of file (a test's lifeline: the signer dies with the test process)")
)

func main() {
	klog.InitFlags(nil)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: trillian-signer --storage_system=postgresql|mysql --postgresql_uri=URI|--mysql_uri=DSN [flags]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	defer klog.Flush()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "trillian-signer: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if !slices.Contains([]string{"postgresql", "mysql"}, *storageSystem) {
		fmt.Fprintf(os.Stderr, "trillian-signer: --storage_system: %q is not postgresql or mysql\n", *storageSystem)
		os.Exit(2)
	}
	if *batchSize <= 0 || *numSequencers <= 0 || *sequencerInterval <= 0 {
		fmt.Fprintln(os.Stderr, "trillian-signer: --batch_size, --num_sequencers and --sequencer_interval must be positive")
		os.Exit(2)
	}
	if err := run(); err != nil {
		klog.Errorf("trillian-signer: %v", err)
		klog.Flush()
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *exitOnStdinEOF {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			klog.Warning("standard input closed: stopping")
			stop()
		}()
	}

	mf := monitoring.InertMetricFactory{}
	sp, err := storage.NewProvider(*storageSystem, mf)
	if err != nil {
		return fmt.Errorf("storage %s: %w", *storageSystem, err)
	}
	defer sp.Close()
	check, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = sp.AdminStorage().CheckDatabaseAccessible(check)
	cancel()
	if err != nil {
		return fmt.Errorf("storage %s: database not accessible: %w", *storageSystem, err)
	}
	reg := extension.Registry{
		AdminStorage:    sp.AdminStorage(),
		LogStorage:      sp.LogStorage(),
		QuotaManager:    quota.Noop(),
		MetricFactory:   mf,
		ElectionFactory: election2.NoopFactory{},
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		trilliansigner.Run(ctx, reg, trilliansigner.Config{
			BatchSize: *batchSize,
			Interval:  *sequencerInterval,
			Workers:   *numSequencers,
		})
	}()
	klog.Infof("log signer running: storage %s, pass every %v, batch %d, %d workers", *storageSystem, *sequencerInterval, *batchSize, *numSequencers)
	if *readyFile != "" {
		if err := writeReady(*readyFile); err != nil {
			stop()
			<-done
			return err
		}
	}
	<-done
	klog.Info("log signer stopped")
	return nil
}

// writeReady writes the process ID to path by a rename, so that a reader sees
// either no file or the whole line.
func writeReady(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return fmt.Errorf("--ready_file: %w", err)
	}
	_, err = fmt.Fprintf(tmp, "%d\n", os.Getpid())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("--ready_file: %w", err)
	}
	return nil
}
