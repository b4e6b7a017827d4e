package verify_test

// Tests for the authority of each record kind (ATTACKS.md 34 to 37, issue 12
// item 3): who may sign each lifecycle event type, break-glass confirmed by
// records of the quorum, approvals bound to their request. Every rotation here
// is really signed (internal/scenario); a lie is told with the keys its teller
// holds, and the test shows which check refuses it.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify"
)

// hours is an At n hours (and minutes) after the scenario's start: the
// simple rotation's request is at 1h, create 2h, smoke test 3h, approvals
// 4h and 5h, promote 10h, disable 11h.
func hours(d time.Duration) evidence.At { return evidence.AtTime(scenario.Start.Add(d)) }

// addStep returns a mutation that appends s.
func addStep(s scenario.Step) func([]scenario.Step) []scenario.Step {
	return func(steps []scenario.Step) []scenario.Step { return append(steps, s) }
}

// newParty is a person or system with a fresh Ed25519 key.
func newParty(t testing.TB, id string, roles ...string) scenario.Party {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := evidence.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return scenario.Party{ID: id, Roles: roles, Signer: s, Key: k}
}

// withTrust replaces b's trust with its trust file edited by edit.
func withTrust(t testing.TB, b *scenario.Built, edit func(*verify.TrustFile)) {
	t.Helper()
	tf := b.TrustFile()
	edit(tf)
	var err error
	if b.Trust, err = verify.NewTrust(tf); err != nil {
		t.Fatal(err)
	}
}

// withPolicy replaces b's policy.
func withPolicy(t testing.TB, b *scenario.Built, yaml string) {
	t.Helper()
	var err error
	if b.Policy, err = verify.ParsePolicy([]byte(yaml)); err != nil {
		t.Fatal(err)
	}
}

// breakGlassOf returns the policy rotation's break-glass declaration and
// confirmation steps.
func breakGlassOf(pr *scenario.PolicyRotation) (decl, confirm *scenario.Step) {
	return pr.Event(evidence.EventBreakGlass, pr.Rotation.NewKey), pr.Event(evidence.EventBreakGlassConfirm, pr.Rotation.NewKey)
}

