package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
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
	// EventBreakGlassConfirm is one quorum member's confirmation of a
	// break-glass declaration, which it names by its leaf hash (Declaration).
	EventBreakGlassConfirm = "break-glass-confirm"
	EventRollback          = "rollback"
	// Events a provider's log reports (AWS KMS EnableKey, CancelKeyDeletion,
	// PutKeyPolicy, CreateGrant, RotateKey). No rotation rule requires them;
	// they are in the bundle for the auditor to read.
	EventEnable         = "enable"
	EventCancelDeletion = "cancel-deletion"
	EventPolicyChange   = "policy-change"
	EventGrant          = "grant"
	EventRotateMaterial = "rotate-material"
)

// LifecycleEvents lists every lifecycle event.
var LifecycleEvents = []string{
	EventRequest, EventCreate, EventSmokeTest, EventApprove, EventPromote, EventDisable,
	EventScheduleDeletion, EventDestroy, EventBreakGlass, EventBreakGlassConfirm, EventRollback,
	EventEnable, EventCancelDeletion, EventPolicyChange, EventGrant, EventRotateMaterial,
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
	// KeyClass is the class of the key being rotated (request and approve
	// only): an approval names the class it approves, so it cannot serve a
	// request of another class.
	KeyClass string `json:"keyClass,omitempty"`
	// SmokeTest is the result of a smoke test (smoke-test only).
	SmokeTest *SmokeTest `json:"smokeTest,omitempty"`
	// Retention is how long a key scheduled for deletion is kept, a Go duration
	// such as "720h" (schedule-deletion only).
	Retention string `json:"retention,omitempty"`
	// Reason explains a break-glass or rollback (required for those).
	Reason string `json:"reason,omitempty"`
	// Quorum lists who must confirm a break-glass (break-glass only): each
	// confirms with a break-glass-confirm event of their own.
	Quorum []string `json:"quorum,omitempty"`
	// Declaration is the break-glass declaration a break-glass-confirm
	// confirms (break-glass-confirm only): the lowercase hex RFC 6962 leaf
	// hash, SHA-256(0x00 || envelope), of the declaration's envelope bytes
	// as logged (LeafHash).
	Declaration string `json:"declaration,omitempty"`
	// Source marks an event a collector made from a provider's log (for
	// example a CloudTrail DisableKey) rather than one the actor signed.
	Source *ProviderSource `json:"source,omitempty"`
}

// SmokeTest is the outcome of exercising a new key before promotion.
type SmokeTest struct {
	Passed bool   `json:"passed"`
	Detail string `json:"detail,omitempty"`
	// RequestIDs are the signing requests the smoke test made with the new
	// key: receipts with these request IDs, no later than the smoke test, are
	// the only signatures the new key may make before its promotion.
	RequestIDs []string `json:"requestIds,omitempty"`
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
			return fmt.Errorf("%s is not allowed on %s", field, anEvent(e.Event))
		}
		if !set && allowed {
			return fmt.Errorf("%s is required on %s", field, anEvent(e.Event))
		}
		return nil
	}
	return errors.Join(
		only("keyClass", e.KeyClass != "", EventRequest, EventApprove),
		only("smokeTest", e.SmokeTest != nil, EventSmokeTest),
		only("retention", e.Retention != "", EventScheduleDeletion),
		only("reason", e.Reason != "", EventBreakGlass, EventRollback),
		only("quorum", len(e.Quorum) != 0, EventBreakGlass),
		only("declaration", e.Declaration != "", EventBreakGlassConfirm),
		e.checkDeclaration(),
		e.checkRetention(),
		e.checkRole(),
		e.Source.check(),
	)
}

func (e *LifecycleEvent) checkRole() error {
	if e.Event == EventApprove && e.Actor.Role == "" {
		return errors.New("actor.role is required on an approve event")
	}
	return nil
}

// anEvent is "a smoke-test event", "an approve event".
func anEvent(ev string) string {
	if ev != "" && strings.ContainsRune("aeiou", rune(ev[0])) {
		return "an " + ev + " event"
	}
	return "a " + ev + " event"
}

