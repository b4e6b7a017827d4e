package verify

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/kmsperm"
	"github.com/keytrail/keytrail/verify/receipt"
)

// The policy rules beyond the rotation's structure (docs/policy.md), in the
// order they run after rotation.structure.
const (
	CheckRotationWindow          = "rotation.window"
	CheckReceiptsSignature       = "receipts.signature"
	CheckReceiptsBeforePromotion = "receipts.before-promotion"
	CheckReceiptsAfterDisable    = "receipts.after-disable"
	CheckDeletionRetention       = "deletion.retention"
	CheckBreakGlassQuorum        = "break-glass.quorum"
	CheckSeparationOfDuties      = "policy.separation-of-duties"
	CheckResidency               = "residency"
	CheckKeysLifecycle           = "keys.lifecycle"
)

// ruleChecks lists them, for skipping when the entries did not verify.
var ruleChecks = []string{
	CheckRotationWindow, CheckReceiptsSignature, CheckReceiptsBeforePromotion, CheckReceiptsAfterDisable,
	CheckDeletionRetention, CheckBreakGlassQuorum, CheckSeparationOfDuties, CheckResidency,
	CheckKeysLifecycle,
}

// Sentinels of the policy rules; each failure of one of the checks above
// wraps one of these (or ErrResidency).
var (
	// ErrRotationWindow: the old key served shorter or longer than its class allows.
	ErrRotationWindow = errors.New("rotation window")
	// ErrReceipt: a signing receipt does not verify under its key.
	ErrReceipt = errors.New("signing receipt")
	// ErrReceiptTiming: a key signed when it must not have.
	ErrReceiptTiming = errors.New("signature out of its key's service")
	// ErrRetention: a key was destroyed before its retention ran out.
	ErrRetention = errors.New("deletion retention")
	// ErrBreakGlass: a break-glass event lacks its quorum or reason.
	ErrBreakGlass = errors.New("break-glass")
	// ErrSeparationOfDuties: a principal both administers and signs with a key.
	ErrSeparationOfDuties = errors.New("separation of duties")
	// ErrKeyLifecycle: a key was used or revived after its retirement.
	ErrKeyLifecycle = errors.New("key lifecycle")
	// ErrKeyClass: the rotation's key class is not in the policy.
	ErrKeyClass = errors.New("unknown key class")
)

// rec is a verified entry with its time, for messages.
type rec struct {
	verifiedEntry
	at time.Time
}

func (r rec) where() string {
	return fmt.Sprintf("entry %d at %s", r.index, evidence.FormatTime(r.at))
}

// rules is what the policy rules read from the verified entries.
type rules struct {
	r          evidence.Rotation
	all        []rec // every record
	events     []rec // lifecycle events, any rotation
	receipts   []rec
	snapshots  []rec
	requestOld *rec // this rotation's single request about the old key
	promoteNew *rec // this rotation's single promote of the new key
	disableOld *rec // this rotation's single disable of the old key
}

func newRules(r evidence.Rotation, entries []verifiedEntry) *rules {
	x := &rules{r: r}
	var requests, promotes, disables []rec
	for _, e := range entries {
		re := rec{e, e.pred.RecordTime()}
		x.all = append(x.all, re)
		switch p := e.pred.(type) {
		case *evidence.LifecycleEvent:
			x.events = append(x.events, re)
			if p.RotationID == r.ID && p.Event == evidence.EventRequest && e.keys[0] == r.OldKey {
				requests = append(requests, re)
			}
			if p.RotationID == r.ID && p.Event == evidence.EventPromote && e.keys[0] == r.NewKey {
				promotes = append(promotes, re)
			}
			if p.RotationID == r.ID && p.Event == evidence.EventDisable && e.keys[0] == r.OldKey {
				disables = append(disables, re)
			}
		case *evidence.SigningReceipt:
			x.receipts = append(x.receipts, re)
		case *evidence.KeyPolicySnapshot:
			x.snapshots = append(x.snapshots, re)
		}
	}
	// Several are a rotation.structure failure; the rules then do not guess.
	if len(requests) == 1 {
		x.requestOld = &requests[0]
	}
	if len(promotes) == 1 {
		x.promoteNew = &promotes[0]
	}
	if len(disables) == 1 {
		x.disableOld = &disables[0]
	}
	return x
}

