package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/durable"
	"github.com/keytrail/keytrail/ledger"
)

// recordOut is where the commands that make records put them: envelope
// files (-o) or, with --log-key, the ledger.
type recordOut struct {
	lf  ledgerFlags
	out string
}

func (o *recordOut) register(c *cobra.Command, outHelp string) {
	o.lf.register(c, true)
	c.Flags().StringVarP(&o.out, "output", "o", "", outHelp)
}

func (o *recordOut) check() error {
	if (o.out == "") == (o.lf.logKey == "") {
		return cli.Usage("give exactly one of -o (write the signed record) or --log-key (append it to the ledger)")
	}
	return nil
}

// emit writes the envelopes, in order, or appends them to the ledger together
// (ledger.AppendAll), and prints where each went.
// names[i] labels envelope i; when there are several, -o is a directory and
// names[i] its file name there; with one, -o is the file.
func (o *recordOut) emit(ctx context.Context, w io.Writer, envs [][]byte, names []string) error {
	if o.out != "" {
		for i, env := range envs {
			path := o.out
			if len(envs) > 1 {
				path = filepath.Join(o.out, names[i])
			}
			if err := durable.WriteFile(path, env, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\n", path)
		}
		return nil
	}
	l, err := o.lf.open(ctx, true)
	if err != nil {
		return err
	}
	defer l.Close(context.WithoutCancel(ctx))
	idx, err := ledger.AppendAll(ctx, l, envs)
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	for i := range envs {
		fmt.Fprintf(w, "%d\t%s\n", idx[i], names[i])
	}
	return closeLedger(ctx, l)
}

// subjectFlags name the key a record is about.
type subjectFlags struct {
	id, digest, pubPath string
}

func (s *subjectFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&s.id, "key-id", "", "the key's stable ID, the statement subject (required)")
	f.StringVar(&s.digest, "key-digest", "", "lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo")
	f.StringVar(&s.pubPath, "public-key", "", "the key's PEM public key (instead of --key-digest)")
}

func (s *subjectFlags) ref() (evidence.KeyRef, error) {
	if s.id == "" || (s.digest == "") == (s.pubPath == "") {
		return evidence.KeyRef{}, cli.Usage("give --key-id and one of --key-digest or --public-key")
	}
	r := evidence.KeyRef{ID: s.id, SPKISHA256: s.digest}
	if s.pubPath != "" {
		b, err := cli.ReadFile(s.pubPath, 64<<10, "public key")
		if err != nil {
			return r, err
		}
		k, err := evidence.ParsePublicKeyPEM(b)
		if err != nil {
			return r, cli.Input(s.pubPath, err, "")
		}
		r.SPKISHA256 = k.Digest
	}
	if err := r.Validate(); err != nil {
		return r, cli.Usage("%v", err)
	}
	return r, nil
}

// signStatement signs a predicate about key; an invalid record is a usage
// error naming the field.
func signStatement(ctx context.Context, p evidence.Predicate, signer *evidence.Signer, keys ...evidence.KeyRef) ([]byte, error) {
	st, err := evidence.NewStatement(p, keys...)
	if err != nil {
		return nil, cli.Usage("%v", err)
	}
	return evidence.SignStatement(ctx, st, signer)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var errNoSigner = errors.New("--signer is required: the PEM private key of whoever signs the record")

// groupCommand makes c, a command that only holds subcommands, fail with a
// usage error (exit 2) when run without one or with an unknown one.
func groupCommand(c *cobra.Command) *cobra.Command {
	c.Args = cli.NoCommand
	c.RunE = func(c *cobra.Command, _ []string) error {
		c.SetOut(c.ErrOrStderr())
		_ = c.Help()
		return cli.Silent(cli.ExitUsage)
	}
	return c
}
