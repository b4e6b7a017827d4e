package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/tiles"
)

// The freshness gate (`keytrail verify freshness`, docs/ci-freshness.md).
//
// # How old is a checkpoint?
//
// A C2SP tlog-checkpoint carries no time, and the log's signed-note signature
// has none either. A witness's C2SP tlog-cosignature/v1 does: the witness signs
// "cosignature/v1\ntime T\n" and the checkpoint, so T is a time a trusted
// third party vouches it saw the checkpoint. The gate takes a checkpoint's time
// to be the latest T among the verified cosignatures of witnesses the trust
// file lists for the log, and fails when there is none. A timestamp line of the
// log's own would only be the log's word about itself, and needs a log that
// writes one; a witness cosignature works with any log and is already what the
// trust file's witness quorum checks.
//
// # Which records count (ATTACKS.md 39 and 40)
//
// A key is a key ID and the SHA-256 of its SubjectPublicKeyInfo. Only records
// about that exact key count, and only records that verify:
//
//   - a hardware record (hsm-attestation, tpm-attestation) counts if its
//     envelope is authenticated by a collector allowed its predicate type
//     (Trust.AuthenticateEnvelope), it names one key, and its evidence
//     verifies for that key with the code of check keys.hardware
//     (hardware.verifyRecord): the evidence's own key digest must be the
//     subject's. A TPM quote verifies a platform, not a key, and never counts;
//   - a key-policy snapshot counts if authenticated the same way.
//
// The key's digest is the caller's (FreshnessOptions.Keys), or, given only
// the ID, the one digest that verified hardware records about the ID name.
// Records that merely claim a digest never establish it. Any authenticated
// hardware record or snapshot naming the ID with another digest is a
// conflict: a key ID names one key, and the key fails.
//
// Which keys a record names is decided by evidence.ParseStatement, after the
// envelope's signature is verified. The only pre-filter, mayName, skips an
// entry only when the parser provably could not name a requested key.

// Record kinds the freshness gate looks at.
const (
	FreshHardware = "hardware" // the latest hsm-attestation or tpm-attestation
	FreshPolicy   = "policy"   // the latest key-policy-snapshot
	freshMaxKeys  = 256        // keys per run
	// freshMaxDigests bounds the digests tracked per key ID; one more than
	// one is already a conflict.
	freshMaxDigests = 8
	// freshMaxNotCounted bounds the uncounted records reported per key and
	// kind (the latest by record time).
	freshMaxNotCounted = 8
)

// maxClockSkew is how far in the future a record or cosignature time may be
// (clocks differ); beyond it the time is wrong, and the evidence is not fresh.
const maxClockSkew = 5 * time.Minute

// ErrStale: a record or the checkpoint is older than its limit, or missing.
var ErrStale = errors.New("stale evidence")

// validate checks a freshness section; nil is valid (no limits).
func (f *FreshnessPolicy) validate() error {
	if f == nil {
		return nil
	}
	if f.MaxAge < 0 || f.HSMAttestation < 0 || f.TPMAttestation < 0 || f.KeyPolicySnapshot < 0 {
		return fmt.Errorf("%w: freshness: a limit is negative", ErrPolicy)
	}
	if f.MaxAge == 0 && (f.HSMAttestation == 0 || f.TPMAttestation == 0 || f.KeyPolicySnapshot == 0) {
		return fmt.Errorf("%w: freshness: give maxAge, or a limit for every record type", ErrPolicy)
	}
	return nil
}

// FreshnessGate is the freshness gate, built once from trust material and
// the policy file's freshness section. It is pure and offline, like the
// Verifier; it needs no rotation policy.
type FreshnessGate struct {
	trust  *Trust
	limits *FreshnessPolicy
}

