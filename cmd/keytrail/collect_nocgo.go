//go:build !cgo

package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
)

func collectPKCS11Command() *cobra.Command {
	return &cobra.Command{
		Use:   "pkcs11",
		Short: "Record a PKCS #11 key's attributes (needs a build with cgo)",
		RunE: func(*cobra.Command, []string) error {
			return &cli.Error{Code: cli.ExitUsage, Err: errors.New("this keytrail was built without cgo; PKCS #11 needs it"), Hint: "build with CGO_ENABLED=1"}
		},
	}
}
