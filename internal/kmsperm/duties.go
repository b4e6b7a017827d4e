package kmsperm

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/keytrail/keytrail/evidence"
)

// The actions AdminSigners looks for, by provider (see there).
var duties = map[string]struct{ admin, sign []string }{
	ProviderAWS: {admin: []string{"kms:PutKeyPolicy", "kms:CreateGrant", "kms:ReplicateKey"}, sign: []string{"kms:Sign"}},
	ProviderGCP: {admin: []string{GCPSetIAMPolicy}, sign: []string{GCPUseToSign}},
}

// Duties is the answer to "does any principal both administer the key's
// access and sign with the key?".
type Duties struct {
	// Conflicts lists the principals that do both, sorted by principal.
	Conflicts []Conflict `json:"conflicts"`
	// Undetermined lists principals holding opaque permissions (roles whose
	// permissions are unknown), which may or may not make them conflicts. A
	// verifier should fail closed on them.
	Undetermined []evidence.Binding `json:"undetermined"`
}

// Conflict is one principal that both administers and signs.
type Conflict struct {
	Principal string `json:"principal"`
	// Administers and Signs are the permissions through which it does each.
	Administers []string `json:"administers"`
	Signs       []string `json:"signs"`
	// Conditional is true when every way to administer, or every way to sign,
	// holds only under a condition: the conflict needs the condition to hold.
	Conditional bool `json:"conditional"`
}

// AdminSigners answers the separation-of-duties question for a snapshot of
// provider (ProviderAWS or ProviderGCP): which principals both administer the
// key's access and sign with it. allow is the snapshot's bindings, deny its
// denies, both in the grammar of Principal and Permission. It is pure and
// depends only on the evidence types, so a verifier can call it (or take a
// copy) on a verified predicate; it does not modify its arguments.
//
// A principal administers the key's access when a permission of its binding
// grants, on AWS, kms:PutKeyPolicy (it rewrites who may do what),
// kms:CreateGrant (it can grant anyone, itself included, kms:Sign) or
// kms:ReplicateKey (it can copy a multi-region key's material into a new key
// whose policy it writes); on GCP, cloudkms.cryptoKeys.setIamPolicy. It signs
// when a permission grants kms:Sign, or cloudkms.cryptoKeyVersions.GCPUseToSign.
// Wildcards and "except" lists are read as Permission.Grants reads them. The
// GCP predefined roles were expanded by the collector (roles/cloudkms.admin
// administers; signer, signerVerifier and cryptoOperator sign; roles/owner does
// both); a principal with an opaque role is reported as undetermined.
//
// A conditional permission counts: a condition narrows when, not who. A deny
// removes an action from a principal only when it is unconditional and
// certainly covers the principal (the same principal, "*", or "* except" a
// list that does not name it); any other deny is left to the reader. "*" and
// "* except ..." are principals like any other: if everyone may administer
// and sign, "*" is a conflict.
//
// An unknown provider, or an unparseable permission or principal, is an
// error, never a pass.
func AdminSigners(provider string, allow, deny []evidence.Binding) (Duties, error) {
	actions, ok := duties[provider]
	if !ok {
		return Duties{}, fmt.Errorf("%w: provider %q", ErrUnsupported, provider)
	}
	type denyRule struct {
		who   Principal
		perms []Permission
	}
	var denies []denyRule
	for _, b := range deny {
		who, err := ParsePrincipal(b.Principal)
		if err != nil {
			return Duties{}, err
		}
		r := denyRule{who: who}
		for _, s := range b.Permissions {
			p, err := ParsePermission(s)
			if err != nil {
				return Duties{}, fmt.Errorf("deny of %s: %w", b.Principal, err)
			}
			if p.Condition == "" {
				r.perms = append(r.perms, p)
			}
		}
		denies = append(denies, r)
	}
	denied := func(principal Principal, action string) bool {
		for _, d := range denies {
			covers := d.who.String() == principal.String() ||
				d.who.Name == "*" && len(d.who.Except) == 0 ||
				d.who.Name == "*" && len(principal.Except) == 0 && principal.Name != "*" && !slices.Contains(d.who.Except, principal.Name)
			if covers && slices.ContainsFunc(d.perms, func(p Permission) bool { return p.Grants(action) }) {
				return true
			}
		}
		return false
	}

	// One principal may appear in several bindings; judge its permissions
	// together.
	merged := map[string][]string{}
	for _, b := range allow {
		merged[b.Principal] = append(merged[b.Principal], b.Permissions...)
	}
	out := Duties{Conflicts: []Conflict{}, Undetermined: []evidence.Binding{}}
	for principal, perms := range merged {
		who, err := ParsePrincipal(principal)
		if err != nil {
			return Duties{}, err
		}
		slices.Sort(perms)
		var admin, sign, opaque []string
		adminUncond, signUncond := false, false
		for _, s := range slices.Compact(perms) {
			p, err := ParsePermission(s)
			if err != nil {
				return Duties{}, fmt.Errorf("binding of %s: %w", principal, err)
			}
			if p.Opaque() {
				opaque = append(opaque, s)
				continue
			}
			if slices.ContainsFunc(actions.admin, func(a string) bool { return p.Grants(a) && !denied(who, a) }) {
				admin = append(admin, s)
				adminUncond = adminUncond || p.Condition == ""
			}
			if slices.ContainsFunc(actions.sign, func(a string) bool { return p.Grants(a) && !denied(who, a) }) {
				sign = append(sign, s)
				signUncond = signUncond || p.Condition == ""
			}
		}
		if len(admin) > 0 && len(sign) > 0 {
			out.Conflicts = append(out.Conflicts, Conflict{
				Principal: principal, Administers: admin, Signs: sign,
				Conditional: !adminUncond || !signUncond,
			})
		} else if len(opaque) > 0 {
			out.Undetermined = append(out.Undetermined, evidence.Binding{Principal: principal, Permissions: opaque})
		}
	}
	slices.SortFunc(out.Conflicts, func(x, y Conflict) int { return cmp.Compare(x.Principal, y.Principal) })
	slices.SortFunc(out.Undetermined, func(x, y evidence.Binding) int { return cmp.Compare(x.Principal, y.Principal) })
	return out, nil
}
