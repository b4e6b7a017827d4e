// Command keytrail-verify is the auditor's standalone, offline verifier of
// keytrail evidence. It builds with CGO_ENABLED=0, reads only local files and
// never touches the network.
//
//	keytrail-verify bundle --trust trust.json --policy policy.yaml [--log DIR] [--since FILE] BUNDLE
//
// Exit status: 0 verified, 1 verification failed, 2 usage error or unreadable input.
package main

import (
	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
)

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "keytrail-verify",
		Short: "Offline verifier of keytrail evidence bundles",
		Long: `keytrail-verify checks keytrail rotation evidence bundles offline: signatures,
inclusion proofs, checkpoints, consistency, rotation rules, and (with --log) that
the bundle omits nothing the log holds. It reads only local files.

Exit status: 0 verified, 1 verification failed, 2 usage error or unreadable input.`,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.Args = cli.ExactArgs(0, "a command")
	root.RunE = func(c *cobra.Command, _ []string) error {
		c.SetOut(c.ErrOrStderr())
		_ = c.Help()
		return cli.Silent(cli.ExitUsage)
	}
	root.AddCommand(cli.VerifyBundleCommand("keytrail-verify"))
	return root
}

func main() { cli.Main(newRoot()) }
