package verify

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/kmsperm"
)

// TrustedResidency is the trust file's "residency" block: the authorities
// whose residency claims are believed, and where each collector runs.
type TrustedResidency struct {
	// Authorities sign residency claims (evidence.ResidencyClaim). A claim
	// signed by anyone else is not believed.
	Authorities []TrustedSigner `json:"authorities"`
	// Collectors declares where each collector of the trust file runs, by
	// its ID. The residency check fails a record signed by a collector
	// without a declaration, or declared outside the key class's
	// jurisdictions.
	Collectors []CollectorLocation `json:"collectors,omitempty"`
}

// CollectorLocation is where a collector runs.
type CollectorLocation struct {
	// ID is the collector's ID in the trust file.
	ID string `json:"id"`
	// Region is where it runs, e.g. "eu-central-1".
	Region string `json:"region"`
	// Jurisdiction is the legal jurisdiction of Region, e.g. "EU".
	Jurisdiction string `json:"jurisdiction"`
}

type residencyTrust struct {
	collectors map[string]CollectorLocation
}

// addResidency validates the residency block. addKey enforces that a key is
// listed once in the whole trust file, addHolder that an identity is.
func (t *Trust) addResidency(r *TrustedResidency, addKey func(field, id, pemKey string) (*evidence.PublicKey, error), addHolder func(field string, h *Holder) error) error {
	if r == nil {
		return nil
	}
	if len(r.Authorities) == 0 {
		return fmt.Errorf("%w: residency.authorities is empty", ErrTrust)
	}
	seen := map[string]bool{}
	for i, a := range r.Authorities {
		field := fmt.Sprintf("residency.authorities[%d]", i)
		if seen[a.ID] {
			return fmt.Errorf("%w: %s: identity %q is listed twice", ErrTrust, field, a.ID)
		}
		seen[a.ID] = true
		k, err := addKey(field, a.ID, a.PublicKey)
		if err != nil {
			return err
		}
		// An authority signs residency claims and nothing else; its claims
		// are logged records like any other (Holder.May).
		if err := addHolder(field, &Holder{ID: a.ID, Kind: KindAuthority, PredicateTypes: []string{evidence.PredicateResidencyClaim}, Key: k}); err != nil {
			return err
		}
	}
	t.residency.collectors = map[string]CollectorLocation{}
	for i, c := range r.Collectors {
		field := fmt.Sprintf("residency.collectors[%d]", i)
		h := t.byID[c.ID]
		switch {
		case h == nil || h.Kind != KindCollector:
			return fmt.Errorf("%w: %s: %q is not a collector of the trust file", ErrTrust, field, c.ID)
		case c.Region == "" || c.Jurisdiction == "":
			return fmt.Errorf("%w: %s (%s): region and jurisdiction are required", ErrTrust, field, c.ID)
		}
		if _, dup := t.residency.collectors[c.ID]; dup {
			return fmt.Errorf("%w: %s: collector %q is listed twice", ErrTrust, field, c.ID)
		}
		t.residency.collectors[c.ID] = c
	}
	return nil
}

// ErrResidency: a key, HSM, log or collector does not resolve to a
// jurisdiction the key class allows.
var ErrResidency = errors.New("residency")

// claim is an authenticated, logged residency claim.
type claim struct {
	c     *evidence.ResidencyClaim
	by    string
	index uint64 // its entry in the log
}

func (c claim) String() string {
	return fmt.Sprintf("claim by %s at %s (entry %d): %s in %s (%s)", c.by, c.c.Time, c.index, c.c.Subject.Name(), c.c.Region, c.c.Jurisdiction)
}

// claimsOf returns the residency claims among the evidence, by the name of
// what they are about: each a logged record signed by a residency authority
// of the trust file (Holder.May and bind let no one else's count).
func claimsOf(all []verifiedEntry) map[string][]claim {
	out := map[string][]claim{}
	for _, e := range all {
		c, ok := e.pred.(*evidence.ResidencyClaim)
		if !ok || e.signer == nil || e.signer.Kind != KindAuthority {
			continue
		}
		name := c.Subject.Name()
		out[name] = append(out[name], claim{c: c, by: e.signer.ID, index: e.index})
	}
	return out
}

// claimPlaces names the places whose residency the rotation's records
// depend on: the log's, and each place a record about the rotation's keys in
// its window names (evidence.ResidencyPlaces). A bundle must carry every
// logged claim about them.
func claimPlaces(r evidence.Rotation, log logKey, all []verifiedEntry) map[string]bool {
	places := map[string]bool{evidence.ResidencySubject{Kind: evidence.ResidencyLog, Origin: log.origin}.Name(): true}
	for _, e := range all {
		if e.rel.Carried() {
			for _, n := range evidence.ResidencyPlaces(e.pred) {
				places[n] = true
			}
		}
	}
	return places
}

// resolve returns the claim about name in force at t: the latest made at or
// before t. Two claims about the same thing at the same time that disagree
// resolve to nothing (ambiguous, never chosen between).
func resolve(claims map[string][]claim, name string, t time.Time) (claim, error) {
	var best []claim
	for _, c := range claims[name] {
		ct := c.c.RecordTime()
		switch {
		case ct.After(t):
		case len(best) == 0 || ct.After(best[0].c.RecordTime()):
			best = []claim{c}
		case ct.Equal(best[0].c.RecordTime()):
			best = append(best, c)
		}
	}
	switch {
	case len(best) == 0:
		if len(claims[name]) > 0 {
			return claim{}, fmt.Errorf("no residency claim about %s made by %s (the claims are later)", name, evidence.FormatTime(t))
		}
		return claim{}, fmt.Errorf("no residency claim about %s: jurisdiction unknown", name)
	case len(best) > 1:
		for _, c := range best[1:] {
			if c.c.Jurisdiction != best[0].c.Jurisdiction || c.c.Region != best[0].c.Region {
				return claim{}, fmt.Errorf("residency claims about %s disagree: %s; %s", name, best[0], c)
			}
		}
	}
	return best[0], nil
}

