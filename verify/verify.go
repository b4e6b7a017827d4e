// Package verify checks rotation evidence bundles offline.
//
// A Verifier is built once from trust material (a trust file) and a policy, and
// checks bundles with VerifyBundle. It is pure: no network, no cgo, no clock
// beyond the times inside the evidence, and it never changes its inputs. Every
// check is reported by name with PASS, FAIL or SKIP and a reason; any error or
// panic yields a failed result, never a stale pass.
//
// # What is verified
//
// A bundle file (docs/bundle-format.md) holds a manifest signed by the
// operator (a DSSE envelope) and the entries beside it. In order:
//
//   - bundle.signature: the manifest is signed by a bundle signer of the trust
//     file, and only then is it decoded (bundle.format); each entry is checked
//     against the manifest's leaf hash before anything in it is trusted.
//   - checkpoint.signature: the checkpoint is a C2SP signed note by a trusted log
//     key, with the log's origin, in strict tlog-checkpoint syntax.
//   - entries.inclusion: each entry's RFC 6962 leaf hash is included at its index
//     in the checkpoint's tree.
//   - entries.signature: each entry is a DSSE envelope of an in-toto Statement v1
//     signed by a trusted collector allowed that predicate type, or by a principal
//     acting for itself (lifecycle events only); a lifecycle event only by a
//     signer holding a role the policy's authority allows for its type.
//   - entries.binding: each entry names the rotation's old or new key (ID and key
//     digest), its time is inside the rotation window, and a lifecycle event with
//     a rotation ID names this rotation.
//   - checkpoint.consistency: the checkpoint is consistent with an earlier trusted
//     one (--since) and with any earlier checkpoint the bundle carries.
//   - rotation.structure: request, creation, approvals by distinct principals
//     (none the requester), smoke test, promotion after the approvals, old key
//     disabled after promotion.
//   - log.completeness: with a tlog-tiles copy of the log, every entry about the
//     rotation's keys in its window is in the bundle.
package verify

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/kmsperm"
)

// Sentinel errors of verification; each failed check wraps one of these or one
// of the evidence and checkpoint sentinels.
var (
	// ErrInput: the input is not a bundle file at all (exit 2 in the CLI).
	ErrInput = errors.New("unreadable bundle")
	// ErrInclusion: an inclusion proof does not verify.
	ErrInclusion = errors.New("inclusion proof")
	// ErrNotAllowed: the signer may not sign this predicate type or act for this actor.
	ErrNotAllowed = errors.New("signer not allowed")
	// ErrBinding: a record is not about this rotation.
	ErrBinding = errors.New("record not bound to rotation")
	// ErrConsistency: two checkpoints are not proven consistent (split view or rollback).
	ErrConsistency = errors.New("checkpoint consistency")
	// ErrStructure: the rotation's events break a rule.
	ErrStructure = errors.New("rotation rule")
	// ErrIncomplete: the log has records about the rotation the bundle omits.
	ErrIncomplete = errors.New("bundle incomplete")
	// ErrPanic: verification panicked; the bundle is not verified.
	ErrPanic = errors.New("verifier panic")
)

// Verifier checks bundles against fixed trust material and policy.
type Verifier struct {
	trust  *Trust
	policy *Policy
}

// New returns a Verifier. Both arguments are required.
func New(trust *Trust, policy *Policy) (*Verifier, error) {
	if trust == nil || policy == nil {
		return nil, errors.New("verify: trust and policy are required")
	}
	// Validate a copy: a Policy built in Go gets the defaults ParsePolicy fills
	// (an unset minApprovals is 2, never 0), and the caller's value is unchanged.
	p := *policy
	p.Rotation.ApproverRoles = slices.Clone(p.Rotation.ApproverRoles)
	p.cloneRules()
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &Verifier{trust: trust, policy: &p}, nil
}

