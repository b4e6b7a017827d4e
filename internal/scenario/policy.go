package scenario

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/verify"
)

// PolicyYAMLFull is a policy with every rule keytrail checks: the rotation
// rules, the hot-signing class's rotation window and jurisdictions, deletion
// retention and break-glass quorum. The rotation BuildPolicy makes meets it.
const PolicyYAMLFull = `# keytrail rotation policy (docs/policy.md)
version: 1
rotation:
  minApprovals: 2
  approverRoles: [custody-officer, security-officer]
  requireSmokeTest: true
  # both keys' access policies must be in the bundle
  requirePolicySnapshots: true
keyClasses:
  hot-signing:
    # from the old key's promotion to its disable
    rotationWindow: {min: 90d, max: 180d}
    # keys, their HSMs and KMS regions, the log and the collectors
    jurisdictions: [EU]
deletion:
  minRetention: 7d
breakGlass:
  quorum: 2
  roles: [custody-officer, security-officer]
freshness:
  # keytrail verify freshness: attestations a day old at most, snapshots a week
  maxAge: 24h
  keyPolicySnapshot: 7d
`

// Places of the policy rotation.
const (
	// HSMSerial is the HSM partition that holds the new key.
	HSMSerial = "hsm-eu-7401"
	// AWSPartition and AWSRegion hold the old key (AWS European Sovereign Cloud).
	AWSPartition = "aws-eusc"
	AWSRegion    = "eusc-de-east-1"
	// PreviousRotation is the rotation that promoted the old key.
	PreviousRotation = "rot-2025-10-hot-1"
)

// PolicyRotation is a rotation with every kind of record, before it is signed:
// the old key's history, lifecycle events, hardware attestation, policy
// snapshots, signing receipts, deletion and break-glass, and the residency
// claims and policy that accept it. Tests change one thing to break one rule.
type PolicyRotation struct {
	Parties  *Parties
	Rotation evidence.Rotation
	// Steps are the records in log order.
	Steps []Step
	// Claims are signed by Parties.Authority.
	Claims []*evidence.ResidencyClaim
	// PolicyYAML is the policy; Trust edits the trust file.
	PolicyYAML string
	Trust      func(*verify.TrustFile)
}

// Find returns the step whose record satisfies match, or panics: tests name
// records that exist.
func (pr *PolicyRotation) Find(match func(Step) bool) *Step {
	for i := range pr.Steps {
		if match(pr.Steps[i]) {
			return &pr.Steps[i]
		}
	}
	panic("scenario: no such step")
}

// Receipt returns the step of the receipt with request ID id.
func (pr *PolicyRotation) Receipt(id string) *Step {
	return pr.Find(func(s Step) bool {
		r, ok := s.Record.(*evidence.SigningReceipt)
		return ok && r.RequestID == id
	})
}

// Event returns the step of the first lifecycle event typ about key.
func (pr *PolicyRotation) Event(typ string, key evidence.KeyRef) *Step {
	return pr.Find(func(s Step) bool { return s.Event != nil && s.Record == nil && s.Event.Event == typ && s.Key == key })
}

// NewPolicyRotation returns the compliant policy rotation of the tests,
// starting at Start.
func NewPolicyRotation(p *Parties) (*PolicyRotation, error) {
	return NewPolicyRotationAt(p, "rot-2026-03-hot-1", Start)
}

