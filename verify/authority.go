package verify

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/keytrail/keytrail/evidence"
)

// Who may sign what (ATTACKS.md 34): every lifecycle event type has an
// authority, the roles whose holders may sign it. The trust file gives each
// principal and collector its roles; the policy's authority section maps each
// event type to roles, with the defaults below for a type it does not list.

// Roles of the default authority.
const (
	// RoleKeyEngineer may request a rotation.
	RoleKeyEngineer = "key-engineer"
	// RoleRotationSystem is the system that carries a rotation out: create,
	// smoke-test, promote, disable, schedule-deletion, destroy, rollback.
	RoleRotationSystem = "rotation-system"
	// RoleProviderLog is a collector that makes records from a provider's
	// own log (for example collectors/cloudtrail).
	RoleProviderLog = "provider-log"
)

// AuthoritySource is the authority section's key for the events made from a
// provider's log (those carrying `source`), whatever their type.
const AuthoritySource = "source"

// providerEvents are the event types a provider's log reports (AWS KMS
// CreateKey, EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion,
// the deletion itself, PutKeyPolicy, CreateGrant, RotateKey). Only these may
// carry `source`: a provider's log knows no smoke test, approval or promotion.
var providerEvents = []string{
	evidence.EventCreate, evidence.EventEnable, evidence.EventDisable, evidence.EventScheduleDeletion,
	evidence.EventCancelDeletion, evidence.EventDestroy, evidence.EventPolicyChange, evidence.EventGrant,
	evidence.EventRotateMaterial,
}

// personalEvents count for the person who signs them (the requester may not
// approve; approvers, declarers and confirmers must be distinct), so only a
// principal signing as itself may sign them: one collector key must not
// stand for several people (ATTACKS.md 7).
var personalEvents = []string{evidence.EventRequest, evidence.EventApprove, evidence.EventBreakGlass, evidence.EventBreakGlassConfirm}

// validateAuthority checks the authority section: each key an event type (or
// AuthoritySource), each role a name listed once. An empty list is valid: it
// lets nobody sign that type.
func (p *Policy) validateAuthority() error {
	for _, typ := range slices.Sorted(maps.Keys(p.Authority)) {
		if typ != AuthoritySource && !slices.Contains(evidence.LifecycleEvents, typ) {
			return fmt.Errorf("%w: authority.%s: unknown event type %q, want one of %s or %s", ErrPolicy, typ, typ, strings.Join(evidence.LifecycleEvents, ", "), AuthoritySource)
		}
		roles := p.Authority[typ]
		for i, r := range roles {
			if r == "" || strings.TrimSpace(r) != r {
				return fmt.Errorf("%w: authority.%s[%d] %q is not a role name", ErrPolicy, typ, i, r)
			}
			if slices.Contains(roles[:i], r) {
				return fmt.Errorf("%w: authority.%s: role %q is listed twice", ErrPolicy, typ, r)
			}
		}
	}
	return nil
}

// cloneAuthority deep-copies the authority section (see cloneRules).
func (p *Policy) cloneAuthority() {
	if p.Authority == nil {
		return
	}
	a := make(map[string][]string, len(p.Authority))
	for typ, roles := range p.Authority {
		a[typ] = slices.Clone(roles)
	}
	p.Authority = a
}

// authorityKey is the authority section's key for an event: its type, or
// AuthoritySource for an event made from a provider's log.
func authorityKey(ev *evidence.LifecycleEvent) string {
	if ev.Source != nil {
		return AuthoritySource
	}
	return ev.Event
}

// authorityRoles returns the roles whose holders may sign events of
// authority key key (an event type or AuthoritySource): the policy's, or the
// default. Empty means nobody.
func (p *Policy) authorityRoles(key string) []string {
	if roles, ok := p.Authority[key]; ok {
		return roles
	}
	switch key {
	case evidence.EventRequest:
		return []string{RoleKeyEngineer}
	case evidence.EventApprove:
		return p.Rotation.ApproverRoles
	case evidence.EventCreate, evidence.EventSmokeTest, evidence.EventPromote, evidence.EventDisable,
		evidence.EventScheduleDeletion, evidence.EventDestroy, evidence.EventRollback:
		return []string{RoleRotationSystem}
	case evidence.EventBreakGlass, evidence.EventBreakGlassConfirm:
		if p.BreakGlass == nil {
			return nil
		}
		return p.BreakGlass.Roles
	case AuthoritySource, evidence.EventEnable, evidence.EventCancelDeletion, evidence.EventPolicyChange,
		evidence.EventGrant, evidence.EventRotateMaterial:
		return []string{RoleProviderLog}
	}
	return nil
}

