// Package checkpoint authenticates and parses C2SP tlog-checkpoint signed notes
// (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note).
//
// Open verifies the note's signature by the log's key before the body is parsed,
// and the body is parsed strictly: a non-empty origin, a decimal size without
// leading zeros, a base64 root hash of exactly 32 bytes, and no empty extension
// lines. github.com/transparency-dev/formats/log accepts "007" and roots of any
// length; keytrail does not.
package checkpoint

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// MaxBytes bounds a signed checkpoint.
const MaxBytes = 64 << 10

// Errors.
var (
	// ErrSyntax: the checkpoint body is not in tlog-checkpoint form.
	ErrSyntax = errors.New("checkpoint syntax")
	// ErrSignature: no valid signature by the log's key.
	ErrSignature = errors.New("checkpoint signature")
	// ErrOrigin: the origin line is not the log's origin.
	ErrOrigin = errors.New("checkpoint origin")
	// ErrWitnessQuorum: too few distinct trusted witnesses cosigned.
	ErrWitnessQuorum = errors.New("checkpoint witness quorum")
)

// Checkpoint is the body of a tlog-checkpoint.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Root       []byte
	Extensions []string
}

// String formats the checkpoint for messages: origin, size and root.
func (c Checkpoint) String() string {
	return fmt.Sprintf("%s@%d root=%s", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root))
}

// Marshal returns the checkpoint body, as signed.
func (c Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root))
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Parse parses a checkpoint body strictly. It does not authenticate it.
func Parse(body []byte) (Checkpoint, error) {
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return Checkpoint{}, fmt.Errorf("%w: body must end in a newline", ErrSyntax)
	}
	lines := strings.Split(string(body[:len(body)-1]), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("%w: want origin, size and root lines, have %d lines", ErrSyntax, len(lines))
	}
	var c Checkpoint
	c.Origin = lines[0]
	if c.Origin == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty origin", ErrSyntax)
	}
	s := lines[1]
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return Checkpoint{}, fmt.Errorf("%w: size %q is not a decimal number without leading zeros", ErrSyntax, s)
	}
	size, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: size %q: %w", ErrSyntax, s, err)
	}
	c.Size = size
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: root hash: %w", ErrSyntax, err)
	}
	if len(root) != 32 {
		return Checkpoint{}, fmt.Errorf("%w: root hash is %d bytes, want 32", ErrSyntax, len(root))
	}
	// The decoder skips '\r' even in strict mode: only the canonical spelling is
	// accepted, so that each checkpoint has one body.
	if base64.StdEncoding.EncodeToString(root) != lines[2] {
		return Checkpoint{}, fmt.Errorf("%w: root hash %q is not in canonical base64", ErrSyntax, lines[2])
	}
	c.Root = root
	for i, e := range lines[3:] {
		if e == "" {
			return Checkpoint{}, fmt.Errorf("%w: extension line %d is empty", ErrSyntax, i+1)
		}
	}
	if len(lines) > 3 {
		c.Extensions = lines[3:]
	}
	return c, nil
}

// Open verifies the signed note signed against the log's verifier and the
// expected origin, then parses its body. Signatures by other keys are ignored
// (not counted, not errors), as signed-note requires; a signature that claims
// the log's key name and key hash but does not verify is an error, wherever it
// is in the note.
func Open(signed []byte, origin string, log note.Verifier) (Checkpoint, *note.Note, error) {
	return OpenWitnessed(signed, origin, log, nil, 0)
}

// OpenWitnessed is Open, and also requires cosignatures
// (https://c2sp.org/tlog-cosignature) by at least quorum distinct witnesses of
// witnesses. A witness counts once however many times it signs, and a
// signature by the log's own key never counts as a witness's. A signature that
// claims a witness's key name and key hash but does not verify is an error.
// Callers must ensure no key appears twice in witnesses under different names.
func OpenWitnessed(signed []byte, origin string, log note.Verifier, witnesses []note.Verifier, quorum int) (Checkpoint, *note.Note, error) {
	if len(signed) > MaxBytes {
		return Checkpoint{}, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrSyntax, len(signed), MaxBytes)
	}
	n, err := note.Open(signed, note.VerifierList(append([]note.Verifier{log}, witnesses...)...))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	found := false
	for _, s := range n.Sigs {
		found = found || (s.Name == log.Name() && s.Hash == log.KeyHash())
	}
	if !found {
		return Checkpoint{}, nil, fmt.Errorf("%w: not signed by the log key %s", ErrSignature, log.Name())
	}
	if err := verifyKnownLines(signed, n.Text, append([]note.Verifier{log}, witnesses...)); err != nil {
		return Checkpoint{}, nil, err
	}
	c, err := Parse([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if c.Origin != origin {
		return Checkpoint{}, nil, fmt.Errorf("%w: %q, want %q", ErrOrigin, c.Origin, origin)
	}
	if quorum > 0 {
		var counted []string
		for _, s := range n.Sigs {
			for _, w := range witnesses {
				if s.Name == w.Name() && s.Hash == w.KeyHash() && !(s.Name == log.Name() && s.Hash == log.KeyHash()) {
					counted = append(counted, s.Name)
				}
			}
		}
		if len(counted) < quorum {
			return Checkpoint{}, nil, fmt.Errorf("%w: %d of the %d required witnesses cosigned %s (%v)", ErrWitnessQuorum, len(counted), quorum, c, counted)
		}
	}
	return c, n, nil
}

// ParseUnverified parses a signed checkpoint's body without checking any
// signature. It is for operator tools that need a size to ask a ledger for
// proofs (the proofs are verified later); never base a trust decision on it.
func ParseUnverified(signed []byte) (Checkpoint, error) {
	if len(signed) > MaxBytes {
		return Checkpoint{}, fmt.Errorf("%w: %d bytes, limit %d", ErrSyntax, len(signed), MaxBytes)
	}
	i := bytes.Index(signed, []byte("\n\n"))
	if i < 0 {
		return Checkpoint{}, fmt.Errorf("%w: no signature block", ErrSyntax)
	}
	return Parse(signed[:i+1])
}

// verifyKnownLines checks every signature line that claims the key name and
// key hash of one of known (the log and its witnesses). note.Open verifies only
// the first line per key and drops the rest unverified, so a bad one after a
// good one would otherwise pass unnoticed. signed has already been accepted by
// note.Open: it is text, a blank line and well-formed signature lines.
func verifyKnownLines(signed []byte, text string, known []note.Verifier) error {
	sigs := strings.TrimSuffix(string(signed[len(text)+1:]), "\n")
	for i, line := range strings.Split(sigs, "\n") {
		name, b64, _ := strings.Cut(strings.TrimPrefix(line, "\u2014 "), " ")
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(sig) < 5 {
			continue
		}
		for _, v := range known {
			if name == v.Name() && binary.BigEndian.Uint32(sig) == v.KeyHash() && !v.Verify([]byte(text), sig[4:]) {
				return fmt.Errorf("%w: signature line %d claims the key %s+%08x but does not verify", ErrSignature, i+1, v.Name(), v.KeyHash())
			}
		}
	}
	return nil
}
