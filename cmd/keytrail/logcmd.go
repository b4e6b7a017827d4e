package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/durable"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/ledger"
	ledgeropen "github.com/keytrail/keytrail/ledger/open"
	"github.com/keytrail/keytrail/ledger/trillian"
)

// ledgerFlags are the flags of every command that opens a ledger.
type ledgerFlags struct {
	ledger  string
	logKey  string
	witness witnessFlags // a writer's witnesses
}

func (f *ledgerFlags) register(c *cobra.Command, withKey bool) {
	c.Flags().StringVar(&f.ledger, "ledger", "keytrail-log", "the ledger: a tlog-tiles directory (the embedded default) or trillian://HOST:PORT/TREE_ID[?state=DIR&tls=1|ca=FILE]")
	if withKey {
		c.Flags().StringVar(&f.logKey, "log-key", "", "the log's signed-note private key file (required to append)")
		f.witness.register(c)
	}
}

// tilesDir returns the embedded ledger's tlog-tiles directory, or "" for
// other backends.
func (f *ledgerFlags) tilesDir() string {
	spec, err := ledgeropen.Parse(f.ledger)
	if err != nil || spec.Backend != ledgeropen.Embedded {
		return ""
	}
	return spec.Dir
}

// open opens the ledger; with a key, for appending.
func (f *ledgerFlags) open(ctx context.Context, write bool) (ledger.Log, error) {
	spec, err := ledgeropen.Parse(f.ledger)
	if err != nil {
		return nil, cli.Usage("--ledger: %v", err)
	}
	opts := ledgeropen.Options{KeyIDs: evidence.SubjectKeyIDs, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if write {
		if f.logKey == "" {
			return nil, &cli.Error{Code: cli.ExitUsage, Err: errors.New("--log-key is required to append"), Hint: "create a log and its key with 'keytrail log init'"}
		}
		s, err := readNoteSigner(f.logKey)
		if err != nil {
			return nil, err
		}
		opts.Signer = s
		c, err := f.witness.cosigner(opts.Logger)
		if err != nil {
			return nil, err
		}
		if c != nil {
			opts.Witnesses = c
		}
	}
	l, err := ledgeropen.OpenSpec(ctx, spec, opts)
	if errors.Is(err, ledgeropen.ErrNoLedger) {
		return nil, cli.Input(spec.String(), ledgeropen.ErrNoLedger, "create one with 'keytrail log init'")
	}
	if err != nil {
		return nil, cli.Input(spec.String(), err, "")
	}
	return l, nil
}

func logCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "log",
		Short: "Create, append to and read the ledger",
		Long: `Create, append to and read the ledger: an append-only RFC 6962 Merkle log of DSSE
envelopes with C2SP signed-note checkpoints. The embedded ledger is a tlog-tiles
directory (Tessera's POSIX storage) that any tlog-tiles client can read.`,
	}
	c.AddCommand(logInitCommand(), logAppendCommand(), logCheckpointCommand(), logInclusionCommand(), logConsistencyCommand(), logExportCommand(), logProveCommand(), logWitnessCommand())
	return c
}