// ATTACKS.md case 34: anyone may sign any event type. With only the
// requester's own key (a principal of the trust file, acting as itself), each
// lie below verified before the policy had an authority per event type.
func TestAttack34_AnyoneSignsAnyEvent(t *testing.T) {
	failed := &evidence.SmokeTest{Passed: false, Detail: "signature did not verify"}
	t.Run("requester's passing smoke test outvotes the system's failed one", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			steps[recSmoke].Event.SmokeTest = failed
			pass := &evidence.LifecycleEvent{At: hours(3*time.Hour + 30*time.Minute), Event: evidence.EventSmokeTest, RotationID: steps[recSmoke].Event.RotationID,
				Actor: evidence.Actor{ID: steps[recRequest].By.ID}, SmokeTest: &evidence.SmokeTest{Passed: true, Detail: "it works"}}
			return append(steps, scenario.Step{By: steps[recRequest].By, Key: steps[recSmoke].Key, Event: pass})
		})
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "principal carol@custody.example (roles [key-engineer]) may not sign a smoke-test event", "authority.smoke-test is [rotation-system]")
		var ae *verify.AuthorityError
		if !errors.As(c.Err(), &ae) || ae.Event != evidence.EventSmokeTest || ae.Signer != "carol@custody.example" {
			t.Errorf("error %v carries no AuthorityError of the smoke-test by carol", c.Err())
		}
	})
	t.Run("requester's passing smoke test in a role it holds", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			steps[recSmoke].Event.SmokeTest = failed
			pass := *steps[recSmoke].Event
			pass.At, pass.SmokeTest = hours(3*time.Hour+30*time.Minute), &evidence.SmokeTest{Passed: true}
			pass.Actor = evidence.Actor{ID: steps[recRequest].By.ID, Role: "key-engineer"}
			return append(steps, scenario.Step{By: steps[recRequest].By, Key: steps[recSmoke].Key, Event: &pass})
		})
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, `acts in role "key-engineer", which the policy does not allow for it`)
	})
	t.Run("the system's failed smoke test after its passing one is not outvoted", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			steps = again(recSmoke, 30*time.Minute)(steps)
			steps[len(steps)-1].Event.SmokeTest = failed
			return steps
		})
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
		failuresContain(t, c, "smoke-test by kms-rotation-service at 2026-03-02T12:30:00Z", "a failed smoke-test of "+b.Rotation.NewKey.ID+" with no later passing one before promote")
	})
	t.Run("requester disables the old key", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			steps[recDisable].By = steps[recRequest].By
			steps[recDisable].Event.Actor = evidence.Actor{ID: steps[recRequest].By.ID}
			return steps
		})
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "carol@custody.example", "may not sign a disable event", "authority.disable is [rotation-system]")
	})
	// The old key served 200 days, longer than its class allows (180); an
	// extra promote of it 120 days ago would make the service look compliant.
	servedTooLong := func(by func(*scenario.PolicyRotation) scenario.Party) func(*scenario.PolicyRotation) {
		return func(pr *scenario.PolicyRotation) {
			pr.Rotation.Window.Start = evidence.FormatTime(scenario.Start.Add(-210 * 24 * time.Hour))
			create, promote := pr.Event(evidence.EventCreate, pr.Rotation.OldKey), pr.Event(evidence.EventPromote, pr.Rotation.OldKey)
			create.Event.At, promote.Event.At = hours(-201*24*time.Hour), hours(-200*24*time.Hour)
			extra := *promote.Event
			extra.At = hours(-120 * 24 * time.Hour)
			p := by(pr)
			extra.Actor = evidence.Actor{ID: p.ID}
			pr.Steps = append(pr.Steps, scenario.Step{By: p, Key: pr.Rotation.OldKey, Event: &extra})
		}
	}
	t.Run("requester promotes the old key again to shorten its service", func(t *testing.T) {
		_, res := buildPolicy(t, servedTooLong(func(pr *scenario.PolicyRotation) scenario.Party { return pr.Parties.Requester }))
		c := wantFail(t, res, verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "carol@custody.example", "may not sign a promote event")
	})
	t.Run("the rotation system promotes the old key twice: the start is ambiguous", func(t *testing.T) {
		_, res := buildPolicy(t, servedTooLong(func(pr *scenario.PolicyRotation) scenario.Party { return pr.Parties.Collector }))
		c := wantFail(t, res, verify.CheckRotationWindow, verify.ErrRotationWindow)
		failuresContain(t, c, "2 promote events of kms:eu-central-1/custody/hot-1/v1 before its disable", "ambiguous",
			evidence.FormatTime(scenario.Start.Add(-200*24*time.Hour)), evidence.FormatTime(scenario.Start.Add(-120*24*time.Hour)))
	})
	t.Run("two creates of the old key and no promote: the start is ambiguous", func(t *testing.T) {
		_, res := buildPolicy(t, func(pr *scenario.PolicyRotation) {
			promote := pr.Event(evidence.EventPromote, pr.Rotation.OldKey)
			promote.Event.Event = evidence.EventCreate
		})
		c := wantFail(t, res, verify.CheckRotationWindow, verify.ErrRotationWindow)
		failuresContain(t, c, "2 create events of kms:eu-central-1/custody/hot-1/v1 before its disable")
	})
	t.Run("requester declares a break-glass naming two officers as its quorum", func(t *testing.T) {
		_, res := buildPolicy(t, func(pr *scenario.PolicyRotation) {
			decl, confirm := breakGlassOf(pr)
			decl.By, decl.Event.Actor = pr.Parties.Requester, evidence.Actor{ID: pr.Parties.Requester.ID}
			pr.Steps = slicesDelete(pr.Steps, confirm)
		})
		c := wantFail(t, res, verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "carol@custody.example", "may not sign a break-glass event", "authority.break-glass is [custody-officer, security-officer]")
	})
	t.Run("a collector may not declare a break-glass, whatever its roles", func(t *testing.T) {
		b, err := scenario.BuildPolicy(context.Background(), "", func(pr *scenario.PolicyRotation) {
			decl, _ := breakGlassOf(pr)
			decl.By, decl.Event.Actor = pr.Parties.Collector, evidence.Actor{ID: pr.Parties.Collector.ID}
			pr.Trust = func(tf *verify.TrustFile) { tf.Collectors[0].Roles = append(tf.Collectors[0].Roles, "custody-officer") }
		})
		if err != nil {
			t.Fatal(err)
		}
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "collector kms-rotation-service", "only a principal signing as itself may sign it")
	})
	t.Run("a break-glass under a policy without a breakGlass section", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			alice := steps[recApproveAlice].By
			bg := &evidence.LifecycleEvent{At: hours(6 * time.Hour), Event: evidence.EventBreakGlass, RotationID: steps[recSmoke].Event.RotationID,
				Actor: evidence.Actor{ID: alice.ID}, Reason: "freeze", Quorum: []string{alice.ID, steps[recApproveBob].By.ID}}
			return append(steps, scenario.Step{By: alice, Key: steps[recSmoke].Key, Event: bg})
		})
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "alice@custody.example", "the policy allows no break-glass (no breakGlass section)")
	})
}

