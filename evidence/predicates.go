package evidence

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/keytrail/keytrail/internal/strictjson"
)

// Predicate type URIs. Each is versioned; a change that alters meaning gets a new
// version.
const (
	PredicateHSMAttestation    = "https://keytrail.dev/predicates/hsm-attestation/v1"
	PredicateTPMAttestation    = "https://keytrail.dev/predicates/tpm-attestation/v1"
	PredicateKeyPolicySnapshot = "https://keytrail.dev/predicates/key-policy-snapshot/v1"
	PredicateSigningReceipt    = "https://keytrail.dev/predicates/signing-receipt/v1"
	PredicateLifecycleEvent    = "https://keytrail.dev/predicates/lifecycle-event/v1"
	PredicateResidencyClaim    = "https://keytrail.dev/predicates/residency-claim/v1"
)

// PredicateTypes lists every predicate type keytrail knows.
var PredicateTypes = []string{
	PredicateHSMAttestation, PredicateTPMAttestation, PredicateKeyPolicySnapshot,
	PredicateSigningReceipt, PredicateLifecycleEvent, PredicateResidencyClaim,
}

// KnownPredicateType reports whether t is one of PredicateTypes.
func KnownPredicateType(t string) bool {
	for _, p := range PredicateTypes {
		if p == t {
			return true
		}
	}
	return false
}

// Predicate is the typed body of a statement.
type Predicate interface {
	// PredicateType is the URI of the predicate's type.
	PredicateType() string
	// RecordTime is when the recorded fact happened, as its signer states it.
	RecordTime() time.Time
	validate(s *Statement) error
}

func parsePredicate(typ string, raw jsontext.Value) (Predicate, error) {
	var p Predicate
	switch typ {
	case PredicateHSMAttestation:
		p = new(HSMAttestation)
	case PredicateTPMAttestation:
		p = new(TPMAttestation)
	case PredicateKeyPolicySnapshot:
		p = new(KeyPolicySnapshot)
	case PredicateSigningReceipt:
		p = new(SigningReceipt)
	case PredicateLifecycleEvent:
		p = new(LifecycleEvent)
	case PredicateResidencyClaim:
		p = new(ResidencyClaim)
	default:
		return nil, fmt.Errorf("%w %q", ErrPredicateType, typ)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w %s: missing", ErrPredicate, typ)
	}
	if err := strictjson.Unmarshal(raw, p, MaxRecordBytes); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrPredicate, typ, err)
	}
	return p, nil
}

// At holds the record time common to every predicate.
type At struct {
	// Time is when the fact happened: RFC 3339, UTC, canonical (see ParseTime).
	Time string `json:"time"`
	t    time.Time
}

// RecordTime returns the parsed time; it is set once the predicate is validated.
func (f *At) RecordTime() time.Time { return f.t }

// AtTime returns an At for t.
func AtTime(t time.Time) At { return At{Time: FormatTime(t), t: t.UTC()} }

func (f *At) check() error {
	t, err := ParseTime(f.Time)
	if err != nil {
		return fmt.Errorf("time: %w", err)
	}
	f.t = t
	return nil
}

func oneSubject(s *Statement) error {
	if len(s.Subject) != 1 {
		return fmt.Errorf("want exactly one subject (the key), have %d", len(s.Subject))
	}
	return nil
}

func required(name, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required", name)
	}
	return nil
}

// Actor is who did something: a person or a system, by its identity in the trust file.
type Actor struct {
	// ID is the identity, e.g. "alice@example.com" or "kms-rotation-service".
	ID string `json:"id"`
	// Role is the role the actor acted in, e.g. "custody-officer".
	Role string `json:"role,omitempty"`
}

// Lifecycle events.
const (
	EventRequest          = "request"
	EventCreate           = "create"
	EventSmokeTest        = "smoke-test"
	EventApprove          = "approve"
	EventPromote          = "promote"
	EventDisable          = "disable"
	EventScheduleDeletion = "schedule-deletion"
	EventDestroy          = "destroy"
	EventBreakGlass       = "break-glass"
	EventRollback         = "rollback"
)

// LifecycleEvents lists every lifecycle event.
var LifecycleEvents = []string{
	EventRequest, EventCreate, EventSmokeTest, EventApprove, EventPromote, EventDisable,
	EventScheduleDeletion, EventDestroy, EventBreakGlass, EventRollback,
}

