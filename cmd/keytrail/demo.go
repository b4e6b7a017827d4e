package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"
	fnote "github.com/transparency-dev/formats/note"
	fwitness "github.com/transparency-dev/formats/witness"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/durable"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/ledger/posix"
	"github.com/keytrail/keytrail/verify"
	"github.com/keytrail/keytrail/witness"
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
     SoftHSM2, verified as self-reported (a keytrail built without cgo keeps
     the new key in software);
  2. create an embedded ledger in DIR/log (a tlog-tiles directory);
  3. record and log the rotation: the old key's promotion 120 days ago, its
     key-policy snapshot and signing receipts; request, create, the new key's
     hardware records (TPM certification and PCR quote, or the token's
     attributes with a proof of possession), policy snapshot and smoke-test
     signature made by the new key where it lives, two approvals, promote,
     disable, a break-glass with its quorum, the old key's scheduled deletion
     and destruction after its retention (plus unrelated traffic), and today's
     hardware record and policy snapshot of the new key;
  4. log residency claims signed by a residency authority (the KMS region of
     both keys' policies in the AWS European Sovereign Cloud, the log, and with
     --hsm the token): the bundle carries them;
  5. build and sign the bundle DIR/bundles/<rotation>.json;
  6. write DIR/trust.json and DIR/policy.yaml (rotation rules, the hot-signing
     class's rotation window, jurisdictions and minimum hardware strength,
     retention, break-glass quorum, freshness);
  7. verify the bundle against every rule, rebuilding it from the log, and
     print the commands that do the same and the CI freshness gate.