// NewFreshnessGate returns a gate. trust is required; limits, the policy
// file's freshness section (Policy.Freshness), may be nil, and then every
// run needs FreshnessOptions.MaxAge.
func NewFreshnessGate(trust *Trust, limits *FreshnessPolicy) (*FreshnessGate, error) {
	if trust == nil {
		return nil, errors.New("verify: the freshness gate needs a trust file")
	}
	if err := limits.validate(); err != nil {
		return nil, err
	}
	g := &FreshnessGate{trust: trust}
	if limits != nil {
		l := *limits
		g.limits = &l
	}
	return g, nil
}

// ParseFreshKey parses a key as the freshness gate takes it: a key ID
// ("kms:eu-central-1/custody/hot-1/v2"), or a key ID and the lowercase hex
// SHA-256 of the key's DER SubjectPublicKeyInfo
// ("kms:eu-central-1/custody/hot-1/v2@sha256:9f86…"). A value that ends in
// "@sha256:" and 64 hex digits is always read as the second form.
func ParseFreshKey(s string) (evidence.KeyRef, error) {
	const sep = "@sha256:"
	if i := strings.LastIndex(s, sep); i >= 0 && len(s)-i-len(sep) == 64 {
		k := evidence.KeyRef{ID: s[:i], SPKISHA256: s[i+len(sep):]}
		return k, k.Validate()
	}
	if s == "" {
		return evidence.KeyRef{}, errors.New("empty key")
	}
	return evidence.KeyRef{ID: s}, nil
}

// FreshnessOptions are the inputs of one freshness run.
type FreshnessOptions struct {
	// Log is the tlog-tiles directory. Required.
	Log fs.FS
	// Checkpoint, if set, is the signed checkpoint to use instead of the
	// directory's (e.g. one a witness cosigned).
	Checkpoint []byte
	// Keys are the keys to check, each a key ID (statement subject name)
	// and, if known, the SHA-256 of its SubjectPublicKeyInfo. Without a
	// digest, the one digest verified hardware records about the ID name is
	// the key's (see the package's freshness rule). Required; at most 256,
	// each ID once.
	Keys []evidence.KeyRef
	// Kinds are the record kinds required for each key; default both
	// FreshHardware and FreshPolicy.
	Kinds []string
	// MaxAge is the limit of a kind the freshness section gives no limit
	// for. Zero takes the section's maxAge.
	MaxAge time.Duration
	// Now is the time ages are measured at. Required: the verifier has no
	// clock.
	Now time.Time
}

// Freshness is the gate's result. It is JSON-serialisable.
type Freshness struct {
	// Fresh is true only if the checkpoint's time is known and every
	// required record of every key is fresh.
	Fresh bool `json:"fresh"`
	// Now is when ages were measured.
	Now string `json:"now"`
	// Checkpoint is the checkpoint the records are in.
	Checkpoint FreshCheckpoint `json:"checkpoint"`
	// Records lists, per key and kind, the latest record and its ages.
	Records []FreshRecord `json:"records"`
}

// FreshCheckpoint is the checkpoint of a freshness run.
type FreshCheckpoint struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	// Time is the latest trusted witness cosignature's time, "" if none.
	Time string `json:"time,omitempty"`
	// Witness is the witness whose cosignature gave Time.
	Witness string `json:"witness,omitempty"`
	// AgeSeconds is Now − Time.
	AgeSeconds int64 `json:"ageSeconds"`
}

// FreshRecord is the latest counted record of one kind about one key.
type FreshRecord struct {
	Key  string `json:"key"`
	Kind string `json:"kind"`
	// SPKISHA256 is the key's public key digest records were matched
	// against, "" if none is known; DigestFrom says where it came from:
	// "given" (FreshnessOptions.Keys) or "entry N" (the verified hardware
	// record that establishes it).
	SPKISHA256 string `json:"spkiSha256,omitempty"`
	DigestFrom string `json:"digestFrom,omitempty"`
	// Found is false when the log has no counted record of the kind about
	// the key.
	Found bool `json:"found"`
	// Type is the record's predicate type; Entry its log index; Time its time.
	Type  string `json:"type,omitempty"`
	Entry uint64 `json:"entry,omitempty"`
	Time  string `json:"time,omitempty"`
	// AgeSeconds is Now − Time; CheckpointAgeSeconds the checkpoint's age.
	AgeSeconds           int64 `json:"ageSeconds"`
	CheckpointAgeSeconds int64 `json:"checkpointAgeSeconds"`
	// LimitSeconds is the limit that applies.
	LimitSeconds int64 `json:"limitSeconds"`
	Fresh        bool  `json:"fresh"`
	// Reason says why it is stale, or what was found.
	Reason string `json:"reason"`
	// NotCounted, for a row that is not fresh, are the records about the
	// key ID the gate did not count and would otherwise have weighed (later
	// than the counted one, or naming another public key), each with why;
	// at most 8 per reason group, latest first. NotCountedMore is how many
	// more there were.
	NotCounted     []FreshNotCounted `json:"notCounted,omitempty"`
	NotCountedMore int               `json:"notCountedMore,omitempty"`
}

