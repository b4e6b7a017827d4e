package kmspolicy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/keytrail/keytrail/internal/strictjson"
)

// File is one exported file: its bytes and the name errors call it by.
type File struct {
	// Name names the file in errors, e.g. "aws/hot-1/describe-key.json".
	Name string
	// Data is the file's content, exactly as the command printed it.
	Data []byte
}

// Limits on untrusted input. They are far above what the providers allow (an
// AWS key policy is at most 32 KiB, a GCP IAM policy at most 1,500 principals)
// and low enough that a hostile file cannot exhaust memory or CPU.
const (
	// MaxFileBytes bounds every file except list-grants output.
	MaxFileBytes = 1 << 20
	// MaxGrantsFileBytes bounds list-grants output.
	MaxGrantsFileBytes = 8 << 20
	// MaxDepth bounds JSON nesting in every file and in the policy document.
	MaxDepth = 32
	// MaxStatements bounds the statements of one IAM policy document.
	MaxStatements = 1000
	// MaxListItems bounds each principal, action and resource list, and the
	// members of one GCP binding.
	MaxListItems = 5000
	// MaxGrants bounds the grants of one key (AWS allows 50,000; a snapshot of
	// more would not fit in one record anyway).
	MaxGrants = 10000
	// MaxBindings bounds the bindings of one GCP IAM policy.
	MaxBindings = 1500
	// MaxStringBytes bounds one principal, action, resource or role name.
	MaxStringBytes = 2048
	// MaxEntries bounds the normalised entries of one key. A statement yields
	// principals × actions entries, so this is what keeps a small hostile
	// document from expanding into millions (a signed snapshot holds a few
	// thousand at most anyway, see evidence.MaxRecordBytes).
	MaxEntries = 50000
)

// scan walks data as a single JSON value and rejects what a typed decode could
// let through or choke on: invalid UTF-8, member names repeated exactly or
// only up to case ("Effect" and "effect": two parsers can disagree on which one
// counts, ATTACKS.md 16), nesting deeper than MaxDepth, and trailing data.
func scan(file string, data []byte, maxBytes int) error {
	if len(data) > maxBytes {
		return inputErr(file, "", ErrTooLarge, "%d bytes, limit %d", len(data), maxBytes)
	}
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))
	var folded []map[string]string // per open object: folded name -> name as written
	for values := 0; ; {
		tok, err := dec.ReadToken()
		if err == io.EOF {
			if values == 0 {
				return inputErr(file, "", ErrMalformed, "empty input")
			}
			return nil
		}
		if err != nil {
			return syntaxErr(file, err)
		}
		if values > 0 {
			return inputErr(file, "", ErrMalformed, "data after the top-level value")
		}
		if dec.StackDepth() > MaxDepth {
			return inputErr(file, string(dec.StackPointer()), ErrTooLarge, "nesting deeper than %d", MaxDepth)
		}
		switch tok.Kind() {
		case '{':
			folded = append(folded, map[string]string{})
		case '}':
			folded = folded[:len(folded)-1]
		case '"':
			if kind, n := dec.StackIndex(dec.StackDepth()); kind == '{' && n%2 == 1 {
				name := tok.String()
				key := fold(name)
				seen := folded[len(folded)-1]
				if prev, ok := seen[key]; ok {
					return inputErr(file, string(dec.StackPointer()), ErrMalformed, "member names %q and %q differ only in case", prev, name)
				}
				seen[key] = name
			}
		}
		if dec.StackDepth() == 0 {
			values++
		}
	}
}

// fold maps s to a key shared by every case variant of s (simple Unicode case
// folding, as IAM and encoding/json's case-insensitive matching use).
func fold(s string) string {
	var b strings.Builder
	for _, r := range s {
		// The smallest rune of r's folding orbit stands for the whole orbit.
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		b.WriteRune(m)
	}
	return b.String()
}

// syntaxErr turns a decoder error into an *InputError naming the field.
func syntaxErr(file string, err error) error {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		return &InputError{File: file, Field: string(se.JSONPointer), Err: fmt.Errorf("%w: %v", ErrMalformed, se.Err)}
	}
	var me *json.SemanticError
	if errors.As(err, &me) {
		msg := "cannot decode"
		if me.Err != nil {
			msg = me.Err.Error()
		} else if me.JSONKind != 0 && me.GoType != nil {
			msg = fmt.Sprintf("JSON %s where %s was expected", me.JSONKind, goTypeName(me.GoType.String()))
		}
		return &InputError{File: file, Field: string(me.JSONPointer), Err: fmt.Errorf("%w: %s", ErrMalformed, msg)}
	}
	if errors.Is(err, strictjson.ErrTooLarge) {
		return &InputError{File: file, Err: fmt.Errorf("%w: %v", ErrTooLarge, err)}
	}
	return &InputError{File: file, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
}

