package kmspolicy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
)

// Each parser is fuzzed (ATTACKS.md 30): it must return a policy or an
// *InputError, never panic or hang, and what it accepts must not be
// malleable: the canonical form of an accepted document parses to the same
// policy.
//
//	go test ./collectors/kmspolicy -run '^$' -fuzz '^FuzzKeyPolicy$' -fuzztime 20s -fuzzminimizetime 1x
//
// (-fuzzminimizetime 1x: minimising a new input of a few KiB against these
// parsers otherwise takes most of a short run.)

func seed(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(testdataDir, p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func wantInputError(t *testing.T, err error) {
	t.Helper()
	var ie *InputError
	if err != nil && !errors.As(err, &ie) {
		t.Fatalf("error %v is not an *InputError", err)
	}
}

func canonicalOf(t *testing.T, b []byte) []byte {
	t.Helper()
	c := jsontext.Value(bytes.Clone(b))
	if err := c.Canonicalize(); err != nil {
		t.Fatalf("accepted input does not canonicalise: %v", err)
	}
	return c
}

func FuzzKeyPolicy(f *testing.F) {
	seed(f, "aws/hot-1-eusc/get-key-policy.json", "aws/hot-1-eusc/previous/get-key-policy.json", "aws/treasury-mrk/key-policy.json")
	f.Add([]byte(stmt(`{"Effect":"Allow","NotPrincipal":{"AWS":["1","arn:a"]},"NotAction":"kms:*","NotResource":"*","Condition":{"Bool":{"k":["a",1,true]}}}`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		x := export(string(data), noGrants)
		p, err := ParseAWS(x)
		wantInputError(t, err)
		if err != nil {
			return
		}
		for _, e := range p.Entries {
			if _, err := ParsePermission(e.Permission); err != nil {
				t.Fatalf("emitted permission: %v", err)
			}
			if _, err := ParsePrincipal(e.Principal); err != nil {
				t.Fatalf("emitted principal: %v", err)
			}
		}
		// The bare canonical document gives the same policy (when the input
		// was the bare document; a wrapper's canonical form is a wrapper).
		x.KeyPolicy.Data = canonicalOf(t, data)
		q, err := ParseAWS(x)
		if err != nil {
			t.Fatalf("canonical form rejected: %v", err)
		}
		if diff := cmp.Diff(p, q); diff != "" {
			t.Fatalf("canonical form parses differently:\n%s", diff)
		}
	})
}

func FuzzDescribeKey(f *testing.F) {
	seed(f, "aws/hot-1-eusc/describe-key.json", "aws/treasury-mrk/describe-key.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		res, arn, err := parseDescribeKey(File{Name: "d", Data: data})
		wantInputError(t, err)
		if err == nil && (res.Name != arn.String() || res.Region != arn.Region || res.Partition != arn.Partition) {
			t.Fatalf("resource %+v disagrees with ARN %+v", res, arn)
		}
	})
}

func FuzzListGrants(f *testing.F) {
	seed(f, "aws/hot-1-eusc/list-grants.json")
	f.Add([]byte(`{"Grants":[{"KeyId":"` + testARN + `","GrantId":"g","GranteePrincipal":"1","RetiringPrincipal":"s.amazonaws.com","Operations":["Sign"],"Constraints":{"EncryptionContextEquals":{"a":"b"}}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		x := export(stmt(), string(data))
		p, err := ParseAWS(x)
		wantInputError(t, err)
		if err != nil {
			return
		}
		x.Grants.Data = canonicalOf(t, data)
		q, err := ParseAWS(x)
		if err != nil {
			t.Fatalf("canonical form rejected: %v", err)
		}
		if diff := cmp.Diff(p, q); diff != "" {
			t.Fatalf("canonical form parses differently:\n%s", diff)
		}
	})
}

func FuzzIAMPolicy(f *testing.F) {
	seed(f, "gcp/hot-signer/get-iam-policy.json")
	f.Add([]byte(`{"version":1,"bindings":[{"role":"roles/x_withcond_1","members":["deleted:user:a@b?uid=1"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		x := gcpExportOf("", string(data))
		p, err := ParseGCP(x)
		wantInputError(t, err)
		if err != nil {
			return
		}
		x.IAMPolicy.Data = canonicalOf(t, data)
		q, err := ParseGCP(x)
		if err != nil {
			t.Fatalf("canonical form rejected: %v", err)
		}
		if diff := cmp.Diff(p, q); diff != "" {
			t.Fatalf("canonical form parses differently:\n%s", diff)
		}
	})
}

func FuzzGCPDescribe(f *testing.F) {
	seed(f, "gcp/hot-signer/describe.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parseGCPDescribe(File{Name: "d", Data: data})
		wantInputError(t, err)
	})
}

func FuzzPublicKey(f *testing.F) {
	seed(f, "aws/hot-1-eusc/get-public-key.json", "gcp/hot-signer/public-key.pem")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := KeyRefFromAWSPublicKey(File{Name: "k", Data: data})
		wantInputError(t, err)
		_, err = KeyRefFromPEM(gcpVersion, File{Name: "k", Data: data})
		wantInputError(t, err)
	})
}

// Permission and principal strings have one spelling: whatever parses prints
// back unchanged.
func FuzzPermission(f *testing.F) {
	for _, s := range []string{"kms:Sign", "* except a b if sha256:" + string(bytes.Repeat([]byte("0"), 64)), "role:roles/x", "* except AWS:a AWS:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParsePermission(s); err == nil {
			if p.String() != s {
				t.Fatalf("ParsePermission(%q).String() = %q", s, p.String())
			}
			_ = p.Grants("kms:Sign")
		}
		if p, err := ParsePrincipal(s); err == nil && p.String() != s {
			t.Fatalf("ParsePrincipal(%q).String() = %q", s, p.String())
		}
	})
}