// ATTACKS.md case 35: a quorum stated, not proven. A break-glass declares who
// must confirm; only the declarer and the listed members who sign a
// break-glass-confirm of their own, naming that declaration, count.
func TestAttack35_BreakGlassQuorumStated(t *testing.T) {
	declTime := evidence.FormatTime(scenario.Start.Add(13 * time.Hour))
	for _, tt := range []struct {
		name   string
		mutate func(*scenario.PolicyRotation)
		check  string
		err    error
		want   []string
	}{
		{"quorum stated, not confirmed", func(pr *scenario.PolicyRotation) {
			_, confirm := breakGlassOf(pr)
			pr.Steps = slicesDelete(pr.Steps, confirm)
		}, verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, []string{"at " + declTime + ") has a confirmed quorum of 1 (alice@custody.example), the policy requires 2"}},

		{"the confirmation names another declaration", func(pr *scenario.PolicyRotation) {
			decl, confirm := breakGlassOf(pr)
			other := *decl.Event
			other.At, other.Reason = hours(12*time.Hour), "another emergency"
			pr.Steps = append(pr.Steps, scenario.Step{By: decl.By, Key: decl.Key, Event: &other})
			confirm.Confirms = &other
		}, verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, []string{"at " + declTime + ") has a confirmed quorum of 1"}},

		{"the confirmation names a declaration that is not in the bundle", func(pr *scenario.PolicyRotation) {
			_, confirm := breakGlassOf(pr)
			confirm.Confirms, confirm.Event.Declaration = nil, strings.Repeat("ab", 32)
		}, verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, []string{"names declaration " + strings.Repeat("ab", 32) + ", which is not a break-glass event of the bundle"}},

		{"a confirmer without a break-glass role", func(pr *scenario.PolicyRotation) {
			_, confirm := breakGlassOf(pr)
			confirm.By, confirm.Event.Actor = pr.Parties.Requester, evidence.Actor{ID: pr.Parties.Requester.ID}
		}, verify.CheckEntriesSignature, verify.ErrNotAllowed, []string{"principal carol@custody.example (roles [key-engineer]) may not sign a break-glass-confirm event"}},

		{"a confirmer the authority allows but who holds no break-glass role", func(pr *scenario.PolicyRotation) {
			decl, confirm := breakGlassOf(pr)
			decl.Event.Quorum = []string{decl.By.ID, pr.Parties.Requester.ID}
			confirm.By, confirm.Event.Actor = pr.Parties.Requester, evidence.Actor{ID: pr.Parties.Requester.ID}
			pr.PolicyYAML += "authority:\n  break-glass-confirm: [key-engineer]\n"
		}, verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, []string{"its signer holds none of the break-glass roles [custody-officer security-officer]; it does not count"}},

		{"one person confirming twice", func(pr *scenario.PolicyRotation) {
			decl, confirm := breakGlassOf(pr)
			for _, d := range []time.Duration{30 * time.Minute, 45 * time.Minute} {
				again := *confirm.Event
				again.At, again.Actor = hours(13*time.Hour+d), decl.Event.Actor
				pr.Steps = append(pr.Steps, scenario.Step{By: decl.By, Key: decl.Key, Event: &again, Confirms: decl.Event})
			}
			pr.Steps = slicesDelete(pr.Steps, confirm)
		}, verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, []string{"has a confirmed quorum of 1 (alice@custody.example)"}},

		{"a member not listed in the quorum confirms", func(pr *scenario.PolicyRotation) {
			dave := newParty(t, "dave@custody.example", "security-officer")
			_, confirm := breakGlassOf(pr)
			confirm.By, confirm.Event.Actor = dave, evidence.Actor{ID: dave.ID, Role: "security-officer"}
			pr.Trust = func(tf *verify.TrustFile) {
				tf.Principals = append(tf.Principals, verify.TrustedPrincipal{ID: dave.ID, Roles: dave.Roles, PublicKey: evidence.MarshalPublicKeyPEM(dave.Key.Public())})
			}
		}, verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, []string{"dave@custody.example is not in the declaration's quorum [alice@custody.example bob@custody.example]; it does not count"}},

		{"the confirmation is before the declaration", func(pr *scenario.PolicyRotation) {
			_, confirm := breakGlassOf(pr)
			confirm.Event.At = hours(12 * time.Hour)
		}, verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, []string{"break-glass-confirm by bob@custody.example", "is not after the declaration; it does not count"}},

		{"the confirmation is about the other key", func(pr *scenario.PolicyRotation) {
			_, confirm := breakGlassOf(pr)
			confirm.Key = pr.Rotation.OldKey
		}, verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, []string{"is about kms:eu-central-1/custody/hot-1/v1, the declaration about kms:eu-central-1/custody/hot-1/v2; it does not count"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, res := buildPolicy(t, tt.mutate)
			c := wantFail(t, res, tt.check, tt.err)
			failuresContain(t, c, tt.want...)
		})
	}
	t.Run("the genuine break-glass counts the declarer and the confirmer", func(t *testing.T) {
		_, res := buildPolicy(t, nil)
		if c := res.Check(verify.CheckBreakGlassQuorum); c.Status != verify.Pass || !strings.Contains(c.Reason, "confirmations: 1") {
			t.Errorf("break-glass.quorum: %s %s", c.Status, c.Reason)
		}
	})
}