// Options are per-call inputs.
type Options struct {
	// Since is an earlier checkpoint the auditor already trusts (signed note). The
	// bundle's checkpoint must be proven consistent with it.
	Since []byte
	// Log is a tlog-tiles copy of the log (e.g. os.DirFS of the embedded log
	// directory). With it, the rules read every record the copy holds about
	// the rotation's keys or naming the rotation, up to the copy's own
	// checkpoint (proven consistent with the bundle's), and log.completeness
	// fails if the bundle omits a record it must carry or one that changes
	// any check's outcome. Residency claims in force are read from it too.
	Log fs.FS
}

// verifiedEntry is an entry whose envelope, statement and inclusion were checked.
type verifiedEntry struct {
	index  uint64
	signer *Holder
	keys   []evidence.KeyRef
	pred   evidence.Predicate
	ok     bool
	// leaf is the hex leaf hash of a break-glass declaration, which
	// break-glass-confirm events name (break-glass.quorum); "" otherwise.
	leaf string
	// receiptErr is the result of verifying a signing receipt's signature
	// (receipts.signature), done by the entry workers so that it runs in
	// parallel with decoding.
	receiptErr error
	// duties is kmsperm.AdminSigners of a key-policy snapshot
	// (policy.separation-of-duties), if dutiesDone, also done by the workers.
	duties     kmsperm.Duties
	dutiesErr  error
	dutiesDone bool
	// rel is how the record relates to the rotation.
	rel evidence.Relation
}

// VerifyBundle verifies raw, the bytes of a bundle file. It returns an error
// wrapping ErrInput only if raw is not a bundle file at all (before its manifest
// is authenticated); every other problem is a failed check in the result.
func (v *Verifier) VerifyBundle(raw []byte, opts Options) (res *Result, err error) {
	if len(raw) > evidence.MaxBundleBytes {
		return nil, fmt.Errorf("%w: too large: %d bytes, limit %d", ErrInput, len(raw), evidence.MaxBundleBytes)
	}
	return v.VerifyBundleFrom(bytes.NewReader(raw), opts)
}

// VerifyBundleFrom is VerifyBundle reading the bundle file from a stream, so
// that it is never held in memory whole.
func (v *Verifier) VerifyBundleFrom(in io.Reader, opts Options) (res *Result, err error) {
	res = &Result{}
	defer func() {
		if p := recover(); p != nil {
			res.fail("verifier", fmt.Errorf("%w: %v\n%s", ErrPanic, p, debug.Stack()))
			res.Verified = false
			err = nil
		}
	}()
	if err := v.verify(in, opts, res); err != nil {
		return nil, err
	}
	res.Verified = res.allPassed(v.policy.Require)
	return res, nil
}

// alwaysRequired are the checks without which no bundle is verified.
var alwaysRequired = []string{
	CheckBundleSignature, CheckBundleFormat, CheckCheckpointSignature,
	CheckEntriesSignature, CheckEntriesInclusion, CheckEntriesBinding,
	CheckRotationStructure,
}

// allPassed reports whether no check failed and every required check (the
// always required ones and the policy's require list) passed. It lists the
// checks that did not run in r.Skipped, so that a verdict never hides what
// it does not cover.
func (r *Result) allPassed(require []string) bool {
	r.Skipped = nil
	ok := true
	for _, c := range r.Checks {
		switch c.Status {
		case Fail:
			ok = false
		case Skip:
			r.Skipped = append(r.Skipped, c.Name+": "+c.Reason)
		}
	}
	for _, n := range append(slices.Clone(alwaysRequired), require...) {
		if c := r.Check(n); c == nil || c.Status != Pass {
			ok = false
		}
	}
	return ok
}

// errStop ends reading a bundle whose failure is already recorded.
var errStop = errors.New("stop")

// run is one verification: the manifest, then the entries as they stream in.
type run struct {
	v        *Verifier
	m        *evidence.Manifest
	cp       checkpoint.Checkpoint
	log      logKey
	jobs     chan job
	wg       sync.WaitGroup
	out      []verifiedEntry
	incErr   []error
	sigErr   []error
	bindErr  []error
	panicked any
	once     sync.Once
	// keys are the receipt keys parsed so far (receipts.signature).
	keys receiptKeys
	// cosigners are the trusted witnesses that cosigned the checkpoint.
	cosigners []string
}

type job struct {
	i int
	e evidence.Entry
}

