package kmspolicy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
)

// Request says which key a snapshot is about and when its policy was read.
type Request struct {
	// Key is the statement's subject: the key's stable ID and the SHA-256 of
	// its DER SubjectPublicKeyInfo (see KeyRefFromAWSPublicKey and
	// KeyRefFromPEM). If ID is an AWS key ARN ("arn:...") it must be the
	// described key's; if it is a Cloud KMS name ("projects/...") it must be
	// the described CryptoKey or one of its versions. Any other ID (a
	// deployment's own naming) is taken as given.
	Key evidence.KeyRef
	// Time is when the operator exported the files: the time the snapshot
	// says the policy was in force. Required.
	Time time.Time
	// Previous is the last snapshot of the same key, from VerifyPrevious, or
	// nil for the first one. The snapshot then records what changed.
	Previous *Previous
}

// Previous is an authenticated earlier snapshot of a key (VerifyPrevious).
type Previous struct {
	// Snapshot is its predicate.
	Snapshot *evidence.KeyPolicySnapshot
	// EnvelopeSHA256 is the hex SHA-256 of its DSSE envelope's exact bytes,
	// which names the record it came from.
	EnvelopeSHA256 string
}

// Snapshot is the collector's output for one key: the signed predicate (with
// its denies, conditions, location and the diff from the previous snapshot),
// and beside it the full normalised policy it was made from.
type Snapshot struct {
	// Key is the subject.
	Key evidence.KeyRef `json:"key"`
	// Predicate is what Sign signs. Its Bindings hold allow entries only,
	// its Denies the deny entries, its Diff the change from Request.Previous.
	Predicate *evidence.KeyPolicySnapshot `json:"predicate"`
	// Policy is the full normalised policy the predicate was made from.
	Policy *Policy `json:"policy"`
}

// Diff is what changed between two snapshots of a key's bindings.
type Diff = evidence.PolicyDiff

// CollectAWS parses an AWS export and builds the key's snapshot.
func CollectAWS(x AWSExport, req Request) (*Snapshot, error) {
	p, err := ParseAWS(x)
	if err != nil {
		return nil, err
	}
	return NewSnapshot(p, req)
}

// CollectGCP parses a Cloud KMS export and builds the key's snapshot.
func CollectGCP(x GCPExport, req Request) (*Snapshot, error) {
	p, err := ParseGCP(x)
	if err != nil {
		return nil, err
	}
	return NewSnapshot(p, req)
}

// NewSnapshot builds the snapshot of p for req.Key at req.Time, and the diff
// from req.Previous.
func NewSnapshot(p *Policy, req Request) (*Snapshot, error) {
	if err := req.Key.Validate(); err != nil {
		return nil, fmt.Errorf("kmspolicy: request key: %w", err)
	}
	if err := keyMatches(req.Key.ID, p); err != nil {
		return nil, err
	}
	if req.Time.IsZero() {
		return nil, errors.New("kmspolicy: request time is required")
	}
	pred := &evidence.KeyPolicySnapshot{
		At:       evidence.AtTime(req.Time),
		Provider: p.Provider,
		Resource: evidence.PolicyResource{
			Name: p.Resource.Name, Partition: p.Resource.Partition, Region: p.Resource.Region,
			ReplicaRegions: p.Resource.ReplicaRegions, Location: p.Resource.Location,
		},
		Bindings:        p.Bindings(EffectAllow),
		CanonicalSHA256: p.CanonicalSHA256,
		GrantsSHA256:    p.GrantsSHA256,
	}
	if denies := p.Bindings(EffectDeny); len(denies) > 0 {
		pred.Denies = denies
	}
	for _, c := range p.Conditions {
		pred.Conditions = append(pred.Conditions, evidence.PolicyCondition{Digest: c.Digest, JSON: c.JSON})
	}
	s := &Snapshot{Key: req.Key, Predicate: pred, Policy: p}
	if req.Previous != nil {
		prev := req.Previous.Snapshot
		if prev == nil {
			return nil, errors.New("kmspolicy: request previous without a snapshot")
		}
		if prev.Provider != p.Provider {
			return nil, fmt.Errorf("kmspolicy: %w: previous snapshot is of provider %q, this one %q", ErrMismatch, prev.Provider, p.Provider)
		}
		prevTime, err := evidence.ParseTime(prev.Time)
		if err != nil {
			return nil, fmt.Errorf("kmspolicy: previous snapshot: %w", err)
		}
		if !prevTime.Before(req.Time) {
			return nil, fmt.Errorf("kmspolicy: %w: previous snapshot (%s) is not older than this one (%s)", ErrMismatch, prev.Time, pred.Time)
		}
		pred.Diff = DiffBindings(prev, pred)
		pred.Diff.PreviousEnvelopeSHA256 = req.Previous.EnvelopeSHA256
	}
	return s, nil
}

