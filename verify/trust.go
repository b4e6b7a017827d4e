package verify

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/strictjson"
)

// MaxTrustBytes bounds a trust file.
const MaxTrustBytes = 4 << 20

// TrustFile is the JSON trust file: the only source of keys the verifier
// trusts. Nothing inside a bundle is ever trusted as a key. See docs/trust-file.md.
type TrustFile struct {
	// Version is 1.
	Version int `json:"version"`
	// Logs are the transparency logs whose checkpoints are trusted.
	Logs []TrustedLog `json:"logs"`
	// Collectors are the systems that sign records, each limited to predicate types.
	Collectors []TrustedCollector `json:"collectors"`
	// Principals are the people who sign lifecycle events (requests, approvals),
	// with their roles.
	Principals []TrustedPrincipal `json:"principals"`
	// BundleSigners are the operators whose signature on a bundle is trusted.
	BundleSigners []TrustedSigner `json:"bundleSigners"`
	// Hardware holds the vendor roots and TPM attestation keys hardware
	// evidence is verified against (verify/hardware.go).
	Hardware *HardwareTrust `json:"hardware,omitempty"`
	// Residency holds who may say where things are (see residency.go).
	Residency *TrustedResidency `json:"residency,omitempty"`
}

// TrustedLog is a log by its checkpoint origin and note verifier key.
type TrustedLog struct {
	// Origin is the checkpoint's first line.
	Origin string `json:"origin"`
	// Key is the signed-note verifier key, e.g. "example.com/log+1234abcd+AbC...".
	Key string `json:"key"`
	// Witnesses are the witnesses whose cosignatures (C2SP tlog-cosignature)
	// count for this log, by their verifier keys.
	Witnesses []TrustedWitness `json:"witnesses,omitempty"`
	// WitnessQuorum is how many distinct witnesses must cosign every
	// checkpoint of this log. 0 (the default) requires none.
	WitnessQuorum int `json:"witnessQuorum,omitzero"`
	// WitnessGroups are further quorums, every one of which a checkpoint
	// must meet (the shape of C2SP/Tessera witness policies: a threshold of
	// a group of witnesses), e.g. "2 of the EU witnesses and 1 of the
	// regulator's".
	WitnessGroups []WitnessGroup `json:"witnessGroups,omitempty"`
}

// TrustedWitness is a checkpoint witness.
type TrustedWitness struct {
	// Key is the witness's cosignature/v1 verifier key ("name+hash+base64").
	Key string `json:"key"`
	// Jurisdiction is where the witness operates, e.g. "EU" (optional):
	// a WitnessGroup may take its members by jurisdiction, and results
	// name it.
	Jurisdiction string `json:"jurisdiction,omitempty"`
}

// WitnessGroup is a threshold of a group of a log's witnesses.
type WitnessGroup struct {
	// Name names the group in results and errors, e.g. "eu".
	Name string `json:"name"`
	// Threshold is how many distinct members must cosign (1 to the
	// number of members).
	Threshold int `json:"threshold"`
	// Members are witnesses of the log by the name in their verifier key.
	Members []string `json:"members,omitempty"`
	// Jurisdiction makes every witness of the log with that jurisdiction
	// a member (with or besides Members).
	Jurisdiction string `json:"jurisdiction,omitempty"`
}

// TrustedCollector is a record-signing system.
type TrustedCollector struct {
	ID string `json:"id"`
	// PublicKey is a PEM "PUBLIC KEY" block.
	PublicKey string `json:"publicKey"`
	// PredicateTypes are the predicate type URIs it may sign.
	PredicateTypes []string `json:"predicateTypes"`
	// Roles are the roles it holds (optional), e.g. rotation-system or
	// provider-log: which lifecycle event types it may sign is the policy's
	// authority section, by role (docs/policy.md). A collector without
	// roles may sign no lifecycle event.
	Roles []string `json:"roles,omitempty"`
}

// TrustedPrincipal is a person.
type TrustedPrincipal struct {
	ID        string   `json:"id"`
	PublicKey string   `json:"publicKey"`
	Roles     []string `json:"roles"`
}

// TrustedSigner is an operator key that signs bundles.
type TrustedSigner struct {
	ID        string `json:"id"`
	PublicKey string `json:"publicKey"`
}