func (v *Verifier) verify(in io.Reader, opts Options, res *Result) error {
	skipRest := func(after string) {
		for _, n := range append([]string{CheckBundleFormat, CheckCheckpointSignature, CheckEntriesInclusion, CheckEntriesSignature, CheckEntriesBinding, CheckConsistency, CheckRotationStructure, CheckLogCompleteness, CheckKeysHardware}, ruleChecks...) {
			if res.Check(n) == nil {
				res.skip(n, "not run: "+after+" failed")
			}
		}
	}
	r := &run{v: v}
	authenticated := false
	rerr := evidence.ReadBundleFrom(in, evidence.BundleReader{
		// Authenticate before parsing: only the exact manifest the operator
		// signed is decoded, and each entry is checked against it.
		Authenticate: func(env *evidence.Envelope) error {
			// keytrail always names the bundle signer's key; a signature without
			// its keyid would be a value a bundle could lose unnoticed.
			for i, sig := range env.Signatures {
				if sig.KeyID == "" {
					res.fail(CheckBundleSignature, fmt.Errorf("signatures[%d]: %w: a bundle signature must carry its keyid", i, evidence.ErrUnknownSigner))
					return errStop
				}
			}
			signers, err := env.Verify(evidence.ManifestMediaType, v.trust.bundles)
			if err != nil {
				res.fail(CheckBundleSignature, err)
				return errStop
			}
			authenticated = true
			res.pass(CheckBundleSignature, "signed by bundle signer "+v.trust.bundles.byDigest[signers[0].Digest].ID)
			return nil
		},
		Manifest: func(m *evidence.Manifest) error {
			r.m = m
			res.Rotation = m.Rotation.ID
			cp, log, cosigners, err := v.openCheckpoint([]byte(m.Checkpoint))
			if err != nil {
				res.fail(CheckCheckpointSignature, err)
				return errStop
			}
			r.cp, r.log, r.cosigners = cp, log, cosigners
			r.start()
			return nil
		},
		Entry: func(i int, e evidence.Entry) error {
			r.jobs <- job{i, e}
			return nil
		},
	})
	if r.jobs != nil {
		close(r.jobs)
		r.wg.Wait()
		if r.panicked != nil {
			panic(r.panicked)
		}
	}
	switch {
	case rerr == nil:
	case !authenticated && res.Check(CheckBundleSignature) == nil:
		return fmt.Errorf("%w: %w", ErrInput, rerr)
	case errors.Is(rerr, errStop):
		skipRest(res.Checks[len(res.Checks)-1].Name)
		return nil
	default:
		// Authenticated, but the rest of the file is malformed.
		res.fail(CheckBundleFormat, rerr)
		skipRest(CheckBundleFormat)
		return nil
	}
	m := r.m
	res.pass(CheckBundleFormat, fmt.Sprintf("rotation %s, %d entries", m.Rotation.ID, len(m.Entries)))
	cpReason := "signed by log " + r.log.origin + " at size " + fmt.Sprint(r.cp.Size)
	if len(r.cosigners) > 0 {
		cpReason += "; cosigned by " + strings.Join(r.cosigners, ", ")
	}
	res.pass(CheckCheckpointSignature, cpReason)
	entries := r.report(res)
	v.checkConsistency(m, r.cp, r.log, opts, res)
	if entries == nil {
		for _, n := range append([]string{CheckRotationStructure, CheckKeysHardware, CheckLogCompleteness}, ruleChecks...) {
			res.skip(n, "not run: entries failed verification")
		}
		return nil
	}
	// The rules read what the log holds, not the operator's selection: with
	// a log copy, every record it holds about the rotation's keys or naming
	// the rotation, whatever its time or whether the bundle carries it
	// (docs/policy.md, "What the rules read").
	var scan *logScan
	var scanErr error
	if opts.Log != nil {
		var since *checkpoint.Checkpoint
		if opts.Since != nil {
			if c, err := r.log.open(opts.Since); err == nil { // else checkpoint.consistency fails
				since = &c
			}
		}
		scan, scanErr = v.scanLog(m, r.cp, opts.Since, since, r.log, opts.Log)
	}
	all := gather(entries, scan)
	rules := &Result{}
	v.runRules(m.Rotation, all, r.log, rules)
	res.Hardware = rules.Hardware
	for _, c := range rules.Checks {
		res.Checks = append(res.Checks, c)
		if c.Name != CheckKeysHardware {
			continue
		}
		switch {
		case opts.Log == nil:
			res.skip(CheckLogCompleteness, "no log given (--log DIR)")
		case scanErr != nil:
			res.fail(CheckLogCompleteness, scanErr)
		default:
			// Would the bundle alone have told the same? Any check the
			// records it lacks change is a failure of the bundle.
			alone := &Result{}
			v.runRules(m.Rotation, gather(entries, nil), r.log, alone)
			var changed []string
			for _, c := range rules.Checks {
				if a := alone.Check(c.Name); a == nil || a.Status != c.Status {
					changed = append(changed, c.Name)
				}
			}
			v.checkCompleteness(m, r.cp, scan, claimPlaces(m.Rotation, r.log, all), changed, res)
		}
	}
	return nil
}

