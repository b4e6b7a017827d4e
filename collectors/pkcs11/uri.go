package pkcs11

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// URI is a PKCS #11 URI (RFC 7512): path attributes that select a token and
// an object, and query attributes that say how to reach them.
//
// Values are held decoded. Attribute names are case-sensitive, as RFC 7512
// §2.3 says; an attribute may appear once.
type URI struct {
	// Path attributes, in the order RFC 7512 lists them.
	Path map[string]string
	// Query attributes.
	Query map[string]string
}

// pathAttrs and queryAttrs are the attributes RFC 7512 defines (and
// "slot-description", "slot-manufacturer", "slot-id" of its §2.3). Other names
// are errors: a misspelt "tokne" must not select every token.
var (
	pathAttrs = []string{"token", "manufacturer", "serial", "model", "library-manufacturer", "library-description",
		"library-version", "object", "type", "id", "slot-description", "slot-manufacturer", "slot-id"}
	queryAttrs = []string{"pin-source", "pin-value", "module-name", "module-path"}
	types      = []string{"public", "private", "cert", "secret-key", "data"}
)

// MaxURIBytes bounds a URI.
const MaxURIBytes = 4096

// ErrURI reports a malformed PKCS #11 URI.
var ErrURI = errors.New("pkcs11: bad URI")

// ParseURI parses s, strictly: the "pkcs11:" scheme, known attribute names
// each at most once, valid percent-encoding, a known type.
func ParseURI(s string) (*URI, error) {
	if len(s) > MaxURIBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrURI, len(s), MaxURIBytes)
	}
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return nil, fmt.Errorf("%w: %q does not start with \"pkcs11:\"", ErrURI, s)
	}
	path, query, _ := strings.Cut(rest, "?")
	u := &URI{Path: map[string]string{}, Query: map[string]string{}}
	if err := parseAttrs(path, ";", pathAttrs, u.Path); err != nil {
		return nil, err
	}
	if err := parseAttrs(query, "&", queryAttrs, u.Query); err != nil {
		return nil, err
	}
	if t, ok := u.Path["type"]; ok && !slices.Contains(types, t) {
		return nil, fmt.Errorf("%w: type %q is not one of %v", ErrURI, t, types)
	}
	if u.Query["pin-source"] != "" && u.Query["pin-value"] != "" {
		return nil, fmt.Errorf("%w: both pin-source and pin-value", ErrURI)
	}
	return u, nil
}

func parseAttrs(s, sep string, known []string, into map[string]string) error {
	if s == "" {
		return nil
	}
	for _, kv := range strings.Split(s, sep) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("%w: attribute %q is not name=value", ErrURI, kv)
		}
		if !slices.Contains(known, k) {
			return fmt.Errorf("%w: unknown attribute %q", ErrURI, k)
		}
		if _, dup := into[k]; dup {
			return fmt.Errorf("%w: attribute %q given twice", ErrURI, k)
		}
		d, err := unescape(v)
		if err != nil {
			return fmt.Errorf("%w: attribute %q: %v", ErrURI, k, err)
		}
		into[k] = d
	}
	return nil
}

// unescape decodes RFC 3986 percent-encoding; anything else outside the
// characters RFC 7512 allows unencoded is an error.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
				return "", fmt.Errorf("bad percent-encoding at %d", i)
			}
			b.WriteByte(byte(unhex(s[i+1])<<4 | unhex(s[i+2])))
			i += 2
		case allowed(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("character %q must be percent-encoded", c)
		}
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// allowed are RFC 3986 unreserved characters and the sub-delimiters RFC 7512
// permits in values (":" "[" "]" "@" "!" "$" "'" "(" ")" "*" "+" "," "/" "|").
func allowed(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("-._~:[]@!$'()*+,/|", c) >= 0
}

// String is the URI in a canonical form: path attributes in RFC 7512's order,
// then query attributes, every byte outside the allowed set percent-encoded.
func (u *URI) String() string {
	var b strings.Builder
	b.WriteString("pkcs11:")
	write := func(names []string, m map[string]string, sep string) {
		first := true
		for _, k := range names {
			v, ok := m[k]
			if !ok {
				continue
			}
			if !first {
				b.WriteString(sep)
			}
			first = false
			b.WriteString(k + "=" + escape(v))
		}
	}
	write(pathAttrs, u.Path, ";")
	if len(u.Query) > 0 {
		b.WriteByte('?')
		write(queryAttrs, u.Query, "&")
	}
	return b.String()
}

func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; allowed(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Redacted is String without pin-value, for records and logs.
func (u *URI) Redacted() string {
	c := &URI{Path: u.Path, Query: map[string]string{}}
	for k, v := range u.Query {
		if k != "pin-value" {
			c.Query[k] = v
		}
	}
	return c.String()
}
