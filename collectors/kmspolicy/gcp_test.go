package kmspolicy

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const gcpKeyName = "projects/custody-prod-eu/locations/europe-west3/keyRings/custody/cryptoKeys/hot-signer"

func gcpExportOf(describe, policy string) GCPExport {
	if describe == "" {
		describe = `{"name":"` + gcpKeyName + `","purpose":"ASYMMETRIC_SIGN","versionTemplate":{"algorithm":"EC_SIGN_SECP256K1_SHA256","protectionLevel":"HSM"}}`
	}
	return GCPExport{
		Describe:  File{Name: "describe.json", Data: []byte(describe)},
		IAMPolicy: File{Name: "get-iam-policy.json", Data: []byte(policy)},
	}
}

func TestGCPNormalisation(t *testing.T) {
	cond := `{"expression":"request.time < timestamp(\"2026-03-08T00:00:00Z\")","title":"bg"}`
	condRef := "sha256:" + sha256Hex([]byte(cond))
	p, err := ParseGCP(gcpExportOf("", `{"version":3,"etag":"BwX=","bindings":[
		{"role":"roles/cloudkms.signer","members":["serviceAccount:s@p.iam.gserviceaccount.com","allUsers"]},
		{"role":"roles/cloudkms.admin","members":["user:a@example.com"],"condition":{"title":"bg","expression":"request.time < timestamp(\"2026-03-08T00:00:00Z\")"}},
		{"role":"organizations/123/roles/keyRotator","members":["group:g@example.com"]},
		{"role":"roles/iam.securityAdmin","members":["group:g@example.com"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := entries(t, p)
	for _, want := range []string{
		"allow serviceAccount:s@p.iam.gserviceaccount.com | cloudkms.cryptoKeyVersions.useToSign",
		"allow allUsers | cloudkms.cryptoKeyVersions.useToSign",
		"allow user:a@example.com | cloudkms.cryptoKeys.setIamPolicy if " + condRef,
		"allow group:g@example.com | role:organizations/123/roles/keyRotator",
		"allow group:g@example.com | role:roles/iam.securityAdmin",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("missing entry %q in\n%s", want, strings.Join(got, "\n"))
		}
	}
	for _, e := range got {
		if strings.HasPrefix(e, "allow user:a@example.com") && !strings.HasSuffix(e, condRef) {
			t.Errorf("conditional binding lost its condition: %s", e)
		}
	}
	want := Resource{Name: gcpKeyName, Project: "custody-prod-eu", Location: "europe-west3", KeyRing: "custody", CryptoKey: "hot-signer",
		Purpose: "ASYMMETRIC_SIGN", Algorithm: "EC_SIGN_SECP256K1_SHA256", ProtectionLevel: "HSM"}
	if diff := cmp.Diff(want, p.Resource); diff != "" {
		t.Errorf("resource (-want +got):\n%s", diff)
	}
}

func TestGCPEmptyPolicy(t *testing.T) {
	p, err := ParseGCP(gcpExportOf("", `{"etag":"ACAB"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 0 || p.CanonicalSHA256 != sha256Hex([]byte(`{"etag":"ACAB"}`)) {
		t.Fatalf("entries %v, digest %s", p.Entries, p.CanonicalSHA256)
	}
}

func TestGCPRejects(t *testing.T) {
	tests := []struct {
		name, describe, policy string
		want                   error
		wantField              string
	}{
		{name: "duplicate role", policy: `{"bindings":[{"role":"roles/cloudkms.viewer","role":"roles/owner","members":["user:a@x"]}]}`, want: ErrMalformed, wantField: "/bindings/0/role"},
		{name: "case-variant members", policy: `{"bindings":[{"role":"roles/owner","members":["user:a@x"],"Members":["user:b@x"]}]}`, want: ErrMalformed, wantField: "/bindings/0/Members"},
		{name: "unknown binding member", policy: `{"bindings":[{"role":"roles/owner","members":["user:a@x"],"exclude":["user:b@x"]}]}`, want: ErrMalformed, wantField: "/bindings/0/exclude"},
		{name: "unknown policy member", policy: `{"bindings":[],"rules":[]}`, want: ErrMalformed},
		{name: "unknown condition member", policy: `{"version":3,"bindings":[{"role":"roles/owner","members":["user:a@x"],"condition":{"expression":"true","negate":true}}]}`, want: ErrMalformed},
		{name: "condition without expression", policy: `{"version":3,"bindings":[{"role":"roles/owner","members":["user:a@x"],"condition":{"title":"t"}}]}`, want: ErrMalformed},
		{name: "condition in a version 1 policy", policy: `{"version":1,"bindings":[{"role":"roles/owner","members":["user:a@x"],"condition":{"expression":"true"}}]}`, want: ErrMismatch, wantField: "/version"},
		{name: "condition hidden by version 1", policy: `{"version":1,"bindings":[{"role":"roles/cloudkms.signer_withcond_2d1b3c4a","members":["user:a@x"]}]}`, want: ErrIncomplete, wantField: "/bindings/0/role"},
		{name: "unknown version", policy: `{"version":2,"bindings":[]}`, want: ErrUnsupported},
		{name: "unknown member form", policy: `{"bindings":[{"role":"roles/owner","members":["users:a@x"]}]}`, want: ErrUnsupported, wantField: "/bindings/0/members/0"},
		{name: "member with a space", policy: `{"bindings":[{"role":"roles/owner","members":["user:a@x except"]}]}`, want: ErrMalformed},
		{name: "no members", policy: `{"bindings":[{"role":"roles/owner","members":[]}]}`, want: ErrMalformed},
		{name: "bad role", policy: `{"bindings":[{"role":"owner","members":["user:a@x"]}]}`, want: ErrMalformed},
		{name: "too many bindings", policy: `{"bindings":[` + strings.Repeat(`{},`, MaxBindings) + `{}]}`, want: ErrTooLarge},
		{name: "bad key name", describe: `{"name":"projects/p/keyRings/r/cryptoKeys/k"}`, policy: `{}`, want: ErrMalformed, wantField: "/name"},
		{name: "duplicate name in describe", describe: `{"name":"x","name":"` + gcpKeyName + `"}`, policy: `{}`, want: ErrMalformed},
		{name: "primary of another key", describe: `{"name":"` + gcpKeyName + `","primary":{"name":"` + gcpKeyName + `2/cryptoKeyVersions/1"}}`, policy: `{}`, want: ErrMismatch, wantField: "/primary/name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseGCP(gcpExportOf(tt.describe, tt.policy))
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseGCP: %v, want %v", err, tt.want)
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("%v is not an *InputError", err)
			}
			if tt.wantField != "" && ie.Field != tt.wantField {
				t.Errorf("field %q, want %q (%v)", ie.Field, tt.wantField, err)
			}
		})
	}
}

// The role table is sorted, without repeats, and holds only Cloud KMS
// permission names; the roles the separation-of-duties check depends on grant
// what Google's reference says.
func TestGCPRoleTable(t *testing.T) {
	perm := regexp.MustCompile(`^cloudkms\.(cryptoKeys|cryptoKeyVersions|importJobs)\.[a-zA-Z]+$`)
	for role, perms := range gcpRoles {
		if !predefinedRolePattern.MatchString(role) {
			t.Errorf("%s: not a predefined role name", role)
		}
		if !slices.IsSorted(perms) || len(slices.Compact(slices.Clone(perms))) != len(perms) {
			t.Errorf("%s: permissions not sorted and unique: %v", role, perms)
		}
		for _, p := range perms {
			if !perm.MatchString(p) {
				t.Errorf("%s: %q is not a Cloud KMS key permission", role, p)
			}
		}
	}
	if perms, known := RolePermissions("roles/cloudkms.signer"); !known || len(perms) != 1 {
		t.Fatalf("RolePermissions(signer) = %v, %v", perms, known)
	} else {
		perms[0] = "changed"
		if again, _ := RolePermissions("roles/cloudkms.signer"); again[0] != useToSign {
			t.Fatal("RolePermissions returns the table itself")
		}
	}
	if _, known := RolePermissions("projects/p/roles/custom"); known {
		t.Error("custom role reported as known")
	}
	holds := func(role, p string) bool { return slices.Contains(gcpRoles[role], p) }
	for _, c := range []struct {
		role, perm string
		want       bool
	}{
		{"roles/cloudkms.admin", keysSetIAM, true},
		{"roles/cloudkms.admin", useToSign, false},
		{"roles/cloudkms.signer", useToSign, true},
		{"roles/cloudkms.signerVerifier", useToSign, true},
		{"roles/cloudkms.cryptoOperator", useToSign, true},
		{"roles/cloudkms.cryptoOperator", keysSetIAM, false},
		{"roles/cloudkms.publicKeyViewer", useToSign, false},
		{"roles/cloudkms.viewer", keysSetIAM, false},
		{"roles/cloudkms.cryptoKeyEncrypterDecrypter", useToSign, false},
		{"roles/owner", keysSetIAM, true},
		{"roles/owner", useToSign, true},
		{"roles/editor", keysSetIAM, false},
		{"roles/editor", useToSign, true},
		{"roles/viewer", useToSign, false},
	} {
		if got := holds(c.role, c.perm); got != c.want {
			t.Errorf("%s holds %s = %v, want %v", c.role, c.perm, got, c.want)
		}
	}
}

func TestGCPSampleBindings(t *testing.T) {
	p, err := ParseGCP(gcpExport(t))
	if err != nil {
		t.Fatal(err)
	}
	var signers []string
	for _, b := range p.Bindings(EffectAllow) {
		if slices.Contains(b.Permissions, useToSign) {
			signers = append(signers, b.Principal)
		}
	}
	want := []string{"serviceAccount:hot-signer@custody-prod-eu.iam.gserviceaccount.com", "user:oncall-lead@custody.example"}
	if diff := cmp.Diff(want, signers); diff != "" {
		t.Errorf("signers (-want +got):\n%s", diff)
	}
	if d := p.Bindings(EffectDeny); len(d) != 0 {
		t.Errorf("GCP allow policies have no denies, got %v", d)
	}
}
