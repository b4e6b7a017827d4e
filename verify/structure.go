package verify

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keytrail/keytrail/evidence"
)

type event struct {
	index uint64
	ev    *evidence.LifecycleEvent
	key   evidence.KeyRef
	at    time.Time
}

func (e event) String() string {
	return fmt.Sprintf("%s by %s at %s (entry %d)", e.ev.Event, e.ev.Actor.ID, evidence.FormatTime(e.at), e.index)
}

// spanEvents are the steps of a rotation, from its request to the old key's
// disable, that its window must contain.
var spanEvents = []string{
	evidence.EventRequest, evidence.EventCreate, evidence.EventSmokeTest,
	evidence.EventApprove, evidence.EventPromote, evidence.EventDisable,
}

// checkStructure applies the rotation rules to the lifecycle events of this
// rotation. Every violated rule is listed with the record and the time.
func (v *Verifier) checkStructure(r evidence.Rotation, entries []verifiedEntry, res *Result) {
	byType := map[string][]event{}
	for _, e := range entries {
		ev, ok := e.pred.(*evidence.LifecycleEvent)
		if !ok || ev.RotationID != r.ID {
			continue
		}
		byType[ev.Event] = append(byType[ev.Event], event{index: e.index, ev: ev, key: e.keys[0], at: ev.RecordTime()})
	}
	var f failures
	fail := func(format string, args ...any) {
		f.add(fmt.Errorf("%w: "+format, append([]any{ErrStructure}, args...)...))
	}
	// one returns the single event of a type about key, failing if there are none
	// or several (several candidates are ambiguous, never silently chosen).
	one := func(typ string, key evidence.KeyRef) *event {
		var got []event
		for _, e := range byType[typ] {
			if e.key == key {
				got = append(got, e)
			} else {
				fail("%s: a %s event must name %s, not %s", e, typ, key.ID, e.key.ID)
			}
		}
		switch len(got) {
		case 0:
			fail("no %s event for %s in rotation %s", typ, key.ID, r.ID)
			return nil
		case 1:
			return &got[0]
		}
		var list []string
		for _, e := range got {
			list = append(list, e.String())
		}
		fail("%d %s events for %s, want one: %s", len(got), typ, key.ID, strings.Join(list, "; "))
		return nil
	}
	request := one(evidence.EventRequest, r.OldKey)
	if request != nil && request.ev.KeyClass != r.KeyClass {
		fail("%s: requests key class %q, the bundle says %q", request, request.ev.KeyClass, r.KeyClass)
	}
	create := one(evidence.EventCreate, r.NewKey)
	promote := one(evidence.EventPromote, r.NewKey)
	disable := one(evidence.EventDisable, r.OldKey)

	if create != nil && promote != nil && !create.at.Before(promote.at) {
		fail("%s is not after %s", promote, create)
	}
	if request != nil && create != nil && create.at.Before(request.at) {
		fail("%s is before %s", create, request)
	}
	if promote != nil && disable != nil && !disable.at.After(promote.at) {
		fail("%s is not after %s", disable, promote)
	}
	if promote != nil {
		// Only signers the authority allows sign smoke tests (authority.go),
		// so a failed result is outvoted only by a later pass of theirs.
		var passes []event
		for _, e := range byType[evidence.EventSmokeTest] {
			if e.key == r.NewKey && e.ev.SmokeTest.Passed && e.at.Before(promote.at) {
				passes = append(passes, e)
			}
		}
		// A failed result counts whether or not it names the rotation (an
		// event about the new key naming another one fails entries.binding).
		for _, ve := range entries {
			ev, ok := ve.pred.(*evidence.LifecycleEvent)
			if !ok || ev.Event != evidence.EventSmokeTest || ev.SmokeTest.Passed || ve.keys[0] != r.NewKey {
				continue
			}
			e := event{index: ve.index, ev: ev, key: ve.keys[0], at: ev.RecordTime()}
			if e.at.Before(promote.at) && !slices.ContainsFunc(passes, func(p event) bool { return p.at.After(e.at) }) {
				fail("%s: a failed smoke-test of %s with no later passing one before %s", e, r.NewKey.ID, promote)
			}
		}
		if *v.policy.Rotation.RequireSmokeTest && len(passes) == 0 {
			fail("no passing smoke-test of %s before %s", r.NewKey.ID, promote)
		}
	}

	// The window states the rotation's span: it must contain the rotation's
	// own steps, so that it cannot be drawn to leave out what happened
	// between them (later events of the rotation, such as a destroy, may
	// fall after it).
	for _, typ := range spanEvents {
		for _, e := range byType[typ] {
			if !r.Window.Contains(e.at) {
				fail("%s is outside the bundle's window [%s, %s], which must contain the rotation's %v events", e, r.Window.Start, r.Window.End, spanEvents)
			}
		}
	}

	// A rotation that was rolled back did not happen as evidenced.
	for _, e := range byType[evidence.EventRollback] {
		fail("%s: the rotation was rolled back (%s)", e, e.ev.Reason)
	}

	// Approvals: distinct principals holding an approver role, none the requester,
	// each before promotion. An approval is bound to the request it answers
	// (ATTACKS.md 36): it approves the rotation's new key (ID and digest), for
	// the request's key class, after the request.
	class := r.KeyClass
	if request != nil {
		class = request.ev.KeyClass
	}
	approvers := map[string]event{}
	for _, e := range byType[evidence.EventApprove] {
		id := e.ev.Actor.ID
		h := v.trust.byID[id]
		switch {
		case e.key != r.NewKey:
			fail("%s approves %s, not the new key %s; it does not count", e, e.key.ID, r.NewKey.ID)
		case e.ev.KeyClass != class:
			fail("%s approves key class %q, the request is for %q; it does not count", e, e.ev.KeyClass, class)
		case request != nil && !e.at.After(request.at):
			fail("%s is not after %s; it does not count", e, request)
		case h == nil || h.Kind != KindPrincipal:
			fail("%s: %s is not a principal of the trust file", e, id)
		case !slices.Contains(v.policy.Rotation.ApproverRoles, e.ev.Actor.Role):
			fail("%s: role %q does not count for approvals (policy: %v)", e, e.ev.Actor.Role, v.policy.Rotation.ApproverRoles)
		case !slices.Contains(h.Roles, e.ev.Actor.Role):
			fail("%s: %s does not hold role %q in the trust file", e, id, e.ev.Actor.Role)
		case request != nil && id == request.ev.Actor.ID:
			fail("%s: the requester may not approve", e)
		case promote != nil && !e.at.Before(promote.at):
			fail("%s is not before %s", e, promote)
		default:
			if prev, dup := approvers[id]; dup {
				fail("%s: %s already approved (%s); one approver counts once", e, id, prev)
				continue
			}
			approvers[id] = e
		}
	}
	if len(approvers) < v.policy.Rotation.MinApprovals {
		fail("%d valid approvals before promotion, policy requires %d from distinct approvers", len(approvers), v.policy.Rotation.MinApprovals)
	}
	names := make([]string, 0, len(approvers))
	for id := range approvers {
		names = append(names, id)
	}
	slices.Sort(names)
	f.report(res, CheckRotationStructure, fmt.Sprintf("requested, created, smoke-tested, approved by %s, promoted, old key disabled", strings.Join(names, " and ")))
}
