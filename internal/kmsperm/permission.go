package kmsperm

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Permission is one string of a binding's permissions, parsed. Its grammar:
//
//	permission = pattern [ " except " pattern *( " " pattern ) ] [ " if " digest ]
//	digest     = "sha256:" 64 lowercase hex digits
//
// Pattern is an AWS action or action pattern as the policy wrote it ("kms:Sign",
// "kms:Get*", "*"), a GCP permission ("cloudkms.cryptoKeyVersions.GCPUseToSign"),
// or "role:" followed by a GCP role this package cannot expand. "except" lists
// the patterns an IAM NotAction statement excludes: "* except kms:Decrypt"
// holds every action but kms:Decrypt. "if" marks a permission that holds only
// under a condition (an IAM Condition block, a grant's constraints, a GCP IAM
// condition, a grant's scope); the digest is the SHA-256 of the condition's RFC
// 8785 form, listed with the condition itself in Policy.Conditions.
//
// No name contains a space (the parsers reject whitespace in names), so the
// grammar is unambiguous; the except list is sorted and without repeats, so
// each permission has one spelling.
type Permission struct {
	// Pattern is what is granted.
	Pattern string
	// Except lists what is excluded from Pattern (NotAction), sorted.
	Except []string
	// Condition is "sha256:HEX" when the permission holds only under a
	// condition, or "".
	Condition string
}

// RolePrefix marks a GCP role whose permissions this package does not know.

// String returns the permission in the grammar above.
func (p Permission) String() string {
	var b strings.Builder
	b.WriteString(p.Pattern)
	if len(p.Except) > 0 {
		b.WriteString(" except ")
		b.WriteString(strings.Join(p.Except, " "))
	}
	if p.Condition != "" {
		b.WriteString(" if ")
		b.WriteString(p.Condition)
	}
	return b.String()
}

// ErrPermissionSyntax reports a permission or principal string outside the
// grammar of Permission.
var ErrPermissionSyntax = errors.New("permission syntax")

// ParsePermission parses s. It accepts exactly the strings String produces.
func ParsePermission(s string) (Permission, error) {
	fields := strings.Split(s, " ")
	bad := func(why string) (Permission, error) {
		return Permission{}, fmt.Errorf("%w: %q: %s", ErrPermissionSyntax, s, why)
	}
	for _, f := range fields {
		if f == "" {
			return bad("empty field (doubled, leading or trailing space)")
		}
	}
	p := Permission{Pattern: fields[0]}
	if p.Pattern == "except" || p.Pattern == "if" {
		return bad("no pattern")
	}
	rest := fields[1:]
	if len(rest) > 0 && rest[0] == "except" {
		rest = rest[1:]
		for len(rest) > 0 && rest[0] != "if" {
			if rest[0] == "except" {
				return bad(`"except" twice`)
			}
			p.Except = append(p.Except, rest[0])
			rest = rest[1:]
		}
		if len(p.Except) == 0 {
			return bad(`"except" with nothing after it`)
		}
		if !sortedUnique(p.Except) {
			return bad("except list not sorted or repeats an item")
		}
	}
	if len(rest) > 0 {
		if rest[0] != "if" || len(rest) != 2 {
			return bad(`want "if sha256:HEX" at the end`)
		}
		if !isDigestRef(rest[1]) {
			return bad("condition is not sha256: and 64 lowercase hex digits")
		}
		p.Condition = rest[1]
	}
	return p, nil
}

func sortedUnique(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func isDigestRef(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Opaque reports whether the permission names a role whose permissions are
// unknown: it may grant anything.
func (p Permission) Opaque() bool { return strings.HasPrefix(p.Pattern, RolePrefix) }

// Grants reports whether p, its condition aside, covers action: Pattern
// matches it and no Except pattern does. Matching follows IAM: "*" matches any
// run of characters, "?" any one, and letters match regardless of case. An
// opaque permission grants nothing here; callers check Opaque.
func (p Permission) Grants(action string) bool {
	if p.Opaque() || !matchPattern(p.Pattern, action) {
		return false
	}
	for _, e := range p.Except {
		if matchPattern(e, action) {
			return false
		}
	}
	return true
}

// matchPattern matches s against an IAM pattern ("*" any run, "?" one
// character), ASCII letters case-insensitively, in O(len(pattern)*len(s)).
func matchPattern(pattern, s string) bool { return Match(pattern, s, true) }

// Match matches s against an IAM pattern: "*" any run, "?" one character,
// ASCII letters compared case-insensitively when fold is set (actions) and
// exactly otherwise (resource ARNs). It runs in O(len(pattern)*len(s)):
// patterns cannot make it backtrack exponentially.
func Match(pattern, s string, fold bool) bool {
	eq := func(a, b byte) bool { return a == b || fold && lower(a) == lower(b) }
	p, t := 0, 0
	star, mark := -1, 0
	for t < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || eq(pattern[p], s[t])):
			p++
			t++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, t
			p++
		case star >= 0:
			p = star + 1
			mark++
			t = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Principal is a binding's principal string, parsed:
//
//	principal = name / "* except " name *( " " name )
//
// A name is typed by a prefix: "AWS:" (an ARN or unique ID), "Service:",
// "Federated:", "CanonicalUser:" for AWS; GCP members as IAM writes them
// ("user:", "serviceAccount:", "group:", "domain:", "principal://", ...); "*"
// is anyone (AWS "*" and {"AWS": "*"}; GCP "allUsers" stays as written). "*
// except" is an IAM NotPrincipal: everyone but the names listed.
type Principal struct {
	// Name is the principal, "*" when Except is set.
	Name string
	// Except lists who is excluded (NotPrincipal), sorted.
	Except []string
}

// String returns the principal in the grammar above.
func (p Principal) String() string {
	if len(p.Except) == 0 {
		return p.Name
	}
	return p.Name + " except " + strings.Join(p.Except, " ")
}

// ParsePrincipal parses s. It accepts exactly the strings String produces.
func ParsePrincipal(s string) (Principal, error) {
	fields := strings.Split(s, " ")
	for _, f := range fields {
		if f == "" {
			return Principal{}, fmt.Errorf("%w: principal %q: empty field", ErrPermissionSyntax, s)
		}
	}
	if len(fields) == 1 {
		if s == "except" {
			return Principal{}, fmt.Errorf("%w: principal %q", ErrPermissionSyntax, s)
		}
		return Principal{Name: s}, nil
	}
	if fields[0] != "*" || fields[1] != "except" || len(fields) < 3 {
		return Principal{}, fmt.Errorf(`%w: principal %q: want a name or "* except NAME..."`, ErrPermissionSyntax, s)
	}
	p := Principal{Name: "*", Except: slices.Clone(fields[2:])}
	if !sortedUnique(p.Except) || slices.Contains(p.Except, "except") {
		return Principal{}, fmt.Errorf("%w: principal %q: except list not sorted or repeats a name", ErrPermissionSyntax, s)
	}
	return p, nil
}