// gather is the evidence the rules read: the bundle's verified entries and,
// with a log scan, every record of the log copy that relates to the rotation
// (or is a residency claim) and that the bundle does not carry, in index
// order.
func gather(entries []verifiedEntry, scan *logScan) []verifiedEntry {
	if scan == nil {
		return entries
	}
	have := make(map[uint64]bool, len(entries))
	for _, e := range entries {
		have[e.index] = true
	}
	all := slices.Clone(entries)
	for _, e := range scan.records {
		if !have[e.index] {
			all = append(all, e)
		}
	}
	slices.SortFunc(all, func(a, b verifiedEntry) int { return cmp.Compare(a.index, b.index) })
	return all
}

// runRules runs rotation.structure, keys.hardware and the policy rules on
// the evidence, in that order, into res.
func (v *Verifier) runRules(r evidence.Rotation, all []verifiedEntry, log logKey, res *Result) {
	window := make([]verifiedEntry, 0, len(all))
	for _, e := range all {
		if e.rel.Carried() {
			window = append(window, e)
		}
	}
	v.checkStructure(r, all, res)
	v.checkHardware(r, window, res)
	v.checkRules(r, all, log, res)
}

// start sizes the results and starts the workers that check entries in
// parallel as they are decoded.
func (r *run) start() {
	n := len(r.m.Entries)
	r.out = make([]verifiedEntry, n)
	r.incErr, r.sigErr, r.bindErr = make([]error, n), make([]error, n), make([]error, n)
	r.jobs = make(chan job, 256)
	for range runtime.GOMAXPROCS(0) {
		r.wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					r.once.Do(func() { r.panicked = p })
					for range r.jobs { // let the reader finish
					}
				}
			}()
			for j := range r.jobs {
				e := &j.e
				r.incErr[j.i] = checkInclusion(r.m, j.i, e, r.cp)
				r.out[j.i], r.sigErr[j.i], r.bindErr[j.i] = r.v.checkEntry(e, r.m.Rotation)
				if ve := &r.out[j.i]; ve.ok {
					ve.receiptErr = verifyReceipt(ve, &r.keys)
					snapshotDuties(ve)
				}
			}
		})
	}
}

// report turns the per-entry results into the three entry checks. It returns
// the verified entries in manifest order, or nil if any failed.
func (r *run) report(res *Result) []verifiedEntry {
	var inc, sig, bind failures
	for i := range r.m.Entries {
		if r.incErr[i] != nil {
			inc.add(r.incErr[i])
		}
		if r.sigErr[i] != nil {
			sig.add(r.sigErr[i])
		}
		if r.bindErr[i] != nil {
			bind.add(r.bindErr[i])
		}
	}
	n := len(r.m.Entries)
	if n == 0 {
		err := fmt.Errorf("%w: the bundle has no entries", ErrBinding)
		res.fail(CheckEntriesInclusion, err)
		res.fail(CheckEntriesSignature, err)
		res.fail(CheckEntriesBinding, err)
		return nil
	}
	okInc := inc.report(res, CheckEntriesInclusion, fmt.Sprintf("%d entries included in the tree of size %d", n, r.cp.Size))
	okSig := sig.report(res, CheckEntriesSignature, fmt.Sprintf("%d envelopes signed by trusted collectors or principals", n))
	okBind := bind.report(res, CheckEntriesBinding, fmt.Sprintf("%d records about the rotation's keys inside its window", n))
	if !okInc || !okSig || !okBind {
		return nil
	}
	return r.out
}

