package evidence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/strictjson"
)

// BundleMediaType is the media type of a rotation evidence bundle file; see
// docs/bundle-format.md and SignBundle.
const BundleMediaType = "application/vnd.keytrail.bundle.v1+json"

// Limits on untrusted bundles (sigstore-go CVE-2024-45395: bound every count).
const (
	MaxBundleBytes   = 160 << 20
	MaxBundleEntries = 65536
	// MaxProofHashes bounds a proof: a tree of 2^64 leaves needs at most 64 hashes.
	MaxProofHashes = 64
)

// Bundle is the evidence of one key rotation: every logged record about the old
// and new key in the rotation's window, with inclusion proofs against one
// checkpoint. A bundle travels as a file (SignBundle) whose manifest the
// operator signs, so every value in it is covered by that signature or by a
// proof, and every record also by its own signature.
type Bundle struct {
	// Rotation describes the rotation.
	Rotation Rotation `json:"rotation"`
	// Checkpoint is the signed note (tlog-checkpoint) the proofs are against.
	Checkpoint string `json:"checkpoint"`
	// Entries are the records, in strictly ascending index order.
	Entries []Entry `json:"entries"`
	// Consistency, if present, proves Checkpoint consistent with an earlier one.
	Consistency *Consistency `json:"consistency,omitempty"`
}

// Rotation describes a key rotation.
type Rotation struct {
	// ID is the rotation's identifier; lifecycle events carry it as rotationId.
	ID string `json:"id"`
	// KeyClass is the policy class of the keys, e.g. "hot-signing".
	KeyClass string `json:"keyClass"`
	// OldKey is the key being retired.
	OldKey KeyRef `json:"oldKey"`
	// NewKey is the key replacing it.
	NewKey KeyRef `json:"newKey"`
	// Window bounds the records that belong to the rotation.
	Window Window `json:"window"`
}

// Window is a closed time interval: a record at Start or at End is inside.
type Window struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Bounds parses the window.
func (w Window) Bounds() (start, end time.Time, err error) {
	if start, err = ParseTime(w.Start); err != nil {
		return start, end, fmt.Errorf("window.start: %w", err)
	}
	if end, err = ParseTime(w.End); err != nil {
		return start, end, fmt.Errorf("window.end: %w", err)
	}
	if end.Before(start) {
		return start, end, fmt.Errorf("window.end %s is before window.start %s", w.End, w.Start)
	}
	return start, end, nil
}

// Contains reports whether t is inside the window (both ends included).
func (w Window) Contains(t time.Time) bool {
	s, e, err := w.Bounds()
	return err == nil && !t.Before(s) && !t.After(e)
}

// Entry is one logged record with its proof.
type Entry struct {
	// Index is the record's leaf index.
	Index uint64 `json:"index"`
	// Envelope is the exact leaf bytes: a DSSE envelope.
	Envelope []byte `json:"envelope"`
	// InclusionProof proves the leaf in the tree of Bundle.Checkpoint.
	InclusionProof [][]byte `json:"inclusionProof"`
}

// Consistency proves the bundle's checkpoint extends an earlier one.
type Consistency struct {
	// Checkpoint is the earlier signed checkpoint.
	Checkpoint string `json:"checkpoint"`
	// Proof is the RFC 6962 consistency proof from its size to the bundle's.
	Proof [][]byte `json:"proof"`
}

// Validate checks the rotation descriptor's syntax.
func (r Rotation) Validate() error {
	if !keyIDPattern.MatchString(r.ID) {
		return fmt.Errorf("rotation.id %q: want 1-255 characters of [A-Za-z0-9._:/@=+%%-]", r.ID)
	}
	if r.KeyClass == "" {
		return errors.New("rotation.keyClass is empty")
	}
	if err := r.OldKey.Validate(); err != nil {
		return fmt.Errorf("rotation.oldKey: %w", err)
	}
	if err := r.NewKey.Validate(); err != nil {
		return fmt.Errorf("rotation.newKey: %w", err)
	}
	if r.OldKey.ID == r.NewKey.ID || r.OldKey.SPKISHA256 == r.NewKey.SPKISHA256 {
		return errors.New("rotation.oldKey and rotation.newKey are the same key")
	}
	_, _, err := r.Window.Bounds()
	return err
}