func logInitCommand() *cobra.Command {
	var origin, keyOut, backend, trillianAddr, state, trillianCA string
	var trillianTLS bool
	var lf ledgerFlags
	c := &cobra.Command{
		Use:   "init --origin ORIGIN --log-key FILE [--ledger DIR | --backend trillian --trillian-addr HOST:PORT]",
		Short: "Create a ledger and its checkpoint key",
		Long: `Create a ledger and an Ed25519 signed-note key for its checkpoints. The private
key goes to --log-key (mode 0600), the verifier key to the same path with .pub
appended: put that line in the auditors' trust file.

The embedded ledger (the default) is a directory, --ledger DIR. With
--backend trillian, init creates and initialises a new tree on the Trillian
log server at --trillian-addr, signs its first (empty) checkpoint, and prints
the ledger URL every other command takes: --ledger trillian://HOST:PORT/TREE_ID.
keytrail keeps its state for the tree (the last checkpoint it signed) in
--state DIR, by default under $XDG_STATE_HOME/keytrail/trillian/.
--trillian-tls or --trillian-ca FILE connect over TLS (the URL then carries
tls=1 or ca=FILE); without them the connection is plaintext.`,
		Example: `  keytrail log init --origin example.com/custody-log --log-key log.key --ledger ./keytrail-log
  keytrail log init --origin example.com/custody-log --log-key log.key \
      --backend trillian --trillian-addr trillian.internal:8090`,
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if origin == "" || keyOut == "" {
				return cli.Usage("--origin and --log-key are required")
			}
			switch backend {
			case ledgeropen.Embedded:
				if trillianAddr != "" || state != "" || trillianCA != "" || trillianTLS {
					return cli.Usage("--trillian-addr, --trillian-tls, --trillian-ca and --state need --backend trillian")
				}
				if _, err := os.Stat(filepath.Join(lf.ledger, "checkpoint")); err == nil {
					return cli.Usage("%s already holds a log", lf.ledger)
				}
			case ledgeropen.Trillian:
				if trillianAddr == "" {
					return cli.Usage("--backend trillian needs --trillian-addr HOST:PORT")
				}
				if c.Flags().Changed("ledger") {
					return cli.Usage("--ledger names an existing ledger; with --backend trillian, init creates the tree and prints its URL")
				}
				if _, err := ledgeropen.Parse("trillian://" + trillianAddr + "/1"); err != nil {
					return cli.Usage("--trillian-addr %q: want HOST:PORT", trillianAddr)
				}
			default:
				return cli.Usage("--backend %q: want embedded or trillian", backend)
			}
			if _, err := os.Stat(keyOut); err == nil {
				return cli.Usage("%s exists; refusing to overwrite a log key", keyOut)
			}
			skey, vkey, err := note.GenerateKey(rand.Reader, origin)
			if err != nil {
				return cli.Usage("origin %q: %v", origin, err)
			}
			if backend == ledgeropen.Trillian {
				ctx, cancel := context.WithTimeout(c.Context(), time.Minute)
				defer cancel()
				spec := ledgeropen.Spec{Backend: ledgeropen.Trillian, Addr: trillianAddr, State: state, TLS: trillianTLS || trillianCA != "", CAFile: trillianCA}
				dial, err := ledgeropen.DialOptions(spec)
				if err != nil {
					return cli.Input(trillianCA, err, "")
				}
				id, err := trillian.CreateTree(ctx, trillianAddr, origin, dial...)
				if err != nil {
					return cli.Input(trillianAddr, err, "is a Trillian log server (with its admin API) listening there?")
				}
				spec.TreeID = id
				if spec.State == "" {
					spec.State = ledgeropen.DefaultStateDir(trillianAddr, id)
				}
				lf.ledger = spec.String()
			}
			if err := durable.WriteFile(keyOut, []byte(skey+"\n"), 0o600); err != nil {
				return err
			}
			if err := durable.WriteFile(keyOut+".pub", []byte(vkey+"\n"), 0o644); err != nil {
				return err
			}
			lf.logKey = keyOut
			l, err := lf.open(c.Context(), true)
			if err != nil {
				return err
			}
			if err := l.Close(c.Context()); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "ledger: %s\nlog key: %s\nverifier key: %s\n", lf.ledger, keyOut, vkey)
			if backend == ledgeropen.Trillian {
				fmt.Fprintf(c.OutOrStdout(), "use: --ledger %s\n", lf.ledger)
			}
			return nil
		},
	}
	lf.register(c, false)
	c.Flags().StringVar(&origin, "origin", "", "the log's origin, e.g. example.com/custody-log (required)")
	c.Flags().StringVar(&keyOut, "log-key", "", "where to write the log's private key (required)")
	c.Flags().StringVar(&backend, "backend", ledgeropen.Embedded, "embedded (a directory) or trillian (a new tree on a Trillian log server)")
	c.Flags().StringVar(&trillianAddr, "trillian-addr", "", "the Trillian log server's gRPC address, HOST:PORT (with --backend trillian)")
	c.Flags().BoolVar(&trillianTLS, "trillian-tls", false, "connect to Trillian over TLS, checking its certificate against the system's roots")
	c.Flags().StringVar(&trillianCA, "trillian-ca", "", "connect to Trillian over TLS, checking its certificate against the PEM CA certificates in this file")
	c.Flags().StringVar(&state, "state", "", "keytrail's state directory for the new Trillian tree (default under $XDG_STATE_HOME/keytrail/trillian)")
	return c
}

func logAppendCommand() *cobra.Command {
	var lf ledgerFlags
	c := &cobra.Command{
		Use:   "append --log-key FILE [--ledger DIR] ENVELOPE...",
		Short: "Append DSSE envelopes to the ledger",
		Long: `Append each file, a DSSE envelope holding an in-toto statement, as one leaf. Each
index is printed only once its entry is durably integrated and covered by a
published checkpoint. Every file is checked before anything is appended.`,
		Example: `  keytrail log append --ledger ./keytrail-log --log-key log.key record-1.json record-2.json`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cli.Usage("append takes one or more envelope files")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			var entries [][]byte
			for _, p := range args {
				b, err := cli.ReadFile(p, evidence.MaxRecordBytes, "envelope")
				if err != nil {
					return err
				}
				env, err := evidence.ParseEnvelope(b, evidence.MaxRecordBytes)
				if err != nil {
					return cli.Input(p, err, "")
				}
				if env.PayloadType != evidence.PayloadType {
					return cli.Input(p, fmt.Errorf("payloadType %q, want %q", env.PayloadType, evidence.PayloadType), "")
				}
				if _, _, err := evidence.ParseStatement(env.Payload); err != nil {
					return cli.Input(p, err, "")
				}
				entries = append(entries, b)
			}
			l, err := lf.open(c.Context(), true)
			if err != nil {
				return err
			}
			defer l.Close(context.WithoutCancel(c.Context()))
			idx, err := ledger.AppendAll(c.Context(), l, entries)
			if err != nil {
				return fmt.Errorf("append: %w (appending the same files again is safe: logged ones keep their index)", err)
			}
			for i := range entries {
				fmt.Fprintf(c.OutOrStdout(), "%d\t%s\n", idx[i], args[i])
			}
			return closeLedger(c.Context(), l)
		},
	}
	lf.register(c, true)
	return c
}

