// Command keytrail is the operator's and auditor's tool: it runs the embedded
// ledger, builds and signs rotation evidence bundles, runs the demo, and
// verifies bundles offline (the same verify command as keytrail-verify).
//
//	keytrail demo --dir ./demo
//	keytrail log init|append|checkpoint|inclusion|consistency ...
//	keytrail bundle build ...
//	keytrail verify bundle ...
//
// Exit status: 0 ok or verified, 1 verification failed, 2 usage error or
// unreadable input.
package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/keytrail/keytrail/cmd/internal/cli"
)

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "keytrail",
		Short: "Cryptographic evidence for HSM and KMS key custody",
		Long: `keytrail records key-custody evidence (in-toto statements in DSSE envelopes) in an
append-only Merkle log, builds signed evidence bundles for key rotations, and
verifies them offline.

Start with 'keytrail demo --dir ./demo': it needs no server and no install.

Exit status: 0 ok or verified, 1 verification failed, 2 usage error or unreadable input.`,
		Example: `  keytrail demo --dir ./demo
  keytrail verify bundle --trust demo/trust.json --policy demo/policy.yaml --log demo/log demo/bundles/ROTATION.json`,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.Args = cli.NoCommand
	root.RunE = func(c *cobra.Command, _ []string) error {
		c.SetOut(c.ErrOrStderr())
		_ = c.Help()
		return cli.Silent(cli.ExitUsage)
	}
	root.AddCommand(demoCommand(), logCommand(), bundleCommand(), cli.VerifyCommand("keytrail"))
	root.AddCommand(witnessCommand(), eventCommand(), serveCommand(), collectCommand())
	return root
}

func main() {
	// Tessera logs through klog; route it to slog so only warnings and errors
	// reach the terminal.
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	cli.Main(newRoot())
}
