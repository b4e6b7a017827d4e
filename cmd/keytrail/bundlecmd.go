package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/durable"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/verify"
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
	var timeout time.Duration
	var rotationPath, signerPath, vkeyPath, sincePath, trustPath, out string
	c := &cobra.Command{
		Use:   "build --rotation FILE --signer KEY --log-vkey FILE -o OUT [--ledger DIR] [--since CHECKPOINT] [--trust FILE]",
		Short: "Build and sign the evidence bundle of a key rotation",
		Long: `Build the evidence bundle of a key rotation: every logged record that names the
rotation's old or new key with a time inside its window, each with its inclusion
proof against the ledger's latest checkpoint, optionally a consistency proof from
an earlier checkpoint (--since), signed by the operator's key (--signer).

With --trust, the bundle carries a checkpoint that meets the trust file's
witness quorum for the log (what checkpoint.signature checks) and covers the
whole tree of the ledger's latest checkpoint: the latest checkpoint once the
witnesses cosigned it, or the latest the ledger's witnesses cosigned if that
is as large. The ledger's writer has its checkpoints cosigned when it runs
with --witness-policy (keytrail serve, log append; 'keytrail log witness'
asks the witnesses once). bundle build waits up to --witness-timeout for one,
then fails (exit 1) saying why each candidate fell short (docs/witness.md).

The rotation file is JSON (docs/bundle-format.md):
  {"id": "...", "keyClass": "hot-signing",
   "oldKey": {"id": "...", "spkiSha256": "..."}, "newKey": {...},
   "window": {"start": "2026-03-02T09:00:00Z", "end": "2026-03-09T09:00:00Z"}}`,
		Example: `  keytrail bundle build --ledger ./keytrail-log --log-vkey log.key.pub \
      --rotation rot-1.json --signer operator.pem -o bundles/rot-1.json
  keytrail bundle build --ledger ./keytrail-log --log-vkey log.key.pub --trust trust.json \
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
			var trust *verify.Trust
			if trustPath != "" {
				tb, err := cli.ReadFile(trustPath, verify.MaxTrustBytes, "trust file")
				if err != nil {
					return err
				}
				if trust, err = verify.ParseTrust(tb); err != nil {
					return cli.Input(trustPath, err, "")
				}
			}
			l, err := lf.open(c.Context(), false)
			if err != nil {
				return err
			}
			defer l.Close(c.Context())
			if trust != nil {
				if timeout <= 0 {
					return cli.Usage("--witness-timeout must be positive")
				}
				if opts.Checkpoint, err = quorumCheckpoint(c.Context(), l, trust, timeout); err != nil {
					return &cli.Error{Code: cli.ExitFailed, Err: fmt.Errorf("%s: %w", lf.ledger, err),
						Hint: "run the ledger's writer with --witness-policy (keytrail serve, log append), or have the witnesses cosign the latest checkpoint with 'keytrail log witness' (docs/witness.md)"}
				}
			}
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
			if err := durable.WriteFile(out, signed, 0o644); err != nil {
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
	f.StringVar(&trustPath, "trust", "", "the auditors' trust file: the bundle's checkpoint must meet its witness quorum")
	f.DurationVar(&timeout, "witness-timeout", 30*time.Second, "with --trust, how long to wait for a checkpoint the witnesses cosigned")
	f.StringVarP(&out, "output", "o", "", "where to write the bundle (required)")
	return c
}

// quorumCheckpoint returns a checkpoint of l that meets trust's witness
// quorum for its log and covers at least the tree l's latest checkpoint
// covers now (an older witnessed one would leave out records logged since),
// waiting up to timeout for the ledger's witnesses.
func quorumCheckpoint(ctx context.Context, l ledger.Log, trust *verify.Trust, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	now, err := latestSize(ctx, l)
	if err != nil {
		return nil, err
	}
	accept := func(raw []byte) error {
		cp, err := trust.OpenCheckpoint(raw)
		if err == nil && cp.Size < now {
			err = fmt.Errorf("%s is older than the latest checkpoint (size %d)", cp, now)
		}
		return err
	}
	raw, err := ledger.AcceptedCheckpoint(ctx, l, accept, 100*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("no checkpoint of size %d or more meets the trust file's witness quorum within %v: %w", now, timeout, err)
	}
	return raw, nil
}
