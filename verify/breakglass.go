package verify

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/keytrail/keytrail/evidence"
)

// checkBreakGlass: a break-glass is declared by one principal (a break-glass
// event, which the authority lets only a holder of a break-glass role sign)
// and confirmed by each quorum member signing a record of their own
// (ATTACKS.md 35): a break-glass-confirm event about the same key, after the
// declaration, naming it by its leaf hash. Each declaration gives a reason;
// lists in its quorum distinct principals of the trust file holding a
// break-glass role; and the declarer with the listed members who confirmed it
// are at least breakGlass.quorum distinct principals holding a break-glass
// role. A listed member who did not confirm does not count, nor does a
// confirmation by someone not listed. Every confirmation names a declaration
// in the bundle.
func (v *Verifier) checkBreakGlass(x *rules, res *Result) {
	var decls, confirms []rec
	for _, e := range x.events {
		if !e.rel.Carried() { // a window rule (docs/policy.md, "What the rules read")
			continue
		}
		switch e.pred.(*evidence.LifecycleEvent).Event {
		case evidence.EventBreakGlass:
			decls = append(decls, e)
		case evidence.EventBreakGlassConfirm:
			confirms = append(confirms, e)
		}
	}
	if len(decls)+len(confirms) == 0 {
		res.skip(CheckBreakGlassQuorum, "no break-glass events in the bundle")
		return
	}
	var f failures
	bg := v.policy.BreakGlass
	if bg == nil {
		for _, e := range append(decls, confirms...) {
			f.add(fmt.Errorf("%w: %s: the policy allows no break-glass (no breakGlass section)", ErrBreakGlass, describeBreakGlass(e)))
		}
		f.report(res, CheckBreakGlassQuorum, "")
		return
	}
	hasRole := func(h *Holder) bool {
		return h != nil && h.Kind == KindPrincipal && slices.ContainsFunc(h.Roles, func(r string) bool { return slices.Contains(bg.Roles, r) })
	}
	for _, d := range decls {
		ev := d.pred.(*evidence.LifecycleEvent)
		what := describeBreakGlass(d)
		if strings.TrimSpace(ev.Reason) == "" {
			f.add(fmt.Errorf("%w: %s gives no reason", ErrBreakGlass, what))
		}
		listed := map[string]bool{}
		for _, id := range ev.Quorum {
			h := v.trust.byID[id]
			switch {
			case h == nil || h.Kind != KindPrincipal:
				f.add(fmt.Errorf("%w: %s: quorum member %q is not a principal of the trust file", ErrBreakGlass, what, id))
			case !hasRole(h):
				f.add(fmt.Errorf("%w: %s: quorum member %s holds none of the break-glass roles %v", ErrBreakGlass, what, id, bg.Roles))
			case listed[id]:
				f.add(fmt.Errorf("%w: %s: quorum member %s is listed twice; one member counts once", ErrBreakGlass, what, id))
			default:
				listed[id] = true
			}
		}
		// Who counts: the declarer, and each listed member who confirmed.
		// One person counts once, however many records they sign.
		counted := map[string]bool{}
		if hasRole(d.signer) {
			counted[d.signer.ID] = true
		}
		for _, c := range confirms {
			cev := c.pred.(*evidence.LifecycleEvent)
			if cev.Declaration != d.leaf {
				continue
			}
			cwhat := describeBreakGlass(c)
			switch {
			case c.keys[0] != d.keys[0]:
				f.add(fmt.Errorf("%w: %s: %s is about %s, the declaration about %s; it does not count", ErrBreakGlass, what, cwhat, c.keys[0].ID, d.keys[0].ID))
			case !c.at.After(d.at):
				f.add(fmt.Errorf("%w: %s: %s is not after the declaration; it does not count", ErrBreakGlass, what, cwhat))
			case !hasRole(c.signer):
				f.add(fmt.Errorf("%w: %s: %s: its signer holds none of the break-glass roles %v; it does not count", ErrBreakGlass, what, cwhat, bg.Roles))
			case !listed[c.signer.ID] && c.signer.ID != d.signer.ID:
				f.add(fmt.Errorf("%w: %s: %s: %s is not in the declaration's quorum %v; it does not count", ErrBreakGlass, what, cwhat, c.signer.ID, ev.Quorum))
			default:
				counted[c.signer.ID] = true
			}
		}
		if len(counted) < bg.Quorum {
			names := slices.Sorted(maps.Keys(counted))
			f.add(fmt.Errorf("%w: %s has a confirmed quorum of %d (%s), the policy requires %d: the declarer and each listed member who signed a break-glass-confirm naming it count",
				ErrBreakGlass, what, len(counted), strings.Join(names, ", "), bg.Quorum))
		}
	}
	for _, c := range confirms {
		cev := c.pred.(*evidence.LifecycleEvent)
		if !slices.ContainsFunc(decls, func(d rec) bool { return d.leaf == cev.Declaration }) {
			f.add(fmt.Errorf("%w: %s names declaration %s, which is not a break-glass event of the bundle", ErrBreakGlass, describeBreakGlass(c), cev.Declaration))
		}
	}
	f.report(res, CheckBreakGlassQuorum, fmt.Sprintf("break-glass declarations: %d, each with a reason and confirmed by a quorum of %d (confirmations: %d)", len(decls), bg.Quorum, len(confirms)))
}

// describeBreakGlass names a break-glass or break-glass-confirm event: its
// type, signer, key, entry and time.
func describeBreakGlass(e rec) string {
	ev := e.pred.(*evidence.LifecycleEvent)
	return fmt.Sprintf("%s by %s on %s (%s)", ev.Event, ev.Actor.ID, e.keys[0].ID, e.where())
}