// ATTACKS.md case 36: approvals that float. An approval counts only for the
// request it answers: the rotation's new key (ID and digest), the request's
// key class, after the request.
func TestAttack36_FloatingApprovals(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(*scenario.Step, []scenario.Step)
		want   string
	}{
		{"approval dated before the request", func(s *scenario.Step, _ []scenario.Step) { s.Event.At = hours(30 * time.Minute) },
			"approve by bob@custody.example at 2026-03-02T09:30:00Z"},
		{"approval for another key class", func(s *scenario.Step, _ []scenario.Step) { s.Event.KeyClass = "cold-storage" },
			`approves key class "cold-storage", the request is for "hot-signing"; it does not count`},
		{"approval whose subject is another key", func(s *scenario.Step, steps []scenario.Step) { s.Key = steps[recRequest].Key },
			"approves kms:eu-central-1/custody/hot-1/v1, not the new key kms:eu-central-1/custody/hot-1/v2; it does not count"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := build(t, func(steps []scenario.Step) []scenario.Step {
				tt.mutate(&steps[recApproveBob], steps)
				return steps
			})
			c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
			failuresContain(t, c, tt.want)
			failuresContain(t, c, "1 valid approvals before promotion, policy requires 2")
		})
	}
	t.Run("an approval at the request's very time does not count", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			steps[recApproveBob].Event.At = steps[recRequest].Event.At
			return steps
		})
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
		failuresContain(t, c, "is not after request by carol@custody.example")
	})
	t.Run("an approval without keyClass is malformed", func(t *testing.T) {
		b := build(t, nil)
		st, _ := statementOf(t, b.Records[recApproveBob])
		st.Predicate = []byte(replace(t, string(st.Predicate), `,"keyClass":"hot-signing"`, ""))
		bundle := withRecords(t, b, []int{recApproveBob}, signRecord(t, marshal(t, st), b.Approvers[1].Signer))
		c := tampered(t, b, bundle, verify.Options{}, verify.CheckEntriesSignature, evidence.ErrPredicate)
		failuresContain(t, c, "keyClass is required on an approve event")
	})
}