// ParseBundle decodes and validates a bundle in the single-document JSON form
// of MarshalBundle, strictly. It does not authenticate anything: bundle files
// are read with ReadBundle or OpenBundle.
func ParseBundle(payload []byte) (*Bundle, error) {
	var b Bundle
	if err := strictjson.Unmarshal(payload, &b, MaxBundleBytes); err != nil {
		return nil, fmt.Errorf("%w: bundle: %w", ErrMalformed, err)
	}
	if err := b.Rotation.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if b.Checkpoint == "" {
		return nil, fmt.Errorf("%w: bundle: checkpoint is empty", ErrMalformed)
	}
	if len(b.Entries) > MaxBundleEntries {
		return nil, fmt.Errorf("%w: bundle: %d entries, limit %d", ErrMalformed, len(b.Entries), MaxBundleEntries)
	}
	for i, e := range b.Entries {
		if i > 0 && e.Index <= b.Entries[i-1].Index {
			return nil, fmt.Errorf("%w: bundle: entries[%d].index %d does not follow %d (want strictly ascending)", ErrMalformed, i, e.Index, b.Entries[i-1].Index)
		}
		if err := checkProof(e.InclusionProof); err != nil {
			return nil, fmt.Errorf("%w: bundle: entries[%d].inclusionProof: %w", ErrMalformed, i, err)
		}
		if len(e.Envelope) == 0 || len(e.Envelope) > MaxRecordBytes {
			return nil, fmt.Errorf("%w: bundle: entries[%d].envelope is %d bytes (want 1 to %d)", ErrMalformed, i, len(e.Envelope), MaxRecordBytes)
		}
	}
	if c := b.Consistency; c != nil {
		if c.Checkpoint == "" {
			return nil, fmt.Errorf("%w: bundle: consistency.checkpoint is empty", ErrMalformed)
		}
		if err := checkProof(c.Proof); err != nil {
			return nil, fmt.Errorf("%w: bundle: consistency.proof: %w", ErrMalformed, err)
		}
	}
	return &b, nil
}

func checkProof(p [][]byte) error {
	if len(p) > MaxProofHashes {
		return fmt.Errorf("%d hashes, limit %d", len(p), MaxProofHashes)
	}
	for i, h := range p {
		if len(h) != 32 {
			return fmt.Errorf("hash %d is %d bytes, want 32", i, len(h))
		}
	}
	return nil
}

// MarshalBundle encodes b as one JSON document (the form ParseBundle reads):
// for tools and tests. Bundle files are written by SignBundle.
func MarshalBundle(b *Bundle) ([]byte, error) { return strictjson.Marshal(b) }

// LogSource is what BuildBundle needs from a ledger.
type LogSource interface {
	Checkpoint(ctx context.Context) ([]byte, error)
	KeyIndex(ctx context.Context, keyID string) ([]uint64, error)
	Entry(ctx context.Context, index uint64) ([]byte, error)
	InclusionProof(ctx context.Context, index, treeSize uint64) ([][]byte, error)
	ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error)
}

// BuildOptions configure BuildBundle.
type BuildOptions struct {
	// Origin and LogVerifier authenticate the log's checkpoint. Required.
	Origin      string
	LogVerifier note.Verifier
	// Since, if set, is an earlier signed checkpoint of the same log; the bundle
	// then carries a consistency proof from it.
	Since []byte
	// Checkpoint, if set, is the signed checkpoint of src the bundle proves
	// its entries against (one that meets the auditors' witness quorum, say,
	// which may be older than src's latest); by default src's latest.
	Checkpoint []byte
}