// checkResidency resolves every place the rotation's keys live (the HSM of
// each hsm-attestation, the KMS region of each policy snapshot), the HSM of
// each receipt that names one, the log, and each collector that signed a
// record, to a jurisdiction, and fails any that is unknown or not allowed
// for the key class.
func (v *Verifier) checkResidency(r evidence.Rotation, all []verifiedEntry, log logKey, res *Result) {
	class, err := v.keyClass(r)
	if err != nil {
		res.fail(CheckResidency, err)
		return
	}
	if len(class.Jurisdictions) == 0 {
		res.skip(CheckResidency, fmt.Sprintf("the policy gives key class %q no jurisdictions", r.KeyClass))
		return
	}
	allowed := class.Jurisdictions
	_, end, err := r.Window.Bounds()
	if err != nil {
		res.fail(CheckResidency, fmt.Errorf("%w: %w", ErrResidency, err))
		return
	}
	// The claims in force are decided from the log: every logged claim the
	// evidence holds (with a log copy, every claim in it), never files
	// passed beside the bundle (ATTACKS.md 38).
	claims := claimsOf(all)
	var f failures
	var resolved []string
	// check resolves one thing, named in the claims' grammar, for what.
	check := func(what, name string) {
		c, err := resolve(claims, name, end)
		switch {
		case err != nil:
			f.add(fmt.Errorf("%w: %s: %w", ErrResidency, what, err))
		case !slices.Contains(allowed, c.c.Jurisdiction):
			f.add(fmt.Errorf("%w: %s: %s is in jurisdiction %s, key class %s allows only %v (%s)", ErrResidency, what, name, c.c.Jurisdiction, r.KeyClass, allowed, c))
		default:
			resolved = append(resolved, name+" "+c.c.Jurisdiction)
		}
	}
	located := map[evidence.KeyRef]bool{}
	signers := map[string]bool{}
	for _, e := range all {
		if !e.rel.Carried() {
			continue
		}
		if e.signer != nil && e.signer.Kind == KindCollector {
			signers[e.signer.ID] = true
		}
		at := evidence.FormatTime(e.pred.RecordTime())
		switch p := e.pred.(type) {
		case *evidence.HSMAttestation:
			located[e.keys[0]] = true
			check(fmt.Sprintf("key %s, held in HSM %s (hsm-attestation, entry %d at %s)", e.keys[0].ID, p.Token.Serial, e.index, at),
				evidence.ResidencySubject{Kind: evidence.ResidencyHSM, Serial: p.Token.Serial}.Name())
		case *evidence.KeyPolicySnapshot:
			located[e.keys[0]] = true
			if p.Provider == evidence.ProviderAWSKMS {
				arn, err := kmsperm.ParseKeyARN(p.Resource.Name)
				if err == nil && (arn.Partition != p.Resource.Partition || arn.Region != p.Resource.Region) {
					err = fmt.Errorf("its partition and region are %s and %s, the snapshot says %s and %s", arn.Partition, arn.Region, p.Resource.Partition, p.Resource.Region)
				}
				if err != nil {
					f.add(fmt.Errorf("%w: key %s (key-policy snapshot, entry %d at %s): ARN %s: %w", ErrResidency, e.keys[0].ID, e.index, at, p.Resource.Name, err))
					continue
				}
			}
			for _, name := range evidence.ResidencyPlaces(p) {
				check(fmt.Sprintf("key %s at %s (key-policy snapshot, entry %d at %s)", e.keys[0].ID, p.Resource.Name, e.index, at), name)
			}
		case *evidence.SigningReceipt:
			if p.HSMSerial != "" {
				check(fmt.Sprintf("receipt %s by %s, signed in HSM %s (entry %d at %s)", p.RequestID, e.keys[0].ID, p.HSMSerial, e.index, at),
					evidence.ResidencySubject{Kind: evidence.ResidencyHSM, Serial: p.HSMSerial}.Name())
			}
		}
	}
	for _, k := range []evidence.KeyRef{r.OldKey, r.NewKey} {
		if !located[k] {
			f.add(fmt.Errorf("%w: key %s: no hsm-attestation or key-policy snapshot in the bundle says where it is: jurisdiction unknown", ErrResidency, k.ID))
		}
	}
	check("log "+log.origin, evidence.ResidencySubject{Kind: evidence.ResidencyLog, Origin: log.origin}.Name())
	for _, id := range slices.Sorted(maps.Keys(signers)) {
		loc, ok := v.trust.residency.collectors[id]
		switch {
		case !ok:
			f.add(fmt.Errorf("%w: collector %s signed records of the rotation but the trust file declares no region for it", ErrResidency, id))
		case !slices.Contains(allowed, loc.Jurisdiction):
			f.add(fmt.Errorf("%w: collector %s runs in %s (%s), key class %s allows only %v", ErrResidency, id, loc.Region, loc.Jurisdiction, r.KeyClass, allowed))
		default:
			resolved = append(resolved, "collector "+id+" "+loc.Jurisdiction)
		}
	}
	slices.Sort(resolved)
	f.report(res, CheckResidency, fmt.Sprintf("in %v: %s", allowed, strings.Join(slices.Compact(resolved), ", ")))
}
