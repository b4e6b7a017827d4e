package kmspolicy

import (
	"errors"
	"strings"
	"testing"
)

func TestPermissionRoundTrip(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	good := []Permission{
		{Pattern: "kms:Sign"},
		{Pattern: "kms:*", Condition: digest},
		{Pattern: "*", Except: []string{"kms:CreateGrant", "kms:PutKeyPolicy"}},
		{Pattern: "*", Except: []string{"kms:Put*"}, Condition: digest},
		{Pattern: "cloudkms.cryptoKeyVersions.useToSign"},
		{Pattern: "role:projects/p/roles/custom"},
	}
	for _, p := range good {
		s := p.String()
		got, err := ParsePermission(s)
		if err != nil {
			t.Errorf("ParsePermission(%q): %v", s, err)
			continue
		}
		if got.String() != s {
			t.Errorf("round trip %q -> %q", s, got.String())
		}
	}
	bad := []string{
		"", " ", "kms:Sign ", " kms:Sign", "kms:Sign  if " + digest, "except", "if",
		"kms:Sign if", "kms:Sign if sha256:00", "kms:Sign if sha256:" + strings.Repeat("AB", 32),
		"kms:Sign if " + digest + " extra", "* except", "* except if " + digest,
		"* except b a", "* except a a", "* except a except b", "kms:Sign maybe", "kms:Sign if md5:" + strings.Repeat("0", 32),
	}
	for _, s := range bad {
		if _, err := ParsePermission(s); !errors.Is(err, ErrPermissionSyntax) {
			t.Errorf("ParsePermission(%q) = %v, want ErrPermissionSyntax", s, err)
		}
	}
}

func TestPermissionGrants(t *testing.T) {
	tests := []struct {
		perm, action string
		want         bool
	}{
		{"kms:Sign", "kms:Sign", true},
		{"kms:sign", "kms:Sign", true}, // IAM matches actions case-insensitively
		{"kms:Sign", "kms:SignX", false},
		{"kms:*", "kms:PutKeyPolicy", true},
		{"kms:*", "s3:GetObject", false},
		{"*", "kms:Sign", true},
		{"kms:Put*", "kms:PutKeyPolicy", true},
		{"kms:Put*", "kms:ReplicateKey", false},
		{"kms:?ign", "kms:Sign", true},
		{"kms:*Key*", "kms:ReplicateKey", true},
		{"* except kms:Sign", "kms:Sign", false},
		{"* except kms:Sign", "kms:PutKeyPolicy", true},
		{"* except kms:P*", "kms:PutKeyPolicy", false},
		{"kms:Sign if sha256:" + strings.Repeat("0", 64), "kms:Sign", true}, // the condition aside
		{"role:roles/iam.securityAdmin", "kms:Sign", false},
		{"cloudkms.cryptoKeyVersions.useToSign", "cloudkms.cryptoKeyVersions.useToSign", true},
	}
	for _, tt := range tests {
		p, err := ParsePermission(tt.perm)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Grants(tt.action); got != tt.want {
			t.Errorf("%q grants %q = %v, want %v", tt.perm, tt.action, got, tt.want)
		}
	}
}

func TestMatchPatternIsLinear(t *testing.T) {
	// A pattern built to make naive backtracking exponential.
	pattern := strings.Repeat("*a", 200) + "b"
	s := strings.Repeat("a", 2000)
	if (Permission{Pattern: pattern}).Grants(s) || matchARN(pattern, s) {
		t.Fatal("matched")
	}
}

func TestParsePrincipal(t *testing.T) {
	for _, s := range []string{"*", "AWS:arn:aws:iam::1:root", "user:a@example.com", "* except AWS:a AWS:b"} {
		p, err := ParsePrincipal(s)
		if err != nil || p.String() != s {
			t.Errorf("ParsePrincipal(%q) = %+v, %v", s, p, err)
		}
	}
	for _, s := range []string{"", "a b", "* except", "* except b a", "x except a", "* except a a", "except", "* except a "} {
		if _, err := ParsePrincipal(s); !errors.Is(err, ErrPermissionSyntax) {
			t.Errorf("ParsePrincipal(%q) = %v, want ErrPermissionSyntax", s, err)
		}
	}
}
