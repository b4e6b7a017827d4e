package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/ledger/posix"
	"github.com/keytrail/keytrail/verify"
)

func demoCommand() *cobra.Command {
	var dir string
	var hw demoHardware
	c := &cobra.Command{
		Use:   "demo --dir DIR",
		Short: "Run one complete key rotation end to end, with no server and no install",
		Long: `Run one complete key rotation end to end on the embedded ledger:

  1. create keys: the log's checkpoint key, the operator's bundle key, a rotation
     service (collector), a requester and two approvers, an old wallet key, and
     the new wallet key inside hardware: in the in-process TPM 2.0 simulator
     (no install), certified by its attestation key and verified as
     tpm-certified; or, with --hsm and --module, in a PKCS #11 token such as
     SoftHSM2, verified as self-reported;
  2. create an embedded ledger in DIR/log (a tlog-tiles directory);
  3. record and log the rotation: request, create, smoke test, two approvals,
     promote, disable (plus unrelated traffic);
  4. build and sign the bundle DIR/bundles/<rotation>.json;
  5. write DIR/trust.json and DIR/policy.yaml for the auditor;
  6. verify the bundle, rebuilding it from the log, and print the command that
     does the same.

Private keys are written to DIR/keys (mode 0600). DIR must not already hold a demo.`,
		Example: `  keytrail demo --dir ./demo
  softhsm2-util --init-token --free --label custody --pin 1234 --so-pin 5678
  KEYTRAIL_PIN=1234 keytrail demo --dir ./demo-hsm --hsm 'pkcs11:token=custody;object=hot-1' --module /usr/lib/softhsm/libsofthsm2.so
  keytrail verify bundle --trust demo/trust.json --policy demo/policy.yaml --log demo/log demo/bundles/*.json`,
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return cli.Usage("--dir is required")
			}
			if (hw.uri == "") != (hw.module == "") {
				return cli.Usage("--hsm and --module go together")
			}
			return runDemo(c.Context(), dir, hw, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory to create the demo in (required)")
	c.Flags().StringVar(&hw.uri, "hsm", "", "make the new key in this PKCS #11 token instead of the TPM simulator: a URI naming the token and the new key's label, e.g. 'pkcs11:token=custody;object=hot-1'")
	c.Flags().StringVar(&hw.module, "module", "", "the PKCS #11 module for --hsm, e.g. /usr/lib/softhsm/libsofthsm2.so")
	c.Flags().StringVar(&hw.pinEnv, "pin-env", "KEYTRAIL_PIN", "the environment variable holding the token's user PIN (--hsm)")
	return c
}

func runDemo(ctx context.Context, dir string, hw demoHardware, stdout, stderr io.Writer) (err error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return &cli.Error{Code: cli.ExitUsage, Err: fmt.Errorf("%s is not empty", dir), Hint: "pick a new --dir, or remove the old demo"}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return cli.Input(dir, err, "")
	}
	step := func(format string, args ...any) { fmt.Fprintf(stderr, "==> "+format+"\n", args...) }

	step("creating keys in %s", filepath.Join(dir, "keys"))
	p, err := scenario.NewParties("", "keytrail.demo/custody-log")
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Second)
	nk, err := hw.newKey(ctx, p, now, step)
	if err != nil {
		return err
	}
	p.NewRef = nk.ref
	keys := filepath.Join(dir, "keys")
	if err := writeFileAtomic(filepath.Join(keys, "log.key"), []byte(p.LogKey+"\n"), 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(keys, "log.key.pub"), []byte(p.LogVerifier+"\n"), 0o644); err != nil {
		return err
	}
	for _, q := range append([]scenario.Party{p.Operator, p.Collector, p.Requester}, p.Approvers...) {
		if err := writePrivateKey(filepath.Join(keys, q.ID+".pem"), q.Key); err != nil {
			return err
		}
	}

	logDir := filepath.Join(dir, "log")
	step("creating the embedded ledger in %s (origin %s)", logDir, p.Origin)
	l, err := posix.Open(ctx, posix.Config{Dir: logDir, Signer: p.LogSigner, KeyIDs: evidence.SubjectKeyIDs,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}()

	rot := p.Rotation(fmt.Sprintf("rot-%s-hot-1", now.Format("20060102T150405Z")), now.Add(-12*time.Hour))
	step("recording rotation %s: %s -> %s", rot.ID, rot.OldKey.ID, rot.NewKey.ID)
	other, err := scenario.OtherKeyEvent(p, rot)
	if err != nil {
		return err
	}
	steps := p.Steps(rot)
	steps = append(steps[:3:3], append([]scenario.Step{other}, steps[3:]...)...)
	for _, s := range steps {
		env, err := s.Sign(ctx)
		if err != nil {
			return err
		}
		idx, err := l.Append(ctx, env)
		if err != nil {
			return fmt.Errorf("append %s: %w", s.Event.Event, err)
		}
		fmt.Fprintf(stderr, "    %-6d %-10s %-36s by %s\n", idx, s.Event.Event, s.Key.ID, s.By.ID)
	}
	for _, r := range nk.records {
		st, err := evidence.NewStatement(r.pred, r.key)
		if err != nil {
			return err
		}
		env, err := evidence.SignStatement(ctx, st, p.Collector.Signer)
		if err != nil {
			return err
		}
		idx, err := l.Append(ctx, env)
		if err != nil {
			return fmt.Errorf("append %s: %w", r.what, err)
		}
		fmt.Fprintf(stderr, "    %-6d %-10s %-36s by %s\n", idx, r.what, r.key.ID, p.Collector.ID)
	}

	bundlePath := filepath.Join(dir, "bundles", rot.ID+".json")
	step("building and signing %s", bundlePath)
	v, err := notesVerifier(p.LogVerifier)
	if err != nil {
		return err
	}
	b, err := evidence.BuildBundle(ctx, l, rot, evidence.BuildOptions{Origin: p.Origin, LogVerifier: v})
	if err != nil {
		return err
	}
	signed, err := evidence.SignBundle(ctx, b, p.Operator.Signer)
	if err != nil {
		return err
	}
	rotJSON, err := strictjson.MarshalIndent(rot)
	if err != nil {
		return err
	}
	tf := p.TrustFile()
	tf.Collectors[0].PredicateTypes = append(tf.Collectors[0].PredicateTypes, evidence.PredicateHSMAttestation, evidence.PredicateTPMAttestation)
	tf.Hardware = nk.trust
	trustJSON, err := strictjson.MarshalIndent(tf)
	if err != nil {
		return err
	}
	for path, data := range map[string][]byte{
		bundlePath: signed,
		filepath.Join(dir, "rotations", rot.ID+".json"): append(rotJSON, '\n'),
		filepath.Join(dir, "trust.json"):                append(trustJSON, '\n'),
		filepath.Join(dir, "policy.yaml"):               []byte(nk.policy),
	} {
		if err := writeFileAtomic(path, data, 0o644); err != nil {
			return err
		}
	}

	step("verifying the bundle offline, rebuilding it from %s", logDir)
	trust, err := verify.ParseTrust(trustJSON)
	if err != nil {
		return err
	}
	policy, err := verify.ParsePolicy([]byte(nk.policy))
	if err != nil {
		return err
	}
	ver, err := verify.New(trust, policy)
	if err != nil {
		return err
	}
	res, err := ver.VerifyBundle(signed, verify.Options{Log: os.DirFS(logDir)})
	if err != nil {
		return err
	}
	for _, ch := range res.Checks {
		fmt.Fprintf(stdout, "%-4s  %-22s  %s\n", ch.Status, ch.Name, ch.Reason)
	}
	if !res.Verified {
		return errors.Join(cli.Failed("the demo's own bundle did not verify"), res.Err())
	}
	fmt.Fprintf(stdout, "\nVERIFIED. Verify it yourself, offline:\n\n  go run ./cmd/keytrail-verify bundle --trust %s --policy %s --log %s %s\n\n",
		filepath.Join(dir, "trust.json"), filepath.Join(dir, "policy.yaml"), logDir, bundlePath)
	fmt.Fprintf(stdout, "or with keytrail:\n\n  go run ./cmd/keytrail verify bundle --trust %s --policy %s --log %s %s\n",
		filepath.Join(dir, "trust.json"), filepath.Join(dir, "policy.yaml"), logDir, bundlePath)
	return nil
}