// keyMatches checks a subject ID that names a provider resource against the
// described key.
func keyMatches(id string, p *Policy) error {
	switch {
	case strings.HasPrefix(id, "arn:"):
		if p.Provider != ProviderAWS || id != p.Resource.Name {
			return fmt.Errorf("kmspolicy: %w: subject %q is not the described key %s", ErrMismatch, id, p.Resource.Name)
		}
	case strings.HasPrefix(id, "projects/"):
		rest, ok := strings.CutPrefix(id, p.Resource.Name)
		if p.Provider != ProviderGCP || !ok || (rest != "" && !versionSuffixPattern.MatchString(rest)) {
			return fmt.Errorf("kmspolicy: %w: subject %q is neither the described key %s nor one of its versions", ErrMismatch, id, p.Resource.Name)
		}
	}
	return nil
}

// DiffBindings compares the bindings of two snapshots of one key.
func DiffBindings(prev, cur *evidence.KeyPolicySnapshot) *Diff {
	before, after := permissionSets(prev.Bindings), permissionSets(cur.Bindings)
	d := &Diff{
		PreviousTime:            prev.Time,
		PreviousCanonicalSHA256: prev.CanonicalSHA256,
		PolicyChanged:           prev.CanonicalSHA256 != cur.CanonicalSHA256,
		AddedPrincipals:         []string{},
		RemovedPrincipals:       []string{},
		Added:                   minus(after, before),
		Removed:                 minus(before, after),
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			d.AddedPrincipals = append(d.AddedPrincipals, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			d.RemovedPrincipals = append(d.RemovedPrincipals, p)
		}
	}
	slices.Sort(d.AddedPrincipals)
	slices.Sort(d.RemovedPrincipals)
	return d
}

func permissionSets(bs []evidence.Binding) map[string]map[string]bool {
	m := map[string]map[string]bool{}
	for _, b := range bs {
		if m[b.Principal] == nil {
			m[b.Principal] = map[string]bool{}
		}
		for _, p := range b.Permissions {
			m[b.Principal][p] = true
		}
	}
	return m
}

// minus returns, per principal, the permissions of a not in b, sorted.
func minus(a, b map[string]map[string]bool) []evidence.Binding {
	out := []evidence.Binding{}
	for principal, perms := range a {
		var diff []string
		for p := range perms {
			if !b[principal][p] {
				diff = append(diff, p)
			}
		}
		if len(diff) > 0 {
			slices.Sort(diff)
			out = append(out, evidence.Binding{Principal: principal, Permissions: diff})
		}
	}
	slices.SortFunc(out, func(x, y evidence.Binding) int { return strings.Compare(x.Principal, y.Principal) })
	return out
}

// Statement returns the in-toto statement of the snapshot: subject Key,
// predicate Predicate.
func (s *Snapshot) Statement() (*evidence.Statement, error) {
	st, err := evidence.NewStatement(s.Predicate, s.Key)
	if err != nil {
		return nil, fmt.Errorf("kmspolicy: %w", err)
	}
	payload, err := strictjson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("kmspolicy: %w", err)
	}
	if len(payload) > evidence.MaxRecordBytes {
		return nil, fmt.Errorf("kmspolicy: %w: the statement for %s is %d bytes (%d bindings), over the record limit of %d",
			ErrTooLarge, s.Key.ID, len(payload), len(s.Predicate.Bindings), evidence.MaxRecordBytes)
	}
	return st, nil
}

// Sign signs the snapshot's statement as a DSSE envelope.
func (s *Snapshot) Sign(ctx context.Context, signers ...*evidence.Signer) ([]byte, error) {
	st, err := s.Statement()
	if err != nil {
		return nil, err
	}
	return evidence.SignStatement(ctx, st, signers...)
}

// VerifyPrevious authenticates a previously signed snapshot envelope under
// keys, then parses it, and checks that it is a key-policy snapshot of key
// (same ID, same public key digest). Only then is it returned, for
// Request.Previous.
func VerifyPrevious(envelope []byte, keys evidence.KeySet, key evidence.KeyRef) (*Previous, error) {
	env, err := evidence.ParseEnvelope(envelope, evidence.MaxRecordBytes)
	if err != nil {
		return nil, fmt.Errorf("kmspolicy: previous snapshot: %w", err)
	}
	if _, err := env.Verify(evidence.PayloadType, keys); err != nil {
		return nil, fmt.Errorf("kmspolicy: previous snapshot: %w", err)
	}
	st, pred, err := evidence.ParseStatement(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("kmspolicy: previous snapshot: %w", err)
	}
	snap, ok := pred.(*evidence.KeyPolicySnapshot)
	if !ok {
		return nil, fmt.Errorf("kmspolicy: %w: previous snapshot has predicate type %s", ErrMismatch, st.PredicateType)
	}
	got := st.Keys()
	if len(got) != 1 || got[0] != key {
		return nil, fmt.Errorf("kmspolicy: %w: previous snapshot is about %v, not %s (%s)", ErrMismatch, got, key.ID, key.SPKISHA256)
	}
	return &Previous{Snapshot: snap, EnvelopeSHA256: sha256Hex(envelope)}, nil
}