// LifecycleEvent records one step in a key's life. Its subject is the key the
// event acts on (for a request, the key to be rotated).
type LifecycleEvent struct {
	At
	// Event is one of LifecycleEvents.
	Event string `json:"event"`
	// RotationID ties the event to a rotation; empty for events outside one.
	RotationID string `json:"rotationId,omitempty"`
	// Actor is who acted. For approve it must be the signer of the envelope.
	Actor Actor `json:"actor"`
	// KeyClass is the class of the key being rotated (request only).
	KeyClass string `json:"keyClass,omitempty"`
	// SmokeTest is the result of a smoke test (smoke-test only).
	SmokeTest *SmokeTest `json:"smokeTest,omitempty"`
	// Retention is how long a key scheduled for deletion is kept, a Go duration
	// such as "720h" (schedule-deletion only).
	Retention string `json:"retention,omitempty"`
	// Reason explains a break-glass or rollback (required for those).
	Reason string `json:"reason,omitempty"`
	// Quorum lists who authorised a break-glass (break-glass only).
	Quorum []string `json:"quorum,omitempty"`
}

// SmokeTest is the outcome of exercising a new key before promotion.
type SmokeTest struct {
	Passed bool   `json:"passed"`
	Detail string `json:"detail,omitempty"`
}

func (*LifecycleEvent) PredicateType() string { return PredicateLifecycleEvent }

func (e *LifecycleEvent) validate(s *Statement) error {
	if err := e.check(); err != nil {
		return err
	}
	if err := oneSubject(s); err != nil {
		return err
	}
	if err := required("actor.id", e.Actor.ID); err != nil {
		return err
	}
	known := false
	for _, ev := range LifecycleEvents {
		known = known || ev == e.Event
	}
	if !known {
		return fmt.Errorf("event %q is not one of %v", e.Event, LifecycleEvents)
	}
	only := func(field string, set bool, events ...string) error {
		allowed := false
		for _, ev := range events {
			allowed = allowed || ev == e.Event
		}
		if set && !allowed {
			return fmt.Errorf("%s is not allowed on a %s event", field, e.Event)
		}
		if !set && allowed {
			return fmt.Errorf("%s is required on a %s event", field, e.Event)
		}
		return nil
	}
	return errors.Join(
		only("keyClass", e.KeyClass != "", EventRequest),
		only("smokeTest", e.SmokeTest != nil, EventSmokeTest),
		only("retention", e.Retention != "", EventScheduleDeletion),
		only("reason", e.Reason != "", EventBreakGlass, EventRollback),
		only("quorum", len(e.Quorum) != 0, EventBreakGlass),
		e.checkRetention(),
		e.checkRole(),
	)
}

func (e *LifecycleEvent) checkRole() error {
	if e.Event == EventApprove && e.Actor.Role == "" {
		return errors.New("actor.role is required on an approve event")
	}
	return nil
}

func (e *LifecycleEvent) checkRetention() error {
	if e.Retention == "" {
		return nil
	}
	d, err := time.ParseDuration(e.Retention)
	if err != nil || d <= 0 {
		return fmt.Errorf("retention %q is not a positive duration", e.Retention)
	}
	return nil
}

// HSMAttestation records what a hardware security module says about a key:
// the token's identity, the key's attributes, and, where the vendor provides
// one, the vendor's signed attestation and its certificate chain.
type HSMAttestation struct {
	At
	// Format names the evidence: one of HSMFormats. "pkcs11-attributes" is
	// self-reported by a token; the others are signed by the HSM's vendor key.
	Format string `json:"format"`
	// Token identifies the module: manufacturer, model, serial, versions.
	Token TokenInfo `json:"token"`
	// KeyURI is the key's PKCS #11 URI (RFC 7512), e.g.
	// "pkcs11:token=custody;object=hot-1;type=private" (pkcs11-attributes).
	KeyURI string `json:"keyUri,omitempty"`
	// Attributes are the key's PKCS#11 attributes as the token reports them.
	Attributes KeyAttributes `json:"attributes"`
	// PublicKey is the key's DER SubjectPublicKeyInfo as the token reports it
	// (pkcs11-attributes; required there).
	PublicKey []byte `json:"publicKey,omitempty"`
	// ProofOfPossession is a signature the key made over a fresh nonce when the
	// record was collected (pkcs11-attributes; required there).
	ProofOfPossession *ProofOfPossession `json:"proofOfPossession,omitempty"`
	// Attestation is the vendor's attestation blob, if any.
	Attestation []byte `json:"attestation,omitempty"`
	// Certificates is the vendor chain (DER), leaf first, if any.
	Certificates [][]byte `json:"certificates,omitempty"`
	// CSR is a certificate request made with the key (luna-pkc, optional): the
	// vendor confirmation must be of the key of the CSR.
	CSR []byte `json:"csr,omitempty"`
}

// HSM attestation formats.
const (
	HSMFormatPKCS11  = "pkcs11-attributes"
	HSMFormatMarvell = "marvell-cavium-v1-compressed"
	HSMFormatLuna    = "luna-pkc"
)

