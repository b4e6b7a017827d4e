package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/keytrail/keytrail/evidence"
)

// Formats, as evidence.HSMAttestation.Format names them.
const (
	FormatMarvell = "marvell-cavium-v1-compressed"
	FormatLuna    = "luna-pkc"
)

// Sentinel errors. Every failed check wraps one of them.
var (
	// ErrInput: the caller's input is unusable (no evidence time, a malformed
	// expected key digest).
	ErrInput = errors.New("attest: bad input")
	// ErrFormat: the evidence is not well-formed (truncated, inconsistent
	// lengths, too large, duplicate attributes).
	ErrFormat = errors.New("attest: malformed evidence")
	// ErrChain: a certificate chain does not lead to a pinned root.
	ErrChain = errors.New("attest: certificate chain")
	// ErrValidity: a certificate or pinned root is not valid at the time the
	// evidence was logged.
	ErrValidity = errors.New("attest: not valid at evidence time")
	// ErrSignature: the vendor's signature over the attestation does not verify.
	ErrSignature = errors.New("attest: attestation signature")
	// ErrKeyMismatch: two things that must carry the same key do not.
	ErrKeyMismatch = errors.New("attest: key mismatch")
	// ErrCheckValue: a key check value does not match the key.
	ErrCheckValue = errors.New("attest: key check value")
	// ErrBinding: the attested key is not the key the caller expected.
	ErrBinding = errors.New("attest: key not bound")
	// ErrIdentity: the HSM identity is missing or inconsistent.
	ErrIdentity = errors.New("attest: HSM identity")
	// ErrPolicy: the key's attributes break the non-export policy.
	ErrPolicy = errors.New("attest: non-export policy")
	// ErrPanic: verification panicked; the evidence is not verified.
	ErrPanic = errors.New("attest: verifier panic")
	// ErrNoTime: the time the evidence was logged is missing (wraps ErrInput).
	ErrNoTime = fmt.Errorf("%w: the time the evidence was logged is required", ErrInput)
)

// Check names shared by the format verifiers.
const (
	// CheckEvidenceTime: the evidence time is given (only present when it is not).
	CheckEvidenceTime = "evidence.time"
	// CheckBinding: the attested key is the expected key (SKIP when none is given).
	CheckBinding = "key.binding"
	// CheckNonExport: the key's attributes pass NonExport.
	CheckNonExport = "key.non-export"
	// CheckIdentity: the HSM's model and serial are read and consistent.
	CheckIdentity = "hsm.identity"
	// CheckVerifier: verification panicked (only present then).
	CheckVerifier = "verifier"
)

// Status is the outcome of one check.
type Status string

// Check outcomes. SKIP means the check was not asked for (no expected key, no
// owner root) or could not run because an earlier check failed.
const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP"
)

// Check is one named check and what it concluded.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Reason says what was checked and, on failure, what failed on which object.
	Reason string `json:"reason"`
	// Deviations lists each departure from a standard that the check accepted
	// (for example an X.509 v1 CA certificate), with why it was accepted.
	Deviations []string `json:"deviations,omitempty"`
	err        error
}

// Err returns the check's error (wrapping one of this package's sentinels), or nil.
func (c *Check) Err() error { return c.err }

// Strength is how well the facts of a key are bound to hardware. From the
// weakest: Unverified, Software, SelfReported, TPMCertified, VendorAttested.
type Strength string

// Strengths of evidence (ATTACKS.md 25).
const (
	// Unverified: the evidence did not verify; its facts prove nothing.
	Unverified Strength = "unverified"
	// Software: the key is held in software; no hardware claims at all.
	Software Strength = "software"
	// SelfReported: PKCS #11 attributes as a token reports them, signed only by
	// a collector keytrail trusts, not by the hardware.
	SelfReported Strength = "self-reported"
	// TPMCertified: a TPM certified the key (TPM2_Certify) with an attestation
	// key bound to a trusted root.
	TPMCertified Strength = "tpm-certified"
	// VendorAttested: the HSM itself signed the key's facts, with a key chained
	// to a pinned vendor root valid when the evidence was logged.
	VendorAttested Strength = "vendor-attested"
)

var strengthRank = map[Strength]int{Unverified: 0, Software: 1, SelfReported: 2, TPMCertified: 3, VendorAttested: 4}

// AtLeast reports whether s is at least min. An unknown strength is below every
// known one.
func (s Strength) AtLeast(min Strength) bool {
	rs, ok := strengthRank[s]
	if !ok {
		return false
	}
	rm, ok := strengthRank[min]
	return ok && rs >= rm
}