func logCheckpointCommand() *cobra.Command {
	var lf ledgerFlags
	c := &cobra.Command{
		Use:     "checkpoint [--ledger DIR]",
		Short:   "Print the latest signed checkpoint",
		Example: `  keytrail log checkpoint --ledger ./keytrail-log > checkpoint-today`,
		Args:    cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := lf.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer l.Close(c.Context())
			cp, err := l.Checkpoint(c.Context())
			if err != nil {
				return err
			}
			_, err = c.OutOrStdout().Write(cp)
			return err
		},
	}
	lf.register(c, false)
	return c
}

// proofOutput is what the proof commands print.
type proofOutput struct {
	Index    *uint64  `json:"index,omitempty"`
	LeafHash string   `json:"leafHash,omitempty"`
	Size1    *uint64  `json:"size1,omitempty"`
	TreeSize uint64   `json:"treeSize"`
	Hashes   []string `json:"hashes"`
}

func b64s(h [][]byte) []string {
	out := make([]string, len(h))
	for i, x := range h {
		out[i] = base64.StdEncoding.EncodeToString(x)
	}
	return out
}

// latestSize returns the size of the latest checkpoint.
func latestSize(ctx context.Context, l ledger.Log) (uint64, error) {
	raw, err := l.Checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	cp, err := checkpoint.ParseUnverified(raw)
	if err != nil {
		return 0, err
	}
	return cp.Size, nil
}

func logInclusionCommand() *cobra.Command {
	var lf ledgerFlags
	var index, size uint64
	c := &cobra.Command{
		Use:     "inclusion --index N [--size S] [--ledger DIR]",
		Short:   "Print the inclusion proof of an entry (JSON)",
		Long:    "Print the RFC 6962 inclusion proof of entry N in the tree of size S (default: the latest checkpoint), with the entry's leaf hash, as JSON.",
		Example: `  keytrail log inclusion --ledger ./keytrail-log --index 3`,
		Args:    cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if !c.Flags().Changed("index") {
				return cli.Usage("--index is required")
			}
			l, err := lf.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer l.Close(c.Context())
			if size == 0 {
				if size, err = latestSize(c.Context(), l); err != nil {
					return err
				}
			}
			p, err := l.InclusionProof(c.Context(), index, size)
			if err != nil {
				return mapLedgerErr(err)
			}
			e, err := l.Entry(c.Context(), index)
			if err != nil {
				return mapLedgerErr(err)
			}
			return printJSON(c, proofOutput{Index: &index, LeafHash: leafHashB64(e), TreeSize: size, Hashes: b64s(p)})
		},
	}
	lf.register(c, false)
	c.Flags().Uint64Var(&index, "index", 0, "the entry's index (required)")
	c.Flags().Uint64Var(&size, "size", 0, "tree size (default: the latest checkpoint's)")
	return c
}

func logConsistencyCommand() *cobra.Command {
	var lf ledgerFlags
	var from, to uint64
	c := &cobra.Command{
		Use:     "consistency --from S1 [--to S2] [--ledger DIR]",
		Short:   "Print a consistency proof between two tree sizes (JSON)",
		Example: `  keytrail log consistency --ledger ./keytrail-log --from 5`,
		Args:    cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if from == 0 {
				return cli.Usage("--from must be at least 1 (a proof from the empty tree proves nothing)")
			}
			l, err := lf.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer l.Close(c.Context())
			if to == 0 {
				if to, err = latestSize(c.Context(), l); err != nil {
					return err
				}
			}
			p, err := l.ConsistencyProof(c.Context(), from, to)
			if err != nil {
				return mapLedgerErr(err)
			}
			return printJSON(c, proofOutput{Size1: &from, TreeSize: to, Hashes: b64s(p)})
		},
	}
	lf.register(c, false)
	c.Flags().Uint64Var(&from, "from", 0, "the smaller tree size (required)")
	c.Flags().Uint64Var(&to, "to", 0, "the larger tree size (default: the latest checkpoint's)")
	return c
}

func mapLedgerErr(err error) error {
	if errors.Is(err, ledger.ErrOutOfRange) {
		return cli.Usage("%v", err)
	}
	return err
}

func printJSON(c *cobra.Command, v any) error {
	b, err := strictjson.MarshalIndent(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.OutOrStdout(), "%s\n", b)
	return err
}
