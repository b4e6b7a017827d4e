package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
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

// Record kinds the freshness gate looks at.
const (
	FreshHardware = "hardware" // the latest hsm-attestation or tpm-attestation
	FreshPolicy   = "policy"   // the latest key-policy-snapshot
	freshMaxKeys  = 256        // keys per run
)

// maxClockSkew is how far in the future a record or cosignature time may be
// (clocks differ); beyond it the time is wrong, and the evidence is not fresh.
const maxClockSkew = 5 * time.Minute

// ErrStale: a record or the checkpoint is older than its limit, or missing.
var ErrStale = errors.New("stale evidence")

// FreshnessOptions are the inputs of one freshness run.
type FreshnessOptions struct {
	// Log is the tlog-tiles directory. Required.
	Log fs.FS
	// Checkpoint, if set, is the signed checkpoint to use instead of the
	// directory's (e.g. one a witness cosigned).
	Checkpoint []byte
	// Keys are the key IDs to check (statement subject names). Required.
	Keys []string
	// Kinds are the record kinds required for each key; default both
	// FreshHardware and FreshPolicy.
	Kinds []string
	// MaxAge is the limit of a kind the policy's freshness section gives no
	// limit for. Zero takes the policy's maxAge.
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

// FreshRecord is the latest record of one kind about one key.
type FreshRecord struct {
	Key  string `json:"key"`
	Kind string `json:"kind"`
	// Found is false when the log has no such record about the key.
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
}

// Freshness checks that, for each key, the latest record of each required
// kind is in the log's checkpoint, that checkpoint is younger than the limit
// by a trusted witness's cosignature time, and the record itself is younger
// than the limit. Records are authenticated (signed by a trusted collector
// allowed their type) and checked against the checkpoint's root before they
// count. It returns an error only for unusable input (no log, a checkpoint
// no trusted log signed, a log copy that does not match it).
func (v *Verifier) Freshness(opts FreshnessOptions) (*Freshness, error) {
	if opts.Log == nil || len(opts.Keys) == 0 || opts.Now.IsZero() {
		return nil, errors.New("verify: freshness needs a log, keys and the time now")
	}
	if len(opts.Keys) > freshMaxKeys {
		return nil, fmt.Errorf("verify: %d keys, limit %d", len(opts.Keys), freshMaxKeys)
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
	cp, cpTime, witness, err := v.openTimedCheckpoint(raw)
	if err != nil {
		return nil, err
	}
	out := &Freshness{Now: evidence.FormatTime(opts.Now), Checkpoint: FreshCheckpoint{Origin: cp.Origin, Size: cp.Size, Witness: witness}}
	if !cpTime.IsZero() {
		out.Checkpoint.Time = evidence.FormatTime(cpTime)
		out.Checkpoint.AgeSeconds = int64(opts.Now.Sub(cpTime) / time.Second)
	}

	type latest struct {
		index uint64
		pred  evidence.Predicate
		typ   string
	}
	found := map[[2]string]latest{}
	// Every entry is checked against the checkpoint's root; only a payload
	// that names a key (a cheap filter) has its signature checked and is parsed.
	err = r.VerifyEntries(cp.Size, cp.Root, func(i uint64, data []byte) error {
		env, err := evidence.ParseEnvelope(data, evidence.MaxRecordBytes)
		if err != nil || env.PayloadType != evidence.PayloadType {
			return nil
		}
		if !slices.ContainsFunc(opts.Keys, func(k string) bool { return bytes.Contains(env.Payload, []byte(`"`+k+`"`)) }) {
			return nil
		}
		keys, err := env.Verify(evidence.PayloadType, v.trust.records)
		if err != nil || len(keys) != 1 {
			return nil // not a trusted record: it does not count
		}
		st, pred, err := evidence.ParseStatement(env.Payload)
		if err != nil || !v.trust.recordSigner(keys[0]).May(st.PredicateType) {
			return nil
		}
		kind := ""
		switch pred.(type) {
		case *evidence.HSMAttestation, *evidence.TPMAttestation:
			kind = FreshHardware
		case *evidence.KeyPolicySnapshot:
			kind = FreshPolicy
		default:
			return nil
		}
		for _, k := range st.Keys() {
			id := [2]string{k.ID, kind}
			if !slices.Contains(opts.Keys, k.ID) {
				continue
			}
			if prev, ok := found[id]; !ok || pred.RecordTime().After(prev.pred.RecordTime()) {
				found[id] = latest{i, pred, st.PredicateType}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: the log copy does not match its checkpoint: %w", ErrIncomplete, err)
	}

	out.Fresh = true
	for _, key := range opts.Keys {
		for _, kind := range kinds {
			fr := FreshRecord{Key: key, Kind: kind, CheckpointAgeSeconds: out.Checkpoint.AgeSeconds}
			l, ok := found[[2]string{key, kind}]
			limit := v.freshLimit(kind, l.typ, opts.MaxAge)
			fr.LimitSeconds = int64(limit / time.Second)
			switch {
			case limit <= 0:
				fr.Reason = "no age limit: give --max-age or the policy's freshness section"
			case !ok:
				fr.Reason = fmt.Sprintf("no %s record about %s in the log (checkpoint size %d)", kind, key, cp.Size)
			default:
				fr.Found, fr.Type, fr.Entry, fr.Time = true, l.typ, l.index, evidence.FormatTime(l.pred.RecordTime())
				age := opts.Now.Sub(l.pred.RecordTime())
				fr.AgeSeconds = int64(age / time.Second)
				switch {
				case age < -maxClockSkew:
					fr.Reason = fmt.Sprintf("entry %d at %s is %s in the future", l.index, fr.Time, age2(-age))
				case !cpTime.IsZero() && opts.Now.Sub(cpTime) < -maxClockSkew:
					fr.Reason = fmt.Sprintf("the checkpoint's cosignature time %s (by %s) is in the future", evidence.FormatTime(cpTime), witness)
				case cpTime.IsZero():
					fr.Reason = "checkpoint age unknown: no cosignature by a witness the trust file lists for the log (C2SP checkpoints carry no time)"
				case opts.Now.Sub(cpTime) > limit:
					fr.Reason = fmt.Sprintf("checkpoint is %s old (cosigned by %s at %s), limit %s", age2(opts.Now.Sub(cpTime)), witness, evidence.FormatTime(cpTime), age2(limit))
				case age > limit:
					fr.Reason = fmt.Sprintf("entry %d at %s is %s old, limit %s", l.index, fr.Time, age2(age), age2(limit))
				default:
					fr.Fresh = true
					fr.Reason = fmt.Sprintf("entry %d at %s is %s old, in a checkpoint %s old; limit %s", l.index, fr.Time, age2(age), age2(opts.Now.Sub(cpTime)), age2(limit))
				}
			}
			out.Fresh = out.Fresh && fr.Fresh
			out.Records = append(out.Records, fr)
		}
	}
	return out, nil
}

// freshLimit is the limit of a kind: the policy's per-type limit, else
// maxAge, else the policy's maxAge.
func (v *Verifier) freshLimit(kind, typ string, maxAge time.Duration) time.Duration {
	f := v.policy.Freshness
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

// openTimedCheckpoint opens a checkpoint under a trusted log, with its
// witness quorum, and returns the latest time among the verified
// cosignatures of the log's trusted witnesses (zero if none).
func (v *Verifier) openTimedCheckpoint(raw []byte) (checkpoint.Checkpoint, time.Time, string, error) {
	var errs []error
	for _, l := range v.trust.logs {
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