// checkRules runs the policy rules on the evidence (see gather): the rules
// of a key's whole life (rotation.window, receipts.before-promotion,
// receipts.after-disable, deletion.retention, keys.lifecycle) read every
// record; the others read the records inside the rotation's window.
func (v *Verifier) checkRules(r evidence.Rotation, all []verifiedEntry, log logKey, res *Result) {
	x := newRules(r, all)
	v.checkRotationWindow(x, res)
	checkReceiptSignatures(x, res)
	checkBeforePromotion(x, res)
	checkAfterDisable(x, res)
	v.checkRetention(x, res)
	v.checkBreakGlass(x, res)
	v.checkSeparationOfDuties(x, res)
	v.checkResidency(r, all, log, res)
	checkKeysLifecycle(x, res)
}

// keyClass returns the policy of the rotation's key class, or an error
// wrapping ErrKeyClass if the policy does not list it: an unknown class
// fails every check that depends on it, never skips it (ATTACKS.md 37).
func (v *Verifier) keyClass(r evidence.Rotation) (*KeyClassPolicy, error) {
	c := v.policy.KeyClasses[r.KeyClass]
	if c == nil {
		return nil, fmt.Errorf("%w: the policy's keyClasses do not list %q (listed: %v)", ErrKeyClass, r.KeyClass, slices.Sorted(maps.Keys(v.policy.KeyClasses)))
	}
	return c, nil
}

// checkRotationWindow: the old key's service, from its promotion (or, with
// none in the bundle, its creation) to this rotation's disable of it, lies
// within the class's rotationWindow. Several promotions (or, without one,
// several creations) before the disable fail.
func (v *Verifier) checkRotationWindow(x *rules, res *Result) {
	class, err := v.keyClass(x.r)
	if err != nil {
		res.fail(CheckRotationWindow, err)
		return
	}
	if class.RotationWindow == nil {
		res.skip(CheckRotationWindow, fmt.Sprintf("the policy gives key class %q no rotationWindow", x.r.KeyClass))
		return
	}
	if x.disableOld == nil {
		res.fail(CheckRotationWindow, fmt.Errorf("%w: no single disable of %s in rotation %s (see rotation.structure)", ErrRotationWindow, x.r.OldKey.ID, x.r.ID))
		return
	}
	// Several candidates for the start are ambiguous: one of them could be
	// a later event put there to shorten the service; none is chosen.
	var start *rec
	for _, typ := range []string{evidence.EventPromote, evidence.EventCreate} {
		var found []rec
		for _, e := range x.events {
			if e.pred.(*evidence.LifecycleEvent).Event == typ && e.keys[0] == x.r.OldKey && e.at.Before(x.disableOld.at) {
				found = append(found, e)
			}
		}
		if len(found) > 1 {
			list := make([]string, len(found))
			for i, e := range found {
				list[i] = e.where()
			}
			res.fail(CheckRotationWindow, fmt.Errorf("%w: %d %s events of %s before its disable (%s), want one: %s; the start of its service is ambiguous",
				ErrRotationWindow, len(found), typ, x.r.OldKey.ID, x.disableOld.where(), strings.Join(list, "; ")))
			return
		}
		if len(found) == 1 {
			start = &found[0]
			break
		}
	}
	if start == nil {
		res.fail(CheckRotationWindow, fmt.Errorf("%w: no promote or create event of %s before its disable (%s): the bundle's window must reach back to the key's promotion",
			ErrRotationWindow, x.r.OldKey.ID, x.disableOld.where()))
		return
	}
	served := x.disableOld.at.Sub(start.at)
	w := class.RotationWindow
	ev := start.pred.(*evidence.LifecycleEvent)
	msg := fmt.Sprintf("%s served %s, from its %s (%s) to its disable (%s); key class %s allows %s to %s",
		x.r.OldKey.ID, days(served), ev.Event, start.where(), x.disableOld.where(), x.r.KeyClass, days(time.Duration(w.Min)), days(time.Duration(w.Max)))
	if served < time.Duration(w.Min) || served > time.Duration(w.Max) {
		res.fail(CheckRotationWindow, fmt.Errorf("%w: %s", ErrRotationWindow, msg))
		return
	}
	res.pass(CheckRotationWindow, msg)
}

