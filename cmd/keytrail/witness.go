package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/internal/durable"
	"github.com/keytrail/keytrail/witness"
)

func witnessCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "witness",
		Short: "Run a checkpoint witness of your own: make its key, serve it",
		Long: `A witness cosigns a log's checkpoints (C2SP tlog-cosignature/v1) after
checking, with a consistency proof, that each extends the last one it
cosigned for that log (C2SP tlog-witness). A quorum of independent witnesses
is what stops a log operator from showing two forks of the log to different
people; the cosignature also carries the time the witness saw the
checkpoint, which 'keytrail verify freshness' uses. List the witness's
verifier key under the log's "witnesses" in the trust file, and its URL in
the ledger writer's --witness-policy (docs/witness.md).

'keytrail witness serve' is a witness of keytrail's own that keeps its state
in a directory; any other C2SP witness (torchwood's litewitness, a public
witness network) serves the same purpose.`,
		Example: `  keytrail witness keygen --name witness.example/w1 --key w1.key
  keytrail witness serve --key w1.key --log-vkey log.key.pub --state w1-state --listen 127.0.0.1:7380`,
	}
	c.AddCommand(witnessKeygenCommand(), witnessServeCommand())
	return groupCommand(c)
}

func witnessKeygenCommand() *cobra.Command {
	var name, keyPath string
	c := &cobra.Command{
		Use:     "keygen --name NAME --key FILE",
		Short:   "Make a witness key: FILE (private, 0600) and FILE.pub (cosignature/v1 verifier key)",
		Example: `  keytrail witness keygen --name witness.example/w1 --key w1.key`,
		Args:    cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if name == "" || keyPath == "" {
				return cli.Usage("--name and --key are required")
			}
			if _, err := os.Stat(keyPath); err == nil {
				return cli.Input(keyPath, errors.New("exists; refusing to overwrite a key"), "")
			}
			skey, vkey, err := note.GenerateKey(rand.Reader, name)
			if err != nil {
				return cli.Usage("--name %q: %v", name, err)
			}
			cv, err := fnote.VKeyToCosignatureV1(vkey)
			if err != nil {
				return err
			}
			if err := durable.WriteFile(keyPath, []byte(skey+"\n"), 0o600); err != nil {
				return err
			}
			if err := durable.WriteFile(keyPath+".pub", []byte(cv+"\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "witness verifier key: %s\n", cv)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "the witness's name, e.g. witness.example/w1 (required)")
	c.Flags().StringVar(&keyPath, "key", "", "file to write the private key to (required)")
	return c
}

func witnessServeCommand() *cobra.Command {
	var keyPath, stateDir, listen, addrFile string
	var logVKeys []string
	c := &cobra.Command{
		Use:   "serve --key FILE --log-vkey FILE... --state DIR [--listen ADDR]",
		Short: "Serve a stateful C2SP witness (POST /add-checkpoint) for the logs given",
		Long: `Serve a witness (https://c2sp.org/tlog-witness): POST /add-checkpoint with the
old size, a consistency proof and a checkpoint. For each log (--log-vkey, the
log's signed-note verifier key; its name is the log's origin) the witness
keeps the size and root hash it last cosigned, in DIR/state.json, written and
synced before it answers. It cosigns a checkpoint only if the log's key signed
it and it extends that tree: a wrong old size is 409 with the size it has, a
consistency proof that does not verify 422, another root for a size it
cosigned 409, a smaller tree 400 or 409, an unknown origin 404, a checkpoint
no trusted key signed 403. Refusals are logged with the checkpoint: a refused
fork is evidence against the log. Keep DIR on durable storage: a witness that
loses its state would cosign a fork as readily as the real log.

SIGINT or SIGTERM stops it.`,
		Example: `  keytrail witness serve --key w1.key --log-vkey log.key.pub --state w1-state --listen 127.0.0.1:7380`,
		Args:    cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if keyPath == "" || stateDir == "" || len(logVKeys) == 0 {
				return cli.Usage("--key, --state and at least one --log-vkey are required")
			}
			skey, err := cli.ReadFile(keyPath, 4096, "witness key")
			if err != nil {
				return err
			}
			signer, err := fnote.NewSignerForCosignatureV1(strings.TrimSpace(string(skey)))
			if err != nil {
				return cli.Input(keyPath, err, "make one with 'keytrail witness keygen'")
			}
			var logs []note.Verifier
			for _, p := range logVKeys {
				v, err := readNoteVerifier(p)
				if err != nil {
					return err
				}
				logs = append(logs, v)
			}
			logger := slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			srv, err := witness.NewServer(witness.ServerConfig{Signer: signer, Logs: logs, StateDir: stateDir, Logger: logger})
			if err != nil {
				return cli.Input(stateDir, err, "")
			}
			defer srv.Close()
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serveWitness(ctx, srv, listen, addrFile, c.ErrOrStderr(), nil)
		},
	}
	f := c.Flags()
	f.StringVar(&keyPath, "key", "", "the witness's private key, from 'keytrail witness keygen' (required)")
	f.StringArrayVar(&logVKeys, "log-vkey", nil, "a log's signed-note verifier key file; repeat for each log (required)")
	f.StringVar(&stateDir, "state", "", "directory of the witness's state (required; keep it on durable storage)")
	f.StringVar(&listen, "listen", "127.0.0.1:7380", "address to listen on (port 0 picks a free one)")
	f.StringVar(&addrFile, "addr-file", "", "write the address listened on to this file once listening")
	return c
}

// serveWitness serves srv on listen until ctx ends; once it listens, it
// sends its URL on addrc if addrc is not nil.
func serveWitness(ctx context.Context, srv *witness.Server, listen, addrFile string, stderr io.Writer, addrc chan<- string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return cli.Usage("--listen %s: %v", listen, err)
	}
	addr := ln.Addr().String()
	if addrFile != "" {
		if err := durable.WriteFile(addrFile, []byte(addr+"\n"), 0o644); err != nil {
			ln.Close()
			return err
		}
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	fmt.Fprintf(stderr, "keytrail: witness %s serving http://%s\n", srv.Name(), addr)
	if addrc != nil {
		addrc <- "http://" + addr
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	}
}