// Attribute sources.
const (
	// SourceAttested: the attributes are in the vendor-signed evidence.
	SourceAttested = "attested"
	// SourceImplied: the format states no attributes; the vendor issues the
	// evidence only for keys that have them (a Luna PKC).
	SourceImplied = "implied"
)

// Facts are what the evidence states about the key and the HSM that holds it.
// They are authenticated only when the result's Strength is not Unverified.
type Facts struct {
	// KeyDigest names the key as keytrail names every key: the lowercase hex
	// SHA-256 of its DER SubjectPublicKeyInfo (evidence.KeyDigest).
	KeyDigest string `json:"keyDigest,omitempty"`
	// Algorithm is the key's algorithm and size, e.g. "ECDSA P-256", "RSA 4096".
	Algorithm string `json:"algorithm,omitempty"`
	// PublicKey is the attested key.
	PublicKey crypto.PublicKey `json:"-"`
	// Label is the key's PKCS #11 label, if the evidence has one.
	Label string `json:"label,omitempty"`
	// Token identifies the HSM: manufacturer, model, serial.
	Token evidence.TokenInfo `json:"token"`
	// Partition is the HSM partition that holds the key, if the format names one.
	Partition string `json:"partition,omitempty"`
	// Attributes are the key's PKCS #11 attributes that decide whether it can
	// leave the hardware.
	Attributes *evidence.KeyAttributes `json:"attributes,omitempty"`
	// AttributeSource is SourceAttested or SourceImplied.
	AttributeSource string `json:"attributeSource,omitempty"`
}

// Result is what a verifier concluded about one key. It is JSON-serialisable.
type Result struct {
	// Format is the evidence format (FormatMarvell, FormatLuna).
	Format string `json:"format"`
	// Verified is true only if no check failed and every required check passed.
	Verified bool `json:"verified"`
	// Strength is how well Facts are bound to hardware; Unverified unless every
	// check that authenticates them passed.
	Strength Strength `json:"strength"`
	// Facts are what the evidence states.
	Facts Facts `json:"facts"`
	// Checks are the checks in the order they ran.
	Checks []Check `json:"checks"`
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
		return errors.New("attest: verification did not complete")
	}
	return errors.Join(errs...)
}

// The methods below build a result; format verifiers use them.

// Pass records a passed check, with any deviations it accepted.
func (r *Result) Pass(name, reason string, deviations ...string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: Pass, Reason: reason, Deviations: deviations})
}

// Fail records a failed check; err should wrap one of this package's sentinels.
func (r *Result) Fail(name string, err error, deviations ...string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: Fail, Reason: err.Error(), Deviations: deviations, err: err})
}

// Skip records a check that did not run.
func (r *Result) Skip(name, reason string) {
	r.Checks = append(r.Checks, Check{Name: name, Status: Skip, Reason: reason})
}

// Record records err as a failure of name, or reason as its pass.
func (r *Result) Record(name string, err error, reason string, deviations ...string) bool {
	if err != nil {
		r.Fail(name, err, deviations...)
		return false
	}
	r.Pass(name, reason, deviations...)
	return true
}

// Conclude sets Verified and Strength: Verified if no check failed and every
// check in required and in authenticating passed. Strength is s if every check
// in authenticating passed, Unverified otherwise: a key whose facts are
// authenticated but break a policy is not Verified, yet keeps its Strength.
func (r *Result) Conclude(s Strength, authenticating, required []string) {
	passed := map[string]bool{}
	failed := false
	for _, c := range r.Checks {
		switch c.Status {
		case Fail:
			failed = true
		case Pass:
			passed[c.Name] = true
		}
	}
	all := func(names []string) bool {
		for _, n := range names {
			if !passed[n] {
				return false
			}
		}
		return true
	}
	r.Verified = !failed && all(required) && all(authenticating)
	r.Strength = Unverified
	if all(authenticating) && len(authenticating) > 0 {
		r.Strength = s
	}
}

// Recover turns a panic into a failed CheckVerifier; call it deferred, as
// defer res.Recover(). A panicked result is never Verified.
func (r *Result) Recover() {
	if p := recover(); p != nil {
		r.Fail(CheckVerifier, fmt.Errorf("%w: %v", ErrPanic, p))
		r.Verified = false
		r.Strength = Unverified
	}
}

// KeyAlgorithm names a public key for Facts.Algorithm ("ECDSA P-256",
// "RSA 4096", "Ed25519") and gives its PKCS #11 key type for
// evidence.KeyAttributes ("EC", "RSA", "EC_EDWARDS").
func KeyAlgorithm(k crypto.PublicKey) (alg, keyType string) {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name, "EC"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen()), "RSA"
	case ed25519.PublicKey:
		return "Ed25519", "EC_EDWARDS"
	}
	return fmt.Sprintf("%T", k), ""
}