// days writes a duration in days (and hours when not whole).
func days(d time.Duration) string {
	n := d / (24 * time.Hour)
	switch rest := d - n*24*time.Hour; {
	case rest == 0:
		return fmt.Sprintf("%dd", n)
	case rest%time.Hour == 0:
		return fmt.Sprintf("%dd%dh", n, rest/time.Hour)
	default:
		return fmt.Sprintf("%dd%s", n, rest)
	}
}

// checkReceiptSignatures: every receipt verifies, in its scheme, under the
// public key it carries, whose SHA-256 is its subject's digest (checked when
// the statement was parsed), which is the rotation key's (entries.binding).
// Provider-sourced receipts carry no signature and are counted, not verified.
func checkReceiptSignatures(x *rules, res *Result) {
	var f failures
	verified, provider := 0, 0
	for _, e := range x.receipts {
		if !e.rel.Carried() {
			continue
		}
		p := e.pred.(*evidence.SigningReceipt)
		if p.Source != nil {
			provider++
			continue
		}
		if err := e.receiptErr; err != nil {
			f.add(fmt.Errorf("%w: receipt %s by %s (%s): %w", ErrReceipt, p.RequestID, e.keys[0].ID, e.where(), err))
			continue
		}
		verified++
	}
	if verified+provider+len(f.list) == 0 {
		res.skip(CheckReceiptsSignature, "no signing receipts in the rotation's window")
		return
	}
	f.report(res, CheckReceiptsSignature, fmt.Sprintf("receipts verified under their keys: %d; provider-sourced receipts, which carry no signature: %d", verified, provider))
}

// verifyReceipt verifies a verified entry's signing receipt, if it is one
// with a signature: in its scheme, under the public key it carries, whose
// digest ParseStatement has matched to the subject's.
// Each distinct key is parsed once per bundle (keys).
func verifyReceipt(ve *verifiedEntry, keys *receiptKeys) error {
	p, ok := ve.pred.(*evidence.SigningReceipt)
	if !ok || p.Source != nil {
		return nil
	}
	k, err := keys.parse(receipt.Scheme(p.Scheme), p.PublicKey)
	if err != nil {
		return err
	}
	st := &evidence.Statement{Type: evidence.StatementType, PredicateType: evidence.PredicateSigningReceipt, Subject: []evidence.Subject{ve.keys[0].Subject()}}
	_, err = receipt.VerifyStatement(k, st, p, receipt.Options{})
	return err
}

// checkBeforePromotion: the new key signs nothing before its promotion but
// the smoke tests: receipts whose request ID a smoke-test event of this
// rotation lists, no later than that event.
func checkBeforePromotion(x *rules, res *Result) {
	if x.promoteNew == nil {
		res.fail(CheckReceiptsBeforePromotion, fmt.Errorf("%w: no single promote of %s in rotation %s (see rotation.structure)", ErrReceiptTiming, x.r.NewKey.ID, x.r.ID))
		return
	}
	smoke := map[string]time.Time{}
	for _, e := range x.events {
		ev := e.pred.(*evidence.LifecycleEvent)
		if ev.Event == evidence.EventSmokeTest && ev.RotationID == x.r.ID && e.keys[0] == x.r.NewKey {
			for _, id := range ev.SmokeTest.RequestIDs {
				if t, ok := smoke[id]; !ok || e.at.After(t) {
					smoke[id] = e.at
				}
			}
		}
	}
	var f failures
	before, smokes := 0, 0
	for _, e := range x.receipts {
		p := e.pred.(*evidence.SigningReceipt)
		if e.keys[0] != x.r.NewKey || !e.at.Before(x.promoteNew.at) {
			continue
		}
		before++
		if t, ok := smoke[p.RequestID]; ok && !e.at.After(t) {
			smokes++
			continue
		}
		f.add(fmt.Errorf("%w: receipt %s by %s (%s) is before its promotion (%s) and is not a smoke test", ErrReceiptTiming, p.RequestID, x.r.NewKey.ID, e.where(), x.promoteNew.where()))
	}
	f.report(res, CheckReceiptsBeforePromotion, fmt.Sprintf("%s made %d signatures before its promotion (%s), all smoke tests", x.r.NewKey.ID, smokes, x.promoteNew.where()))
}