// Holder kinds.
const (
	KindCollector = "collector"
	KindPrincipal = "principal"
	// KindAuthority is a residency authority (TrustedResidency.Authorities):
	// it signs residency claims only.
	KindAuthority = "residency-authority"
)

// Holder is who a trusted key belongs to.
type Holder struct {
	ID   string
	Kind string
	// Roles are the roles the trust file gives the holder (principals and
	// collectors): what lifecycle events it may sign (the policy's authority).
	Roles          []string
	PredicateTypes []string
	Key            *evidence.PublicKey
}

// May reports whether the holder may sign records of predicate type t:
// collectors as enrolled, principals only lifecycle events.
func (h *Holder) May(t string) bool {
	if h.Kind == KindPrincipal {
		return t == evidence.PredicateLifecycleEvent
	}
	return slices.Contains(h.PredicateTypes, t)
}

type logKey struct {
	origin    string
	v         note.Verifier
	witnesses []note.Verifier
	quorum    int
	// jurisdiction of each witness, by its name; groups to meet.
	jurisdiction map[string]string
	groups       []witnessGroup
}

type witnessGroup struct {
	name      string
	threshold int
	members   map[string]bool
}

// open verifies a checkpoint of this log, with its witness quorum and
// groups.
func (l logKey) open(signed []byte) (checkpoint.Checkpoint, error) {
	c, _, err := l.openCosigned(signed)
	return c, err
}

// openCosigned is open, also returning the trusted witnesses that cosigned
// the checkpoint, by name, with their jurisdictions ("w1 (EU)").
func (l logKey) openCosigned(signed []byte) (checkpoint.Checkpoint, []string, error) {
	c, n, err := checkpoint.OpenWitnessed(signed, l.origin, l.v, l.witnesses, l.quorum)
	if err != nil {
		return c, nil, err
	}
	cosigned := map[string]bool{}
	for _, s := range n.Sigs {
		for _, w := range l.witnesses {
			if s.Name == w.Name() && s.Hash == w.KeyHash() {
				cosigned[w.Name()] = true
			}
		}
	}
	for _, g := range l.groups {
		var got []string
		for name := range g.members {
			if cosigned[name] {
				got = append(got, name)
			}
		}
		if len(got) < g.threshold {
			slices.Sort(got)
			return checkpoint.Checkpoint{}, nil, fmt.Errorf("%w: witness group %s: %d of the %d required members cosigned %s (%v)", checkpoint.ErrWitnessQuorum, g.name, len(got), g.threshold, c, got)
		}
	}
	var names []string
	for _, name := range slices.Sorted(maps.Keys(cosigned)) {
		if j := l.jurisdiction[name]; j != "" {
			name += " (" + j + ")"
		}
		names = append(names, name)
	}
	return c, names, nil
}

// Trust is a validated trust file.
type Trust struct {
	logs    []logKey
	records keySet // collectors and principals
	bundles keySet // bundle signers
	byID    map[string]*Holder
	// hardware verifies hardware evidence (verify/hardware.go).
	hardware *hardware
	// residency: see residency.go.
	residency residencyTrust
}

type keySet struct {
	byDigest map[string]*Holder
	keys     []*evidence.PublicKey
}

func (s keySet) Key(d string) *evidence.PublicKey {
	if h := s.byDigest[d]; h != nil {
		return h.Key
	}
	return nil
}

func (s keySet) Keys() []*evidence.PublicKey { return s.keys }

func (s *keySet) add(h *Holder) {
	if s.byDigest == nil {
		s.byDigest = map[string]*Holder{}
	}
	s.byDigest[h.Key.Digest] = h
	s.keys = append(s.keys, h.Key)
}

// ErrTrust reports an unusable trust file.
var ErrTrust = errors.New("trust file")

// ParseTrust decodes and validates a trust file. A key may appear only once in
// the whole file (one key counted under two names could meet a quorum alone), and
// an identity only once.
func ParseTrust(b []byte) (*Trust, error) {
	var f TrustFile
	if err := strictjson.Unmarshal(b, &f, MaxTrustBytes); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrust, err)
	}
	return NewTrust(&f)
}