// openCheckpoint verifies a checkpoint under whichever trusted log signed
// it, and returns the trusted witnesses that cosigned it.
func (v *Verifier) openCheckpoint(signed []byte) (checkpoint.Checkpoint, logKey, []string, error) {
	var errs []error
	for _, l := range v.trust.logs {
		cp, cosigners, err := l.openCosigned(signed)
		if err == nil {
			return cp, l, cosigners, nil
		}
		errs = append(errs, fmt.Errorf("log %s: %w", l.origin, err))
	}
	return checkpoint.Checkpoint{}, logKey{}, nil, errors.Join(errs...)
}

// checkInclusion checks entry i against the manifest's leaf hash, then its
// inclusion proof against the checkpoint.
func checkInclusion(m *evidence.Manifest, i int, e *evidence.Entry, cp checkpoint.Checkpoint) error {
	leaf := evidence.LeafHash(e.Envelope)
	if !bytes.Equal(leaf, m.Entries[i].LeafHash) {
		return fmt.Errorf("entry %d: %w: %w", e.Index, ErrInclusion, evidence.ErrLeafHash)
	}
	if e.Index >= cp.Size {
		return fmt.Errorf("entry %d: %w: index %d is not below tree size %d", e.Index, ErrInclusion, e.Index, cp.Size)
	}
	if err := proof.VerifyInclusion(proofHasher{rfc6962.DefaultHasher}, e.Index, cp.Size, leaf, e.InclusionProof, cp.Root); err != nil {
		return fmt.Errorf("entry %d: %w: %w", e.Index, ErrInclusion, err)
	}
	return nil
}

// proofHasher is rfc6962.DefaultHasher (RFC 6962 §2.1, SHA-256) with
// HashChildren computed on a stack buffer: an inclusion proof in a log of a
// million leaves hashes 20 pairs, and the library's hasher allocates a hash
// state, a buffer and a result for each. The proof itself is still checked
// by the merkle library (proof.VerifyInclusion).
type proofHasher struct{ *rfc6962.Hasher }

// HashChildren is SHA-256(0x01 || l || r), exactly as rfc6962.Hasher's.
func (h proofHasher) HashChildren(l, r []byte) []byte {
	if len(l) != sha256.Size || len(r) != sha256.Size {
		return h.Hasher.HashChildren(l, r)
	}
	var b [1 + 2*sha256.Size]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], l)
	copy(b[1+sha256.Size:], r)
	sum := sha256.Sum256(b[:])
	return sum[:]
}

// checkEntry authenticates one envelope, then parses and binds its statement.
func (v *Verifier) checkEntry(e *evidence.Entry, r evidence.Rotation) (ve verifiedEntry, sigErr, bindErr error) {
	ve.index = e.Index
	h, st, pred, err := v.trust.AuthenticateRecord(e.Envelope)
	if err == nil {
		err = v.authorize(h, pred) // the policy's authority (authority.go)
	}
	if err != nil {
		return ve, fmt.Errorf("entry %d: %w", e.Index, err), nil
	}
	// Keep what the rules need, not the statement's bytes.
	ve.signer, ve.keys, ve.pred, ve.leaf = h, st.Keys(), pred, declarationLeaf(pred, e.Envelope)
	ve.rel = r.Relate(ve.keys, pred)
	if err := bind(ve, r); err != nil {
		return ve, nil, fmt.Errorf("entry %d: %w: %w", e.Index, ErrBinding, err)
	}
	ve.ok = true
	return ve, nil, nil
}