func goTypeName(t string) string {
	switch {
	case t == "string":
		return "a string"
	case t == "bool" || t == "*bool":
		return "a boolean"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a number"
	}
	return "an object"
}

// decodeStrict decodes data into v rejecting unknown members: for formats whose
// every member can change who holds which permission (IAM policy documents,
// grants, GCP IAM policies).
func decodeStrict(file string, data []byte, v any, maxBytes int) error {
	if err := strictjson.Unmarshal(data, v, maxBytes); err != nil {
		return syntaxErr(file, err)
	}
	return nil
}

// decodeOpen decodes data into v ignoring members v does not declare: for
// describe-key style metadata that providers extend often and that grants
// nothing. Duplicate and case-variant names are still rejected (by scan, which
// callers run first, and by the decoder).
func decodeOpen(file string, data []byte, v any) error {
	err := json.Unmarshal(data, v,
		json.RejectUnknownMembers(false),
		json.MatchCaseInsensitiveNames(false),
		jsontext.AllowDuplicateNames(false),
		jsontext.AllowInvalidUTF8(false),
	)
	if err != nil {
		return syntaxErr(file, err)
	}
	return nil
}

// canonical returns the RFC 8785 (JSON Canonicalization Scheme) form of v.
// The JCS implementation is go-json-experiment's jsontext.Value.Canonicalize,
// the prototype of Go's encoding/json/v2: members sorted by UTF-16 code units,
// strings in their minimal escaping, numbers in ECMAScript form, no
// whitespace. Duplicate names and invalid UTF-8 are errors.
func canonical(file, field string, v jsontext.Value) ([]byte, error) {
	c := v.Clone()
	if err := c.Canonicalize(); err != nil {
		return nil, inputErr(file, field, ErrMalformed, "cannot canonicalise (RFC 8785): %v", err)
	}
	return c, nil
}

// sha256Hex is the lowercase hex SHA-256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// stringList reads a JSON string or array of strings (IAM's "string or list"
// forms), bounded and checked by checkName.
func stringList(file string, field string, v jsontext.Value) ([]string, error) {
	switch v.Kind() {
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, syntaxErr(file, err)
		}
		if err := checkName(file, field, s); err != nil {
			return nil, err
		}
		return []string{s}, nil
	case '[':
		var raw []jsontext.Value
		if err := json.Unmarshal(v, &raw); err != nil {
			return nil, syntaxErr(file, err)
		}
		if len(raw) == 0 {
			return nil, inputErr(file, field, ErrMalformed, "empty list")
		}
		if len(raw) > MaxListItems {
			return nil, inputErr(file, field, ErrTooLarge, "%d items, limit %d", len(raw), MaxListItems)
		}
		out := make([]string, 0, len(raw))
		for i, r := range raw {
			f := field + "/" + strconv.Itoa(i)
			if r.Kind() != '"' {
				return nil, inputErr(file, f, ErrMalformed, "want a string, have JSON %s", r.Kind())
			}
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return nil, syntaxErr(file, err)
			}
			if err := checkName(file, f, s); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, inputErr(file, field, ErrMalformed, "want a string or a list of strings, have JSON %s", kindName(v))
}

func kindName(v jsontext.Value) string {
	if len(v) == 0 {
		return "nothing"
	}
	return v.Kind().String()
}

// checkName checks a principal, action, resource, role or member name: not
// empty, bounded, printable, without whitespace (so that the permission and
// principal strings of a binding stay unambiguous, see Permission).
func checkName(file, field, s string) error {
	if s == "" {
		return inputErr(file, field, ErrMalformed, "empty string")
	}
	if len(s) > MaxStringBytes {
		return inputErr(file, field, ErrTooLarge, "%d bytes, limit %d", len(s), MaxStringBytes)
	}
	if !utf8.ValidString(s) {
		return inputErr(file, field, ErrMalformed, "invalid UTF-8")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return inputErr(file, field, ErrMalformed, "%q holds whitespace or a control character", s)
		}
	}
	return nil
}
