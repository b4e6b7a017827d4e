package kmspolicy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keytrail/keytrail/evidence"
)

const (
	testARN      = "arn:aws-eusc:kms:eusc-de-east-1:210987654321:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93"
	testDescribe = `{"KeyMetadata":{"AWSAccountId":"210987654321","KeyId":"7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93",` +
		`"Arn":"` + testARN + `","KeyUsage":"SIGN_VERIFY","KeySpec":"ECC_SECG_P256K1","MultiRegion":false}}`
	noGrants = `{"Grants":[]}`
)

// export builds an AWS export around a bare policy document.
func export(policy, grants string) AWSExport {
	return AWSExport{
		DescribeKey: File{Name: "describe-key.json", Data: []byte(testDescribe)},
		KeyPolicy:   File{Name: "key-policy.json", Data: []byte(policy)},
		Grants:      File{Name: "list-grants.json", Data: []byte(grants)},
	}
}

// stmt wraps statements into a policy document.
func stmt(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

func entries(t *testing.T, p *Policy) []string {
	t.Helper()
	var out []string
	for _, e := range p.Entries {
		out = append(out, e.Effect+" "+e.Principal+" | "+e.Permission)
	}
	return out
}

func TestAWSNormalisation(t *testing.T) {
	const role = `arn:aws-eusc:iam::210987654321:role/custody-signer`
	const cond = `{"Bool":{"aws:MultiFactorAuthPresent":"true"}}`
	condRef := "sha256:" + sha256Hex([]byte(cond))
	tests := []struct {
		name   string
		policy string
		grants string
		want   []string
	}{
		{
			name:   "action spelling: service lower case, KMS actions in API spelling, wildcards kept",
			policy: stmt(`{"Effect":"Allow","Principal":{"AWS":"` + role + `"},"Action":["KMS:sign","kms:Get*","kms:SIGN","s3:GetObject","*"],"Resource":"*"}`),
			want: []string{
				"allow AWS:" + role + " | *", "allow AWS:" + role + " | kms:Get*",
				"allow AWS:" + role + " | kms:Sign", "allow AWS:" + role + " | s3:GetObject",
			},
		},
		{
			name:   "principal forms",
			policy: stmt(`{"Effect":"Allow","Principal":{"AWS":["210987654321","*"],"Service":"logs.amazonaws.com","Federated":"cognito-identity.amazonaws.com"},"Action":"kms:Verify","Resource":"*"}`),
			want: []string{
				"allow * | kms:Verify",
				"allow AWS:arn:aws-eusc:iam::210987654321:root | kms:Verify",
				"allow Federated:cognito-identity.amazonaws.com | kms:Verify",
				"allow Service:logs.amazonaws.com | kms:Verify",
			},
		},
		{
			name:   "principal star string",
			policy: stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:Verify","Resource":"*"}`),
			want:   []string{"allow * | kms:Verify"},
		},
		{
			name:   "single statement object, no Version",
			policy: `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:GetPublicKey","Resource":"*"}}`,
			want:   []string{"allow * | kms:GetPublicKey"},
		},
		{
			name:   "deny is never an allow",
			policy: stmt(`{"Effect":"Deny","Principal":{"AWS":"` + role + `"},"Action":"kms:Sign","Resource":"*"}`),
			want:   []string{"deny AWS:" + role + " | kms:Sign"},
		},
		{
			name:   "NotAction becomes * except, sorted",
			policy: stmt(`{"Effect":"Allow","Principal":{"AWS":"` + role + `"},"NotAction":["kms:ScheduleKeyDeletion","kms:putkeypolicy"],"Resource":"*"}`),
			want:   []string{"allow AWS:" + role + " | * except kms:PutKeyPolicy kms:ScheduleKeyDeletion"},
		},
		{
			name:   "NotPrincipal becomes * except",
			policy: stmt(`{"Effect":"Deny","NotPrincipal":{"AWS":["` + role + `","210987654321"]},"Action":"kms:PutKeyPolicy","Resource":"*"}`),
			want:   []string{"deny * except AWS:" + role + " AWS:arn:aws-eusc:iam::210987654321:root | kms:PutKeyPolicy"},
		},
		{
			name:   "condition is kept by digest",
			policy: stmt(`{"Effect":"Allow","Principal":{"AWS":"` + role + `"},"Action":"kms:PutKeyPolicy","Resource":"*","Condition":{ "Bool" : { "aws:MultiFactorAuthPresent" : "true" } }}`),
			want:   []string{"allow AWS:" + role + " | kms:PutKeyPolicy if " + condRef},
		},
		{
			name:   "empty condition is no condition",
			policy: stmt(`{"Effect":"Allow","Principal":{"AWS":"` + role + `"},"Action":"kms:Sign","Resource":"*","Condition":{}}`),
			want:   []string{"allow AWS:" + role + " | kms:Sign"},
		},
		{
			name: "resource patterns",
			policy: stmt(
				`{"Effect":"Allow","Principal":"*","Action":"kms:Verify","Resource":"arn:aws-eusc:kms:eusc-de-east-1:210987654321:key/*"}`,
				`{"Effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"arn:aws:kms:*"}`,
				`{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","NotResource":"`+testARN+`"}`,
				`{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","NotResource":"arn:aws:kms:*"}`),
			want: []string{"allow * | kms:Encrypt", "allow * | kms:Verify"},
		},
		{
			name:   "grant: operations, service grantee, retiring principal scoped to the grant, constraints",
			policy: stmt(),
			grants: `{"Grants":[{"KeyId":"` + testARN + `","GrantId":"g1","Name":"n","CreationDate":1767225600.0,` +
				`"GranteePrincipal":"` + role + `","RetiringPrincipal":"210987654321","IssuingAccount":"arn:aws-eusc:iam::210987654321:root",` +
				`"Operations":["Sign","GetPublicKey"],"Constraints":{"EncryptionContextSubset":{"k":"v"}}},` +
				`{"KeyId":"` + testARN + `","GrantId":"g2","GranteePrincipal":"dynamodb.eusc-de-east-1.amazonaws.com","Operations":["Decrypt"]}]}`,
			want: []string{
				"allow AWS:" + role + " | kms:GetPublicKey if sha256:" + sha256Hex([]byte(`{"EncryptionContextSubset":{"k":"v"}}`)),
				"allow AWS:" + role + " | kms:Sign if sha256:" + sha256Hex([]byte(`{"EncryptionContextSubset":{"k":"v"}}`)),
				"allow AWS:arn:aws-eusc:iam::210987654321:root | kms:RetireGrant if sha256:" + sha256Hex([]byte(`{"GrantId":"g1"}`)),
				"allow Service:dynamodb.eusc-de-east-1.amazonaws.com | kms:Decrypt",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			grants := tt.grants
			if grants == "" {
				grants = noGrants
			}
			p, err := ParseAWS(export(tt.policy, grants))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, entries(t, p)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			for _, e := range p.Entries {
				if _, err := ParsePermission(e.Permission); err != nil {
					t.Errorf("entry permission does not parse: %v", err)
				}
				if _, err := ParsePrincipal(e.Principal); err != nil {
					t.Errorf("entry principal does not parse: %v", err)
				}
				if pm, _ := ParsePermission(e.Permission); pm.Condition != "" && !slices.ContainsFunc(p.Conditions, func(c Condition) bool { return c.Digest == pm.Condition }) {
					t.Errorf("condition %s is not listed in Conditions", pm.Condition)
				}
			}
		})
	}
}

func TestAWSDenyNotInBindings(t *testing.T) {
	p, err := ParseAWS(export(stmt(
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws-eusc:iam::210987654321:role/a"},"Action":"kms:Verify","Resource":"*"}`,
		`{"Effect":"Deny","Principal":"*","Action":["kms:Sign","kms:PutKeyPolicy"],"Resource":"*"}`), noGrants))
	if err != nil {
		t.Fatal(err)
	}
	allow, deny := p.Bindings(EffectAllow), p.Bindings(EffectDeny)
	want := []evidence.Binding{{Principal: "AWS:arn:aws-eusc:iam::210987654321:role/a", Permissions: []string{"kms:Verify"}}}
	if diff := cmp.Diff(want, allow); diff != "" {
		t.Errorf("allow bindings (-want +got):\n%s", diff)
	}
	wantDeny := []evidence.Binding{{Principal: "*", Permissions: []string{"kms:PutKeyPolicy", "kms:Sign"}}}
	if diff := cmp.Diff(wantDeny, deny); diff != "" {
		t.Errorf("deny bindings (-want +got):\n%s", diff)
	}
}

func TestAWSSkippedStatementsAreReported(t *testing.T) {
	p, err := ParseAWS(export(stmt(`{"Sid":"Other","Effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"arn:aws:kms:eu-central-1:111122223333:key/x"}`), noGrants))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 0 || len(p.Skipped) != 1 || !strings.Contains(p.Skipped[0].Source, `"Other"`) {
		t.Fatalf("entries %v, skipped %v: want the statement skipped and reported", p.Entries, p.Skipped)
	}
}

// The wrapper get-key-policy prints and the bare document give the same
// snapshot: the digest is over the document, not the file.
func TestAWSWrapperAndBareDocumentAgree(t *testing.T) {
	wrapped := readFile(t, "aws/hot-1-eusc/get-key-policy.json")
	bare, err := ParseAWS(AWSExport{
		DescribeKey: readFile(t, "aws/hot-1-eusc/describe-key.json"),
		KeyPolicy:   File{Name: "bare", Data: []byte(extractPolicy(t, wrapped.Data))},
		Grants:      readFile(t, "aws/hot-1-eusc/list-grants.json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	full, err := ParseAWS(awsExport(t, "aws/hot-1-eusc", "get-key-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(full, bare); diff != "" {
		t.Errorf("wrapped vs bare (-wrapped +bare):\n%s", diff)
	}
}

func extractPolicy(t *testing.T, wrapped []byte) string {
	t.Helper()
	var w awsGetKeyPolicy
	if err := decodeStrict("w", wrapped, &w, MaxFileBytes); err != nil {
		t.Fatal(err)
	}
	return w.Policy
}

func wrap(doc string) string {
	return `{"Policy":` + strconv.Quote(doc) + `,"PolicyName":"default"}`
}

func TestAWSRejects(t *testing.T) {
	const ok = `{"Effect":"Allow","Principal":"*","Action":"kms:Verify","Resource":"*"}`
	okGrant := func(extra string) string {
		return `{"KeyId":"` + testARN + `","GrantId":"g1","GranteePrincipal":"arn:aws-eusc:iam::210987654321:role/r","Operations":["Sign"]` + extra + `}`
	}
	describe := func(arn, account, id string) string {
		return `{"KeyMetadata":{"AWSAccountId":"` + account + `","KeyId":"` + id + `","Arn":"` + arn + `"}}`
	}
	tests := []struct {
		name      string
		describe  string
		policy    string
		grants    string
		want      error
		wantFile  string
		wantField string
	}{
		// ATTACKS.md 16: duplicate and case-variant names, unknown members.
		{name: "duplicate Effect", policy: stmt(`{"Effect":"Deny","Effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"*"}`),
			want: ErrMalformed, wantFile: "key-policy.json", wantField: "/Statement/0/Effect"},
		{name: "case-variant Effect", policy: stmt(`{"Effect":"Deny","effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"*"}`),
			want: ErrMalformed, wantFile: "key-policy.json", wantField: "/Statement/0/effect"},
		{name: "case-variant condition key", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalArn":"a","aws:principalarn":"b"}}}`),
			want: ErrMalformed, wantFile: "key-policy.json", wantField: "/Statement/0/Condition/StringEquals/aws:principalarn"},
		{name: "duplicate inside the Policy string", policy: wrap(stmt(`{"Effect":"Allow","Principal":"*","Principal":{"AWS":"x"},"Action":"kms:Sign","Resource":"*"}`)),
			want: ErrMalformed, wantFile: "key-policy.json (Policy)", wantField: "/Statement/0/Principal"},
		{name: "duplicate in describe-key", describe: `{"KeyMetadata":{"Arn":"x","Arn":"` + testARN + `"}}`, want: ErrMalformed, wantFile: "describe-key.json", wantField: "/KeyMetadata/Arn"},
		{name: "case-variant in describe-key", describe: `{"KeyMetadata":{"arn":"arn:aws:kms:eu-central-1:111122223333:key/mrk-00000000000000000000000000000000","AWSAccountId":"210987654321","KeyId":"7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93","Arn":"` + testARN + `"}}`,
			want: ErrMalformed, wantFile: "describe-key.json", wantField: "/KeyMetadata/Arn"},
		{name: "unknown statement member", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"*","Actions":"kms:*"}`),
			want: ErrMalformed, wantField: "/Statement/0/Actions"},
		{name: "unknown policy member", policy: `{"Version":"2012-10-17","Statement":[],"Statements":[]}`, want: ErrMalformed},
		{name: "wrapper with unknown member", policy: `{"Policy":"{\"Statement\":[]}","PolicyName":"default","Extra":1}`, want: ErrMalformed},
		{name: "wrapper with another policy name", policy: `{"Policy":"{\"Statement\":[]}","PolicyName":"other"}`, want: ErrUnsupported, wantField: "/PolicyName"},
		{name: "unknown grant member", grants: `{"Grants":[` + okGrant(`,"Scope":"all"`) + `]}`, want: ErrMalformed, wantField: "/Grants/0/Scope"},

		// Grammar.
		{name: "lower-case effect", policy: stmt(`{"Effect":"allow","Principal":"*","Action":"kms:Sign","Resource":"*"}`), want: ErrMalformed, wantField: "/Statement/0/Effect"},
		{name: "Action and NotAction", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:Sign","NotAction":"kms:Sign","Resource":"*"}`), want: ErrMalformed, wantField: "/Statement/0"},
		{name: "no action", policy: stmt(`{"Effect":"Allow","Principal":"*","Resource":"*"}`), want: ErrMalformed},
		{name: "no principal", policy: stmt(`{"Effect":"Allow","Action":"kms:Sign","Resource":"*"}`), want: ErrMalformed},
		{name: "no resource", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:Sign"}`), want: ErrMalformed},
		{name: "principal string other than *", policy: stmt(`{"Effect":"Allow","Principal":"arn:aws:iam::1:root","Action":"kms:Sign","Resource":"*"}`), want: ErrMalformed},
		{name: "unknown principal type", policy: stmt(`{"Effect":"Allow","Principal":{"Anyone":"x"},"Action":"kms:Sign","Resource":"*"}`), want: ErrUnsupported, wantField: "/Statement/0/Principal/Anyone"},
		{name: "NotPrincipal *", policy: stmt(`{"Effect":"Deny","NotPrincipal":"*","Action":"kms:Sign","Resource":"*"}`), want: ErrUnsupported},
		{name: "empty action list", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":[],"Resource":"*"}`), want: ErrMalformed, wantField: "/Statement/0/Action"},
		{name: "action with a space", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":["kms:Sign","kms:Sign except"],"Resource":"*"}`), want: ErrMalformed, wantField: "/Statement/0/Action/1"},
		{name: "action without service", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":"Sign","Resource":"*"}`), want: ErrMalformed},
		{name: "principal with whitespace", policy: stmt(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:role/a b"},"Action":"kms:Sign","Resource":"*"}`), want: ErrMalformed, wantField: "/Statement/0/Principal/AWS"},
		{name: "number action", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":7,"Resource":"*"}`), want: ErrMalformed},
		{name: "condition not an object", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"*","Condition":"yes"}`), want: ErrMalformed},
		{name: "condition value an object", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"*","Condition":{"Bool":{"k":{"x":1}}}}`), want: ErrMalformed},
		{name: "statement not an object", policy: `{"Statement":"Allow"}`, want: ErrMalformed, wantField: "/Statement"},
		{name: "repeated Sid", policy: stmt(`{"Sid":"a","Effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"*"}`, `{"Sid":"a","Effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"*"}`), want: ErrMalformed, wantField: "/Statement/1/Sid"},
		{name: "unknown version", policy: `{"Version":"2024-01-01","Statement":[]}`, want: ErrUnsupported, wantField: "/Version"},
		{name: "trailing data", policy: stmt(ok) + ` {}`, want: ErrMalformed},
		{name: "invalid UTF-8", policy: "{\"Id\":\"\xff\",\"Statement\":[]}", want: ErrMalformed},

		// Bounds (ATTACKS.md 29).
		{name: "deep nesting", policy: stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"*","Condition":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`),
			want: ErrTooLarge},
		{name: "huge file", policy: `{"Id":"` + strings.Repeat("a", MaxFileBytes) + `","Statement":[]}`, want: ErrTooLarge},
		{name: "principals times actions", policy: stmt(`{"Effect":"Allow","Principal":{"AWS":[` + numbered(`"arn:aws:iam::1:role/r%d"`, 5000) + `]},"Action":[` + numbered(`"kms:A%d"`, 5000) + `],"Resource":"*"}`),
			want: ErrTooLarge, wantField: "/Statement/0"},
		{name: "too many statements", policy: stmt(slices.Repeat([]string{ok}, MaxStatements+1)...), want: ErrTooLarge},

		// Consistency (ATTACKS.md 17).
		{name: "partition and region disagree", describe: describe("arn:aws-eusc:kms:eu-central-1:210987654321:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93", "210987654321", "7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93"),
			want: ErrMismatch, wantField: "/KeyMetadata/Arn"},
		{name: "unknown partition", describe: describe("arn:aws-mars:kms:mars-1:210987654321:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93", "210987654321", "7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93"),
			want: ErrUnsupported},
		{name: "alias ARN", describe: describe("arn:aws:kms:eu-central-1:210987654321:alias/hot-1", "210987654321", "x"), want: ErrMalformed},
		{name: "account disagrees", describe: describe(testARN, "111122223333", "7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93"), want: ErrMismatch, wantField: "/KeyMetadata/AWSAccountId"},
		{name: "key id disagrees", describe: describe(testARN, "210987654321", "00000000-5b8e-4d1a-9c6f-2e4b8a1d0c93"), want: ErrMismatch},
		{name: "no KeyMetadata", describe: `{}`, want: ErrMalformed, wantField: "/KeyMetadata"},
		{name: "replica of another key", describe: `{"KeyMetadata":{"AWSAccountId":"111122223333","KeyId":"mrk-4c1e8b2f9a3d47e6b05f1c2d3e4a5b6c","Arn":"arn:aws:kms:eu-central-1:111122223333:key/mrk-4c1e8b2f9a3d47e6b05f1c2d3e4a5b6c","MultiRegion":true,` +
			`"MultiRegionConfiguration":{"ReplicaKeys":[{"Arn":"arn:aws:kms:us-east-1:111122223333:key/mrk-00000000000000000000000000000000","Region":"us-east-1"}]}}}`,
			want: ErrMismatch, wantField: "/KeyMetadata/MultiRegionConfiguration/ReplicaKeys/0"},
		{name: "grant for another key", grants: `{"Grants":[{"KeyId":"arn:aws:kms:eu-central-1:111122223333:key/mrk-4c1e8b2f9a3d47e6b05f1c2d3e4a5b6c","GrantId":"g","GranteePrincipal":"arn:aws:iam::1:root","Operations":["Sign"]}]}`,
			want: ErrMismatch, wantFile: "list-grants.json", wantField: "/Grants/0/KeyId"},
		{name: "grant listed twice", grants: `{"Grants":[` + okGrant("") + `,` + okGrant("") + `]}`, want: ErrMalformed, wantField: "/Grants/1/GrantId"},
		{name: "grant without operations", grants: `{"Grants":[{"KeyId":"` + testARN + `","GrantId":"g","GranteePrincipal":"arn:aws:iam::1:root","Operations":[]}]}`, want: ErrMalformed},
		{name: "grant grantee unknown form", grants: `{"Grants":[{"KeyId":"` + testARN + `","GrantId":"g","GranteePrincipal":"someone","Operations":["Sign"]}]}`, want: ErrUnsupported},
		{name: "grant operation with a space", grants: `{"Grants":[{"KeyId":"` + testARN + `","GrantId":"g","GranteePrincipal":"arn:aws:iam::1:root","Operations":["Sign Verify"]}]}`, want: ErrMalformed},

		// Partial listings (the snapshot would miss grants).
		{name: "truncated list-grants", grants: `{"Grants":[],"Truncated":true,"NextMarker":"abc"}`, want: ErrIncomplete, wantField: "/Truncated"},
		{name: "next marker", grants: `{"Grants":[],"NextMarker":"abc"}`, want: ErrIncomplete},
		{name: "next token", grants: `{"Grants":[],"NextToken":"abc"}`, want: ErrIncomplete},
		{name: "no Grants", grants: `{}`, want: ErrMalformed},
		{name: "too many grants", grants: `{"Grants":[` + strings.Repeat(`{},`, MaxGrants) + `{}]}`, want: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := export(stmt(ok), noGrants)
			if tt.describe != "" {
				x.DescribeKey.Data = []byte(tt.describe)
			}
			if tt.policy != "" {
				x.KeyPolicy.Data = []byte(tt.policy)
			}
			if tt.grants != "" {
				x.Grants.Data = []byte(tt.grants)
			}
			_, err := ParseAWS(x)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseAWS: %v, want %v", err, tt.want)
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("%v is not an *InputError", err)
			}
			if tt.wantFile != "" && ie.File != tt.wantFile {
				t.Errorf("file %q, want %q (%v)", ie.File, tt.wantFile, err)
			}
			if tt.wantField != "" && ie.Field != tt.wantField {
				t.Errorf("field %q, want %q (%v)", ie.Field, tt.wantField, err)
			}
		})
	}
}

func TestParseKeyARN(t *testing.T) {
	good := []struct {
		arn  string
		want KeyARN
	}{
		{"arn:aws-eusc:kms:eusc-de-east-1:210987654321:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93",
			KeyARN{Partition: "aws-eusc", Region: "eusc-de-east-1", Account: "210987654321", KeyID: "7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93"}},
		{"arn:aws:kms:eu-central-1:111122223333:key/mrk-4c1e8b2f9a3d47e6b05f1c2d3e4a5b6c",
			KeyARN{Partition: "aws", Region: "eu-central-1", Account: "111122223333", KeyID: "mrk-4c1e8b2f9a3d47e6b05f1c2d3e4a5b6c"}},
		{"arn:aws-cn:kms:cn-north-1:111122223333:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93",
			KeyARN{Partition: "aws-cn", Region: "cn-north-1", Account: "111122223333", KeyID: "7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93"}},
		{"arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93",
			KeyARN{Partition: "aws-us-gov", Region: "us-gov-west-1", Account: "111122223333", KeyID: "7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93"}},
		{"arn:aws-iso-b:kms:us-isob-east-1:111122223333:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93",
			KeyARN{Partition: "aws-iso-b", Region: "us-isob-east-1", Account: "111122223333", KeyID: "7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93"}},
	}
	for _, tt := range good {
		got, err := ParseKeyARN(tt.arn)
		if err != nil {
			t.Errorf("ParseKeyARN(%q): %v", tt.arn, err)
			continue
		}
		if got != tt.want || got.String() != tt.arn {
			t.Errorf("ParseKeyARN(%q) = %+v, want %+v", tt.arn, got, tt.want)
		}
	}
	bad := map[string]error{
		"arn:aws:kms:eusc-de-east-1:210987654321:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93":     ErrMismatch, // eusc region in aws
		"arn:aws-cn:kms:eu-central-1:210987654321:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93":    ErrMismatch,
		"arn:aws-iso:kms:us-isob-east-1:210987654321:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93": ErrMismatch,
		"arn:aws-moon:kms:moon-1:210987654321:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93":        ErrUnsupported,
		"arn:aws:kms:eu-central-1:21098765432:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93":        ErrMalformed,
		"arn:aws:kms:eu-central-1:210987654321:key/7F3C2A10-5B8E-4D1A-9C6F-2E4B8A1D0C93":       ErrMalformed,
		"arn:aws:kms:eu-central-1:210987654321:alias/hot":                                      ErrMalformed,
		"arn:aws:iam::210987654321:root":                                                       ErrMalformed,
		"arn:aws:kms:EU-central-1:210987654321:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93":       ErrMalformed,
		"arn:aws:kms:eu-central-1:210987654321:key/7f3c2a10-5b8e-4d1a-9c6f-2e4b8a1d0c93:x":     ErrMalformed,
	}
	for arn, want := range bad {
		if _, err := ParseKeyARN(arn); !errors.Is(err, want) {
			t.Errorf("ParseKeyARN(%q): %v, want %v", arn, err, want)
		}
	}
}

func TestAWSResourceFromSamples(t *testing.T) {
	p, err := ParseAWS(awsExport(t, "aws/treasury-mrk", "key-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Resource{
		Name:      "arn:aws:kms:eu-central-1:111122223333:key/mrk-4c1e8b2f9a3d47e6b05f1c2d3e4a5b6c",
		Partition: "aws", Region: "eu-central-1", Account: "111122223333", KeyID: "mrk-4c1e8b2f9a3d47e6b05f1c2d3e4a5b6c",
		ReplicaRegions: []string{"eu-west-1", "us-east-1"},
		KeySpec:        "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY", KeyState: "Enabled", KeyManager: "CUSTOMER", Origin: "AWS_KMS",
	}
	if diff := cmp.Diff(want, p.Resource); diff != "" {
		t.Errorf("resource (-want +got):\n%s", diff)
	}
}

// numbered joins n copies of format, each with its index.
func numbered(format string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(format, i)
	}
	return strings.Join(parts, ",")
}
