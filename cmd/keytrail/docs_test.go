package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/collectors/tpm"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/cli.md from the commands' help")

// TestCLIDocs keeps docs/cli.md equal to the commands' own help text. After
// changing a command: go test ./cmd/keytrail -run TestCLIDocs -update-docs
func TestCLIDocs(t *testing.T) {
	if !tpm.SimulatorAvailable {
		t.Skip("docs/cli.md documents the cgo build (collect pkcs11 needs cgo)")
	}
	var b bytes.Buffer
	b.WriteString("# Command reference\n\n<!-- Generated from the commands' help by `go test ./cmd/keytrail -run TestCLIDocs -update-docs`. Do not edit. -->\n\n")
	b.WriteString("Exit status of every command: **0** ok or verified, **1** verification failed, **2** usage error or unreadable input.\n\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if c.Runnable() {
			fmt.Fprintf(&b, "## %s\n\n", c.CommandPath())
			desc := c.Long
			if desc == "" {
				desc = c.Short
			}
			fmt.Fprintf(&b, "%s\n\n```\n%s\n", desc, strings.TrimSpace(c.UseLine()))
			if f := c.NonInheritedFlags().FlagUsages(); f != "" {
				fmt.Fprintf(&b, "\nFlags:\n%s", f)
			}
			b.WriteString("```\n\n")
			if c.Example != "" {
				fmt.Fprintf(&b, "Examples:\n\n```\n%s\n```\n\n", c.Example)
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRoot())
	v := cli.NewVerifyRoot()
	fmt.Fprintf(&b, "## keytrail-verify\n\n%s\n\n`keytrail-verify bundle` takes the same flags and arguments as `keytrail verify bundle`.\n", v.Long)
	got := b.Bytes()
	const path = "../../docs/cli.md"
	if *updateDocs {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/cli.md is out of date: go test ./cmd/keytrail -run TestCLIDocs -update-docs")
	}
}