// FreshNotCounted is a record the gate did not count, and why.
type FreshNotCounted struct {
	Entry      uint64 `json:"entry"`
	Type       string `json:"type"`
	Time       string `json:"time"`
	SPKISHA256 string `json:"spkiSha256"`
	Reason     string `json:"reason"`
}

// Check runs the gate: for each key, the latest counted record of each
// required kind is in the log's checkpoint, that checkpoint is younger than
// the limit by a trusted witness's cosignature time, and the record itself is
// younger than the limit. Every entry is checked against the checkpoint's
// root. It returns an error only for unusable input (no log, a bad key, a
// checkpoint no trusted log signed, a log copy that does not match it).
func (g *FreshnessGate) Check(opts FreshnessOptions) (*Freshness, error) {
	if opts.Log == nil || len(opts.Keys) == 0 || opts.Now.IsZero() {
		return nil, errors.New("verify: freshness needs a log, keys and the time now")
	}
	if len(opts.Keys) > freshMaxKeys {
		return nil, fmt.Errorf("verify: %d keys, limit %d", len(opts.Keys), freshMaxKeys)
	}
	scans := make(map[string]*keyScan, len(opts.Keys))
	ids := make([]string, 0, len(opts.Keys))
	for _, k := range opts.Keys {
		if k.SPKISHA256 != "" {
			if err := k.Validate(); err != nil {
				return nil, fmt.Errorf("verify: %w", err)
			}
		} else if k.ID == "" {
			return nil, errors.New("verify: a key without an ID")
		}
		if scans[k.ID] != nil {
			return nil, fmt.Errorf("verify: key %s given twice", k.ID)
		}
		scans[k.ID] = &keyScan{ref: k, digests: map[string]*digestScan{}}
		ids = append(ids, k.ID)
	}
	kinds := opts.Kinds
	if len(kinds) == 0 {
		kinds = []string{FreshHardware, FreshPolicy}
	}
	for _, k := range kinds {
		if k != FreshHardware && k != FreshPolicy {
			return nil, fmt.Errorf("verify: record kind %q: want %s or %s", k, FreshHardware, FreshPolicy)
		}
	}
	r := tiles.NewReader(opts.Log)
	raw := opts.Checkpoint
	if raw == nil {
		var err error
		if raw, err = r.Checkpoint(); err != nil {
			return nil, fmt.Errorf("read checkpoint: %w", err)
		}
	}
	cp, cpTime, witness, err := g.trust.openTimedCheckpoint(raw)
	if err != nil {
		return nil, err
	}
	out := &Freshness{Now: evidence.FormatTime(opts.Now), Checkpoint: FreshCheckpoint{Origin: cp.Origin, Size: cp.Size, Witness: witness}}
	if !cpTime.IsZero() {
		out.Checkpoint.Time = evidence.FormatTime(cpTime)
		out.Checkpoint.AgeSeconds = int64(opts.Now.Sub(cpTime) / time.Second)
	}

	// Every entry is checked against the checkpoint's root; an entry the
	// parser could name a key in is authenticated, then parsed, then weighed.
	err = r.VerifyEntries(cp.Size, cp.Root, func(i uint64, data []byte) error {
		env, err := evidence.ParseEnvelope(data, evidence.MaxRecordBytes)
		if err != nil || env.PayloadType != evidence.PayloadType || !mayName(env.Payload, ids) {
			return nil
		}
		g.weigh(i, env, scans)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: the log copy does not match its checkpoint: %w", ErrIncomplete, err)
	}

	out.Fresh = true
	for _, id := range ids {
		ks := scans[id]
		want, from, idErr := ks.identity(cp.Size)
		for _, kind := range kinds {
			fr := FreshRecord{Key: id, Kind: kind, CheckpointAgeSeconds: out.Checkpoint.AgeSeconds, SPKISHA256: want, DigestFrom: from}
			var l *counted
			if d := ks.digests[want]; want != "" && d != nil {
				l = d.latest(kind)
			}
			typ := ""
			if l != nil {
				typ = l.typ
				fr.Found, fr.Type, fr.Entry, fr.Time = true, l.typ, l.index, evidence.FormatTime(l.at)
				fr.AgeSeconds = int64(opts.Now.Sub(l.at) / time.Second)
			}
			limit := g.limit(kind, typ, opts.MaxAge)
			fr.LimitSeconds = int64(limit / time.Second)
			switch {
			case limit <= 0:
				fr.Reason = "no age limit: give --max-age or the policy's freshness section"
			case idErr != "":
				fr.Reason = idErr
			case l == nil && kind == FreshHardware:
				fr.Reason = fmt.Sprintf("no verified hardware record about %s (spki sha256 %s) in the log (checkpoint size %d)", id, want, cp.Size)
			case l == nil:
				fr.Reason = fmt.Sprintf("no %s record about %s (spki sha256 %s) in the log (checkpoint size %d)", kind, id, want, cp.Size)
			default:
				fr.Fresh, fr.Reason = judgeAge(opts.Now, l, limit, cpTime, witness)
			}
			if !fr.Fresh {
				fr.NotCounted, fr.NotCountedMore = ks.notCounted(kind, want, l)
			}
			out.Fresh = out.Fresh && fr.Fresh
			out.Records = append(out.Records, fr)
		}
	}
	return out, nil
}

// judgeAge says whether the counted record l and the checkpoint are young
// enough, and why. The record's time is its own (the collector's word):
// trusted time is issue 13's.
func judgeAge(now time.Time, l *counted, limit time.Duration, cpTime time.Time, witness string) (bool, string) {
	at := evidence.FormatTime(l.at)
	age := now.Sub(l.at)
	switch {
	case age < -maxClockSkew:
		return false, fmt.Sprintf("entry %d at %s is %s in the future", l.index, at, age2(-age))
	case !cpTime.IsZero() && now.Sub(cpTime) < -maxClockSkew:
		return false, fmt.Sprintf("the checkpoint's cosignature time %s (by %s) is in the future", evidence.FormatTime(cpTime), witness)
	case cpTime.IsZero():
		return false, "checkpoint age unknown: no cosignature by a witness the trust file lists for the log (C2SP checkpoints carry no time)"
	case now.Sub(cpTime) > limit:
		return false, fmt.Sprintf("checkpoint is %s old (cosigned by %s at %s), limit %s", age2(now.Sub(cpTime)), witness, evidence.FormatTime(cpTime), age2(limit))
	case age > limit:
		return false, fmt.Sprintf("entry %d at %s is %s old, limit %s", l.index, at, age2(age), age2(limit))
	}
	return true, fmt.Sprintf("entry %d at %s is %s old, in a checkpoint %s old; limit %s", l.index, at, age2(age), age2(now.Sub(cpTime)), age2(limit))
}

// mayName reports whether evidence.ParseStatement could name one of ids as a
// subject of payload; false only if it provably could not.
//
// Proof. ParseStatement names a key only by a subject whose name passes
// KeyRef.Validate: 1 to 255 bytes of [A-Za-z0-9._:/@=+%-], so neither '"'
// nor '\' nor any non-ASCII byte. An ID outside that set is never named.
// The name is decoded from a JSON string token of payload by strictjson,
// which rejects invalid UTF-8 and raw control characters. If payload holds
// no '\' at all, no string token has an escape, so every decoded string is
// the token's raw bytes between its quotes: a subject named id appears in
// payload as the bytes '"' id '"'. So when payload has no '\' and none of
// the quoted ids, no subject is named any of ids. Anything else (a single
// backslash anywhere) goes to the parser.
func mayName(payload []byte, ids []string) bool {
	if bytes.IndexByte(payload, '\\') >= 0 {
		return true
	}
	var q []byte
	for _, id := range ids {
		q = append(append(append(q[:0], '"'), id...), '"')
		if bytes.Contains(payload, q) {
			return true
		}
	}
	return false
}

// keyScan is what one key's records established during a run.
type keyScan struct {
	ref evidence.KeyRef
	// digests are the SPKI digests authenticated hardware records and
	// snapshots name with the key's ID.
	digests map[string]*digestScan
	// overflow counts records naming yet more digests (not tracked).
	overflow int
	// skipped are records about the ID that were not counted, by kind.
	skipped map[string]*skippedList
}

// digestScan is what the records naming one digest with the key's ID hold.
type digestScan struct {
	first     counted  // the first authenticated record naming it
	hw        *counted // the latest verified hardware record
	policy    *counted // the latest key-policy snapshot
	hwEntries int      // verified hardware records
}

type counted struct {
	index uint64
	at    time.Time
	typ   string
}

type skippedList struct {
	list []FreshNotCounted // the latest by time, at most freshMaxNotCounted
	at   []time.Time
	more int
}

func (d *digestScan) latest(kind string) *counted {
	if kind == FreshHardware {
		return d.hw
	}
	return d.policy
}

func later(prev *counted, c counted) *counted {
	if prev == nil || c.at.After(prev.at) {
		return &c
	}
	return prev
}

// recordKind is the gate's kind of a predicate, "" for others.
func recordKind(p evidence.Predicate) string {
	switch p.(type) {
	case *evidence.HSMAttestation, *evidence.TPMAttestation:
		return FreshHardware
	case *evidence.KeyPolicySnapshot:
		return FreshPolicy
	}
	return ""
}

// weigh authenticates one envelope and notes what it says about the keys.
func (g *FreshnessGate) weigh(i uint64, env *evidence.Envelope, scans map[string]*keyScan) {
	_, st, pred, err := g.trust.AuthenticateEnvelope(env)
	if err != nil {
		// ErrNotAllowed comes only after every signature verified under a
		// key of the trust file: the payload is a trusted signer's, so it is
		// parsed, only to say which key's record was not counted.
		if !errors.Is(err, ErrNotAllowed) {
			return
		}
		var perr error
		if st, pred, perr = evidence.ParseStatement(env.Payload); perr != nil {
			return
		}
		kind := recordKind(pred)
		for _, k := range st.Keys() {
			if ks := scans[k.ID]; ks != nil && kind != "" {
				ks.skip(kind, counted{i, pred.RecordTime(), st.PredicateType}, k.SPKISHA256, flat(err))
			}
		}
		return
	}
	kind := recordKind(pred)
	if kind == "" {
		return
	}
	keys := st.Keys()
	c := counted{i, pred.RecordTime(), st.PredicateType}
	for _, k := range keys {
		ks := scans[k.ID]
		if ks == nil {
			continue
		}
		d := ks.digest(k.SPKISHA256, c)
		if d == nil {
			continue
		}
		if kind == FreshPolicy {
			d.policy = later(d.policy, c)
			continue
		}
		if len(keys) != 1 {
			ks.skip(kind, c, k.SPKISHA256, fmt.Sprintf("names %d keys; a hardware record counts only about one key, as in keys.hardware", len(keys)))
			continue
		}
		// The hardware evidence, verified as keys.hardware verifies it, for
		// the key the statement names (ID and digest).
		ar := g.trust.hardware.verifyRecord(pred, k)
		switch {
		case ar == nil:
			continue
		case !ar.Verified:
			ks.skip(kind, c, k.SPKISHA256, "hardware evidence does not verify: "+flat(ar.Err()))
		case ar.Facts.KeyDigest != k.SPKISHA256:
			ks.skip(kind, c, k.SPKISHA256, fmt.Sprintf("%s evidence verifies but attests a platform, not the key", ar.Format))
		default:
			d.hw = later(d.hw, c)
			d.hwEntries++
		}
	}
}

// digest returns the record of digest d, tracking it if new; nil past the
// bound (the key already conflicts).
func (ks *keyScan) digest(d string, c counted) *digestScan {
	if s := ks.digests[d]; s != nil {
		return s
	}
	if len(ks.digests) >= freshMaxDigests {
		ks.overflow++
		return nil
	}
	s := &digestScan{first: c}
	ks.digests[d] = s
	return s
}

func (ks *keyScan) skip(kind string, c counted, digest, why string) {
	if ks.skipped == nil {
		ks.skipped = map[string]*skippedList{}
	}
	l := ks.skipped[kind]
	if l == nil {
		l = &skippedList{}
		ks.skipped[kind] = l
	}
	// Keep the latest by record time; ties by log order.
	j, _ := slices.BinarySearchFunc(l.at, c.at, func(a, b time.Time) int { return b.Compare(a) })
	for j < len(l.at) && l.at[j].Equal(c.at) {
		j++
	}
	if j >= freshMaxNotCounted {
		l.more++
		return
	}
	nc := FreshNotCounted{Entry: c.index, Type: c.typ, Time: evidence.FormatTime(c.at), SPKISHA256: digest, Reason: why}
	l.list = slices.Insert(l.list, j, nc)
	l.at = slices.Insert(l.at, j, c.at)
	if len(l.list) > freshMaxNotCounted {
		l.list, l.at = l.list[:freshMaxNotCounted], l.at[:freshMaxNotCounted]
		l.more++
	}
}

// identity decides the key's digest: the caller's, or the one digest that
// verified hardware records about the ID name. conflict is non-empty when
// the key cannot be judged: records name the ID with another digest, or
// nothing verified establishes the digest.
func (ks *keyScan) identity(size uint64) (want, from, conflict string) {
	id := ks.ref.ID
	if ks.ref.SPKISHA256 != "" {
		want, from = ks.ref.SPKISHA256, "given"
	} else {
		var verified []string
		for _, d := range slices.Sorted(maps.Keys(ks.digests)) {
			if ks.digests[d].hw != nil {
				verified = append(verified, d)
			}
		}
		switch len(verified) {
		case 0:
			return "", "", fmt.Sprintf("no verified hardware record about %s in the log (checkpoint size %d) establishes its public key; give the key as %s@sha256:<SPKI SHA-256>", id, size, id)
		case 1:
			want, from = verified[0], fmt.Sprintf("entry %d", ks.digests[verified[0]].hw.index)
		default:
			var parts []string
			for _, d := range verified {
				parts = append(parts, fmt.Sprintf("entry %d: spki sha256 %s", ks.digests[d].hw.index, d))
			}
			return "", "", fmt.Sprintf("key ID %s names another public key: verified hardware records name %d public keys under it (%s); a key ID must name one key", id, len(verified), strings.Join(parts, "; "))
		}
	}
	var others []string
	for _, d := range slices.Sorted(maps.Keys(ks.digests)) {
		if d != want {
			s := ks.digests[d]
			others = append(others, fmt.Sprintf("entry %d (%s) is about spki sha256 %s", s.first.index, shortType(s.first.typ), d))
		}
	}
	if ks.overflow > 0 {
		others = append(others, fmt.Sprintf("%d more records about other public keys", ks.overflow))
	}
	if len(others) > 0 {
		how := "as given"
		if from != "given" {
			how = "established by verified " + from
		}
		return want, from, fmt.Sprintf("key ID %s names another public key: %s, not the key's %s (%s); a key ID must name one key", id, strings.Join(others, "; "), want, how)
	}
	return want, from, ""
}

// notCounted lists, for a row that is not fresh, the records of the kind
// about the ID that were not counted and that would have weighed: those
// later than the counted record l (all if none), and records about other
// public keys under the ID.
func (ks *keyScan) notCounted(kind, want string, l *counted) ([]FreshNotCounted, int) {
	var out []FreshNotCounted
	more := 0
	for _, d := range slices.Sorted(maps.Keys(ks.digests)) {
		s := ks.digests[d]
		c := s.latest(kind)
		if d == want || c == nil {
			continue
		}
		why := "about another public key under this key ID"
		switch {
		case want == "" && kind == FreshHardware:
			why = "one of the public keys verified hardware records name under this key ID"
		case want == "":
			why = "about a public key no verified hardware record establishes"
		}
		out = append(out, FreshNotCounted{Entry: c.index, Type: c.typ, Time: evidence.FormatTime(c.at), SPKISHA256: d, Reason: why})
	}
	if sl := ks.skipped[kind]; sl != nil {
		for j, nc := range sl.list {
			other := want != "" && nc.SPKISHA256 != want
			if l != nil && !sl.at[j].After(l.at) && !other {
				continue
			}
			if other {
				nc.Reason = "about another public key under this key ID; " + nc.Reason
			}
			out = append(out, nc)
		}
		more += sl.more
	}
	return out, more
}

// limit is the limit of a kind: the section's per-type limit, else maxAge,
// else the section's maxAge.
func (g *FreshnessGate) limit(kind, typ string, maxAge time.Duration) time.Duration {
	f := g.limits
	if f != nil {
		var d Duration
		switch {
		case kind == FreshPolicy:
			d = f.KeyPolicySnapshot
		case typ == evidence.PredicateTPMAttestation:
			d = f.TPMAttestation
		case typ == evidence.PredicateHSMAttestation:
			d = f.HSMAttestation
		case f.HSMAttestation != 0 && f.TPMAttestation != 0:
			d = min(f.HSMAttestation, f.TPMAttestation) // none found: the stricter
		}
		if d != 0 {
			return time.Duration(d)
		}
	}
	if maxAge != 0 {
		return maxAge
	}
	if f != nil {
		return time.Duration(f.MaxAge)
	}
	return 0
}

// shortType is a keytrail predicate type's name ("tpm-attestation").
func shortType(t string) string {
	s := strings.TrimSuffix(strings.TrimPrefix(t, "https://keytrail.dev/predicates/"), "/v1")
	if s == "" || strings.Contains(s, "/") {
		return t
	}
	return s
}

// flat is an error on one line (errors.Join writes several).
func flat(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// openTimedCheckpoint opens a checkpoint under a trusted log, with its
// witness quorum, and returns the latest time among the verified
// cosignatures of the log's trusted witnesses (zero if none).
func (t *Trust) openTimedCheckpoint(raw []byte) (checkpoint.Checkpoint, time.Time, string, error) {
	var errs []error
	for _, l := range t.logs {
		cp, n, err := checkpoint.OpenWitnessed(raw, l.origin, l.v, l.witnesses, l.quorum)
		if err != nil {
			errs = append(errs, fmt.Errorf("log %s: %w", l.origin, err))
			continue
		}
		var best time.Time
		who := ""
		for _, s := range n.Sigs {
			for _, w := range l.witnesses {
				if s.Name != w.Name() || s.Hash != w.KeyHash() || (s.Name == l.v.Name() && s.Hash == l.v.KeyHash()) {
					continue
				}
				if t, err := fnote.CoSigV1Timestamp(s); err == nil && t.After(best) {
					best, who = t.UTC(), w.Name()
				}
			}
		}
		return cp, best, who, nil
	}
	return checkpoint.Checkpoint{}, time.Time{}, "", errors.Join(errs...)
}

// age2 writes an age in whole seconds, as days and hours where it can.
func age2(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d >= 24*time.Hour {
		return days(d.Truncate(time.Hour))
	}
	return d.String()
}
