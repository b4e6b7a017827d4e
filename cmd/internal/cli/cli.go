// Package cli holds what keytrail's commands share: exit codes, error and hint
// messages, and the verify command that both keytrail and keytrail-verify run.
package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/internal/regfile"
)

// Exit codes, the same for every keytrail command.
const (
	ExitOK     = 0 // verified / ok
	ExitFailed = 1 // verification failed
	ExitUsage  = 2 // usage error, or unreadable or malformed input
)

// Error is an error with an exit code and an optional hint for the user.
type Error struct {
	Code int
	Err  error
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Usage returns an exit-2 error.
func Usage(format string, args ...any) error {
	return &Error{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// Input returns an exit-2 error about an input file.
func Input(path string, err error, hint string) error {
	return &Error{Code: ExitUsage, Err: fmt.Errorf("%s: %w", path, err), Hint: hint}
}

// Failed returns an exit-1 error: verification failed.
func Failed(format string, args ...any) error {
	return &Error{Code: ExitFailed, Err: fmt.Errorf(format, args...)}
}

// Silent is an exit code whose message was already printed.
type Silent int

func (s Silent) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// Execute runs root with args and returns the process exit code. Errors are
// printed to stderr as "error: ..." with an optional "hint: ..." line.
func Execute(root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &Error{Code: ExitUsage, Err: err, Hint: fmt.Sprintf("see '%s --help'", c.CommandPath())}
	})
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var s Silent
	if errors.As(err, &s) {
		return int(s)
	}
	var ce *Error
	code := ExitUsage // cobra's own errors (unknown command, bad args) are usage errors
	hint := ""
	if errors.As(err, &ce) {
		code, hint = ce.Code, ce.Hint
	} else if strings.HasPrefix(err.Error(), "unknown command") || strings.Contains(err.Error(), "arg(s)") {
		hint = fmt.Sprintf("see '%s --help'", root.Name())
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	if hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", hint)
	}
	return code
}

// Main runs root on os.Args and exits.
func Main(root *cobra.Command) {
	os.Exit(Execute(root, os.Args[1:], os.Stdout, os.Stderr))
}

// ExactArgs is cobra.ExactArgs with a usage error.
func ExactArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return &Error{Code: ExitUsage, Err: fmt.Errorf("%s takes %d argument(s) (%s), got %d", c.CommandPath(), n, what, len(args)), Hint: fmt.Sprintf("see '%s --help'", c.CommandPath())}
		}
		return nil
	}
}

// ReadFile reads an input file with a size limit; failures are exit-2 errors
// naming the file. Only a regular file is read: a FIFO, a device or a socket
// is refused at once, never waited on (internal/regfile).
func ReadFile(path string, limit int64, what string) ([]byte, error) {
	b, err := regfile.ReadFile(path, limit)
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, regfile.ErrTooLarge):
		return nil, Input(path, fmt.Errorf("%s is larger than %d bytes", what, limit), "")
	case errors.Is(err, regfile.ErrChanged):
		return nil, Input(path, fmt.Errorf("cannot read %s: it changed while being read", what), "")
	}
	return nil, Input(path, fmt.Errorf("cannot read %s: %w", what, pathless(err)), "")
}

// OpenFile opens an input file that is read as a stream; failures are exit-2
// errors naming the file. Only a regular file is opened, without blocking
// (internal/regfile).
func OpenFile(path, what string) (*os.File, error) {
	f, err := regfile.Open(path)
	if err != nil {
		return nil, Input(path, fmt.Errorf("cannot read %s: %w", what, pathless(err)), "")
	}
	return f, nil
}

// pathless is err without the *fs.PathError around it: Input names the path.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// NoCommand rejects arguments to a root command: they name no known command.
func NoCommand(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &Error{Code: ExitUsage, Err: fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath()), Hint: fmt.Sprintf("see '%s --help'", c.CommandPath())}
	}
	return nil
}