// ATTACKS.md case 37 (event types and roles): an authority the policy does not
// know is a policy error, never a skipped rule; an event type whose role list
// is empty may be signed by nobody.
func TestAttack37_UnknownEventAuthority(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{"authority:\n  rotate: [rotation-system]\n", `authority.rotate: unknown event type "rotate"`},
		{"authority:\n  Promote: [rotation-system]\n", `authority.Promote: unknown event type "Promote"`},
		{"authority:\n  promote: [\"\"]\n", `authority.promote[0] "" is not a role name`},
		{"authority:\n  promote: [rotation-system, rotation-system]\n", `authority.promote: role "rotation-system" is listed twice`},
		{"authority:\n  promote: [a]\n  promote: [b]\n", `"promote" already defined`},
		{"authority: [promote]\n", "cannot unmarshal"},
	} {
		_, err := verify.ParsePolicy([]byte(scenario.PolicyYAML + tt.body))
		if !errors.Is(err, verify.ErrPolicy) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want ErrPolicy naming %q", tt.body, err, tt.want)
		}
	}
	// A Policy built in Go is validated by New the same way.
	p, err := verify.ParsePolicy([]byte(scenario.PolicyYAML))
	if err != nil {
		t.Fatal(err)
	}
	p.Authority = map[string][]string{"rotate": {"rotation-system"}}
	if _, err := verify.New(build(t, nil).Trust, p); !errors.Is(err, verify.ErrPolicy) {
		t.Errorf("New with an unknown event type in authority: %v, want ErrPolicy", err)
	}

	t.Run("an event type with no roles may be signed by nobody", func(t *testing.T) {
		b := build(t, nil)
		withPolicy(t, b, scenario.PolicyYAML+"authority:\n  smoke-test: []\n")
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "may not sign a smoke-test event: the policy allows nobody to sign it (policy: authority.smoke-test is [] (nobody))")
	})
	t.Run("a collector without roles signs no lifecycle event", func(t *testing.T) {
		b := build(t, nil)
		withTrust(t, b, func(tf *verify.TrustFile) { tf.Collectors[0].Roles = nil })
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "collector kms-rotation-service (roles [] (none)) may not sign a create event")
	})
	t.Run("the policy names the roles: a team's own role names", func(t *testing.T) {
		b := build(t, nil)
		withTrust(t, b, func(tf *verify.TrustFile) { tf.Collectors[0].Roles = []string{"rotator"} })
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "collector kms-rotation-service (roles [rotator]) may not sign a create event")
		withPolicy(t, b, scenario.PolicyYAML+"authority:\n  create: [rotator]\n  smoke-test: [rotator]\n  promote: [rotator]\n  disable: [rotator]\n")
		wantVerified(t, run(t, b, b.BundleBytes, verify.Options{}))
	})
	t.Run("an approval in a role the authority does not allow", func(t *testing.T) {
		b := build(t, nil)
		withPolicy(t, b, scenario.PolicyYAML+"authority:\n  approve: [custody-officer]\n")
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "principal bob@custody.example", `acts in role "security-officer", which the policy does not allow for it`)
	})
}