// BuildBundle collects, with inclusion proofs against src's latest
// checkpoint, every record in src that the verifier requires a bundle of r to
// carry (Relation.Carried): each record naming r's old or new key with a time
// inside r's window, each lifecycle event naming the rotation, and every
// residency claim about a place those records name (ResidencyPlaces) or about
// the log. The caller signs the result with SignBundle.
//
// Records are selected by what they say, not by who signed them: the verifier
// decides whether each one is trustworthy, and a record it cannot verify fails
// the bundle rather than being silently dropped here. The selection is the
// verifier's own (Rotation.Relate), decided by the one statement parser
// (ParseStatement), so the two cannot disagree about which records belong.
func BuildBundle(ctx context.Context, src LogSource, r Rotation, opts BuildOptions) (*Bundle, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if opts.LogVerifier == nil {
		return nil, errors.New("evidence: BuildOptions.LogVerifier is required")
	}
	cpRaw := opts.Checkpoint
	if cpRaw == nil {
		var err error
		if cpRaw, err = src.Checkpoint(ctx); err != nil {
			return nil, fmt.Errorf("read checkpoint: %w", err)
		}
	}
	cp, _, err := checkpoint.Open(cpRaw, opts.Origin, opts.LogVerifier)
	if err != nil {
		return nil, fmt.Errorf("log checkpoint: %w", err)
	}
	b := &Bundle{Rotation: r, Checkpoint: string(cpRaw), Entries: []Entry{}}

	lookup := func(names ...string) ([]uint64, error) {
		var indices []uint64
		for _, n := range names {
			idx, err := src.KeyIndex(ctx, n)
			if err != nil {
				return nil, fmt.Errorf("key index for %s: %w", n, err)
			}
			indices = append(indices, idx...)
		}
		slices.Sort(indices)
		return slices.Compact(indices), nil
	}
	indices, err := lookup(r.OldKey.ID, r.NewKey.ID)
	if err != nil {
		return nil, err
	}
	places := map[string]bool{ResidencySubject{Kind: ResidencyLog, Origin: cp.Origin}.Name(): true}
	selected := map[uint64]bool{}
	add := func(i uint64, raw []byte) error {
		p, err := src.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			return fmt.Errorf("inclusion proof for entry %d: %w", i, err)
		}
		selected[i] = true
		b.Entries = append(b.Entries, Entry{Index: i, Envelope: raw, InclusionProof: p})
		if len(b.Entries) > MaxBundleEntries {
			return fmt.Errorf("evidence: rotation %s has more than %d records", r.ID, MaxBundleEntries)
		}
		return nil
	}
	for _, i := range indices {
		if i >= cp.Size {
			continue
		}
		raw, err := src.Entry(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("read entry %d: %w", i, err)
		}
		st, pred, err := parseRecord(raw)
		if err != nil || !r.Relate(st.Keys(), pred).Carried() {
			continue
		}
		for _, n := range ResidencyPlaces(pred) {
			places[n] = true
		}
		if err := add(i, raw); err != nil {
			return nil, err
		}
	}
	// The residency claims about every place the records name.
	claims, err := lookup(slices.Sorted(maps.Keys(places))...)
	if err != nil {
		return nil, err
	}
	for _, i := range claims {
		if i >= cp.Size || selected[i] {
			continue
		}
		raw, err := src.Entry(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("read entry %d: %w", i, err)
		}
		if _, pred, err := parseRecord(raw); err != nil || !IsResidencyClaimAbout(pred, places) {
			continue
		}
		if err := add(i, raw); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(b.Entries, func(x, y Entry) int { return cmp.Compare(x.Index, y.Index) })
	if opts.Since != nil {
		old, _, err := checkpoint.Open(opts.Since, opts.Origin, opts.LogVerifier)
		if err != nil {
			return nil, fmt.Errorf("--since checkpoint: %w", err)
		}
		if old.Size == 0 || old.Size > cp.Size {
			return nil, fmt.Errorf("--since checkpoint has size %d; want 1 to %d", old.Size, cp.Size)
		}
		p, err := src.ConsistencyProof(ctx, old.Size, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("consistency proof %d→%d: %w", old.Size, cp.Size, err)
		}
		b.Consistency = &Consistency{Checkpoint: string(opts.Since), Proof: p}
	}
	return b, nil
}

// parseRecord decodes a log entry's envelope and its statement with the one
// parser, without verifying the signature: it selects, it does not judge.
func parseRecord(raw []byte) (*Statement, Predicate, error) {
	env, err := ParseEnvelope(raw, MaxRecordBytes)
	if err != nil {
		return nil, nil, err
	}
	if env.PayloadType != PayloadType {
		return nil, nil, fmt.Errorf("%w: %q", ErrPayloadType, env.PayloadType)
	}
	return ParseStatement(env.Payload)
}

