package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	fwitness "github.com/transparency-dev/formats/witness"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/witness"
)

// witnessFlags name the witnesses asked to cosign the log's checkpoints: the
// flags of every command that opens the ledger for writing.
type witnessFlags struct {
	policy  string
	timeout time.Duration
}

func (w *witnessFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&w.policy, "witness-policy", "", "witness policy file: the witnesses that cosign the log's checkpoints and how many must (lines 'witness NAME VKEY URL', 'group NAME N MEMBER...', 'quorum NAME'; docs/witness.md)")
	c.Flags().DurationVar(&w.timeout, "witness-timeout", witness.DefaultTimeout, "how long one round of asking the witnesses may take")
}

// cosigner returns the client of the policy's witnesses, or nil without
// --witness-policy.
func (w *witnessFlags) cosigner(logger *slog.Logger) (*witness.Cosigner, error) {
	if w.policy == "" {
		return nil, nil
	}
	if w.timeout <= 0 {
		return nil, cli.Usage("--witness-timeout must be positive")
	}
	b, err := cli.ReadFile(w.policy, 64<<10, "witness policy")
	if err != nil {
		return nil, err
	}
	p, err := fwitness.ParsePolicy(b)
	if err != nil {
		return nil, cli.Input(w.policy, err, "see docs/witness.md for the policy format")
	}
	c, err := witness.NewCosigner(witness.Config{Policy: p, Timeout: w.timeout, Logger: logger})
	if err != nil {
		return nil, cli.Input(w.policy, err, "name at least one witness and a quorum of at least one")
	}
	return c, nil
}

// closeLedger closes a ledger opened for writing. The writer witnesses its
// last checkpoint as it closes: if the witnesses refuse or cannot be reached,
// the entries are logged all the same, and the error exits 1 with a hint.
func closeLedger(ctx context.Context, l ledger.Log) error {
	err := l.Close(ctx)
	var qe *witness.QuorumError
	if !errors.As(err, &qe) {
		return err
	}
	hint := "the entries are logged, but the checkpoint is not witnessed: bundles that need a witness quorum wait for it ('keytrail log witness' asks again)"
	if errors.Is(err, witness.ErrInconsistent) || errors.Is(err, witness.ErrWitnessAhead) {
		hint = "a witness has cosigned another tree of this log: someone with the log's key signed a fork, or the log was restored from an old copy. Trust no checkpoint of it until this is explained (docs/witness.md)"
	}
	return &cli.Error{Code: cli.ExitFailed, Err: err, Hint: hint}
}

func logWitnessCommand() *cobra.Command {
	var lf ledgerFlags
	c := &cobra.Command{
		Use:   "witness --log-key FILE --witness-policy FILE [--ledger DIR]",
		Short: "Have the witnesses cosign the ledger's latest checkpoint now",
		Long: `Open the ledger for writing with its witnesses, have them cosign its latest
checkpoint (C2SP tlog-witness), publish it cosigned and print it. A writer run
with --witness-policy (keytrail serve, log append, collect, event) does this
on its own for every checkpoint; this command is for a log written without
witnesses, or to try again after they refused or were down. It exits 1 if the
policy is not met, naming each witness's answer.`,
		Example: `  keytrail log witness --ledger ./keytrail-log --log-key log.key --witness-policy witnesses.txt`,
		Args:    cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if lf.witness.policy == "" {
				return cli.Usage("--witness-policy is required")
			}
			l, err := lf.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer l.Close(context.WithoutCancel(c.Context()))
			if err := closeLedger(c.Context(), l); err != nil {
				return err
			}
			r, err := lf.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer r.Close(c.Context())
			cp, err := r.Checkpoint(c.Context())
			if err != nil {
				return err
			}
			_, err = c.OutOrStdout().Write(cp)
			return err
		},
	}
	lf.register(c, true)
	return c
}
