package verify

import (
	"slices"
	"testing"

	"github.com/keytrail/keytrail/evidence"
)

// TestParsePolicyAuthority: the authority section's defaults, which a listed
// event type replaces, and its validation (TestAttack37_UnknownEventAuthority
// has the errors).
func TestParsePolicyAuthority(t *testing.T) {
	const head = "version: 1\nrotation: {approverRoles: [custody-officer, security-officer]}\n"
	p, err := ParsePolicy([]byte(head))
	if err != nil {
		t.Fatal(err)
	}
	system := []string{RoleRotationSystem}
	want := map[string][]string{
		evidence.EventRequest:           {RoleKeyEngineer},
		evidence.EventApprove:           {"custody-officer", "security-officer"},
		evidence.EventCreate:            system,
		evidence.EventSmokeTest:         system,
		evidence.EventPromote:           system,
		evidence.EventDisable:           system,
		evidence.EventScheduleDeletion:  system,
		evidence.EventDestroy:           system,
		evidence.EventRollback:          system,
		evidence.EventBreakGlass:        nil, // no breakGlass section: nobody
		evidence.EventBreakGlassConfirm: nil,
		evidence.EventEnable:            {RoleProviderLog},
		evidence.EventCancelDeletion:    {RoleProviderLog},
		evidence.EventPolicyChange:      {RoleProviderLog},
		evidence.EventGrant:             {RoleProviderLog},
		evidence.EventRotateMaterial:    {RoleProviderLog},
		AuthoritySource:                 {RoleProviderLog},
	}
	for _, typ := range append(slices.Clone(evidence.LifecycleEvents), AuthoritySource) {
		w, ok := want[typ]
		if !ok {
			t.Errorf("%s: the test gives no default: add it", typ)
			continue
		}
		if got := p.authorityRoles(typ); !slices.Equal(got, w) {
			t.Errorf("default authority of %s = %v, want %v", typ, got, w)
		}
	}

	p, err = ParsePolicy([]byte(head + `breakGlass: {quorum: 2, roles: [custody-officer]}
authority:
  request: [key-engineer, custody-officer]
  promote: []
  source: [cloudtrail-importer]
`))
	if err != nil {
		t.Fatal(err)
	}
	for typ, w := range map[string][]string{
		evidence.EventRequest:           {RoleKeyEngineer, "custody-officer"},
		evidence.EventPromote:           {},
		AuthoritySource:                 {"cloudtrail-importer"},
		evidence.EventBreakGlass:        {"custody-officer"},
		evidence.EventBreakGlassConfirm: {"custody-officer"},
		evidence.EventCreate:            system, // not listed: its default
	} {
		if got := p.authorityRoles(typ); !slices.Equal(got, w) {
			t.Errorf("authority of %s = %v, want %v", typ, got, w)
		}
	}

	// A Verifier keeps its own copy: the caller changing its Policy after New
	// changes nothing.
	v, err := New(&Trust{}, p)
	if err != nil {
		t.Fatal(err)
	}
	p.Authority[evidence.EventRequest][0] = "anyone"
	p.Authority[evidence.EventCreate] = []string{"anyone"}
	if got := v.policy.authorityRoles(evidence.EventRequest); got[0] != RoleKeyEngineer {
		t.Errorf("the verifier's request authority changed with the caller's policy: %v", got)
	}
	if got := v.policy.authorityRoles(evidence.EventCreate); !slices.Equal(got, system) {
		t.Errorf("the verifier's create authority changed with the caller's policy: %v", got)
	}
}