// HSMFormats lists the formats of HSMAttestation.
var HSMFormats = []string{HSMFormatPKCS11, HSMFormatMarvell, HSMFormatLuna}

// TokenInfo identifies a cryptographic token (PKCS#11 CK_TOKEN_INFO and CK_INFO).
type TokenInfo struct {
	Manufacturer    string `json:"manufacturer"`
	Model           string `json:"model"`
	Serial          string `json:"serial"`
	HardwareVersion string `json:"hardwareVersion,omitempty"`
	FirmwareVersion string `json:"firmwareVersion,omitempty"`
	Library         string `json:"library,omitempty"`
	// Label is the token label (CK_TOKEN_INFO.label).
	Label string `json:"label,omitempty"`
	// LibraryVersion and CryptokiVersion are from CK_INFO.
	LibraryVersion  string `json:"libraryVersion,omitempty"`
	CryptokiVersion string `json:"cryptokiVersion,omitempty"`
}

// KeyAttributes are the PKCS#11 attributes that decide whether a key can leave
// its hardware, and those that describe it.
type KeyAttributes struct {
	// Class is the object class, e.g. "PRIVATE_KEY".
	Class string `json:"class,omitempty"`
	// KeyType is "EC", "RSA" or "EC_EDWARDS" (CKA_KEY_TYPE without CKK_).
	KeyType string `json:"keyType"`
	// Curve is the curve of an EC or EC_EDWARDS key: "P-256", "P-384",
	// "secp256k1", "Ed25519".
	Curve string `json:"curve,omitempty"`
	// Label and ID are CKA_LABEL and CKA_ID (hex).
	Label            string `json:"label,omitempty"`
	ID               string `json:"id,omitempty"`
	Sensitive        bool   `json:"sensitive"`
	Extractable      bool   `json:"extractable"`
	NeverExtractable bool   `json:"neverExtractable"`
	AlwaysSensitive  bool   `json:"alwaysSensitive"`
	Local            bool   `json:"local"`
	// KeyGenMechanism is CKA_KEY_GEN_MECHANISM, e.g. "CKM_EC_KEY_PAIR_GEN";
	// "CK_UNAVAILABLE_INFORMATION" for an imported key.
	KeyGenMechanism string `json:"keyGenMechanism,omitempty"`
	// Token, Private, Modifiable and WrapWithTrusted are CKA_TOKEN,
	// CKA_PRIVATE, CKA_MODIFIABLE and CKA_WRAP_WITH_TRUSTED.
	Token           bool `json:"token,omitempty"`
	Private         bool `json:"private,omitempty"`
	Modifiable      bool `json:"modifiable,omitempty"`
	WrapWithTrusted bool `json:"wrapWithTrusted,omitempty"`
}

// ProofOfPossession is a signature by the key over a nonce the collector chose.
type ProofOfPossession struct {
	// Nonce is the fresh random data signed (at least 16 bytes).
	Nonce []byte `json:"nonce"`
	// Mechanism is the PKCS #11 mechanism used: "CKM_ECDSA" over SHA-256(nonce),
	// "CKM_EDDSA" over the nonce, "CKM_SHA256_RSA_PKCS" over the nonce.
	Mechanism string `json:"mechanism"`
	// Signature is the signature as the token returned it (ECDSA: r||s).
	Signature []byte `json:"signature"`
}

func (*HSMAttestation) PredicateType() string { return PredicateHSMAttestation }

func (a *HSMAttestation) validate(s *Statement) error {
	var errs []error
	known := false
	for _, f := range HSMFormats {
		known = known || f == a.Format
	}
	if a.Format != "" && !known {
		errs = append(errs, fmt.Errorf("format %q is not one of %v", a.Format, HSMFormats))
	}
	if p := a.ProofOfPossession; p != nil && (len(p.Nonce) == 0 || len(p.Signature) == 0 || p.Mechanism == "") {
		errs = append(errs, errors.New("proofOfPossession needs nonce, mechanism and signature"))
	}
	return errors.Join(append(errs, a.check(), oneSubject(s), required("format", a.Format),
		required("token.serial", a.Token.Serial), required("attributes.keyType", a.Attributes.KeyType))...)
}

// TPM attestation kinds.
const (
	TPMKindCertify = "certify"
	TPMKindQuote   = "quote"
)

