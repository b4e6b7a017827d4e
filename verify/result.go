package verify

import (
	"errors"
	"fmt"
)

// Status is the outcome of one check.
type Status string

// Check outcomes. SKIP means the check was not asked for (for example
// consistency without --since) or could not run because an earlier check failed;
// a result with a SKIP can still be Verified only if the check was optional.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Check names, in the order they run.
const (
	CheckBundleSignature      = "bundle.signature"
	CheckBundleFormat         = "bundle.format"
	CheckCheckpointSignature  = "checkpoint.signature"
	CheckEntriesSignature     = "entries.signature"
	CheckEntriesInclusion     = "entries.inclusion"
	CheckEntriesBinding       = "entries.binding"
	CheckConsistency          = "checkpoint.consistency"
	CheckRotationStructure    = "rotation.structure"
	CheckLogCompleteness      = "log.completeness"
	maxFailuresListed         = 100
	errVerificationIncomplete = "verification did not complete"
)

// Checks lists every check a bundle verification reports, in the order
// they run.
var Checks = append([]string{
	CheckBundleSignature, CheckBundleFormat, CheckCheckpointSignature,
	CheckEntriesInclusion, CheckEntriesSignature, CheckEntriesBinding,
	CheckConsistency, CheckRotationStructure, CheckKeysHardware, CheckLogCompleteness,
}, ruleChecks...)

// Check is one named check and what it concluded.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Reason says what was checked and, on failure, what failed on which object.
	Reason string `json:"reason"`
	// Failures lists each failing object (at most 100 are listed).
	Failures []string `json:"failures,omitempty"`
	// Inconsistency is the evidence of a failed consistency check: the two
	// signed checkpoints and the proof (see InconsistencyError).
	Inconsistency *Inconsistency `json:"inconsistency,omitempty"`
	err           error
}

// Inconsistency is the evidence of an InconsistencyError, for the result.
type Inconsistency struct {
	// Older and Newer are the signed checkpoints, as given.
	Older string `json:"older"`
	Newer string `json:"newer"`
	// Proof is the consistency proof tried, if any.
	Proof [][]byte `json:"proof,omitempty"`
}

// Err returns the check's error (wrapping the sentinels of evidence, checkpoint
// and this package), or nil.
func (c *Check) Err() error { return c.err }

// Result is what VerifyBundle concluded. It is JSON-serialisable.
type Result struct {
	// Verified is true only if every check that ran passed and no required
	// check (the bundle's, entries', checkpoint's and rotation.structure, and
	// those the policy's require lists) was skipped.
	Verified bool `json:"verified"`
	// Rotation is the rotation ID, once the bundle is authenticated.
	Rotation string `json:"rotation,omitempty"`
	// Checks are the checks in the order they ran.
	Checks []Check `json:"checks"`
	// Skipped lists the checks that did not run, each with why ("name:
	// reason"). A verdict never covers what they check: a policy that needs
	// one lists it under require, and then its SKIP fails the bundle.
	Skipped []string `json:"skipped,omitempty"`
	// Hardware is what the hardware evidence established about the rotation's
	// new key (and old key, if it has any), when keys.hardware ran.
	Hardware []KeyHardware `json:"hardware,omitempty"`
}

// Check returns the named check, or nil.
func (r *Result) Check(name string) *Check {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

// Err joins the errors of the failed checks; nil if Verified.
func (r *Result) Err() error {
	if r.Verified {
		return nil
	}
	var errs []error
	for _, c := range r.Checks {
		if c.Status == Fail {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, c.err))
		}
	}
	if len(errs) == 0 {
		return errors.New(errVerificationIncomplete)
	}
	return errors.Join(errs...)
}

func (r *Result) pass(name, reason string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: Pass, Reason: reason})
}

func (r *Result) skip(name, reason string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: Skip, Reason: reason})
}

// fail records a failed check. err is the first (or only) cause; failures list
// every failing object.
func (r *Result) fail(name string, err error, failures ...string) {
	if len(failures) > maxFailuresListed {
		failures = append(failures[:maxFailuresListed:maxFailuresListed], fmt.Sprintf("... and %d more", len(failures)-maxFailuresListed))
	}
	c := Check{Name: name, Status: Fail, Reason: err.Error(), Failures: failures, err: err}
	if ie := (*InconsistencyError)(nil); errors.As(err, &ie) {
		c.Inconsistency = &Inconsistency{Older: string(ie.Older), Newer: string(ie.Newer), Proof: ie.Proof}
	}
	r.Checks = append(r.Checks, c)
}

// failures collects per-object failures for one check.
type failures struct {
	first error
	list  []string
}

func (f *failures) add(err error) {
	if f.first == nil {
		f.first = err
	}
	f.list = append(f.list, err.Error())
}

func (f *failures) report(r *Result, name, passReason string) bool {
	if f.first == nil {
		r.pass(name, passReason)
		return true
	}
	err := f.first
	if len(f.list) > 1 {
		err = fmt.Errorf("%d failures, first: %w", len(f.list), f.first)
	}
	r.fail(name, err, f.list...)
	return false
}