Private keys are written to DIR/keys (mode 0600); the new key never leaves
the TPM or the token. DIR must not already hold a demo.`,
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
	// The TPM or token stays open until the new key's last signature.
	defer func() {
		if cerr := nk.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if nk.signer != nil {
		p.NewKey = nk.signer
	}
	p.NewRef = nk.ref
	keys := filepath.Join(dir, "keys")
	if err := durable.WriteFile(filepath.Join(keys, "log.key"), []byte(p.LogKey+"\n"), 0o600); err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(keys, "log.key.pub"), []byte(p.LogVerifier+"\n"), 0o644); err != nil {
		return err
	}
	for _, q := range append([]scenario.Party{p.Operator, p.Collector, p.Requester}, p.Approvers...) {
		if err := writePrivateKey(filepath.Join(keys, q.ID+".pem"), q.Key); err != nil {
			return err
		}
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	wit, err := startDemoWitness(ctx, p, dir, logger)
	if err != nil {
		return err
	}
	defer wit.stop()
	step("running a witness of keytrail's own on %s (state in %s); the trust file requires its cosignature", wit.url, wit.state)

	logDir := filepath.Join(dir, "log")
	step("creating the embedded ledger in %s (origin %s), its checkpoints witnessed", logDir, p.Origin)
	l, err := posix.Open(ctx, posix.Config{Dir: logDir, Signer: p.LogSigner, KeyIDs: evidence.SubjectKeyIDs,
		Logger: logger, Witnesses: wit.cosigner})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}()

	pr, err := demoPolicyRotation(ctx, p, nk, now)
	if err != nil {
		return err
	}
	rot := pr.Rotation
	step("recording rotation %s: %s -> %s", rot.ID, rot.OldKey.ID, rot.NewKey.ID)
	envs, err := scenario.SignSteps(ctx, pr.Steps)
	if err != nil {
		return err
	}
	for i, s := range pr.Steps {
		idx, err := l.Append(ctx, envs[i])
		if err != nil {
			return fmt.Errorf("append %s: %w", demoLabel(s), err)
		}
		fmt.Fprintf(stderr, "    %-6d %-20s %-36s by %s\n", idx, demoLabel(s), s.Key.ID, s.By.ID)
	}
	step("logging residency claims signed by %s", p.Authority.ID)
	if err := demoResidency(ctx, l, p, pr, dir, stderr); err != nil {
		return err
	}

	tf := p.PolicyTrust()
	if nk.trust != nil {
		tf.Collectors[0].PredicateTypes = append(tf.Collectors[0].PredicateTypes, evidence.PredicateTPMAttestation)
		tf.Hardware = nk.trust
	}
	tf.Logs[0].Witnesses = []verify.TrustedWitness{{Key: wit.vkey}}
	tf.Logs[0].WitnessQuorum = 1
	trustJSON, err := strictjson.MarshalIndent(tf)
	if err != nil {
		return err
	}
	trust, err := verify.ParseTrust(trustJSON)
	if err != nil {
		return err
	}

	bundlePath := filepath.Join(dir, "bundles", rot.ID+".json")
	step("building and signing %s on the latest checkpoint %s cosigned", bundlePath, wit.name)
	v, err := notesVerifier(p.LogVerifier)
	if err != nil {
		return err
	}
	cosigned, err := quorumCheckpoint(ctx, l, trust, 30*time.Second)
	if err != nil {
		return err
	}
	b, err := evidence.BuildBundle(ctx, l, rot, evidence.BuildOptions{Origin: p.Origin, LogVerifier: v, Checkpoint: cosigned})
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
	for path, data := range map[string][]byte{
		bundlePath: signed,
		filepath.Join(dir, "rotations", rot.ID+".json"): append(rotJSON, '\n'),
		filepath.Join(dir, "trust.json"):                append(trustJSON, '\n'),
		filepath.Join(dir, "policy.yaml"):               []byte(pr.PolicyYAML),
		filepath.Join(dir, "checkpoint.cosigned"):       cosigned,
	} {
		if err := durable.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}

	step("verifying the bundle offline, rebuilding it from %s", logDir)
	policy, err := verify.ParsePolicy([]byte(pr.PolicyYAML))
	if err != nil {
		return err
	}
	ver, err := verify.New(trust, policy)
	if err != nil {
		return err
	}
	logFS, err := cli.OpenLogDir(logDir, true)
	if err != nil {
		return err
	}
	defer logFS.Close()
	res, err := ver.VerifyBundle(signed, verify.Options{Log: logFS})
	if err != nil {
		return err
	}
	for _, ch := range res.Checks {
		fmt.Fprintf(stdout, "%-4s  %-27s  %s\n", ch.Status, ch.Name, ch.Reason)
	}
	if !res.Verified {
		return errors.Join(cli.Failed("the demo's own bundle did not verify"), res.Err())
	}
	fmt.Fprintf(stdout, "\nVERIFIED. Verify it yourself, offline:\n\n  go run ./cmd/keytrail-verify bundle --trust %s --policy %s --log %s %s\n\n",
		filepath.Join(dir, "trust.json"), filepath.Join(dir, "policy.yaml"), logDir, bundlePath)
	fmt.Fprintf(stdout, "or with keytrail:\n\n  go run ./cmd/keytrail verify bundle --trust %s --policy %s --log %s %s\n",
		filepath.Join(dir, "trust.json"), filepath.Join(dir, "policy.yaml"), logDir, bundlePath)
	gate, key, kinds := "are the new key's hardware record and policy snapshot fresh (a day, a week)?", rot.NewKey.ID, ""
	if nk.records == nil {
		// A software key has no hardware record to be fresh, nor one that
		// establishes its public key: the gate is given its digest.
		gate, key, kinds = "is the new key's policy snapshot under a week old?", rot.NewKey.ID+"@sha256:"+rot.NewKey.SPKISHA256, " --kind policy"
	}
	fmt.Fprintf(stdout, "\nCI gate: %s\n\n  go run ./cmd/keytrail-verify freshness --trust %s --policy %s --log %s --checkpoint %s --key %s%s\n",
		gate, filepath.Join(dir, "trust.json"), filepath.Join(dir, "policy.yaml"), logDir, filepath.Join(dir, "checkpoint.cosigned"), key, kinds)
	return nil
}

// demoPolicyRotation is the demo's rotation: scenario's policy rotation with
// every kind of record, started 35 days before now so that the old key's
// destruction, 31 days after the rotation, is already in the past; the new
// key's real hardware records in place of the scenario's stand-in; plus a
// record about another key. Its policy requires the new key's hardware
// strength.
func demoPolicyRotation(ctx context.Context, p *scenario.Parties, nk *demoKey, now time.Time) (*scenario.PolicyRotation, error) {
	start := now.Add(-35 * 24 * time.Hour)
	pr, err := scenario.NewPolicyRotationAt(p, fmt.Sprintf("rot-%s-hot-1", start.Format("20060102T150405Z")), start)
	if err != nil {
		return nil, err
	}
	if pr.PolicyYAML, err = demoPolicy(nk.min); err != nil {
		return nil, err
	}
	other, err := scenario.OtherKeyEvent(p, p.Rotation(pr.Rotation.ID, start))
	if err != nil {
		return nil, err
	}
	pr.Steps = append(pr.Steps, other)
	// Today's hardware record and policy snapshot of the new key, as a daily
	// collector makes them: what 'keytrail verify freshness' looks for.
	daily := now.Add(-30 * time.Minute)
	if err := nk.useHardware(ctx, pr, daily); err != nil {
		return nil, err
	}
	newSnap := pr.Find(func(s scenario.Step) bool {
		_, ok := s.Record.(*evidence.KeyPolicySnapshot)
		return ok && s.Key == pr.Rotation.NewKey
	}).Record.(*evidence.KeyPolicySnapshot)
	pr.Steps = append(pr.Steps,
		scenario.Step{By: p.Collector, Key: pr.Rotation.NewKey, Record: scenario.Snapshot(daily, newSnap.Resource.Name, false)})
	slices.SortStableFunc(pr.Steps, func(a, b scenario.Step) int { return a.Time().Compare(b.Time()) })
	return pr, nil
}

// demoLabel names a step's record for the demo's log listing.
func demoLabel(s scenario.Step) string {
	switch r := s.Record.(type) {
	case nil:
		return s.Event.Event
	case *evidence.LifecycleEvent:
		return r.Event
	case *evidence.SigningReceipt:
		return "receipt " + r.RequestID
	case *evidence.KeyPolicySnapshot:
		return "policy snapshot"
	case *evidence.HSMAttestation:
		return "hsm attestation"
	case *evidence.TPMAttestation:
		return "tpm " + r.Kind
	}
	return s.Record.PredicateType()
}

// demoResidency signs the rotation's residency claims by the residency
// authority and logs them: the bundle carries them, and the verifier reads
// the claims in force from the log.
func demoResidency(ctx context.Context, l interface {
	Append(context.Context, []byte) (uint64, error)
}, p *scenario.Parties, pr *scenario.PolicyRotation, dir string, stderr io.Writer) error {
	if err := writePrivateKey(filepath.Join(dir, "keys", p.Authority.ID+".pem"), p.Authority.Key); err != nil {
		return err
	}
	claims, err := p.SignClaims(ctx, pr.Claims)
	if err != nil {
		return err
	}
	for i, env := range claims {
		idx, err := l.Append(ctx, env)
		if err != nil {
			return fmt.Errorf("append residency claim: %w", err)
		}
		c := pr.Claims[i]
		fmt.Fprintf(stderr, "    %-6d %-20s %-36s %s, %s\n", idx, "residency claim", c.Subject.Name(), c.Region, c.Jurisdiction)
	}
	return nil
}

// demoWitness is the demo's witness: keytrail's own (witness.Server) on
// 127.0.0.1, its key in DIR/keys/witness.key, its state in DIR/witness, and
// the client the ledger asks it with.
type demoWitness struct {
	name, vkey, url, state string
	cosigner               *witness.Cosigner
	stop                   func()
}

// startDemoWitness makes the witness's key and starts it.
func startDemoWitness(ctx context.Context, p *scenario.Parties, dir string, logger *slog.Logger) (*demoWitness, error) {
	const name = "keytrail.demo/witness"
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, err
	}
	cvkey, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, "keys", "witness.key")
	if err := durable.WriteFile(keyPath, []byte(skey+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := durable.WriteFile(keyPath+".pub", []byte(cvkey+"\n"), 0o644); err != nil {
		return nil, err
	}
	signer, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, err
	}
	lv, err := note.NewVerifier(p.LogVerifier)
	if err != nil {
		return nil, err
	}
	w := &demoWitness{name: name, vkey: cvkey, state: filepath.Join(dir, "witness")}
	srv, err := witness.NewServer(witness.ServerConfig{Signer: signer, Logs: []note.Verifier{lv}, StateDir: w.state, Logger: logger})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveWitness(sctx, srv, "127.0.0.1:0", "", io.Discard, addrc)
	}()
	select {
	case w.url = <-addrc:
	case err := <-done:
		cancel()
		srv.Close()
		return nil, err
	}
	w.stop = func() {
		cancel()
		<-done
		srv.Close()
	}
	u, err := url.Parse(w.url)
	if err != nil {
		w.stop()
		return nil, err
	}
	fw, err := fwitness.New(cvkey, u)
	if err != nil {
		w.stop()
		return nil, err
	}
	if w.cosigner, err = witness.NewCosigner(witness.Config{Policy: fwitness.NewGroup(1, fw), Logger: logger}); err != nil {
		w.stop()
		return nil, err
	}
	return w, nil
}