// TPMAttestation records a TPM 2.0 quote or certification of a key.
type TPMAttestation struct {
	At
	// Kind is "certify" (TPM2_Certify of the subject key) or "quote"
	// (TPM2_Quote of the platform's PCRs).
	Kind string `json:"kind"`
	// Attest is the TPMS_ATTEST structure the TPM signed.
	Attest []byte `json:"attest"`
	// Signature is the TPMT_SIGNATURE over Attest by the attestation key.
	Signature []byte `json:"signature"`
	// AKPublic is the attestation key's TPMT_PUBLIC.
	AKPublic []byte `json:"akPublic"`
	// KeyPublic is the certified key's TPMT_PUBLIC (certify: required).
	KeyPublic []byte `json:"keyPublic,omitempty"`
	// PCRValues are the values of the quoted PCRs in selection order (quote:
	// required).
	PCRValues [][]byte `json:"pcrValues,omitempty"`
	// Nonce is the verifier-chosen qualifying data (quote: required).
	Nonce []byte `json:"nonce,omitempty"`
}

func (*TPMAttestation) PredicateType() string { return PredicateTPMAttestation }

func (a *TPMAttestation) validate(s *Statement) error {
	var errs []error
	if len(a.Attest) == 0 || len(a.Signature) == 0 || len(a.AKPublic) == 0 {
		errs = append(errs, errors.New("attest, signature and akPublic are required"))
	}
	if a.Kind == TPMKindQuote && len(a.Nonce) == 0 {
		errs = append(errs, errors.New("a quote record needs a nonce"))
	}
	switch a.Kind {
	case TPMKindCertify:
		if len(a.KeyPublic) == 0 || len(a.PCRValues) != 0 {
			errs = append(errs, errors.New("a certify record needs keyPublic and has no pcrValues"))
		}
	case TPMKindQuote:
		if len(a.PCRValues) == 0 || len(a.KeyPublic) != 0 {
			errs = append(errs, errors.New("a quote record needs pcrValues and has no keyPublic"))
		}
	default:
		errs = append(errs, fmt.Errorf("kind %q, want %q or %q", a.Kind, TPMKindCertify, TPMKindQuote))
	}
	return errors.Join(append(errs, a.check(), oneSubject(s))...)
}

// KeyPolicySnapshot records the key policy and bindings in force for a key.
type KeyPolicySnapshot struct {
	At
	// Provider is "aws-kms" or "gcp-kms".
	Provider string `json:"provider"`
	// Bindings maps each principal to the permissions it holds on the key.
	Bindings []Binding `json:"bindings"`
	// CanonicalSHA256 is the hex SHA-256 of the RFC 8785 form of the raw policy.
	CanonicalSHA256 string `json:"canonicalSha256"`
}

// Binding grants a principal permissions on a key.
type Binding struct {
	Principal   string   `json:"principal"`
	Permissions []string `json:"permissions"`
}

func (*KeyPolicySnapshot) PredicateType() string { return PredicateKeyPolicySnapshot }

func (p *KeyPolicySnapshot) validate(s *Statement) error {
	var errs []error
	if !isSHA256Hex(p.CanonicalSHA256) {
		errs = append(errs, fmt.Errorf("canonicalSha256 %q is not 64 lowercase hex digits", p.CanonicalSHA256))
	}
	return errors.Join(append(errs, p.check(), oneSubject(s), required("provider", p.Provider))...)
}

// SigningReceipt records one signature a key made.
type SigningReceipt struct {
	At
	// Digest is the signed message digest, hex.
	Digest string `json:"digest"`
	// Signature is the signature bytes as the signer returned them.
	Signature []byte `json:"signature"`
	// Operator is who asked for the signature.
	Operator string `json:"operator"`
	// RequestID is the signer's request identifier.
	RequestID string `json:"requestId"`
	// Chain and TxHash locate the transaction, if any.
	Chain  string `json:"chain,omitempty"`
	TxHash string `json:"txHash,omitempty"`
}

func (*SigningReceipt) PredicateType() string { return PredicateSigningReceipt }

func (r *SigningReceipt) validate(s *Statement) error {
	var errs []error
	if len(r.Signature) == 0 {
		errs = append(errs, errors.New("signature is required"))
	}
	return errors.Join(append(errs, r.check(), oneSubject(s), required("digest", r.Digest),
		required("operator", r.Operator), required("requestId", r.RequestID))...)
}

// ResidencyClaim states where a key, HSM or log lives.
type ResidencyClaim struct {
	At
	// Region is the provider region, e.g. "eu-central-1".
	Region string `json:"region"`
	// Jurisdiction is the legal jurisdiction, e.g. "EU".
	Jurisdiction string `json:"jurisdiction"`
	// HSMSerial, if set, ties the claim to an HSM partition rather than a KMS key.
	HSMSerial string `json:"hsmSerial,omitempty"`
}

func (*ResidencyClaim) PredicateType() string { return PredicateResidencyClaim }

func (c *ResidencyClaim) validate(s *Statement) error {
	return errors.Join(c.check(), oneSubject(s), required("region", c.Region), required("jurisdiction", c.Jurisdiction))
}
