package main

import (
	"errors"
	"fmt"

	"encoding/base64"
	"github.com/spf13/cobra"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/strictjson"
)

func leafHashB64(e []byte) string {
	return base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf(e))
}

func bundleCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Build rotation evidence bundles",
	}
	c.AddCommand(bundleBuildCommand())
	return c
}

func bundleBuildCommand() *cobra.Command {
	var lf ledgerFlags
	var rotationPath, signerPath, vkeyPath, sincePath, out string
	c := &cobra.Command{
		Use:   "build --rotation FILE --signer KEY --log-vkey FILE -o OUT [--ledger DIR] [--since CHECKPOINT]",
		Short: "Build and sign the evidence bundle of a key rotation",
		Long: `Build the evidence bundle of a key rotation: every logged record that names the
rotation's old or new key with a time inside its window, each with its inclusion
proof against the ledger's latest checkpoint, optionally a consistency proof from
an earlier checkpoint (--since), signed by the operator's key (--signer).

The rotation file is JSON (docs/bundle-format.md):
  {"id": "...", "keyClass": "hot-signing",
   "oldKey": {"id": "...", "spkiSha256": "..."}, "newKey": {...},
   "window": {"start": "2026-03-02T09:00:00Z", "end": "2026-03-09T09:00:00Z"}}`,
		Example: `  keytrail bundle build --ledger ./keytrail-log --log-vkey log.key.pub \
      --rotation rot-1.json --signer operator.pem -o bundles/rot-1.json`,
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if rotationPath == "" || signerPath == "" || vkeyPath == "" || out == "" {
				return cli.Usage("--rotation, --signer, --log-vkey and -o are required")
			}
			rb, err := cli.ReadFile(rotationPath, 64<<10, "rotation")
			if err != nil {
				return err
			}
			var r evidence.Rotation
			if err := strictjson.Unmarshal(rb, &r, 64<<10); err != nil {
				return cli.Input(rotationPath, err, "")
			}
			if err := r.Validate(); err != nil {
				return cli.Input(rotationPath, err, "")
			}
			signer, err := readSigner(signerPath)
			if err != nil {
				return err
			}
			v, err := readNoteVerifier(vkeyPath)
			if err != nil {
				return err
			}
			opts := evidence.BuildOptions{Origin: v.Name(), LogVerifier: v}
			if sincePath != "" {
				if opts.Since, err = cli.ReadFile(sincePath, checkpoint.MaxBytes, "checkpoint"); err != nil {
					return err
				}
			}
			l, err := lf.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer l.Close(c.Context())
			b, err := evidence.BuildBundle(c.Context(), l, r, opts)
			if err != nil {
				return fmt.Errorf("build bundle: %w", err)
			}
			if len(b.Entries) == 0 {
				return cli.Failed("no records about %s or %s inside the window in %s", r.OldKey.ID, r.NewKey.ID, lf.ledger)
			}
			signed, err := evidence.SignBundle(c.Context(), b, signer)
			if err != nil {
				return err
			}
			if err := writeFileAtomic(out, signed, 0o644); err != nil {
				return errors.Join(fmt.Errorf("write %s", out), err)
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: rotation %s, %d entries\n", out, r.ID, len(b.Entries))
			return nil
		},
	}
	lf.register(c, false)
	f := c.Flags()
	f.StringVar(&rotationPath, "rotation", "", "rotation descriptor (JSON) (required)")
	f.StringVar(&signerPath, "signer", "", "operator's private key (PKCS #8 PEM) that signs the bundle (required)")
	f.StringVar(&vkeyPath, "log-vkey", "", "the log's signed-note verifier key file (required)")
	f.StringVar(&sincePath, "since", "", "an earlier checkpoint to prove consistency from")
	f.StringVarP(&out, "output", "o", "", "where to write the bundle (required)")
	return c
}
