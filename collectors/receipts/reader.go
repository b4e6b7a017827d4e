package receipts

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify/receipt"
)

// Line is one receipt as the wallet signer writes it: one JSON object on one
// line. Every member but chain and txHash is required; any other member, a
// member twice, or a member in another case is an error.
type Line struct {
	// KeyID names the key that signed, as the collector's Keys know it.
	KeyID string `json:"keyId"`
	// Digest is what was signed, lowercase hex without 0x: the 32-byte hash
	// for the ECDSA schemes, the message itself for Ed25519 (see verify/receipt).
	Digest string `json:"digest"`
	// Signature is the signature, lowercase hex without 0x, in the scheme's
	// encoding: DER, r||s||v, or the 64 Ed25519 bytes.
	Signature string `json:"signature"`
	// Scheme is one of receipt.Schemes; it must be the key's.
	Scheme string `json:"scheme"`
	// Operator is who asked for the signature (at most 256 bytes).
	Operator string `json:"operator"`
	// RequestID is the signer's request ID: 1 to 256 printable ASCII
	// characters, no spaces, unique per key in one input.
	RequestID string `json:"requestId"`
	// Chain is the CAIP-2 chain ID ("eip155:1", "solana:5eykt4Us…",
	// "bip122:000000000019d6689c085ae165831e93"), if any.
	Chain string `json:"chain,omitempty"`
	// TxHash is the transaction's hash or ID as the chain spells it (1 to
	// 128 letters and digits, e.g. 0x-prefixed hex or base58), if any.
	TxHash string `json:"txHash,omitempty"`
	// Time is when the signature was made: RFC 3339, UTC, canonical
	// (evidence.ParseTime).
	Time string `json:"time"`
}

// Limits bound what a Reader accepts. A zero field takes its default.
type Limits struct {
	// MaxLineBytes bounds one line, without its "\n" (default 16 KiB; an
	// Ed25519 receipt of the longest message is about 8.5 KiB).
	MaxLineBytes int
	// MaxLines bounds the receipts of one input (default 100,000).
	MaxLines int
}

// Defaults of Limits.
const (
	DefaultMaxLineBytes = 16 << 10
	DefaultMaxLines     = 100_000
)

func (l Limits) withDefaults() Limits {
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = DefaultMaxLineBytes
	}
	if l.MaxLines <= 0 {
		l.MaxLines = DefaultMaxLines
	}
	return l
}

// Errors of reading and collecting, each wrapped in a *LineError.
var (
	// ErrSyntax: a line is not a receipt (JSON, a member, or a member's form).
	ErrSyntax = errors.New("not a receipt")
	// ErrLimit: a line is too long or there are too many.
	ErrLimit = errors.New("over limit")
	// ErrDuplicate: a key's request ID appears twice.
	ErrDuplicate = errors.New("duplicate request")
	// ErrUnknownKey: a receipt names a key the collector does not know.
	ErrUnknownKey = errors.New("unknown key")
	// ErrScheme: a receipt's scheme is not its key's.
	ErrScheme = errors.New("scheme is not the key's")
)

// LineError is a line that cannot be read or collected. Errors of
// verification wrap the verify/receipt sentinels.
type LineError struct {
	// Line is the 1-based line number.
	Line int
	// Field is the JSON member at fault, or "" if it is the line as a whole.
	Field string
	Err   error
}

func (e *LineError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("line %d: %s: %v", e.Line, e.Field, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// Receipt is a line that has been read: its syntax is checked, its signature
// not yet.
type Receipt struct {
	// Line is the 1-based line number.
	Line int
	// KeyID and Scheme are the line's, as the signer claims them.
	KeyID  string
	Scheme receipt.Scheme
	// Predicate is the receipt as a statement records it.
	Predicate *evidence.SigningReceipt
}

// Reader reads receipts from JSON Lines (https://jsonlines.org): one object
// per line, "\n" or "\r\n" line ends; blank lines are errors. It reads one
// line at a time, so memory is bounded by Limits whatever the input's size.
type Reader struct {
	br    *bufio.Reader
	lim   Limits
	line  int
	count int
	seen  map[[32]byte]int // SHA-256 of keyId "\x00" requestId -> line
	err   error
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader, lim Limits) *Reader {
	lim = lim.withDefaults()
	return &Reader{br: bufio.NewReaderSize(r, lim.MaxLineBytes+1), lim: lim, seen: make(map[[32]byte]int)}
}

// Next returns the next receipt, or io.EOF after the last one. After any
// other error, which is a *LineError naming the line and, when it can, the
// member, it returns the same error again.
func (r *Reader) Next() (*Receipt, error) {
	if r.err != nil {
		return nil, r.err
	}
	rec, err := r.next()
	if err != nil {
		r.err = err
	}
	return rec, err
}

func (r *Reader) next() (*Receipt, error) {
	raw, err := r.br.ReadSlice('\n')
	switch {
	case err == io.EOF && len(raw) == 0:
		return nil, io.EOF
	case err == io.EOF:
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, &LineError{Line: r.line + 1, Err: fmt.Errorf("%w: line longer than %d bytes", ErrLimit, r.lim.MaxLineBytes)}
	case err != nil:
		return nil, &LineError{Line: r.line + 1, Err: fmt.Errorf("read: %w", err)}
	}
	r.line++
	if r.count == r.lim.MaxLines {
		return nil, &LineError{Line: r.line, Err: fmt.Errorf("%w: more than %d receipts", ErrLimit, r.lim.MaxLines)}
	}
	raw = bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, &LineError{Line: r.line, Err: fmt.Errorf("%w: blank line", ErrSyntax)}
	}
	rec, lerr := parseLine(raw, r.lim.MaxLineBytes)
	if lerr != nil {
		lerr.Line = r.line
		return nil, lerr
	}
	rec.Line = r.line
	id := sha256.Sum256([]byte(rec.KeyID + "\x00" + rec.Predicate.RequestID))
	if first, ok := r.seen[id]; ok {
		return nil, &LineError{Line: r.line, Field: "requestId", Err: fmt.Errorf("%w: key %s request %q is also on line %d", ErrDuplicate, rec.KeyID, rec.Predicate.RequestID, first)}
	}
	r.seen[id] = r.line
	r.count++
	return rec, nil
}

var (
	requestIDPattern = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)
	// CAIP-2: namespace ":" reference.
	chainPattern  = regexp.MustCompile(`^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$`)
	txHashPattern = regexp.MustCompile(`^[0-9A-Za-z]{1,128}$`)
)