// NewPolicyRotationAt returns a compliant policy rotation id starting at
// start. Its window reaches back to the old key's promotion, 120 days before
// start, and on to the old key's destruction 31 days after it.
func NewPolicyRotationAt(p *Parties, id string, start time.Time) (*PolicyRotation, error) {
	r0 := p.Rotation(id, start)
	r := r0
	r.Window = evidence.Window{Start: evidence.FormatTime(start.Add(-130 * day)), End: evidence.FormatTime(start.Add(40 * day))}
	pr := &PolicyRotation{Parties: p, Rotation: r, PolicyYAML: PolicyYAMLFull}
	at := func(d time.Duration) evidence.At { return evidence.AtTime(start.Add(d)) }
	svc := evidence.Actor{ID: p.Collector.ID}
	ev := func(d time.Duration, typ, rot string) *evidence.LifecycleEvent {
		return &evidence.LifecycleEvent{At: at(d), Event: typ, RotationID: rot, Actor: svc}
	}
	oldARN := "arn:aws-eusc:kms:eusc-de-east-1:210987654321:key/0b1e6c2a-4f7d-4e8a-9b3c-5d2f1a0e9c71"
	steps := []Step{
		{By: p.Collector, Key: r.OldKey, Event: ev(-121*day, evidence.EventCreate, PreviousRotation)},
		{By: p.Collector, Key: r.OldKey, Event: ev(-120*day, evidence.EventPromote, PreviousRotation)},
		{By: p.Collector, Key: r.OldKey, Record: Snapshot(start.Add(-100*day), oldARN, false)},
	}
	old1, err := p.Receipt(p.OldKey, start.Add(-60*day), "old-1", "")
	if err != nil {
		return nil, err
	}
	old2, err := p.Receipt(p.OldKey, start.Add(30*time.Minute), "old-2", "")
	if err != nil {
		return nil, err
	}
	steps = append(steps, Step{By: p.Collector, Key: r.OldKey, Record: old1}, Step{By: p.Collector, Key: r.OldKey, Record: old2})

	// The rotation itself, with the smoke test's signature listed.
	for _, s := range p.Steps(r0) { // hours after Start
		if s.Event.Event == evidence.EventSmokeTest {
			s.Event.SmokeTest.RequestIDs = []string{"smoke-1"}
		}
		steps = append(steps, s)
	}
	newARN := "arn:aws-eusc:kms:eusc-de-east-1:210987654321:key/3c9d2e71-8a4b-4f6c-b1d0-7e5a2c8f4b19"
	smoke, err := p.Receipt(p.NewKey, start.Add(2*time.Hour+30*time.Minute), "smoke-1", HSMSerial)
	if err != nil {
		return nil, err
	}
	new1, err := p.Receipt(p.NewKey, start.Add(12*time.Hour), "new-1", HSMSerial)
	if err != nil {
		return nil, err
	}
	hsm, err := SelfReported(p.NewKey, start.Add(2*time.Hour+10*time.Minute), HSMSerial)
	if err != nil {
		return nil, err
	}
	schedule := ev(24*time.Hour, evidence.EventScheduleDeletion, r.ID)
	schedule.Retention = "720h"
	// A break-glass declared by one officer, listing both, and confirmed by
	// the other with a record of their own.
	declarer, confirmer := p.Approvers[0], p.Approvers[1]
	breakGlass := ev(13*time.Hour, evidence.EventBreakGlass, r.ID)
	breakGlass.Actor = evidence.Actor{ID: declarer.ID, Role: declarer.Roles[0]}
	breakGlass.Reason = "freeze withdrawals after a suspected signer compromise"
	breakGlass.Quorum = []string{declarer.ID, confirmer.ID}
	confirm := ev(13*time.Hour+30*time.Minute, evidence.EventBreakGlassConfirm, r.ID)
	confirm.Actor = evidence.Actor{ID: confirmer.ID, Role: confirmer.Roles[0]}
	steps = append(steps,
		Step{By: p.Collector, Key: r.NewKey, Record: hsm},
		Step{By: p.Collector, Key: r.NewKey, Record: Snapshot(start.Add(2*time.Hour+20*time.Minute), newARN, false)},
		Step{By: p.Collector, Key: r.NewKey, Record: smoke},
		Step{By: p.Collector, Key: r.NewKey, Record: new1},
		Step{By: declarer, Key: r.NewKey, Event: breakGlass},
		Step{By: confirmer, Key: r.NewKey, Event: confirm, Confirms: breakGlass},
		Step{By: p.Collector, Key: r.OldKey, Event: schedule},
		Step{By: p.Collector, Key: r.OldKey, Event: ev(31*day+time.Hour, evidence.EventDestroy, r.ID)},
	)
	pr.Steps = steps
	long := start.Add(-200 * day)
	pr.Claims = []*evidence.ResidencyClaim{
		{At: evidence.AtTime(long), Subject: evidence.ResidencySubject{Kind: evidence.ResidencyAWSRegion, Partition: AWSPartition, Region: AWSRegion}, Region: AWSRegion, Jurisdiction: "EU"},
		{At: evidence.AtTime(long), Subject: evidence.ResidencySubject{Kind: evidence.ResidencyHSM, Serial: HSMSerial}, Region: "eu-central-1", Jurisdiction: "EU"},
		{At: evidence.AtTime(long), Subject: evidence.ResidencySubject{Kind: evidence.ResidencyLog, Origin: p.Origin}, Region: "eu-central-1", Jurisdiction: "EU"},
	}
	return pr, nil
}

