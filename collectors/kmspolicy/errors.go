package kmspolicy

import (
	"errors"
	"fmt"

	"github.com/keytrail/keytrail/internal/kmsperm"
)

// Sentinel errors. Every error the package returns for bad input is an
// *InputError that wraps one of them, so callers test with errors.Is and read
// the file and field with errors.As.
var (
	// ErrMalformed: the input is not what the command prints: bad JSON,
	// duplicate or case-variant member names, unknown members where the format
	// is closed, wrong types, missing required members.
	ErrMalformed = kmsperm.ErrMalformed
	// ErrTooLarge: an input is over one of the package's limits (bytes, depth,
	// counts).
	ErrTooLarge = errors.New("too large")
	// ErrUnsupported: the input is well-formed but uses something this package
	// does not model (an unknown partition, policy version or principal type),
	// so it refuses rather than guess.
	ErrUnsupported = kmsperm.ErrUnsupported
	// ErrMismatch: the inputs disagree with each other or with the request: a
	// grant for another key, an ARN whose region is not in its partition, a
	// previous snapshot of another key.
	ErrMismatch = kmsperm.ErrMismatch
	// ErrIncomplete: an export is a partial listing (a truncated list-grants
	// page), so the snapshot would silently miss permissions.
	ErrIncomplete = errors.New("incomplete")
)

// InputError reports bad input: which file, which field (a JSON Pointer,
// RFC 6901, into that file; for the policy document inside get-key-policy's
// "Policy" string the file is named "FILE (Policy)"), and why.
type InputError struct {
	// File is the name the operator gave the file (File.Name).
	File string
	// Field is a JSON Pointer to the offending member, "" for the whole file.
	Field string
	// Err wraps one of the sentinel errors.
	Err error
}

func (e *InputError) Error() string {
	field := e.Field
	if field == "" {
		field = "(document)"
	}
	return fmt.Sprintf("kmspolicy: %s: %s: %v", e.File, field, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// inputErr builds an *InputError whose Err wraps sentinel with a message.
func inputErr(file, field string, sentinel error, format string, args ...any) *InputError {
	return &InputError{File: file, Field: field, Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))}
}

// errorf wraps sentinel with a message.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