// checkAfterDisable: the old key signs nothing after its disable.
func checkAfterDisable(x *rules, res *Result) {
	if x.disableOld == nil {
		res.fail(CheckReceiptsAfterDisable, fmt.Errorf("%w: no single disable of %s in rotation %s (see rotation.structure)", ErrReceiptTiming, x.r.OldKey.ID, x.r.ID))
		return
	}
	var f failures
	n := 0
	for _, e := range x.receipts {
		p := e.pred.(*evidence.SigningReceipt)
		if e.keys[0] != x.r.OldKey {
			continue
		}
		n++
		if e.at.After(x.disableOld.at) {
			f.add(fmt.Errorf("%w: receipt %s by %s (%s) is after its disable (%s)", ErrReceiptTiming, p.RequestID, x.r.OldKey.ID, e.where(), x.disableOld.where()))
		}
	}
	f.report(res, CheckReceiptsAfterDisable, fmt.Sprintf("receipts of %s: %d, none after its disable (%s)", x.r.OldKey.ID, n, x.disableOld.where()))
}

// checkRetention: each destroy of a key follows a schedule-deletion of it by
// at least that event's retention; each retention is at least the policy's
// minRetention.
func (v *Verifier) checkRetention(x *rules, res *Result) {
	var scheduled, destroyed []rec
	for _, e := range x.events {
		switch e.pred.(*evidence.LifecycleEvent).Event {
		case evidence.EventScheduleDeletion:
			scheduled = append(scheduled, e)
		case evidence.EventDestroy:
			destroyed = append(destroyed, e)
		}
	}
	if len(scheduled)+len(destroyed) == 0 {
		res.skip(CheckDeletionRetention, "no schedule-deletion or destroy events in the bundle")
		return
	}
	var f failures
	retention := func(e rec) time.Duration {
		d, _ := time.ParseDuration(e.pred.(*evidence.LifecycleEvent).Retention) // validated when parsed
		return d
	}
	if v.policy.Deletion != nil {
		for _, s := range scheduled {
			if min := time.Duration(v.policy.Deletion.MinRetention); retention(s) < min {
				f.add(fmt.Errorf("%w: schedule-deletion of %s (%s) keeps it %s, the policy's minRetention is %s", ErrRetention, s.keys[0].ID, s.where(), days(retention(s)), days(min)))
			}
		}
	}
	for _, d := range destroyed {
		var last *rec
		for i, s := range scheduled {
			if s.keys[0] == d.keys[0] && !s.at.After(d.at) && (last == nil || s.at.After(last.at)) {
				last = &scheduled[i]
			}
		}
		switch {
		case last == nil:
			f.add(fmt.Errorf("%w: destroy of %s (%s) follows no schedule-deletion of it in the bundle", ErrRetention, d.keys[0].ID, d.where()))
		case d.at.Before(last.at.Add(retention(*last))):
			f.add(fmt.Errorf("%w: destroy of %s (%s) is %s after its schedule-deletion (%s), which keeps it %s", ErrRetention, d.keys[0].ID, d.where(), days(d.at.Sub(last.at)), last.where(), days(retention(*last))))
		}
	}
	f.report(res, CheckDeletionRetention, fmt.Sprintf("schedule-deletion events: %d, destroy events: %d, each after its retention", len(scheduled), len(destroyed)))
}