const day = 24 * time.Hour

// Snapshot is a key-policy snapshot of an AWS KMS key in the AWS European
// Sovereign Cloud at t: a key administrator and a signer, distinct unless
// adminSigns.
func Snapshot(t time.Time, arn string, adminSigns bool) *evidence.KeyPolicySnapshot {
	admin := []string{"kms:DisableKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"}
	if adminSigns {
		admin = append(admin, "kms:Sign")
		slices.Sort(admin)
	}
	doc := fmt.Sprintf("policy of %s, admin signs %v", arn, adminSigns)
	sum := sha256.Sum256([]byte(doc))
	return &evidence.KeyPolicySnapshot{
		At: evidence.AtTime(t), Provider: evidence.ProviderAWSKMS,
		Resource: evidence.PolicyResource{Name: arn, Partition: AWSPartition, Region: AWSRegion},
		Bindings: []evidence.Binding{
			{Principal: "AWS:arn:aws-eusc:iam::210987654321:role/custody-key-admin", Permissions: admin},
			{Principal: "AWS:arn:aws-eusc:iam::210987654321:role/wallet-signer", Permissions: []string{"kms:GetPublicKey", "kms:Sign"}},
		},
		CanonicalSHA256: hex.EncodeToString(sum[:]),
	}
}

// Receipt is a signing receipt of a real P-256 signature by key (OldKey,
// NewKey, or a hardware key such as a TPM or PKCS #11 signer) at t: key signs
// a SHA-256 digest and returns an ASN.1 DER signature, as crypto/ecdsa does.
func (p *Parties) Receipt(key crypto.Signer, t time.Time, requestID, hsm string) (*evidence.SigningReceipt, error) {
	if _, ok := key.Public().(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("scenario: receipt %s: key is %T, want ECDSA P-256", requestID, key.Public())
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte("settlement instruction " + requestID))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("scenario: receipt %s: %w", requestID, err)
	}
	return &evidence.SigningReceipt{
		At: evidence.AtTime(t), Scheme: evidence.SchemeP256DER, PublicKey: spki,
		Digest: hex.EncodeToString(digest[:]), Signature: sig,
		Operator: "wallet-signer-eu-1", RequestID: requestID, HSMSerial: hsm,
	}, nil
}

// PolicyTrust returns the trust file of a policy rotation: p's, with the
// collector also enrolled for hardware attestations, the residency authority,
// and the collector's declared region.
func (p *Parties) PolicyTrust() *verify.TrustFile {
	t := p.TrustFile()
	t.Collectors[0].PredicateTypes = append(t.Collectors[0].PredicateTypes, evidence.PredicateHSMAttestation)
	t.Residency = &verify.TrustedResidency{
		Authorities: []verify.TrustedSigner{{ID: p.Authority.ID, PublicKey: evidence.MarshalPublicKeyPEM(p.Authority.Key.Public())}},
		Collectors:  []verify.CollectorLocation{{ID: p.Collector.ID, Region: "eu-central-1", Jurisdiction: "EU"}},
	}
	return t
}

