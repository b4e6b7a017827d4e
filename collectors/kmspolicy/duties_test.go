package kmspolicy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keytrail/keytrail/evidence"
)

func TestAdminSigners(t *testing.T) {
	cond := " if sha256:" + strings.Repeat("c", 64)
	b := func(principal string, perms ...string) evidence.Binding {
		return evidence.Binding{Principal: principal, Permissions: perms}
	}
	tests := []struct {
		name         string
		allow, deny  []evidence.Binding
		conflicts    []string // principal, or principal+"?" when conditional
		undetermined []string
	}{
		{name: "separate admin and signer", allow: []evidence.Binding{b("AWS:admin", "kms:PutKeyPolicy"), b("AWS:signer", "kms:Sign")}},
		{name: "both", allow: []evidence.Binding{b("AWS:ops", "kms:PutKeyPolicy", "kms:Sign")}, conflicts: []string{"AWS:ops"}},
		{name: "both, across two bindings of one principal", allow: []evidence.Binding{b("AWS:ops", "kms:PutKeyPolicy"), b("AWS:ops", "kms:Sign")}, conflicts: []string{"AWS:ops"}},
		{name: "wildcard", allow: []evidence.Binding{b("AWS:root", "kms:*")}, conflicts: []string{"AWS:root"}},
		{name: "star action", allow: []evidence.Binding{b("AWS:x", "*")}, conflicts: []string{"AWS:x"}},
		{name: "CreateGrant administers", allow: []evidence.Binding{b("AWS:x", "kms:CreateGrant", "kms:Sign")}, conflicts: []string{"AWS:x"}},
		{name: "ReplicateKey administers", allow: []evidence.Binding{b("AWS:x", "kms:Replicate*", "kms:Sign")}, conflicts: []string{"AWS:x"}},
		{name: "kms:Put* administers", allow: []evidence.Binding{b("AWS:x", "kms:Put*", "kms:Sign")}, conflicts: []string{"AWS:x"}},
		{name: "NotAction that keeps both", allow: []evidence.Binding{b("AWS:x", "* except kms:PutKeyPolicy")}, conflicts: []string{"AWS:x"}},
		{name: "NotAction that excludes admin", allow: []evidence.Binding{b("AWS:x", "* except kms:CreateGrant kms:PutKeyPolicy kms:ReplicateKey")}},
		{name: "conditional admin", allow: []evidence.Binding{b("AWS:x", "kms:PutKeyPolicy"+cond, "kms:Sign")}, conflicts: []string{"AWS:x?"}},
		{name: "unconditional path wins", allow: []evidence.Binding{b("AWS:x", "kms:PutKeyPolicy"+cond, "kms:PutKeyPolicy", "kms:Sign")}, conflicts: []string{"AWS:x"}},
		{name: "everyone", allow: []evidence.Binding{b("*", "kms:*")}, conflicts: []string{"*"}},
		{name: "NotPrincipal allow", allow: []evidence.Binding{b("* except AWS:a", "kms:*")}, conflicts: []string{"* except AWS:a"}},
		{name: "GCP wildcard is not a GCP permission", allow: []evidence.Binding{b("user:a@x", "kms:*")}},
		{name: "GCP roles expanded", allow: []evidence.Binding{b("user:a@x", keysSetIAM, useToSign), b("user:b@x", useToSign)}, conflicts: []string{"user:a@x"}},
		{name: "unconditional deny of the principal removes", allow: []evidence.Binding{b("AWS:x", "kms:PutKeyPolicy", "kms:Sign")}, deny: []evidence.Binding{b("AWS:x", "kms:Sign")}},
		{name: "deny of everyone removes", allow: []evidence.Binding{b("AWS:x", "kms:*")}, deny: []evidence.Binding{b("*", "kms:PutKeyPolicy", "kms:CreateGrant", "kms:ReplicateKey")}},
		{name: "deny of everyone but the principal does not", allow: []evidence.Binding{b("AWS:x", "kms:*")}, deny: []evidence.Binding{b("* except AWS:x", "kms:Sign")}, conflicts: []string{"AWS:x"}},
		{name: "deny of everyone but another removes", allow: []evidence.Binding{b("AWS:x", "kms:*")}, deny: []evidence.Binding{b("* except AWS:y", "kms:Sign")}},
		{name: "conditional deny does not remove", allow: []evidence.Binding{b("AWS:x", "kms:*")}, deny: []evidence.Binding{b("*", "kms:Sign"+cond)}, conflicts: []string{"AWS:x"}},
		{name: "deny of one principal does not remove from *", allow: []evidence.Binding{b("*", "kms:*")}, deny: []evidence.Binding{b("AWS:x", "kms:Sign")}, conflicts: []string{"*"}},
		{name: "partial deny keeps the other path", allow: []evidence.Binding{b("AWS:x", "kms:*")}, deny: []evidence.Binding{b("AWS:x", "kms:PutKeyPolicy")}, conflicts: []string{"AWS:x"}},
		{name: "opaque role", allow: []evidence.Binding{b("user:a@x", "role:projects/p/roles/custom", useToSign)}, undetermined: []string{"user:a@x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.allow)
			provider := ProviderAWS
			if strings.HasPrefix(tt.allow[0].Principal, "user:") {
				provider = ProviderGCP
			}
			d, err := AdminSigners(provider, tt.allow, tt.deny)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, c := range d.Conflicts {
				s := c.Principal
				if c.Conditional {
					s += "?"
				}
				got = append(got, s)
				if len(c.Administers) == 0 || len(c.Signs) == 0 {
					t.Errorf("conflict %s without evidence: %+v", c.Principal, c)
				}
			}
			if diff := cmp.Diff(append([]string{}, tt.conflicts...), got); diff != "" {
				t.Errorf("conflicts (-want +got):\n%s", diff)
			}
			var und []string
			for _, u := range d.Undetermined {
				und = append(und, u.Principal)
			}
			if diff := cmp.Diff(tt.undetermined, und); diff != "" {
				t.Errorf("undetermined (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(in, tt.allow); diff != "" {
				t.Errorf("input mutated:\n%s", diff)
			}
		})
	}
}

func TestAdminSignersFailsClosed(t *testing.T) {
	if _, err := AdminSigners("azure-kv", nil, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown provider: %v, want ErrUnsupported", err)
	}
	for _, tc := range []struct{ allow, deny []evidence.Binding }{
		{allow: []evidence.Binding{{Principal: "AWS:x", Permissions: []string{"kms:Sign if maybe"}}}},
		{allow: []evidence.Binding{{Principal: "a b", Permissions: []string{"kms:Sign"}}}},
		{deny: []evidence.Binding{{Principal: "*", Permissions: []string{"kms:Sign  "}}}},
	} {
		if _, err := AdminSigners(ProviderAWS, tc.allow, tc.deny); !errors.Is(err, ErrPermissionSyntax) {
			t.Errorf("AdminSigners(%v, %v) = %v, want ErrPermissionSyntax", tc.allow, tc.deny, err)
		}
	}
}