// NewTrust validates f.
func NewTrust(f *TrustFile) (*Trust, error) {
	if f.Version != 1 {
		return nil, fmt.Errorf("%w: version %d, want 1", ErrTrust, f.Version)
	}
	t := &Trust{byID: map[string]*Holder{}}
	if len(f.Logs) == 0 {
		return nil, fmt.Errorf("%w: logs: no trusted log", ErrTrust)
	}
	for i, l := range f.Logs {
		if l.Origin == "" {
			return nil, fmt.Errorf("%w: logs[%d].origin is empty", ErrTrust, i)
		}
		v, err := note.NewVerifier(l.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: logs[%d].key: %w", ErrTrust, i, err)
		}
		for _, o := range t.logs {
			if o.origin == l.Origin {
				return nil, fmt.Errorf("%w: logs[%d]: origin %q listed twice", ErrTrust, i, l.Origin)
			}
		}
		lk := logKey{origin: l.Origin, v: v, quorum: l.WitnessQuorum}
		// One key under two names would count twice towards a quorum.
		seenKeys := map[string]string{noteKeyMaterial(l.Key): "the log key"}
		for j, w := range l.Witnesses {
			wv, err := fnote.NewVerifierForCosignatureV1(w.Key)
			if err != nil {
				return nil, fmt.Errorf("%w: logs[%d].witnesses[%d].key: %w", ErrTrust, i, j, err)
			}
			km := noteKeyMaterial(w.Key)
			if prev, dup := seenKeys[km]; dup {
				return nil, fmt.Errorf("%w: logs[%d].witnesses[%d]: key of %s is already listed as %s", ErrTrust, i, j, wv.Name(), prev)
			}
			seenKeys[km] = wv.Name()
			lk.witnesses = append(lk.witnesses, wv)
		}
		if l.WitnessQuorum < 0 || l.WitnessQuorum > len(l.Witnesses) {
			return nil, fmt.Errorf("%w: logs[%d].witnessQuorum %d, want 0 to %d (the witnesses listed)", ErrTrust, i, l.WitnessQuorum, len(l.Witnesses))
		}
		if err := lk.addGroups(l, fmt.Sprintf("logs[%d]", i)); err != nil {
			return nil, err
		}
		t.logs = append(t.logs, lk)
	}
	seenKey := map[string]string{}
	addKey := func(field, id, pemKey string) (*evidence.PublicKey, error) {
		if id == "" {
			return nil, fmt.Errorf("%w: %s.id is empty", ErrTrust, field)
		}
		k, err := evidence.ParsePublicKeyPEM([]byte(pemKey))
		if err != nil {
			return nil, fmt.Errorf("%w: %s (%s).publicKey: %w", ErrTrust, field, id, err)
		}
		if prev, ok := seenKey[k.Digest]; ok {
			return nil, fmt.Errorf("%w: %s (%s): key %s is already listed as %s", ErrTrust, field, id, k.Digest, prev)
		}
		seenKey[k.Digest] = id
		return k, nil
	}
	addHolder := func(field string, h *Holder) error {
		if _, dup := t.byID[h.ID]; dup {
			return fmt.Errorf("%w: %s: identity %q is listed twice", ErrTrust, field, h.ID)
		}
		t.byID[h.ID] = h
		t.records.add(h)
		return nil
	}
	for i, c := range f.Collectors {
		field := fmt.Sprintf("collectors[%d]", i)
		k, err := addKey(field, c.ID, c.PublicKey)
		if err != nil {
			return nil, err
		}
		if len(c.PredicateTypes) == 0 {
			return nil, fmt.Errorf("%w: %s (%s): predicateTypes is empty", ErrTrust, field, c.ID)
		}
		for _, p := range c.PredicateTypes {
			if !evidence.KnownPredicateType(p) {
				return nil, fmt.Errorf("%w: %s (%s): unknown predicate type %q", ErrTrust, field, c.ID, p)
			}
			// Where things are is the residency authorities' word alone
			// (residency.authorities), never a collector's.
			if p == evidence.PredicateResidencyClaim {
				return nil, fmt.Errorf("%w: %s (%s): a collector may not sign residency claims; list the signer under residency.authorities", ErrTrust, field, c.ID)
			}
		}
		if err := checkRoles(field, c.ID, c.Roles); err != nil {
			return nil, err
		}
		if err := addHolder(field, &Holder{ID: c.ID, Kind: KindCollector, Roles: slices.Clone(c.Roles), PredicateTypes: slices.Clone(c.PredicateTypes), Key: k}); err != nil {
			return nil, err
		}
	}
	for i, p := range f.Principals {
		field := fmt.Sprintf("principals[%d]", i)
		k, err := addKey(field, p.ID, p.PublicKey)
		if err != nil {
			return nil, err
		}
		if len(p.Roles) == 0 {
			return nil, fmt.Errorf("%w: %s (%s): roles is empty", ErrTrust, field, p.ID)
		}
		if err := checkRoles(field, p.ID, p.Roles); err != nil {
			return nil, err
		}
		if err := addHolder(field, &Holder{ID: p.ID, Kind: KindPrincipal, Roles: slices.Clone(p.Roles), Key: k}); err != nil {
			return nil, err
		}
	}
	if len(f.BundleSigners) == 0 {
		return nil, fmt.Errorf("%w: bundleSigners: no trusted bundle signer", ErrTrust)
	}
	for i, s := range f.BundleSigners {
		field := fmt.Sprintf("bundleSigners[%d]", i)
		k, err := addKey(field, s.ID, s.PublicKey)
		if err != nil {
			return nil, err
		}
		t.bundles.add(&Holder{ID: s.ID, Kind: "bundle-signer", Key: k})
	}
	hw, err := newHardware(f.Hardware)
	if err != nil {
		return nil, err
	}
	t.hardware = hw
	if err := t.addResidency(f.Residency, addKey, addHolder); err != nil {
		return nil, err
	}
	return t, nil
}

