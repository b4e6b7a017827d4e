package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/internal/checkpoint"
)

func witnessCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "witness",
		Short: "Run a checkpoint witness of your own: make its key, cosign checkpoints",
		Long: `A witness cosigns a log's checkpoints (C2SP tlog-cosignature/v1). Its
cosignature carries the time it saw the checkpoint, which is how
'keytrail verify freshness' knows a checkpoint's age: a C2SP checkpoint has no
time of its own. List the witness's verifier key under the log's "witnesses" in
the trust file.

A witness you run yourself vouches only for time and for what you saw; public
witnesses (or several of your own, with a quorum) also protect against a log
that shows different checkpoints to different people.`,
		Example: `  keytrail witness keygen --name witness.example/w1 --key w1.key
  keytrail witness cosign --key w1.key --log-vkey log.key.pub --log log/ -o checkpoint.cosigned`,
	}
	c.AddCommand(witnessKeygenCommand(), witnessCosignCommand())
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
			if err := writeFileAtomic(keyPath, []byte(skey+"\n"), 0o600); err != nil {
				return err
			}
			if err := writeFileAtomic(keyPath+".pub", []byte(cv+"\n"), 0o644); err != nil {
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

func witnessCosignCommand() *cobra.Command {
	var keyPath, logVKeyPath, logDir, cpPath, out string
	c := &cobra.Command{
		Use:   "cosign --key FILE --log-vkey FILE (--log DIR | --checkpoint FILE) -o FILE",
		Short: "Check a checkpoint's log signature and add this witness's timestamped cosignature",
		Example: `  keytrail witness cosign --key w1.key --log-vkey log.key.pub --log log/ -o checkpoint.cosigned
  keytrail witness cosign --key w1.key --log-vkey log.key.pub --checkpoint cp -o cp.cosigned`,
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if keyPath == "" || logVKeyPath == "" || out == "" || (logDir == "") == (cpPath == "") {
				return cli.Usage("--key, --log-vkey, -o and one of --log or --checkpoint are required")
			}
			skey, err := cli.ReadFile(keyPath, 4096, "witness key")
			if err != nil {
				return err
			}
			w, err := fnote.NewSignerForCosignatureV1(strings.TrimSpace(string(skey)))
			if err != nil {
				return cli.Input(keyPath, err, "make one with 'keytrail witness keygen'")
			}
			vb, err := cli.ReadFile(logVKeyPath, 4096, "log verifier key")
			if err != nil {
				return err
			}
			lv, err := note.NewVerifier(strings.TrimSpace(string(vb)))
			if err != nil {
				return cli.Input(logVKeyPath, err, "")
			}
			if cpPath == "" {
				cpPath = logDir + "/checkpoint"
			}
			raw, err := cli.ReadFile(cpPath, checkpoint.MaxBytes, "checkpoint")
			if err != nil {
				return err
			}
			if _, _, err := checkpoint.Open(raw, lv.Name(), lv); err != nil {
				return cli.Input(cpPath, err, "")
			}
			signed, err := cosign(raw, w)
			if err != nil {
				return cli.Input(cpPath, err, "")
			}
			if err := writeFileAtomic(out, signed, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: cosigned by %s\n", out, w.Name())
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&keyPath, "key", "", "the witness's private key (required)")
	f.StringVar(&logVKeyPath, "log-vkey", "", "the log's verifier key; its name is the checkpoint origin (required)")
	f.StringVar(&logDir, "log", "", "tlog-tiles directory whose checkpoint to cosign")
	f.StringVar(&cpPath, "checkpoint", "", "signed checkpoint file to cosign")
	f.StringVarP(&out, "output", "o", "", "file to write the cosigned checkpoint to (required)")
	return c
}

// cosign adds a witness's cosignature to a signed checkpoint, keeping the
// signatures it has. The caller has checked the log's signature.
func cosign(signed []byte, w note.Signer) ([]byte, error) {
	i := bytes.Index(signed, []byte("\n\n"))
	if i < 0 {
		return nil, fmt.Errorf("%w: no signature block", checkpoint.ErrSyntax)
	}
	text := signed[:i+1]
	one, err := note.Sign(&note.Note{Text: string(text)}, w)
	if err != nil {
		return nil, err
	}
	return append(append([]byte{}, signed...), one[len(text)+1:]...), nil
}