// checkSeparationOfDuties: in every key-policy snapshot in the bundle, no
// principal both administers the key's access and signs with the key
// (kmsperm.AdminSigners). A principal holding a role whose permissions are
// unknown fails closed.
func (v *Verifier) checkSeparationOfDuties(x *rules, res *Result) {
	var f failures
	x.snapshots = slices.DeleteFunc(slices.Clone(x.snapshots), func(e rec) bool { return !e.rel.Carried() })
	if v.policy.Rotation.RequirePolicySnapshots {
		// The snapshot in force when each key's part begins must be in the
		// bundle: the old key's at the rotation's request, the new key's at
		// its promotion.
		for _, need := range []struct {
			k     evidence.KeyRef
			event string
			at    *rec
		}{{x.r.OldKey, evidence.EventRequest, x.requestOld}, {x.r.NewKey, evidence.EventPromote, x.promoteNew}} {
			if !slices.ContainsFunc(x.snapshots, func(e rec) bool { return e.keys[0] == need.k && (need.at == nil || !e.at.After(need.at.at)) }) {
				when := "in the bundle"
				if need.at != nil {
					when = fmt.Sprintf("at or before its %s (%s)", need.event, need.at.where())
				}
				f.add(fmt.Errorf("%w: no key-policy snapshot of %s %s (policy: requirePolicySnapshots)", ErrSeparationOfDuties, need.k.ID, when))
			}
		}
	} else if len(x.snapshots) == 0 {
		res.skip(CheckSeparationOfDuties, "no key-policy snapshots in the bundle")
		return
	}
	for _, e := range x.snapshots {
		p := e.pred.(*evidence.KeyPolicySnapshot)
		d, err := e.duties, e.dutiesErr
		if !e.dutiesDone {
			d, err = kmsperm.AdminSigners(p.Provider, p.Bindings, p.Denies)
		}
		if err == nil && len(d.Conflicts) == 0 && len(d.Undetermined) == 0 {
			continue
		}
		what := fmt.Sprintf("policy of %s (%s, key-policy snapshot %s)", e.keys[0].ID, p.Resource.Name, e.where())
		if err != nil {
			f.add(fmt.Errorf("%w: %s: %w", ErrSeparationOfDuties, what, err))
			continue
		}
		for _, c := range d.Conflicts {
			cond := ""
			if c.Conditional {
				cond = " (under a condition)"
			}
			f.add(fmt.Errorf("%w: %s: %s both administers the key (%s) and signs with it (%s)%s", ErrSeparationOfDuties, what, c.Principal, strings.Join(c.Administers, ", "), strings.Join(c.Signs, ", "), cond))
		}
		for _, u := range d.Undetermined {
			f.add(fmt.Errorf("%w: %s: %s holds roles whose permissions are unknown (%s), so it may both administer and sign", ErrSeparationOfDuties, what, u.Principal, strings.Join(u.Permissions, ", ")))
		}
	}
	f.report(res, CheckSeparationOfDuties, fmt.Sprintf("key-policy snapshots: %d; in none does a principal both administer and sign", len(x.snapshots)))
}

// revivals are the lifecycle events that put a key back into service or
// widen who may use it: none may follow the old key's disable.
var revivals = []string{
	evidence.EventEnable, evidence.EventPromote, evidence.EventGrant, evidence.EventRotateMaterial,
	evidence.EventCreate, evidence.EventSmokeTest, evidence.EventBreakGlass,
}