// Records a collector makes from a provider's log (collectors/cloudtrail)
// carry `source` and need the provider-log role; they report only what a
// provider's log reports and name no rotation.
func TestAuthorityProviderLog(t *testing.T) {
	ct := newParty(t, "cloudtrail-importer", verify.RoleProviderLog)
	enrol := func(tf *verify.TrustFile) {
		tf.Collectors = append(tf.Collectors, verify.TrustedCollector{ID: ct.ID, PublicKey: evidence.MarshalPublicKeyPEM(ct.Key.Public()),
			PredicateTypes: []string{evidence.PredicateLifecycleEvent, evidence.PredicateSigningReceipt}, Roles: ct.Roles})
	}
	// sourced adds a provider-sourced event of the old key, signed by the
	// CloudTrail importer, or by whom by names among the steps' signers.
	sourced := func(typ, name string, by func([]scenario.Step) scenario.Party, edit func(*evidence.LifecycleEvent)) func([]scenario.Step) []scenario.Step {
		return func(steps []scenario.Step) []scenario.Step {
			ev := &evidence.LifecycleEvent{At: hours(11*time.Hour + 30*time.Minute), Event: typ,
				Actor:  evidence.Actor{ID: "arn:aws:iam::210987654321:role/custody-key-admin"},
				Source: &evidence.ProviderSource{Provider: "aws-cloudtrail", EventID: "0b6e1c2a-0000-4000-8000-000000000001", EventName: name, Region: "eu-central-1"}}
			if edit != nil {
				edit(ev)
			}
			signer := ct
			if by != nil {
				signer = by(steps)
			}
			return append(steps, scenario.Step{By: signer, Key: steps[recDisable].Key, Event: ev})
		}
	}
	t.Run("CloudTrail's DisableKey, signed by the provider-log collector", func(t *testing.T) {
		b := build(t, sourced(evidence.EventDisable, "DisableKey", nil, nil))
		withTrust(t, b, enrol)
		wantVerified(t, run(t, b, b.BundleBytes, verify.Options{}))
	})
	for _, tt := range []struct {
		name   string
		typ    string
		by     func([]scenario.Step) scenario.Party
		edit   func(*evidence.LifecycleEvent)
		policy string
		want   string
	}{
		{"signed by the rotation system", evidence.EventDisable, func(steps []scenario.Step) scenario.Party { return steps[recCreate].By }, nil, "",
			"collector kms-rotation-service (roles [rotation-system]) may not sign a provider-sourced disable event: the signer holds none of the allowed roles (policy: authority.source is [provider-log])"},
		{"naming the rotation", evidence.EventDisable, nil, func(ev *evidence.LifecycleEvent) { ev.RotationID = "rot-2026-03-hot-1" }, "",
			`names rotation "rot-2026-03-hot-1", but a provider's log (aws-cloudtrail) knows no rotation`},
		{"a sourced smoke test", evidence.EventSmokeTest, nil, func(ev *evidence.LifecycleEvent) { ev.SmokeTest = &evidence.SmokeTest{Passed: true} }, "",
			"a provider's log (aws-cloudtrail) reports no smoke-test event"},
		{"the policy lets nobody sign sourced events", evidence.EventDisable, nil, nil, scenario.PolicyYAML + "authority:\n  source: []\n",
			"the policy allows nobody to sign it (policy: authority.source is [] (nobody))"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := build(t, sourced(tt.typ, "DisableKey", tt.by, tt.edit))
			withTrust(t, b, enrol)
			if tt.policy != "" {
				withPolicy(t, b, tt.policy)
			}
			c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
			failuresContain(t, c, tt.want)
		})
	}
	t.Run("the provider-log collector signs the rotation's smoke test", func(t *testing.T) {
		b := build(t, func(steps []scenario.Step) []scenario.Step {
			steps[recSmoke].By = ct
			return steps
		})
		withTrust(t, b, enrol)
		c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckEntriesSignature, verify.ErrNotAllowed)
		failuresContain(t, c, "collector cloudtrail-importer (roles [provider-log]) may not sign a smoke-test event")
	})
}

// The trust file's roles: collectors may hold roles; a role is a name, listed once.
func TestTrustRoles(t *testing.T) {
	b := build(t, nil)
	for _, tt := range []struct {
		name string
		edit func(*verify.TrustFile)
		want string
	}{
		{"blank collector role", func(f *verify.TrustFile) { f.Collectors[0].Roles = []string{""} }, `collectors[0] (kms-rotation-service): roles[0] "" is not a role name`},
		{"padded principal role", func(f *verify.TrustFile) { f.Principals[0].Roles = []string{" key-engineer"} }, `principals[0] (carol@custody.example): roles[0] " key-engineer" is not a role name`},
		{"role listed twice", func(f *verify.TrustFile) { f.Collectors[0].Roles = []string{"a", "a"} }, `role "a" is listed twice`},
	} {
		tf := b.TrustFile()
		tt.edit(tf)
		if _, err := verify.ParseTrust(marshal(t, tf)); !errors.Is(err, verify.ErrTrust) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want ErrTrust naming %q", tt.name, err, tt.want)
		}
	}
	if !strings.Contains(string(b.TrustJSON), `"roles": [
        "rotation-system"
      ]`) {
		t.Errorf("the scenario's trust file gives its collector no rotation-system role:\n%s", b.TrustJSON)
	}
}