// Relation is how a record relates to a rotation: what Rotation.Relate finds.
// It is the one definition bundle build, the verifier's rules and its
// completeness check share.
type Relation struct {
	// Key: a subject is the rotation's old or new key (ID and digest).
	Key bool
	// Conflict, if not empty, says how a subject names one of the rotation's
	// keys inconsistently: its ID with another digest, or its digest under
	// another ID.
	Conflict string
	// Event: the record is a lifecycle event naming the rotation.
	Event bool
	// InWindow: the record's time is inside the rotation's window.
	InWindow bool
}

// About reports whether the record concerns the rotation at all.
func (x Relation) About() bool { return x.Key || x.Conflict != "" || x.Event }

// Carried reports whether a bundle of the rotation must carry the record (if
// the bundle's checkpoint includes it): it names one of the rotation's keys
// (consistently or not) at a time inside the window, or it is a lifecycle
// event of the rotation, at any time.
func (x Relation) Carried() bool { return x.Event || x.InWindow && (x.Key || x.Conflict != "") }

// Relate says how a statement about keys (Statement.Keys) with predicate
// pred relates to the rotation.
func (r Rotation) Relate(keys []KeyRef, pred Predicate) Relation {
	var x Relation
	for _, k := range keys {
		for _, rk := range []KeyRef{r.OldKey, r.NewKey} {
			switch {
			case k == rk:
				x.Key = true
			case k.ID == rk.ID:
				x.Conflict = fmt.Sprintf("subject %s has digest %s, but the rotation's key %s has %s", k.ID, k.SPKISHA256, rk.ID, rk.SPKISHA256)
			case k.SPKISHA256 == rk.SPKISHA256:
				x.Conflict = fmt.Sprintf("subject %s has the digest of the rotation's key %s under another name", k.ID, rk.ID)
			}
		}
	}
	if ev, ok := pred.(*LifecycleEvent); ok && ev.RotationID == r.ID {
		x.Event = true
	}
	x.InWindow = r.Window.Contains(pred.RecordTime())
	return x
}

// ResidencyPlaces names, in the grammar of residency claims
// (ResidencySubject.Name), the places a record says a key lives or signs in:
// the HSM of an hsm-attestation, the KMS regions (or location) of a key-policy
// snapshot, the HSM of a signing receipt that names one.
func ResidencyPlaces(pred Predicate) []string {
	switch p := pred.(type) {
	case *HSMAttestation:
		return []string{ResidencySubject{Kind: ResidencyHSM, Serial: p.Token.Serial}.Name()}
	case *SigningReceipt:
		if p.HSMSerial != "" {
			return []string{ResidencySubject{Kind: ResidencyHSM, Serial: p.HSMSerial}.Name()}
		}
	case *KeyPolicySnapshot:
		switch p.Provider {
		case ProviderAWSKMS:
			out := []string{ResidencySubject{Kind: ResidencyAWSRegion, Partition: p.Resource.Partition, Region: p.Resource.Region}.Name()}
			for _, rr := range p.Resource.ReplicaRegions {
				out = append(out, ResidencySubject{Kind: ResidencyAWSRegion, Partition: p.Resource.Partition, Region: rr}.Name())
			}
			return out
		case ProviderGCPKMS:
			return []string{ResidencySubject{Kind: ResidencyGCPLocation, Location: p.Resource.Location}.Name()}
		}
	}
	return nil
}

// IsResidencyClaimAbout reports whether pred is a residency claim about one
// of places (names as ResidencySubject.Name gives them).
func IsResidencyClaimAbout(pred Predicate, places map[string]bool) bool {
	c, ok := pred.(*ResidencyClaim)
	return ok && places[c.Subject.Name()]
}

// SubjectKeyIDs returns the key IDs an envelope's statement names. It is the
// ledger's KeyIDsFunc: an index to find candidates, not a verification.
func SubjectKeyIDs(raw []byte) ([]string, error) {
	env, err := ParseEnvelope(raw, MaxRecordBytes)
	if err != nil {
		return nil, err
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("%w: %q", ErrPayloadType, env.PayloadType)
	}
	var st Statement
	if err := strictjson.Unmarshal(env.Payload, &st, MaxRecordBytes); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(st.Subject))
	for _, s := range st.Subject {
		ids = append(ids, s.Name)
	}
	return ids, nil
}