// SignClaims signs residency claims by the residency authority.
func (p *Parties) SignClaims(ctx context.Context, claims []*evidence.ResidencyClaim) ([][]byte, error) {
	var out [][]byte
	for _, c := range claims {
		st, err := evidence.NewStatement(c, c.Subject.Ref())
		if err != nil {
			return nil, err
		}
		env, err := evidence.SignStatement(ctx, st, p.Authority.Signer)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	return out, nil
}

// BuildPolicy logs a policy rotation and builds its bundle, residency claims,
// trust file and policy. Mutate, if non-nil, may change the rotation before
// anything is signed.
func BuildPolicy(ctx context.Context, seed string, mutate func(*PolicyRotation)) (*Built, error) {
	p, err := NewParties(seed, "keytrail.example/custody-log")
	if err != nil {
		return nil, err
	}
	pr, err := NewPolicyRotation(p)
	if err != nil {
		return nil, err
	}
	if mutate != nil {
		mutate(pr)
	}
	slices.SortStableFunc(pr.Steps, func(a, b Step) int { return stepTime(a).Compare(stepTime(b)) })
	b := &Built{Parties: p, Log: NewMemLog(p.Origin, p.LogSigner), Rotation: pr.Rotation}
	envs, err := SignSteps(ctx, pr.Steps)
	if err != nil {
		return nil, err
	}
	for _, env := range envs {
		if _, err := b.Log.Append(ctx, env); err != nil {
			return nil, err
		}
		b.Records = append(b.Records, env)
	}
	if b.Residency, err = p.SignClaims(ctx, pr.Claims); err != nil {
		return nil, err
	}
	for _, env := range b.Residency {
		if _, err := b.Log.Append(ctx, env); err != nil {
			return nil, err
		}
	}
	if err := b.finish(ctx); err != nil {
		return nil, err
	}
	tf := p.PolicyTrust()
	if pr.Trust != nil {
		pr.Trust(tf)
	}
	if b.TrustJSON, err = strictjson.MarshalIndent(tf); err != nil {
		return nil, err
	}
	if b.Trust, err = verify.ParseTrust(b.TrustJSON); err != nil {
		return nil, err
	}
	b.PolicyYAML = pr.PolicyYAML
	b.Policy, err = verify.ParsePolicy([]byte(pr.PolicyYAML))
	return b, err
}

// Time is the step's record time.
func (s Step) Time() time.Time { return stepTime(s) }

func stepTime(s Step) time.Time {
	if s.Record != nil {
		t, _ := evidence.ParseTime(recordTime(s.Record))
		return t
	}
	t, _ := evidence.ParseTime(s.Event.Time)
	return t
}

func recordTime(p evidence.Predicate) string {
	switch r := p.(type) {
	case *evidence.SigningReceipt:
		return r.Time
	case *evidence.KeyPolicySnapshot:
		return r.Time
	case *evidence.HSMAttestation:
		return r.Time
	case *evidence.TPMAttestation:
		return r.Time
	case *evidence.LifecycleEvent:
		return r.Time
	case *evidence.ResidencyClaim:
		return r.Time
	}
	return ""
}

// SelfReported is a pkcs11-attributes record of key as a token reports it,
// with a real proof of possession by key over a fresh nonce (CKM_ECDSA over
// SHA-256(nonce), r||s): what collectors/pkcs11 records, and what
// attest/pkcs11 accepts as self-reported evidence.
func SelfReported(key crypto.Signer, at time.Time, serial string) (*evidence.HSMAttestation, error) {
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	d := sha256.Sum256(nonce)
	der, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	return &evidence.HSMAttestation{
		At: evidence.AtTime(at), Format: evidence.HSMFormatPKCS11,
		Token:  evidence.TokenInfo{Manufacturer: "SafeNet", Model: "Luna K7", Serial: serial, Label: "custody"},
		KeyURI: "pkcs11:token=custody;object=hot-1;type=private",
		Attributes: evidence.KeyAttributes{Class: "PRIVATE_KEY", KeyType: "EC", Curve: "P-256", Label: "hot-1", Sensitive: true,
			NeverExtractable: true, AlwaysSensitive: true, Local: true, KeyGenMechanism: "CKM_EC_KEY_PAIR_GEN", Token: true, Private: true},
		PublicKey: spki,
		ProofOfPossession: &evidence.ProofOfPossession{Nonce: nonce, Mechanism: "CKM_ECDSA",
			Signature: append(sig.R.FillBytes(make([]byte, 32)), sig.S.FillBytes(make([]byte, 32))...)},
	}, nil
}
