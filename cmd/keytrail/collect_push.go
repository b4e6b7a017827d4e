package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/ingest"
)

type collectFlags struct {
	server   string
	spool    string
	attempts int
	timeout  time.Duration
}

func (f *collectFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.server, "server", "", "the keytrail server's URL, e.g. http://127.0.0.1:8080 (required)")
	c.Flags().StringVar(&f.spool, "spool", "", "spool directory: records wait here while the server is unreachable")
	c.Flags().IntVar(&f.attempts, "attempts", 6, "attempts per request before giving up (or spooling)")
	c.Flags().DurationVar(&f.timeout, "timeout", 5*time.Minute, "overall time limit")
}

func (f *collectFlags) client() (*ingest.Client, error) {
	if f.server == "" {
		return nil, cli.Usage("--server is required")
	}
	cl, err := ingest.NewClient(f.server, &ingest.ClientOptions{MaxAttempts: f.attempts})
	if err != nil {
		return nil, cli.Usage("--server: %v", err)
	}
	return cl, nil
}

func collectPushCommand() *cobra.Command {
	var f collectFlags
	c := &cobra.Command{
		Use:   "push --server URL [--spool DIR] ENVELOPE...",
		Short: "Push signed envelope files to the server",
		Long: `Push each file, a signed DSSE envelope, to the server, in order, and print its
index once the server has durably logged it. Every file is read and checked
before anything is sent.

Without --spool, the files are sent as one batch; if the server stays
unreachable the command fails (exit 1) and nothing is kept. With --spool, each
record is first written to the spool; records the server cannot take now stay
there ("spooled") for a later push or 'keytrail collect drain'. A record the
server refuses is reported (exit 1) and, with --spool, moved to DIR/rejected.`,
		Example: `  keytrail collect push --server http://127.0.0.1:8080 record-1.json record-2.json
  keytrail collect push --server https://keytrail.example:8443 --spool /var/spool/keytrail record.json`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usage("push takes one or more envelope files")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			if len(args) > ingest.MaxBatchEntries && f.spool == "" {
				return cli.Usage("at most %d files per push without --spool", ingest.MaxBatchEntries)
			}
			var envs [][]byte
			for _, p := range args {
				b, err := cli.ReadFile(p, evidence.MaxRecordBytes, "envelope")
				if err != nil {
					return err
				}
				if _, err := ingest.Canonical(b); err != nil {
					return cli.Input(p, err, "")
				}
				envs = append(envs, b)
			}
			ctx, cancel := contextWithTimeout(c, f.timeout)
			defer cancel()
			out := c.OutOrStdout()
			if f.spool == "" {
				res, err := cl.Submit(ctx, envs)
				if err != nil {
					return cli.Failed("%v", err)
				}
				for i, e := range res.Entries {
					fmt.Fprintf(out, "%s: index %d\n", args[i], e.Index)
				}
				return nil
			}
			sp, err := ingest.OpenSpool(f.spool)
			if err != nil {
				return cli.Input(f.spool, err, "")
			}
			defer sp.Close()
			var failed error
			for i, env := range envs {
				res, err := sp.Push(ctx, cl, env)
				switch {
				case err == nil:
					fmt.Fprintf(out, "%s: index %d\n", args[i], res.Index)
				case errors.Is(err, ingest.ErrSpooled):
					fmt.Fprintf(out, "%s: spooled\n", args[i])
					// The server is away: keep the rest without trying each.
					for _, p := range args[i+1:] {
						fmt.Fprintf(out, "%s: spooled\n", p)
					}
					for _, e := range envs[i+1:] {
						if err := sp.Add(e); err != nil {
							return err
						}
					}
					fmt.Fprintf(c.ErrOrStderr(), "warning: server unavailable (%v); records kept in %s\n", err, f.spool)
					return nil
				default:
					fmt.Fprintf(out, "%s: rejected\n", args[i])
					failed = errors.Join(failed, fmt.Errorf("%s: %w", args[i], err))
				}
			}
			if failed != nil {
				return cli.Failed("%v", failed)
			}
			return nil
		},
	}
	f.register(c)
	return c
}

func collectDrainCommand() *cobra.Command {
	var f collectFlags
	c := &cobra.Command{
		Use:   "drain --server URL --spool DIR",
		Short: "Send the records waiting in a spool directory",
		Long: `Send every record waiting in the spool directory to the server, oldest first,
deleting each once acknowledged. Exit 1 if the server is still unreachable
(the rest stay queued) or refused a record (moved to DIR/rejected).`,
		Example: `  keytrail collect drain --server http://127.0.0.1:8080 --spool /var/spool/keytrail`,
		Args:    cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			if f.spool == "" {
				return cli.Usage("--spool is required")
			}
			sp, err := ingest.OpenSpool(f.spool)
			if err != nil {
				return cli.Input(f.spool, err, "")
			}
			defer sp.Close()
			ctx, cancel := contextWithTimeout(c, f.timeout)
			defer cancel()
			acked, err := sp.Drain(ctx, cl)
			for _, a := range acked {
				fmt.Fprintf(c.OutOrStdout(), "index %d\n", a.Index)
			}
			if err != nil {
				n, _ := sp.Len()
				return cli.Failed("%d records sent, %d still queued: %v", len(acked), n, err)
			}
			return nil
		},
	}
	f.register(c)
	return c
}

func contextWithTimeout(c *cobra.Command, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context(), d)
}