// recordAt is a record and its time as the rules name them: "entry 7 at
// TIME" (the policy rules) or "at TIME (entry 7)" (rotation.structure).
var recordAt = regexp.MustCompile(`entry \d+ at 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ|at 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ \(entry \d+\)`)

// The scenario suite's rows for the rules of this file: each breaks one rule
// of the compliant policy rotation, and only that rule's check fails.
func TestScenarioAuthorityRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check string
		err   error
		// record: the failure names the record and its time (the rules do; the
		// entry checks name the entry).
		record bool
		mutate func(*scenario.PolicyRotation)
	}{
		{"the requester signs the new key's smoke test", verify.CheckEntriesSignature, verify.ErrNotAllowed, false, func(pr *scenario.PolicyRotation) {
			s := pr.Event(evidence.EventSmokeTest, pr.Rotation.NewKey)
			s.By, s.Event.Actor = pr.Parties.Requester, evidence.Actor{ID: pr.Parties.Requester.ID}
		}},
		{"an approval before the request", verify.CheckRotationStructure, verify.ErrStructure, true, func(pr *scenario.PolicyRotation) {
			pr.Event(evidence.EventApprove, pr.Rotation.NewKey).Event.At = hours(30 * time.Minute)
		}},
		{"an approval for another key class", verify.CheckRotationStructure, verify.ErrStructure, true, func(pr *scenario.PolicyRotation) {
			pr.Event(evidence.EventApprove, pr.Rotation.NewKey).Event.KeyClass = "cold-storage"
		}},
		{"a failed smoke test after the passing one", verify.CheckRotationStructure, verify.ErrStructure, true, func(pr *scenario.PolicyRotation) {
			s := pr.Event(evidence.EventSmokeTest, pr.Rotation.NewKey)
			failed := *s.Event
			failed.At, failed.SmokeTest = hours(3*time.Hour+30*time.Minute), &evidence.SmokeTest{Passed: false, Detail: "verification failed"}
			pr.Steps = append(pr.Steps, scenario.Step{By: s.By, Key: s.Key, Event: &failed})
		}},
		{"a break-glass nobody confirmed", verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, true, func(pr *scenario.PolicyRotation) {
			_, confirm := breakGlassOf(pr)
			pr.Steps = slicesDelete(pr.Steps, confirm)
		}},
		{"two promotes of the old key", verify.CheckRotationWindow, verify.ErrRotationWindow, true, func(pr *scenario.PolicyRotation) {
			s := pr.Event(evidence.EventPromote, pr.Rotation.OldKey)
			again := *s.Event
			again.At = hours(-100 * 24 * time.Hour)
			pr.Steps = append(pr.Steps, scenario.Step{By: s.By, Key: s.Key, Event: &again})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, res := buildPolicy(t, tc.mutate)
			if res.Verified {
				t.Fatal("verified")
			}
			for _, c := range res.Checks {
				switch {
				case c.Name == tc.check:
					if c.Status != verify.Fail || !errors.Is(c.Err(), tc.err) {
						t.Fatalf("%s: %s %v, want FAIL wrapping %v", c.Name, c.Status, c.Err(), tc.err)
					}
					if tc.record && !recordAt.MatchString(strings.Join(append([]string{c.Reason}, c.Failures...), "\n")) {
						t.Errorf("%s: %q names no record and time", c.Name, c.Reason)
					}
					t.Logf("FAIL %s %s", c.Name, c.Reason)
				case c.Status == verify.Fail:
					t.Errorf("%s also fails: %s", c.Name, c.Reason)
				}
			}
		})
	}
}

// A failed smoke test of the new key counts even if it names no rotation.
func TestFailedSmokeTestWithoutRotationID(t *testing.T) {
	b := build(t, func(steps []scenario.Step) []scenario.Step {
		steps = again(recSmoke, 30*time.Minute)(steps)
		last := steps[len(steps)-1].Event
		last.RotationID, last.SmokeTest = "", &evidence.SmokeTest{Passed: false, Detail: "signature did not verify"}
		return steps
	})
	c := wantFail(t, run(t, b, b.BundleBytes, verify.Options{}), verify.CheckRotationStructure, verify.ErrStructure)
	failuresContain(t, c, "a failed smoke-test of "+b.Rotation.NewKey.ID+" with no later passing one")
}