const maxOperatorBytes = 256

// parseLine decodes one line strictly and checks each member's form. The
// returned error has no line number yet.
func parseLine(raw []byte, maxBytes int) (*Receipt, *LineError) {
	bad := func(field string, format string, args ...any) (*Receipt, *LineError) {
		return nil, &LineError{Field: field, Err: fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)}
	}
	var l Line
	if err := strictjson.Unmarshal(raw, &l, maxBytes); err != nil {
		return nil, &LineError{Field: jsonField(err), Err: fmt.Errorf("%w: %w", ErrSyntax, err)}
	}
	for _, m := range []struct{ name, v string }{
		{"keyId", l.KeyID}, {"digest", l.Digest}, {"signature", l.Signature}, {"scheme", l.Scheme},
		{"operator", l.Operator}, {"requestId", l.RequestID}, {"time", l.Time},
	} {
		if m.v == "" {
			return bad(m.name, "missing or empty")
		}
	}
	if err := validKeyID(l.KeyID); err != nil {
		return bad("keyId", "%v", err)
	}
	scheme, err := receipt.ParseScheme(l.Scheme)
	if err != nil {
		return bad("scheme", "%v", err)
	}
	if _, err := receipt.DecodeDigest(scheme, l.Digest); err != nil {
		return bad("digest", "%v", err)
	}
	if len(l.Signature) > 2*receipt.MaxDERSignatureSize {
		return bad("signature", "%d hex digits, longer than any signature of a scheme (%d)", len(l.Signature), 2*receipt.MaxDERSignatureSize)
	}
	sig, err := receipt.DecodeHex(l.Signature)
	if err != nil {
		return bad("signature", "%v", err)
	}
	if len(l.Operator) > maxOperatorBytes || strings.ContainsFunc(l.Operator, isControl) {
		return bad("operator", "want at most %d bytes without control characters", maxOperatorBytes)
	}
	if !requestIDPattern.MatchString(l.RequestID) {
		return bad("requestId", "%.64q is not 1 to 256 printable ASCII characters without spaces", l.RequestID)
	}
	if l.Chain != "" && !chainPattern.MatchString(l.Chain) {
		return bad("chain", "%.64q is not a CAIP-2 chain ID", l.Chain)
	}
	if l.TxHash != "" && !txHashPattern.MatchString(l.TxHash) {
		return bad("txHash", "%.64q is not 1 to 128 letters and digits", l.TxHash)
	}
	t, err := evidence.ParseTime(l.Time)
	if err != nil {
		return bad("time", "%v", err)
	}
	return &Receipt{KeyID: l.KeyID, Scheme: scheme, Predicate: &evidence.SigningReceipt{
		At: evidence.AtTime(t), Digest: l.Digest, Signature: sig, Operator: l.Operator,
		RequestID: l.RequestID, Chain: l.Chain, TxHash: l.TxHash,
	}}, nil
}

// validKeyID checks a key ID's syntax; evidence.KeyRef holds its one
// definition.
func validKeyID(id string) error {
	return evidence.KeyRef{ID: id, SPKISHA256: strings.Repeat("0", 64)}.Validate()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (0x80 <= r && r < 0xa0) }

// jsonField is the top-level member a JSON error is about, or "".
func jsonField(err error) string {
	var ptr jsontext.Pointer
	var se *json.SemanticError
	var sy *jsontext.SyntacticError
	switch {
	case errors.As(err, &se):
		ptr = se.JSONPointer
	case errors.As(err, &sy):
		ptr = sy.JSONPointer
	}
	for tok := range ptr.Tokens() {
		return tok
	}
	return ""
}
