package verify_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify"
)

// The scenario suite: a compliant rotation with every kind of record passes
// every rule; each scenario below breaks exactly one rule, and only that
// rule's check fails, naming the record (entry index) and its time.

func buildPolicy(t *testing.T, mutate func(*scenario.PolicyRotation)) (*scenario.Built, *verify.Result) {
	t.Helper()
	b, err := scenario.BuildPolicy(context.Background(), "", mutate)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(b.Trust, b.Policy)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.VerifyBundle(b.BundleBytes, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return b, res
}

// TestScenarioCompliant: every rule runs and passes.
func TestScenarioCompliant(t *testing.T) {
	_, res := buildPolicy(t, nil)
	if !res.Verified {
		t.Fatalf("compliant rotation failed: %v", res.Err())
	}
	for _, name := range []string{
		verify.CheckRotationStructure, verify.CheckRotationWindow, verify.CheckReceiptsSignature,
		verify.CheckReceiptsBeforePromotion, verify.CheckReceiptsAfterDisable, verify.CheckDeletionRetention,
		verify.CheckBreakGlassQuorum, verify.CheckSeparationOfDuties, verify.CheckResidency,
	} {
		c := res.Check(name)
		if c == nil || c.Status != verify.Pass {
			t.Errorf("%s: %+v, want PASS", name, c)
		}
	}
	if c := res.Check(verify.CheckRotationWindow); !strings.Contains(c.Reason, "served 120d11h") {
		t.Errorf("rotation.window reason %q", c.Reason)
	}
	if c := res.Check(verify.CheckResidency); !strings.Contains(c.Reason, "hsm:"+scenario.HSMSerial+" EU") || !strings.Contains(c.Reason, "aws-kms-region:aws-eusc/eusc-de-east-1 EU") || !strings.Contains(c.Reason, "log:keytrail.example/custody-log EU") {
		t.Errorf("residency reason %q", c.Reason)
	}
}

var entryAt = regexp.MustCompile(`entry \d+ at 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

func TestScenarioEachRule(t *testing.T) {
	at := func(d time.Duration) evidence.At { return evidence.AtTime(scenario.Start.Add(d)) }
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name  string
		check string
		err   error
		// noRecord: the failure is about a missing record, so it names none.
		noRecord bool
		mutate   func(*scenario.PolicyRotation)
	}{
		{"old key served 40 days, class wants 90 to 180", verify.CheckRotationWindow, verify.ErrRotationWindow, false, func(pr *scenario.PolicyRotation) {
			pr.Event(evidence.EventCreate, pr.Rotation.OldKey).Event.At = at(-41 * day)
			pr.Event(evidence.EventPromote, pr.Rotation.OldKey).Event.At = at(-40 * day)
		}},
		{"a receipt whose signature does not verify", verify.CheckReceiptsSignature, verify.ErrReceipt, false, func(pr *scenario.PolicyRotation) {
			r := pr.Receipt("new-1").Record.(*evidence.SigningReceipt)
			r.Digest = strings.Repeat("ab", 32) // signed another digest
		}},
		{"the new key signs before promotion, not a smoke test", verify.CheckReceiptsBeforePromotion, verify.ErrReceiptTiming, false, func(pr *scenario.PolicyRotation) {
			r, err := pr.Parties.Receipt(pr.Parties.NewKey, scenario.Start.Add(6*time.Hour), "early-1", scenario.HSMSerial)
			if err != nil {
				t.Fatal(err)
			}
			pr.Steps = append(pr.Steps, scenario.Step{By: pr.Parties.Collector, Key: pr.Rotation.NewKey, Record: r})
		}},
		{"the smoke test's receipt is later than the smoke test", verify.CheckReceiptsBeforePromotion, verify.ErrReceiptTiming, false, func(pr *scenario.PolicyRotation) {
			pr.Receipt("smoke-1").Record.(*evidence.SigningReceipt).At = at(4 * time.Hour)
		}},
		{"the old key signs after its disable", verify.CheckReceiptsAfterDisable, verify.ErrReceiptTiming, false, func(pr *scenario.PolicyRotation) {
			r, err := pr.Parties.Receipt(pr.Parties.OldKey, scenario.Start.Add(20*time.Hour), "late-1", "")
			if err != nil {
				t.Fatal(err)
			}
			pr.Steps = append(pr.Steps, scenario.Step{By: pr.Parties.Collector, Key: pr.Rotation.OldKey, Record: r})
		}},
		{"destroyed 10 days after a 30-day schedule-deletion", verify.CheckDeletionRetention, verify.ErrRetention, false, func(pr *scenario.PolicyRotation) {
			pr.Event(evidence.EventDestroy, pr.Rotation.OldKey).Event.At = at(11 * day)
		}},
		{"retention below the policy's minimum", verify.CheckDeletionRetention, verify.ErrRetention, false, func(pr *scenario.PolicyRotation) {
			pr.Event(evidence.EventScheduleDeletion, pr.Rotation.OldKey).Event.Retention = "48h"
		}},
		{"destroy without schedule-deletion", verify.CheckDeletionRetention, verify.ErrRetention, false, func(pr *scenario.PolicyRotation) {
			s := pr.Event(evidence.EventScheduleDeletion, pr.Rotation.OldKey)
			pr.Steps = slicesDelete(pr.Steps, s)
		}},
		{"break-glass with a quorum of one", verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, false, func(pr *scenario.PolicyRotation) {
			pr.Event(evidence.EventBreakGlass, pr.Rotation.NewKey).Event.Quorum = []string{pr.Parties.Approvers[0].ID}
		}},
		{"break-glass quorum padded with the same person", verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, false, func(pr *scenario.PolicyRotation) {
			a := pr.Parties.Approvers[0].ID
			pr.Event(evidence.EventBreakGlass, pr.Rotation.NewKey).Event.Quorum = []string{a, a}
		}},
		{"break-glass quorum of someone without the role", verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, false, func(pr *scenario.PolicyRotation) {
			pr.Event(evidence.EventBreakGlass, pr.Rotation.NewKey).Event.Quorum = []string{pr.Parties.Approvers[0].ID, pr.Parties.Requester.ID}
		}},
		{"break-glass with a blank reason", verify.CheckBreakGlassQuorum, verify.ErrBreakGlass, false, func(pr *scenario.PolicyRotation) {
			pr.Event(evidence.EventBreakGlass, pr.Rotation.NewKey).Event.Reason = "  "
		}},
		{"a principal both administers and signs with the new key", verify.CheckSeparationOfDuties, verify.ErrSeparationOfDuties, false, func(pr *scenario.PolicyRotation) {
			s := pr.Find(func(s scenario.Step) bool {
				_, ok := s.Record.(*evidence.KeyPolicySnapshot)
				return ok && s.Key == pr.Rotation.NewKey
			})
			old := s.Record.(*evidence.KeyPolicySnapshot)
			bad := scenario.Snapshot(old.RecordTime(), old.Resource.Name, true)
			s.Record = bad
		}},
		{"no policy snapshot of the old key", verify.CheckSeparationOfDuties, verify.ErrSeparationOfDuties, true, func(pr *scenario.PolicyRotation) {
			s := pr.Find(func(s scenario.Step) bool {
				_, ok := s.Record.(*evidence.KeyPolicySnapshot)
				return ok && s.Key == pr.Rotation.OldKey
			})
			pr.Steps = slicesDelete(pr.Steps, s)
			// The old key is still located by its KMS region for residency:
			// the claim is about the region, and the snapshot was the only
			// record naming it, so locate the old key by an HSM instead.
			hsm, err := scenario.SelfReported(pr.Parties.OldKey, scenario.Start.Add(-100*day), scenario.HSMSerial)
			if err != nil {
				panic(err)
			}
			pr.Steps = append(pr.Steps, scenario.Step{By: pr.Parties.Collector, Key: pr.Rotation.OldKey, Record: hsm})
		}},
		{"the new key's only snapshot is after its promotion", verify.CheckSeparationOfDuties, verify.ErrSeparationOfDuties, false, func(pr *scenario.PolicyRotation) {
			s := pr.Find(func(s scenario.Step) bool {
				_, ok := s.Record.(*evidence.KeyPolicySnapshot)
				return ok && s.Key == pr.Rotation.NewKey
			})
			s.Record.(*evidence.KeyPolicySnapshot).At = at(11 * time.Hour)
		}},
		{"the new key's HSM is in the US", verify.CheckResidency, verify.ErrResidency, false, func(pr *scenario.PolicyRotation) {
			pr.Claims[1].Jurisdiction = "US"
		}},
		{"the log's jurisdiction is unknown", verify.CheckResidency, verify.ErrResidency, true, func(pr *scenario.PolicyRotation) {
			pr.Claims = pr.Claims[:2]
		}},
		{"a receipt signed in an HSM nobody vouches for", verify.CheckResidency, verify.ErrResidency, false, func(pr *scenario.PolicyRotation) {
			pr.Receipt("new-1").Record.(*evidence.SigningReceipt).HSMSerial = "hsm-unknown-1"
		}},
		{"the collector's region is not declared", verify.CheckResidency, verify.ErrResidency, true, func(pr *scenario.PolicyRotation) {
			pr.Trust = func(t *verify.TrustFile) { t.Residency.Collectors = nil }
		}},
		{"the old key is promoted again after its disable", verify.CheckKeysLifecycle, verify.ErrKeyLifecycle, false, func(pr *scenario.PolicyRotation) {
			ev := &evidence.LifecycleEvent{At: at(30 * time.Hour), Event: evidence.EventPromote, Actor: evidence.Actor{ID: pr.Parties.Collector.ID}}
			pr.Steps = append(pr.Steps, scenario.Step{By: pr.Parties.Collector, Key: pr.Rotation.OldKey, Event: ev})
		}},
		{"a policy snapshot of the old key after its destroy", verify.CheckKeysLifecycle, verify.ErrKeyLifecycle, false, func(pr *scenario.PolicyRotation) {
			old := pr.Find(func(s scenario.Step) bool {
				_, ok := s.Record.(*evidence.KeyPolicySnapshot)
				return ok && s.Key == pr.Rotation.OldKey
			}).Record.(*evidence.KeyPolicySnapshot)
			pr.Steps = append(pr.Steps, scenario.Step{By: pr.Parties.Collector, Key: pr.Rotation.OldKey, Record: scenario.Snapshot(scenario.Start.Add(35*day), old.Resource.Name, false)})
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
					if c.Status != verify.Fail {
						t.Fatalf("%s: %s %s, want FAIL", c.Name, c.Status, c.Reason)
					}
					if !errors.Is(c.Err(), tc.err) {
						t.Errorf("%s: error %v, want %v", c.Name, c.Err(), tc.err)
					}
					if !tc.noRecord && !entryAt.MatchString(c.Reason) {
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

func slicesDelete(steps []scenario.Step, s *scenario.Step) []scenario.Step {
	for i := range steps {
		if &steps[i] == s {
			return append(steps[:i:i], steps[i+1:]...)
		}
	}
	panic("no such step")
}

// TestScenarioResidencyClaimsAuthenticated: a logged claim not signed by a
// residency authority is not believed: in a bundle it fails
// entries.signature, and it resolves nothing.
func TestScenarioResidencyClaimsAuthenticated(t *testing.T) {
	ctx := context.Background()
	b, err := scenario.BuildPolicy(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := &evidence.ResidencyClaim{At: evidence.AtTime(scenario.Start), Subject: evidence.ResidencySubject{Kind: evidence.ResidencyHSM, Serial: scenario.HSMSerial}, Region: "eu-central-1", Jurisdiction: "EU"}
	st, err := evidence.NewStatement(forged, forged.Subject.Ref())
	if err != nil {
		t.Fatal(err)
	}
	env, err := evidence.SignStatement(ctx, st, b.Collector.Signer)
	if err != nil {
		t.Fatal(err)
	}
	// The authority's claim about the HSM is replaced by the collector's.
	raw, l := relog(t, b, append([][]byte{b.Residency[0], b.Residency[2]}, env)...)
	res := run(t, b, raw, verify.Options{Log: logCopy(t, b, l)})
	if c := res.Check(verify.CheckEntriesSignature); c.Status != verify.Fail || !strings.Contains(c.Reason, "unknown signer") && !strings.Contains(c.Reason, "may not sign") {
		t.Errorf("forged claim in the bundle: %s %s", c.Status, c.Reason)
	}
	// Without the forged record in the bundle, the log's copy of it is
	// ignored and the HSM's jurisdiction is unknown.
	raw, l = relog(t, b, b.Residency[0], b.Residency[2])
	if _, err := l.Append(ctx, env); err != nil {
		t.Fatal(err)
	}
	res = run(t, b, raw, verify.Options{Log: logCopy(t, b, l)})
	if c := res.Check(verify.CheckResidency); c.Status != verify.Fail || !strings.Contains(c.Reason, "jurisdiction unknown") {
		t.Errorf("forged claim in the log: %s %s", c.Status, c.Reason)
	}
	// Without claims at all, nothing resolves.
	raw, _ = relog(t, b)
	res = run(t, b, raw, verify.Options{})
	if c := res.Check(verify.CheckResidency); c.Status != verify.Fail || !strings.Contains(c.Reason, "jurisdiction unknown") {
		t.Errorf("no claims: %s %s", c.Status, c.Reason)
	}
}

// TestScenarioOldKeyHistory: events of the rotation that created the old key
// are admitted as its history (the promotion starts its service) but never
// count for this rotation: a disable of another rotation is no disable here.
func TestScenarioOldKeyHistory(t *testing.T) {
	_, res := buildPolicy(t, func(pr *scenario.PolicyRotation) {
		pr.Event(evidence.EventDisable, pr.Rotation.OldKey).Event.RotationID = scenario.PreviousRotation
	})
	if c := res.Check(verify.CheckEntriesBinding); c.Status != verify.Pass {
		t.Errorf("binding: %s %s", c.Status, c.Reason)
	}
	if c := res.Check(verify.CheckRotationStructure); c.Status != verify.Fail || !strings.Contains(c.Reason, "no disable event for kms:eu-central-1/custody/hot-1/v1") {
		t.Errorf("structure: %s %s", c.Status, c.Reason)
	}
	for _, name := range []string{verify.CheckRotationWindow, verify.CheckReceiptsAfterDisable} {
		if c := res.Check(name); c.Status != verify.Fail || !strings.Contains(c.Reason, "see rotation.structure") {
			t.Errorf("%s: %s %s", name, c.Status, c.Reason)
		}
	}
	// An event of another rotation about the new key is not history: it fails binding.
	_, res = buildPolicy(t, func(pr *scenario.PolicyRotation) {
		pr.Event(evidence.EventCreate, pr.Rotation.NewKey).Event.RotationID = scenario.PreviousRotation
	})
	if c := res.Check(verify.CheckEntriesBinding); c.Status != verify.Fail || !strings.Contains(c.Reason, "belongs to rotation") {
		t.Errorf("binding of another rotation's event about the new key: %s %s", c.Status, c.Reason)
	}
}

// TestScenarioPolicyCopied: changing the Policy after New changes nothing.
func TestScenarioPolicyCopied(t *testing.T) {
	b, err := scenario.BuildPolicy(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(b.Trust, b.Policy)
	if err != nil {
		t.Fatal(err)
	}
	b.Policy.BreakGlass.Quorum = 16
	b.Policy.KeyClasses["hot-signing"].Jurisdictions[0] = "US"
	b.Policy.KeyClasses["hot-signing"].RotationWindow.Max = 1
	res, err := v.VerifyBundle(b.BundleBytes, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified {
		t.Fatalf("the verifier saw the caller's later changes: %v", res.Err())
	}
}