func (e *LifecycleEvent) checkDeclaration() error {
	if e.Declaration != "" && !isSHA256Hex(e.Declaration) {
		return fmt.Errorf("declaration %q is not a leaf hash (64 lowercase hex digits)", e.Declaration)
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

// KeyPolicySnapshot records the key policy and bindings in force for a key at
// its time: who may do what with the key (collectors/kmspolicy normalises AWS
// KMS and Cloud KMS policies into this form).
type KeyPolicySnapshot struct {
	At
	// Provider is "aws-kms" or "gcp-kms".
	Provider string `json:"provider"`
	// Resource names and locates the key at the provider.
	Resource PolicyResource `json:"resource"`
	// Bindings maps each principal to the permissions it holds on the key
	// (allow entries only), sorted by principal.
	Bindings []Binding `json:"bindings"`
	// Denies are the deny entries in the same grammar: what the policy takes
	// away. They are never counted as permissions.
	Denies []Binding `json:"denies,omitempty"`
	// Conditions holds every condition a permission refers to ("... if
	// sha256:HEX"), by that digest.
	Conditions []PolicyCondition `json:"conditions,omitempty"`
	// CanonicalSHA256 is the hex SHA-256 of the RFC 8785 form of the raw policy.
	CanonicalSHA256 string `json:"canonicalSha256"`
	// GrantsSHA256 (AWS only) is the hex SHA-256 of the RFC 8785 form of
	// {"Grants": [...]}, the list-grants entries sorted by GrantId.
	GrantsSHA256 string `json:"grantsSha256,omitempty"`
	// Diff is what changed since the previous snapshot of the same key, if
	// the collector had one.
	Diff *PolicyDiff `json:"diff,omitempty"`
}

// PolicyResource names and locates a KMS key. Residency checks read
// Partition and Region (AWS) or Location (GCP).
type PolicyResource struct {
	// Name is the key's ARN (AWS) or CryptoKey resource name (GCP).
	Name string `json:"name"`
	// Partition and Region are the AWS ARN's partition ("aws", "aws-eusc",
	// ...) and region; ReplicaRegions the other regions holding the same key
	// material (multi-region keys).
	Partition      string   `json:"partition,omitempty"`
	Region         string   `json:"region,omitempty"`
	ReplicaRegions []string `json:"replicaRegions,omitempty"`
	// Location is the Cloud KMS location ("europe-west3", "eur3", "global").
	Location string `json:"location,omitempty"`
}

// PolicyCondition is one condition a permission refers to by digest.
type PolicyCondition struct {
	// Digest is "sha256:" and the hex SHA-256 of the RFC 8785 form of JSON.
	Digest string `json:"digest"`
	// JSON is the condition (an IAM Condition block, grant constraints, a GCP
	// IAM condition).
	JSON jsontext.Value `json:"json"`
}

// PolicyDiff is what changed between two snapshots of a key's bindings.
type PolicyDiff struct {
	// PreviousTime, PreviousCanonicalSHA256 and PreviousEnvelopeSHA256 (the
	// hex SHA-256 of the previous record's envelope, when known) identify the
	// previous snapshot.
	PreviousTime            string `json:"previousTime"`
	PreviousCanonicalSHA256 string `json:"previousCanonicalSha256"`
	PreviousEnvelopeSHA256  string `json:"previousEnvelopeSha256,omitempty"`
	// PolicyChanged reports whether the canonical policy digest differs.
	PolicyChanged bool `json:"policyChanged"`
	// AddedPrincipals and RemovedPrincipals hold principals with bindings now
	// and not before, and the reverse, sorted.
	AddedPrincipals   []string `json:"addedPrincipals"`
	RemovedPrincipals []string `json:"removedPrincipals"`
	// Added and Removed hold, per principal, the permissions gained and lost.
	Added   []Binding `json:"added"`
	Removed []Binding `json:"removed"`
}

// Empty reports whether no binding changed.
func (d *PolicyDiff) Empty() bool { return len(d.Added) == 0 && len(d.Removed) == 0 }

// Binding grants a principal permissions on a key.
type Binding struct {
	Principal   string   `json:"principal"`
	Permissions []string `json:"permissions"`
}

// Key-policy providers.
const (
	ProviderAWSKMS = "aws-kms"
	ProviderGCPKMS = "gcp-kms"
)

func (*KeyPolicySnapshot) PredicateType() string { return PredicateKeyPolicySnapshot }

func (p *KeyPolicySnapshot) validate(s *Statement) error {
	var errs []error
	if !isSHA256Hex(p.CanonicalSHA256) {
		errs = append(errs, fmt.Errorf("canonicalSha256 %q is not 64 lowercase hex digits", p.CanonicalSHA256))
	}
	if p.GrantsSHA256 != "" && !isSHA256Hex(p.GrantsSHA256) {
		errs = append(errs, fmt.Errorf("grantsSha256 %q is not 64 lowercase hex digits", p.GrantsSHA256))
	}
	switch p.Provider {
	case ProviderAWSKMS:
		if p.Resource.Partition == "" || p.Resource.Region == "" || p.Resource.Location != "" {
			errs = append(errs, errors.New("resource: an aws-kms key has a partition and a region, no location"))
		}
	case ProviderGCPKMS:
		if p.Resource.Location == "" || p.Resource.Partition != "" || p.Resource.Region != "" || len(p.Resource.ReplicaRegions) != 0 {
			errs = append(errs, errors.New("resource: a gcp-kms key has a location, no partition or regions"))
		}
	default:
		errs = append(errs, fmt.Errorf("provider %q is not one of %s, %s", p.Provider, ProviderAWSKMS, ProviderGCPKMS))
	}
	for i, c := range p.Conditions {
		h, ok := strings.CutPrefix(c.Digest, "sha256:")
		if !ok || !isSHA256Hex(h) || len(c.JSON) == 0 {
			errs = append(errs, fmt.Errorf("conditions[%d]: want a sha256: digest and the condition", i))
		}
	}
	return errors.Join(append(errs, p.check(), oneSubject(s), required("resource.name", p.Resource.Name))...)
}

// Signature schemes of signing receipts (verify/receipt documents each).
const (
	SchemeSecp256k1DER = "ecdsa-secp256k1-der"
	SchemeSecp256k1RSV = "ecdsa-secp256k1-rsv"
	SchemeEd25519      = "ed25519"
	SchemeP256DER      = "ecdsa-p256-der"
)

// ReceiptSchemes lists the receipt signature schemes.
var ReceiptSchemes = []string{SchemeSecp256k1DER, SchemeSecp256k1RSV, SchemeEd25519, SchemeP256DER}

// ProviderSource marks a record a collector made from a provider's own log
// (for example AWS CloudTrail) rather than from the system that acted.
type ProviderSource struct {
	// Provider is the log it came from, e.g. "aws-cloudtrail".
	Provider string `json:"provider"`
	// EventID is the provider's ID of the event (CloudTrail eventID).
	EventID string `json:"eventId"`
	// EventName is the provider's name of the event (CloudTrail eventName).
	EventName string `json:"eventName"`
	// Region is where the provider logged the event.
	Region string `json:"region,omitempty"`
}

func (p *ProviderSource) check() error {
	if p == nil {
		return nil
	}
	return errors.Join(required("source.provider", p.Provider), required("source.eventId", p.EventID), required("source.eventName", p.EventName))
}

// SigningReceipt records one signature a key made. The statement's subject is
// the key; its digest is the SHA-256 of PublicKey.
type SigningReceipt struct {
	At
	// Scheme is how the signature is encoded: one of ReceiptSchemes.
	// Required unless the receipt is provider-sourced.
	Scheme string `json:"scheme,omitempty"`
	// PublicKey is the DER SubjectPublicKeyInfo of the key (for secp256k1 as
	// verify/receipt marshals it); its SHA-256 is the subject's digest.
	// Required unless the receipt is provider-sourced.
	PublicKey []byte `json:"publicKey,omitempty"`
	// Digest is the signed message digest, hex (for Ed25519 the message).
	// Required unless the receipt is provider-sourced.
	Digest string `json:"digest,omitempty"`
	// Signature is the signature bytes as the signer returned them. Required
	// unless the receipt is provider-sourced (CloudTrail logs no signature).
	Signature []byte `json:"signature,omitempty"`
	// Operator is who asked for the signature.
	Operator string `json:"operator"`
	// RequestID is the signer's request identifier.
	RequestID string `json:"requestId"`
	// Chain and TxHash locate the transaction, if any.
	Chain  string `json:"chain,omitempty"`
	TxHash string `json:"txHash,omitempty"`
	// HSMSerial is the serial of the HSM (partition) that made the signature,
	// if the signer reports it.
	HSMSerial string `json:"hsmSerial,omitempty"`
	// Source marks a receipt made from a provider's log; it then carries no
	// signature to check.
	Source *ProviderSource `json:"source,omitempty"`
}

func (*SigningReceipt) PredicateType() string { return PredicateSigningReceipt }

func (r *SigningReceipt) validate(s *Statement) error {
	var errs []error
	if r.Source == nil {
		if len(r.Signature) == 0 {
			errs = append(errs, errors.New("signature is required"))
		}
		errs = append(errs, required("digest", r.Digest), required("scheme", r.Scheme))
		if len(r.PublicKey) == 0 {
			errs = append(errs, errors.New("publicKey is required"))
		}
	}
	if r.Scheme != "" && !slices.Contains(ReceiptSchemes, r.Scheme) {
		errs = append(errs, fmt.Errorf("scheme %q is not one of %v", r.Scheme, ReceiptSchemes))
	}
	if len(r.PublicKey) != 0 && len(s.Subject) == 1 {
		sum := sha256.Sum256(r.PublicKey)
		if d := hex.EncodeToString(sum[:]); s.Subject[0].Digest["sha256"] != d {
			errs = append(errs, fmt.Errorf("publicKey has digest %s, the subject %s has %s", d, s.Subject[0].Name, s.Subject[0].Digest["sha256"]))
		}
	}
	return errors.Join(append(errs, r.check(), oneSubject(s), r.Source.check(),
		required("operator", r.Operator), required("requestId", r.RequestID))...)
}

// Residency subject kinds: what a residency claim is about.
const (
	// ResidencyHSM is an HSM partition, by the serial its attestations report
	// (HSMAttestation.Token.Serial).
	ResidencyHSM = "hsm"
	// ResidencyAWSRegion is every AWS KMS key of a partition and region, as a
	// key's ARN names them (arn:aws-eusc:kms:eusc-de-east-1:...).
	ResidencyAWSRegion = "aws-kms-region"
	// ResidencyGCPLocation is every Cloud KMS key of a location.
	ResidencyGCPLocation = "gcp-kms-location"
	// ResidencyLog is a transparency log, by its checkpoint origin.
	ResidencyLog = "log"
)

// ResidencyKinds lists the residency subject kinds.
var ResidencyKinds = []string{ResidencyHSM, ResidencyAWSRegion, ResidencyGCPLocation, ResidencyLog}

// ResidencyClaim states where an HSM, a KMS region or a log lives. It is
// signed by a residency authority of the trust file. Its statement has one
// subject whose name is ResidencySubject.Name() and whose sha256 digest is the
// SHA-256 of that name (the subject is not a key).
type ResidencyClaim struct {
	At
	// Subject is what the claim is about.
	Subject ResidencySubject `json:"subject"`
	// Region is the provider or data-centre region, e.g. "eu-central-1".
	Region string `json:"region"`
	// Jurisdiction is the legal jurisdiction, e.g. "EU".
	Jurisdiction string `json:"jurisdiction"`
}

// ResidencySubject names a thing that resides somewhere.
type ResidencySubject struct {
	// Kind is one of ResidencyKinds.
	Kind string `json:"kind"`
	// Serial is the HSM partition's serial (kind hsm).
	Serial string `json:"serial,omitempty"`
	// Partition and Region are an AWS partition and region (kind aws-kms-region).
	Partition string `json:"partition,omitempty"`
	Region    string `json:"region,omitempty"`
	// Location is a Cloud KMS location (kind gcp-kms-location).
	Location string `json:"location,omitempty"`
	// Origin is a log's checkpoint origin (kind log).
	Origin string `json:"origin,omitempty"`
}

// Name is the statement subject name of a residency subject:
// "hsm:SERIAL", "aws-kms-region:PARTITION/REGION", "gcp-kms-location:LOCATION"
// or "log:ORIGIN".
func (s ResidencySubject) Name() string {
	switch s.Kind {
	case ResidencyHSM:
		return "hsm:" + s.Serial
	case ResidencyAWSRegion:
		return "aws-kms-region:" + s.Partition + "/" + s.Region
	case ResidencyGCPLocation:
		return "gcp-kms-location:" + s.Location
	case ResidencyLog:
		return "log:" + s.Origin
	}
	return ""
}

// Ref is the statement subject of a residency subject.
func (s ResidencySubject) Ref() KeyRef {
	sum := sha256.Sum256([]byte(s.Name()))
	return KeyRef{ID: s.Name(), SPKISHA256: hex.EncodeToString(sum[:])}
}

func (s ResidencySubject) check() error {
	set := map[string]bool{"serial": s.Serial != "", "partition": s.Partition != "", "region": s.Region != "", "location": s.Location != "", "origin": s.Origin != ""}
	want := map[string][]string{
		ResidencyHSM: {"serial"}, ResidencyAWSRegion: {"partition", "region"},
		ResidencyGCPLocation: {"location"}, ResidencyLog: {"origin"},
	}[s.Kind]
	if want == nil {
		return fmt.Errorf("subject.kind %q is not one of %v", s.Kind, ResidencyKinds)
	}
	for _, f := range slices.Sorted(maps.Keys(set)) {
		if set[f] != slices.Contains(want, f) {
			return fmt.Errorf("subject: a %s subject has exactly %v", s.Kind, want)
		}
	}
	return nil
}

func (*ResidencyClaim) PredicateType() string { return PredicateResidencyClaim }

func (c *ResidencyClaim) validate(s *Statement) error {
	errs := []error{c.check(), oneSubject(s), required("region", c.Region), required("jurisdiction", c.Jurisdiction)}
	if err := c.Subject.check(); err != nil {
		errs = append(errs, err)
	} else if len(s.Subject) == 1 {
		if want := c.Subject.Ref(); s.Subject[0].Name != want.ID || s.Subject[0].Digest["sha256"] != want.SPKISHA256 {
			errs = append(errs, fmt.Errorf("statement subject %s is not the claim's subject %s (with the SHA-256 of that name)", s.Subject[0].Name, want.ID))
		}
	}
	return errors.Join(errs...)
}
