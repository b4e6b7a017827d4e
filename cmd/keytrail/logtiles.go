package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/tiles"
	"github.com/keytrail/keytrail/ledger/export"
)

func logExportCommand() *cobra.Command {
	var lf ledgerFlags
	var out, vkeyPath string
	c := &cobra.Command{
		Use:   "export --tiles DIR [--ledger LEDGER] [--log-vkey FILE]",
		Short: "Write the ledger as a C2SP tlog-tiles directory (an offline audit copy)",
		Long: `Write the ledger's latest checkpoint and the whole tree it commits to (hash tiles
and entry bundles, partial ones at the right edge) as a C2SP tlog-tiles
directory, from any backend. An auditor copies the one folder and checks it
offline with 'keytrail log prove' or 'keytrail verify bundle --log DIR'.

Every entry is hashed and the tree's root compared with the checkpoint's before
DIR appears; DIR must not exist or be empty. With --log-vkey the checkpoint
must also verify with that key.`,
		Example: `  keytrail log export --ledger trillian://127.0.0.1:8090/42 --tiles ./audit-copy
  keytrail log export --ledger ./keytrail-log --log-vkey log.key.pub --tiles /media/usb/keytrail`,
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return cli.Usage("--tiles DIR is required")
			}
			var v note.Verifier
			if vkeyPath != "" {
				var err error
				if v, err = readNoteVerifier(vkeyPath); err != nil {
					return err
				}
			}
			l, err := lf.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer l.Close(c.Context())
			res, err := export.Tiles(c.Context(), l, out, v)
			if errors.Is(err, checkpoint.ErrSignature) || errors.Is(err, checkpoint.ErrOrigin) || errors.Is(err, export.ErrRootMismatch) {
				return cli.Failed("%v", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: %d entries, %d files\n", out, res.Size, res.Files)
			return nil
		},
	}
	lf.register(c, false)
	c.Flags().StringVar(&out, "tiles", "", "the directory to write (required)")
	c.Flags().StringVar(&vkeyPath, "log-vkey", "", "the log's signed-note verifier key file: the checkpoint must verify with it")
	return c
}

func logProveCommand() *cobra.Command {
	var dir, vkey, origin, leafPath string
	var index uint64
	c := &cobra.Command{
		Use:   "prove --tiles DIR --vkey KEY --index N --leaf FILE [--origin ORIGIN]",
		Short: "Prove offline that a file is leaf N of a tlog-tiles log",
		Long: `Check, offline, that FILE is leaf N of the log stored in the C2SP tlog-tiles
directory DIR: verify DIR/checkpoint with the note verifier key KEY (a key, or
a file holding one), compute the inclusion proof of leaf N from DIR's hash
tiles (full or partial), and check FILE's RFC 6962 leaf hash against the
checkpoint's root with it. Any tlog-tiles log works, not only keytrail's.

The checkpoint's origin must be --origin, by default the key's name.

Exit status: 0 proven, 1 not proven (bad signature, wrong leaf, tiles that do
not match the root), 2 usage error or unreadable input.`,
		Example: `  keytrail log prove --tiles ./audit-copy --vkey log.key.pub --index 3 --leaf record-3.json`,
		Args:    cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" || vkey == "" || leafPath == "" || !c.Flags().Changed("index") {
				return cli.Usage("--tiles, --vkey, --index and --leaf are required")
			}
			v, err := verifierFromArg(vkey)
			if err != nil {
				return err
			}
			if origin == "" {
				origin = v.Name()
			}
			leaf, err := cli.ReadFile(leafPath, 1<<16-1, "leaf")
			if err != nil {
				return err
			}
			fsys, err := cli.OpenLogDir(dir, false)
			if err != nil {
				return err
			}
			defer fsys.Close()
			r := tiles.NewReader(fsys)
			raw, err := r.Checkpoint()
			if err != nil {
				return cli.Input(filepath.Join(dir, "checkpoint"), err, "")
			}
			cp, _, err := checkpoint.Open(raw, origin, v)
			if errors.Is(err, checkpoint.ErrSyntax) {
				return cli.Input(filepath.Join(dir, "checkpoint"), err, "")
			}
			if err != nil {
				return cli.Failed("%s: %v", filepath.Join(dir, "checkpoint"), err)
			}
			if index >= cp.Size {
				return cli.Usage("--index %d: the checkpoint's tree has %d leaves", index, cp.Size)
			}
			p, err := r.InclusionProof(index, cp.Size)
			switch {
			case errors.Is(err, tiles.ErrMissing), errors.Is(err, fs.ErrNotExist):
				return cli.Input(dir, err, "is DIR a whole tlog-tiles directory?")
			case errors.Is(err, tiles.ErrMalformed):
				return cli.Failed("%s: %v", dir, err)
			case err != nil:
				return err
			}
			h := rfc6962.DefaultHasher.HashLeaf(leaf)
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, h, p, cp.Root); err != nil {
				return cli.Failed("%s is not leaf %d of %s: %v", leafPath, index, cp, err)
			}
			fmt.Fprintf(c.OutOrStdout(), "proven: %s is leaf %d of %s (leaf hash %s)\n", leafPath, index, cp, leafHashB64(leaf))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&dir, "tiles", "", "the tlog-tiles directory (required)")
	f.StringVar(&vkey, "vkey", "", "the log's note verifier key, or a file holding it (required)")
	f.StringVar(&origin, "origin", "", "the checkpoint's origin (default: the key's name)")
	f.Uint64Var(&index, "index", 0, "the leaf's index (required)")
	f.StringVar(&leafPath, "leaf", "", "the file holding the leaf's exact bytes (required)")
	return c
}

// verifierFromArg takes a note verifier key, or the name of a file holding one.
func verifierFromArg(arg string) (note.Verifier, error) {
	if v, err := note.NewVerifier(strings.TrimSpace(arg)); err == nil {
		return v, nil
	}
	return readNoteVerifier(arg)
}