// AuthenticateRecord checks one record envelope (its exact bytes) the way the
// verifier checks every bundle entry: a strict DSSE envelope of an in-toto
// statement, exactly one signature, by a collector or principal of the trust
// file, allowed to sign the statement's predicate type (and, for lifecycle
// events, to act for the event's actor). Only the signed payload is parsed.
// It returns the signer, the statement and its predicate. Errors wrap
// evidence.ErrMalformed and the other envelope errors of package evidence,
// or ErrNotAllowed.
func (t *Trust) AuthenticateRecord(raw []byte) (*Holder, *evidence.Statement, evidence.Predicate, error) {
	env, err := evidence.ParseEnvelope(raw, evidence.MaxRecordBytes)
	if err != nil {
		return nil, nil, nil, err
	}
	return t.AuthenticateEnvelope(env)
}

// AuthenticateEnvelope is AuthenticateRecord on an envelope already decoded
// by evidence.ParseEnvelope.
func (t *Trust) AuthenticateEnvelope(env *evidence.Envelope) (*Holder, *evidence.Statement, evidence.Predicate, error) {
	keys, err := env.Verify(evidence.PayloadType, t.records)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(keys) != 1 {
		return nil, nil, nil, fmt.Errorf("%w: %d signatures, want exactly one record signer", ErrNotAllowed, len(keys))
	}
	st, pred, err := evidence.ParseStatement(env.Payload)
	if err != nil {
		return nil, nil, nil, err
	}
	h := t.recordSigner(keys[0])
	if !h.May(st.PredicateType) {
		return nil, nil, nil, fmt.Errorf("%w: %s %s may not sign %s", ErrNotAllowed, h.Kind, h.ID, st.PredicateType)
	}
	if ev, ok := pred.(*evidence.LifecycleEvent); ok && h.Kind == KindPrincipal && ev.Actor.ID != h.ID {
		return nil, nil, nil, fmt.Errorf("%w: principal %s signed an event whose actor is %s", ErrNotAllowed, h.ID, ev.Actor.ID)
	}
	// A request or an approval counts for its actor (the requester may not
	// approve; approvers must be distinct), so only that principal may sign it:
	// one collector key must not stand for several people (ATTACKS.md case 7).
	if ev, ok := pred.(*evidence.LifecycleEvent); ok && (ev.Event == evidence.EventApprove || ev.Event == evidence.EventRequest) && h.Kind != KindPrincipal {
		return nil, nil, nil, fmt.Errorf("%w: %s %s signed a %s event by %s; only that person may sign it", ErrNotAllowed, h.Kind, h.ID, ev.Event, ev.Actor.ID)
	}
	return h, st, pred, nil
}

func onlyAbout(keys []evidence.KeyRef, k evidence.KeyRef) bool {
	return len(keys) == 1 && keys[0] == k
}

// bind checks that a verified record belongs in the rotation's bundle: it
// names the rotation's keys consistently (evidence.Rotation.Relate), at a
// time inside the window or as a lifecycle event of the rotation; or it is a
// residency claim of a residency authority, which the residency rule reads
// whatever its time.
func bind(ve verifiedEntry, r evidence.Rotation) error {
	if _, ok := ve.pred.(*evidence.ResidencyClaim); ok && ve.signer.Kind == KindAuthority {
		return nil
	}
	x := ve.rel
	switch {
	case x.Conflict != "":
		return errors.New(x.Conflict)
	case !x.Key:
		return fmt.Errorf("names neither %s nor %s", r.OldKey.ID, r.NewKey.ID)
	case !x.InWindow && !x.Event:
		// The rotation's own events belong whatever their time.
		return fmt.Errorf("time %s is outside the window [%s, %s]", evidence.FormatTime(ve.pred.RecordTime()), r.Window.Start, r.Window.End)
	}
	// A lifecycle event of another rotation belongs here only as the old
	// key's history (its creation and promotion start its service, which
	// rotation.window measures); it never counts for this rotation's rules.
	if ev, ok := ve.pred.(*evidence.LifecycleEvent); ok && ev.RotationID != "" && ev.RotationID != r.ID && !onlyAbout(ve.keys, r.OldKey) {
		return fmt.Errorf("%s event belongs to rotation %q, not %q", ev.Event, ev.RotationID, r.ID)
	}
	return nil
}