// checkRoles rejects a blank role name, or one listed twice.
func checkRoles(field, id string, roles []string) error {
	for i, r := range roles {
		if r == "" || strings.TrimSpace(r) != r {
			return fmt.Errorf("%w: %s (%s): roles[%d] %q is not a role name", ErrTrust, field, id, i, r)
		}
		if slices.Contains(roles[:i], r) {
			return fmt.Errorf("%w: %s (%s): role %q is listed twice", ErrTrust, field, id, r)
		}
	}
	return nil
}

// addGroups validates a log's witness jurisdictions and groups. A group
// names its members by witness name, so names must then be unique.
func (lk *logKey) addGroups(l TrustedLog, field string) error {
	lk.jurisdiction = map[string]string{}
	names := map[string]bool{}
	for j, w := range l.Witnesses {
		name := lk.witnesses[j].Name()
		if names[name] && len(l.WitnessGroups) > 0 {
			return fmt.Errorf("%w: %s.witnesses[%d]: name %s is listed twice; witness groups name their members", ErrTrust, field, j, name)
		}
		names[name] = true
		if w.Jurisdiction != strings.TrimSpace(w.Jurisdiction) {
			return fmt.Errorf("%w: %s.witnesses[%d].jurisdiction %q is not a jurisdiction name", ErrTrust, field, j, w.Jurisdiction)
		}
		lk.jurisdiction[name] = w.Jurisdiction
	}
	seen := map[string]bool{}
	for k, g := range l.WitnessGroups {
		gf := fmt.Sprintf("%s.witnessGroups[%d]", field, k)
		if g.Name == "" || seen[g.Name] {
			return fmt.Errorf("%w: %s: name %q is empty or listed twice", ErrTrust, gf, g.Name)
		}
		seen[g.Name] = true
		wg := witnessGroup{name: g.Name, threshold: g.Threshold, members: map[string]bool{}}
		for _, m := range g.Members {
			if !names[m] {
				return fmt.Errorf("%w: %s (%s): member %q is not a witness of the log", ErrTrust, gf, g.Name, m)
			}
			wg.members[m] = true
		}
		if g.Jurisdiction != "" {
			for name, j := range lk.jurisdiction {
				if j == g.Jurisdiction {
					wg.members[name] = true
				}
			}
		}
		if g.Threshold < 1 || g.Threshold > len(wg.members) {
			return fmt.Errorf("%w: %s (%s): threshold %d, want 1 to %d (its members)", ErrTrust, gf, g.Name, g.Threshold, len(wg.members))
		}
		lk.groups = append(lk.groups, wg)
	}
	return nil
}

// noteKeyMaterial is the public key of a verifier key string, without its
// name, hash or algorithm byte (an Ed25519 key is the same key as a
// cosignature/v1 key).
func noteKeyMaterial(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return vkey
	}
	k, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(k) < 2 {
		return vkey
	}
	return string(k[1:])
}

// recordSigner returns the holder of a record-signing key.
func (t *Trust) recordSigner(k *evidence.PublicKey) *Holder { return t.records.byDigest[k.Digest] }
