package kmspolicy

import (
	"cmp"
	"slices"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/kmsperm"
)

// Providers, as evidence.KeyPolicySnapshot.Provider names them.
const (
	ProviderAWS = kmsperm.ProviderAWS
	ProviderGCP = kmsperm.ProviderGCP
)

// Effects of an Entry.
const (
	EffectAllow = "allow"
	EffectDeny  = "deny"
)

// Policy is the normalised access policy of one key: who may do what, where
// each permission came from, and the digests that tie it to the raw documents.
// ParseAWS and ParseGCP build it from the operator's exports.
type Policy struct {
	// Provider is ProviderAWS or ProviderGCP.
	Provider string `json:"provider"`
	// Resource names and locates the key.
	Resource Resource `json:"resource"`
	// Entries are the normalised rows, one per principal, permission and
	// source, sorted by effect, principal, permission, source.
	Entries []Entry `json:"entries"`
	// Conditions holds every condition a permission refers to by digest.
	Conditions []Condition `json:"conditions,omitempty"`
	// Skipped lists policy statements that do not apply to this key (their
	// Resource or NotResource excludes it), so nothing is dropped unseen.
	Skipped []Skipped `json:"skipped,omitempty"`
	// CanonicalSHA256 is the hex SHA-256 of the RFC 8785 form of the raw
	// policy document: for AWS the key policy (the document inside
	// get-key-policy's "Policy" string), for GCP the get-iam-policy output.
	CanonicalSHA256 string `json:"canonicalSha256"`
	// GrantsSHA256 (AWS only) is the hex SHA-256 of the RFC 8785 form of
	// {"Grants": [...]}, the list-grants entries sorted by GrantId.
	GrantsSHA256 string `json:"grantsSha256,omitempty"`
}

// Entry is one normalised permission of one principal.
type Entry struct {
	// Effect is EffectAllow or EffectDeny. A deny never appears among a
	// snapshot's bindings; it is kept here and in the predicate's Denies.
	Effect string `json:"effect"`
	// Principal is in the grammar of Principal.
	Principal string `json:"principal"`
	// Permission is in the grammar of Permission.
	Permission string `json:"permission"`
	// Source says where it came from: `statement 2 "AllowUse"`, `grant
	// 0c23… "settlement"`, `binding 1 roles/cloudkms.signer`.
	Source string `json:"source"`
}

// Condition is one condition, by the digest permissions refer to it by.
type Condition struct {
	// Digest is "sha256:" and the hex SHA-256 of JSON.
	Digest string `json:"digest"`
	// JSON is the condition: an IAM Condition block, a grant's Constraints, a
	// GCP IAM condition (expression, title, description), or a grant scope
	// {"GrantId": ...} for a retiring principal. Digest covers its RFC 8785
	// form, which is how it is stored (an indenting encoder may re-space it).
	JSON jsontext.Value `json:"json"`
}

// Skipped is a policy statement left out because it does not apply to the key.
type Skipped struct {
	Source string `json:"source"`
	Reason string `json:"reason"`
}

// Resource names and locates a key. Residency checks read Partition, Region
// and ReplicaRegions (AWS) or Location (GCP).
type Resource struct {
	// Name is the key's ARN (AWS) or CryptoKey resource name (GCP).
	Name string `json:"name"`

	// AWS: the parts of the key ARN (see ParseKeyARN) and what describe-key says.
	Partition string `json:"partition,omitempty"`
	Region    string `json:"region,omitempty"`
	Account   string `json:"account,omitempty"`
	KeyID     string `json:"keyId,omitempty"`
	// ReplicaRegions lists the other regions holding the same key material (a
	// multi-region key's primary and replicas, describe-key's
	// MultiRegionConfiguration), sorted, without Region.
	ReplicaRegions []string `json:"replicaRegions,omitempty"`
	KeySpec        string   `json:"keySpec,omitempty"`
	KeyUsage       string   `json:"keyUsage,omitempty"`
	KeyState       string   `json:"keyState,omitempty"`
	KeyManager     string   `json:"keyManager,omitempty"`
	Origin         string   `json:"origin,omitempty"`

	// GCP: the parts of the CryptoKey name and what describe says.
	Project         string `json:"project,omitempty"`
	Location        string `json:"location,omitempty"`
	KeyRing         string `json:"keyRing,omitempty"`
	CryptoKey       string `json:"cryptoKey,omitempty"`
	Purpose         string `json:"purpose,omitempty"`
	Algorithm       string `json:"algorithm,omitempty"`
	ProtectionLevel string `json:"protectionLevel,omitempty"`
	PrimaryVersion  string `json:"primaryVersion,omitempty"`
}

// builder collects entries and conditions while a parser walks a document.
type builder struct {
	entries    []Entry
	conditions map[string]jsontext.Value
	skipped    []Skipped
}

// reserve checks that n more entries stay within MaxEntries.
func (b *builder) reserve(file, field string, n int) error {
	if n > MaxEntries-len(b.entries) {
		return inputErr(file, field, ErrTooLarge, "over %d permission entries for one key", MaxEntries)
	}
	return nil
}

func (b *builder) add(effect, principal string, perm Permission, source string) {
	b.entries = append(b.entries, Entry{Effect: effect, Principal: principal, Permission: perm.String(), Source: source})
}

// condition records a canonical condition and returns its digest reference.
func (b *builder) condition(canon []byte) string {
	ref := "sha256:" + sha256Hex(canon)
	if b.conditions == nil {
		b.conditions = map[string]jsontext.Value{}
	}
	b.conditions[ref] = jsontext.Value(canon)
	return ref
}

func (b *builder) finish(p *Policy) {
	slices.SortFunc(b.entries, func(x, y Entry) int {
		return cmp.Or(cmp.Compare(x.Effect, y.Effect), cmp.Compare(x.Principal, y.Principal),
			cmp.Compare(x.Permission, y.Permission), cmp.Compare(x.Source, y.Source))
	})
	p.Entries = slices.Compact(b.entries)
	for ref, c := range b.conditions {
		p.Conditions = append(p.Conditions, Condition{Digest: ref, JSON: c})
	}
	slices.SortFunc(p.Conditions, func(x, y Condition) int { return cmp.Compare(x.Digest, y.Digest) })
	p.Skipped = b.skipped
}

// Bindings returns the entries of one effect as evidence bindings: one per
// principal, sorted by principal, each with its permissions sorted and without
// repeats.
func (p *Policy) Bindings(effect string) []evidence.Binding {
	byPrincipal := map[string][]string{}
	for _, e := range p.Entries {
		if e.Effect == effect {
			byPrincipal[e.Principal] = append(byPrincipal[e.Principal], e.Permission)
		}
	}
	out := make([]evidence.Binding, 0, len(byPrincipal))
	for principal, perms := range byPrincipal {
		slices.Sort(perms)
		out = append(out, evidence.Binding{Principal: principal, Permissions: slices.Compact(perms)})
	}
	slices.SortFunc(out, func(x, y evidence.Binding) int { return cmp.Compare(x.Principal, y.Principal) })
	return out
}