// AuthorityError is a lifecycle event whose signer the policy does not allow
// to sign it. It wraps ErrNotAllowed.
type AuthorityError struct {
	// Event is the event type; Sourced is set if it carries `source`.
	Event   string
	Sourced bool
	// Signer, Kind and Roles are the signer's identity, kind (collector or
	// principal) and roles in the trust file.
	Signer string
	Kind   string
	Roles  []string
	// Role is the event's actor.role, if it has one.
	Role string
	// Key and Allowed are the policy's authority entry for the event and the
	// roles it allows (empty: nobody).
	Key     string
	Allowed []string
	// Reason says what is wrong.
	Reason string
}

func (e *AuthorityError) Error() string {
	what := e.Event
	if e.Sourced {
		what = "provider-sourced " + e.Event
	}
	return fmt.Sprintf("%v: %s %s (roles %s) may not sign a %s event: %s (policy: authority.%s is %s)",
		ErrNotAllowed, e.Kind, e.Signer, roleList(e.Roles, "none"), what, e.Reason, e.Key, roleList(e.Allowed, "nobody"))
}

// Unwrap returns ErrNotAllowed.
func (e *AuthorityError) Unwrap() error { return ErrNotAllowed }

// roleList writes roles as [a, b], or [] (empty) if there are none.
func roleList(roles []string, empty string) string {
	if len(roles) == 0 {
		return "[] (" + empty + ")"
	}
	return "[" + strings.Join(roles, ", ") + "]"
}

// authorize checks that signer h may sign pred under the policy's authority.
// Only lifecycle events have an authority; h was authenticated for the
// predicate type, and a principal for acting as itself, by
// Trust.AuthenticateEnvelope.
//
//   - An event made from a provider's log (carrying `source`) is one a
//     provider reports (providerEvents) and names no rotation: a provider's
//     log knows none, and must not stand for the rotation's own events.
//   - Requests, approvals, break-glass declarations and confirmations are
//     signed by a principal (personalEvents).
//   - The signer holds one of the roles the policy allows for the event; where
//     the event names the role its actor acted in (actor.role), that role is
//     one the signer holds and one the policy allows.
func (v *Verifier) authorize(h *Holder, pred evidence.Predicate) error {
	ev, ok := pred.(*evidence.LifecycleEvent)
	if !ok {
		return nil
	}
	key := authorityKey(ev)
	allowed := v.policy.authorityRoles(key)
	deny := func(format string, args ...any) error {
		return &AuthorityError{Event: ev.Event, Sourced: ev.Source != nil, Signer: h.ID, Kind: h.Kind, Roles: slices.Clone(h.Roles),
			Role: ev.Actor.Role, Key: key, Allowed: slices.Clone(allowed), Reason: fmt.Sprintf(format, args...)}
	}
	if ev.Source != nil {
		if !slices.Contains(providerEvents, ev.Event) {
			return deny("a provider's log (%s) reports no %s event; it reports only %s", ev.Source.Provider, ev.Event, strings.Join(providerEvents, ", "))
		}
		if ev.RotationID != "" {
			return deny("it names rotation %q, but a provider's log (%s) knows no rotation and may not stand for the rotation's own events", ev.RotationID, ev.Source.Provider)
		}
	}
	if slices.Contains(personalEvents, ev.Event) && h.Kind != KindPrincipal {
		return deny("a %s event counts for the person who signs it, so only a principal signing as itself may sign it", ev.Event)
	}
	if len(allowed) == 0 {
		if (ev.Event == evidence.EventBreakGlass || ev.Event == evidence.EventBreakGlassConfirm) && v.policy.BreakGlass == nil {
			return deny("the policy allows no break-glass (no breakGlass section)")
		}
		return deny("the policy allows nobody to sign it")
	}
	if r := ev.Actor.Role; r != "" {
		switch {
		case !slices.Contains(h.Roles, r):
			return deny("it acts in role %q, which the trust file does not give the signer", r)
		case !slices.Contains(allowed, r):
			return deny("it acts in role %q, which the policy does not allow for it", r)
		}
		return nil
	}
	if !slices.ContainsFunc(h.Roles, func(r string) bool { return slices.Contains(allowed, r) }) {
		return deny("the signer holds none of the allowed roles")
	}
	return nil
}

// declarationLeaf is the lowercase hex RFC 6962 leaf hash of envelope if pred
// is a break-glass declaration (what a break-glass-confirm names), else "".
func declarationLeaf(pred evidence.Predicate, envelope []byte) string {
	if ev, ok := pred.(*evidence.LifecycleEvent); ok && ev.Event == evidence.EventBreakGlass {
		return hex.EncodeToString(evidence.LeafHash(envelope))
	}
	return ""
}
