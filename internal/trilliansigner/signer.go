// Package trilliansigner runs Trillian's log signer: the sequencer that
// integrates queued leaves into a LOG tree and writes its (unsigned) log root,
// from Trillian v1.8.0's own log package (github.com/google/trillian/log).
//
// keytrail runs it in two places with the same settings: in-process in
// internal/trilliantest, and as the child process cmd/internal/trillian-signer
// that the ledger/trillian fault tests kill with SIGKILL. Neither uses
// Trillian's cmd/trillian_log_signer, whose providers pull in etcd and Spanner.
package trilliansigner

import (
	"context"
	"time"

	"github.com/google/trillian/extension"
	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/util/clock"
	"github.com/google/trillian/util/election"
)

// Config tunes the signer. Zero fields take the defaults below, which are
// keytrail's test settings (and docs/deploy-trillian.md's), not Trillian's.
type Config struct {
	// BatchSize is the most leaves sequenced per tree per pass (Trillian's
	// --batch_size). Default 2000.
	BatchSize int
	// Interval is the time between sequencing passes (--sequencer_interval).
	// Default 20ms.
	Interval time.Duration
	// Workers is the number of trees sequenced in parallel
	// (--num_sequencers). Default 1.
	Workers int
}

// Defaults for the zero fields of Config.
const (
	DefaultBatchSize = 2000
	DefaultInterval  = 20 * time.Millisecond
	DefaultWorkers   = 1
)

// Run runs the signer's operation loop on reg until ctx ends; a pass in
// progress is abandoned with its database transaction. reg.ElectionFactory
// decides mastership per tree (election2.NoopFactory: this signer is master
// of every tree, as Trillian's --force_master).
func Run(ctx context.Context, reg extension.Registry, cfg Config) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	info := tlog.OperationInfo{
		Registry:    reg,
		BatchSize:   cfg.BatchSize,
		NumWorkers:  cfg.Workers,
		RunInterval: cfg.Interval,
		TimeSource:  clock.System,
		ElectionConfig: election.RunnerConfig{
			PreElectionPause:   time.Millisecond,
			MasterHoldInterval: time.Minute,
			MasterHoldJitter:   time.Second,
			TimeSource:         clock.System,
		},
	}
	tlog.NewOperationManager(info, tlog.NewSequencerManager(reg, 0)).OperationLoop(ctx)
}