// checkKeysLifecycle is keys.lifecycle, over every record about the keys
// (with a log copy, the whole log's): after this rotation's disable of the
// old key nothing revives it (revivals; its signatures are
// receipts.after-disable's), and after the first destroy of either key
// nothing is recorded about that key at a later time but another destroy.
func checkKeysLifecycle(x *rules, res *Result) {
	if x.disableOld == nil {
		res.fail(CheckKeysLifecycle, fmt.Errorf("%w: no single disable of %s in rotation %s (see rotation.structure)", ErrKeyLifecycle, x.r.OldKey.ID, x.r.ID))
		return
	}
	var f failures
	for _, e := range x.events {
		ev := e.pred.(*evidence.LifecycleEvent)
		if slices.Contains(e.keys, x.r.OldKey) && e.at.After(x.disableOld.at) && slices.Contains(revivals, ev.Event) {
			f.add(fmt.Errorf("%w: %s of %s by %s (%s) is after its disable (%s)", ErrKeyLifecycle, ev.Event, x.r.OldKey.ID, ev.Actor.ID, e.where(), x.disableOld.where()))
		}
	}
	destroyed := 0
	for _, k := range []evidence.KeyRef{x.r.OldKey, x.r.NewKey} {
		var destroy *rec
		for i, e := range x.events {
			if ev := e.pred.(*evidence.LifecycleEvent); ev.Event == evidence.EventDestroy && slices.Contains(e.keys, k) && (destroy == nil || e.at.Before(destroy.at)) {
				destroy = &x.events[i]
			}
		}
		if destroy == nil {
			continue
		}
		destroyed++
		for _, e := range x.all {
			if !slices.Contains(e.keys, k) || !e.at.After(destroy.at) {
				continue
			}
			if ev, ok := e.pred.(*evidence.LifecycleEvent); ok && ev.Event == evidence.EventDestroy {
				continue
			}
			f.add(fmt.Errorf("%w: %s (%s) is after its destroy (%s)", ErrKeyLifecycle, kindOf(e.verifiedEntry), e.where(), destroy.where()))
		}
	}
	f.report(res, CheckKeysLifecycle, fmt.Sprintf("nothing revives %s after its disable (%s); keys destroyed: %d, nothing recorded about them after", x.r.OldKey.ID, x.disableOld.where(), destroyed))
}

// snapshotDuties answers the separation-of-duties question for a verified
// entry that is a key-policy snapshot (policy.separation-of-duties), in the
// entry workers, so that it runs in parallel with the signature checks.
func snapshotDuties(ve *verifiedEntry) {
	if p, ok := ve.pred.(*evidence.KeyPolicySnapshot); ok {
		ve.duties, ve.dutiesErr = kmsperm.AdminSigners(p.Provider, p.Bindings, p.Denies)
		ve.dutiesDone = true
	}
}

// maxReceiptKeys bounds the keys one bundle's receiptKeys holds. A bundle's
// receipts are bound to the rotation's two keys (entries.binding), so a valid
// bundle needs two; beyond the bound, keys are parsed each time, as before.
const maxReceiptKeys = 16

// receiptKeys holds the receipt keys parsed in one verification, by scheme
// and exact SubjectPublicKeyInfo bytes: receipt.ParseKey of the same bytes
// always gives the same key (or error), and a receipt.Key is immutable and
// safe for concurrent use, so parsing each distinct key once changes nothing
// but the time. Safe for concurrent use; nil parses every time.
type receiptKeys struct {
	mu sync.Mutex
	m  map[receiptKeyID]parsedReceiptKey
}

type receiptKeyID struct {
	scheme receipt.Scheme
	spki   string
}

type parsedReceiptKey struct {
	k   *receipt.Key
	err error
}

func (c *receiptKeys) parse(scheme receipt.Scheme, spki []byte) (*receipt.Key, error) {
	if c == nil {
		return receipt.ParseKey(scheme, spki)
	}
	c.mu.Lock()
	got, ok := c.m[receiptKeyID{scheme, string(spki)}]
	c.mu.Unlock()
	if ok {
		return got.k, got.err
	}
	k, err := receipt.ParseKey(scheme, spki)
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[receiptKeyID]parsedReceiptKey)
	}
	if len(c.m) < maxReceiptKeys {
		c.m[receiptKeyID{scheme, string(spki)}] = parsedReceiptKey{k, err}
	}
	c.mu.Unlock()
	return k, err
}
