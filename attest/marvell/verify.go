package marvell

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/internal/chain"
)

// Check names, in the order they run (and attest.CheckBinding,
// attest.CheckNonExport, attest.CheckIdentity).
const (
	CheckDecode            = "attestation.decode"
	CheckManufacturerChain = "manufacturer.chain"
	CheckOwnerChain        = "owner.chain"
	CheckSameKeys          = "chains.same-keys"
	CheckSignature         = "attestation.signature"
	CheckFormat            = "attestation.format"
	CheckKeyObjects        = "key.objects"
	CheckKeyValues         = "key.check-values"
)

// Config is the trust material of a Verifier.
type Config struct {
	// Manufacturer is the pinned Marvell LiquidSecurity root
	// ("localca.liquidsecurity.cavium.com"). Required.
	Manufacturer attest.Root
	// Owner is the pinned root of the cloud operator that runs the HSM
	// (Google Cloud HSM: "Hawksbill Root v1 prod"). With it, the partition and
	// card keys must also be certified by the owner. Nil means the owner chain
	// is not checked (reported as SKIP), for an HSM without an operator.
	Owner *attest.Root
}

// Verifier verifies attestations against fixed, pinned roots. It is safe for
// concurrent use.
type Verifier struct {
	mfr   attest.Root
	owner *attest.Root
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	if err := cfg.Manufacturer.Validate(); err != nil {
		return nil, fmt.Errorf("marvell: manufacturer root: %w", err)
	}
	v := &Verifier{mfr: cfg.Manufacturer}
	if cfg.Owner != nil {
		if err := cfg.Owner.Validate(); err != nil {
			return nil, fmt.Errorf("marvell: owner root: %w", err)
		}
		o := *cfg.Owner
		v.owner = &o
	}
	return v, nil
}

// Evidence is one attestation to verify.
type Evidence struct {
	// Attestation is the attestation as the provider returns it: gzip
	// (CAVIUM_V1_COMPRESSED), or already decompressed.
	Attestation []byte
	// Certificates are the certificates that came with it (Google Cloud KMS:
	// caviumCerts, googleCardCerts and googlePartitionCerts), DER, in any
	// order. None of them is trusted as a root.
	Certificates [][]byte
	// LoggedAt is when the evidence was logged: a trusted time, at which every
	// certificate and root is judged. Required.
	LoggedAt time.Time
	// ExpectedKey, if set, is the keytrail key digest (hex SHA-256 of the DER
	// SubjectPublicKeyInfo) of the key the attestation must be about, such as
	// the KMS key version's public key.
	ExpectedKey string
}

// chains are the partition and card certificates under one root.
type chains struct {
	partition, card *x509.Certificate
	devs            []string
}

// Verify verifies ev. Every problem is a failed check in the result; it never
// panics and never changes ev.
func (v *Verifier) Verify(ev Evidence) (res *attest.Result) {
	res = &attest.Result{Format: attest.FormatMarvell, Strength: attest.Unverified}
	defer res.Recover()
	authenticating := []string{CheckDecode, CheckManufacturerChain, CheckSignature, CheckFormat,
		CheckKeyObjects, CheckKeyValues, attest.CheckIdentity}
	if v.owner != nil {
		authenticating = append(authenticating, CheckOwnerChain, CheckSameKeys)
	}
	v.verify(ev, res)
	res.Conclude(attest.VendorAttested, authenticating, append(authenticating, attest.CheckNonExport))
	return res
}

func (v *Verifier) verify(ev Evidence, res *attest.Result) {
	if ev.LoggedAt.IsZero() {
		res.Fail(attest.CheckEvidenceTime, attest.ErrNoTime)
		return
	}
	t := ev.LoggedAt

	// attestation.decode: gunzip, bounded; split off the signature.
	raw, err := Decompress(ev.Attestation)
	if err == nil && len(raw) < responseHeaderSize+infoHeaderSize+SignatureSize {
		err = fmt.Errorf("%w: %d bytes is too short for an attestation", attest.ErrFormat, len(raw))
	}
	how := "uncompressed"
	if len(ev.Attestation) >= 2 && ev.Attestation[0] == 0x1f && ev.Attestation[1] == 0x8b {
		how = "gzip"
	}
	if !res.Record(CheckDecode, err, fmt.Sprintf("%s, %d bytes: %d signed bytes and a %d-byte signature",
		how, len(raw), len(raw)-SignatureSize, SignatureSize)) {
		raw = nil
	}

	// The chains.
	var mfr, owner *chains
	pool, err := chain.Parse(ev.Certificates)
	if err != nil {
		res.Fail(CheckManufacturerChain, err)
		res.Skip(CheckOwnerChain, "certificates unreadable")
	} else {
		mfr, err = v.manufacturerChain(pool, t)
		if err != nil {
			res.Fail(CheckManufacturerChain, err)
		} else {
			res.Pass(CheckManufacturerChain, fmt.Sprintf("%q <- %q <- pinned root %q, all valid at %s",
				chain.Name(mfr.partition), chain.Name(mfr.card), chain.Name(v.mfr.Certificate), t.UTC().Format(time.RFC3339)), mfr.devs...)
		}
		if v.owner == nil {
			res.Skip(CheckOwnerChain, "no owner root pinned")
		} else if owner, err = v.ownerChain(pool, t); err != nil {
			res.Fail(CheckOwnerChain, err)
		} else {
			res.Pass(CheckOwnerChain, fmt.Sprintf("%q and %q <- pinned root %q, all valid at %s",
				chain.Name(owner.partition), chain.Name(owner.card), chain.Name(v.owner.Certificate), t.UTC().Format(time.RFC3339)), owner.devs...)
		}
	}
	switch {
	case v.owner == nil:
		res.Skip(CheckSameKeys, "no owner root pinned")
	case mfr == nil || owner == nil:
		res.Skip(CheckSameKeys, "a chain did not verify")
	default:
		res.Record(CheckSameKeys, sameKeys(mfr, owner),
			"the manufacturer and the owner certify the same partition key and the same card key")
	}

	// attestation.signature, before anything signed is decoded.
	sigOK := false
	switch {
	case raw == nil:
		res.Skip(CheckSignature, "no attestation")
	case mfr == nil:
		res.Skip(CheckSignature, "no trusted partition key: "+CheckManufacturerChain+" failed")
	default:
		sigOK = res.Record(CheckSignature, checkSignature(raw, mfr.partition),
			fmt.Sprintf("RSA PKCS #1 v1.5 SHA-256 by the key of %q", chain.Name(mfr.partition)))
	}

	// The signed content. It is decoded even when the signature failed, so the
	// result shows what the attestation claims, but then Strength is
	// Unverified and every check below says its data is unauthenticated.
	if raw == nil {
		for _, n := range []string{CheckFormat, CheckKeyObjects, CheckKeyValues, attest.CheckBinding, attest.CheckNonExport} {
			res.Skip(n, "no attestation")
		}
	} else {
		v.content(raw, ev.ExpectedKey, sigOK, res)
	}

	switch {
	case mfr == nil:
		res.Skip(attest.CheckIdentity, "no verified partition certificate")
	case !sigOK:
		res.Skip(attest.CheckIdentity, "the attestation is not signed by the partition the certificates name")
	default:
		reason, err := checkIdentity(mfr, owner, res)
		res.Record(attest.CheckIdentity, err, reason)
	}
}

// content runs the checks on the signed content.
func (v *Verifier) content(raw []byte, expected string, authenticated bool, res *attest.Result) {
	unauth := ""
	if !authenticated {
		unauth = " (unauthenticated: " + CheckSignature + " did not pass)"
	}
	source := "attributes of the private key object"
	if !authenticated {
		source += ", unauthenticated: " + CheckSignature + " did not pass"
	}
	a, err := Parse(raw)
	if !res.Record(CheckFormat, err, fmt.Sprintf("%s, sizes and offsets consistent%s", plural(len(objectsOf(a)), "key object"), unauth)) {
		for _, n := range []string{CheckKeyObjects, CheckKeyValues, attest.CheckBinding, attest.CheckNonExport} {
			res.Skip(n, CheckFormat+" failed")
		}
		return
	}
	key, objs, err := checkKeyObjects(a, res)
	if !res.Record(CheckKeyObjects, err, fmt.Sprintf("%s key %s, label %q, from %s%s",
		res.Facts.Algorithm, res.Facts.KeyDigest, res.Facts.Label, plural(len(objs), "object"), unauth)) {
		for _, n := range []string{CheckKeyValues, attest.CheckBinding, attest.CheckNonExport} {
			res.Skip(n, CheckKeyObjects+" failed")
		}
		return
	}
	reason, err := checkValues(key, objs)
	res.Record(CheckKeyValues, err, reason+unauth)
	res.CheckKeyBinding(expected)
	res.CheckKeyPolicy(res.Facts.Attributes, source)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func objectsOf(a *Attestation) []Object {
	if a == nil {
		return nil
	}
	return a.Objects
}

// checkSignature verifies the attestation signature with the partition key.
func checkSignature(raw []byte, partition *x509.Certificate) error {
	pub, ok := partition.PublicKey.(*rsa.PublicKey)
	if !ok || pub.Size() != SignatureSize {
		return fmt.Errorf("%w: the key of %q is not RSA-2048", attest.ErrSignature, chain.Name(partition))
	}
	signed, sig := raw[:len(raw)-SignatureSize], raw[len(raw)-SignatureSize:]
	h := sha256.Sum256(signed)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
		return fmt.Errorf("%w: does not verify with the key of partition certificate %q (serial %s)",
			attest.ErrSignature, chain.Name(partition), partition.SerialNumber)
	}
	return nil
}

// manufacturerChain finds partition <- card <- manufacturer root.
func (v *Verifier) manufacturerChain(pool []*x509.Certificate, t time.Time) (*chains, error) {
	p, err := pick(pool, isPartition, "partition", []attest.Root{v.mfr}, t, chain.Allow{V1Issuer: true}, func(p *chain.Path) error {
		if len(p.Certs) != 2 || !isCard(p.Certs[1]) {
			return fmt.Errorf("%w: want partition <- card <- root, have %s", attest.ErrChain, describe(p))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &chains{partition: p.Certs[0], card: p.Certs[1], devs: p.Deviations}, nil
}

// ownerChain finds the owner's partition and card certificates under the
// owner root.
func (v *Verifier) ownerChain(pool []*x509.Certificate, t time.Time) (*chains, error) {
	roots := []attest.Root{*v.owner}
	part, err := pick(pool, isPartition, "partition", roots, t, chain.Allow{}, nil)
	if err != nil {
		return nil, err
	}
	card, err := pick(pool, isCard, "card", roots, t, chain.Allow{}, nil)
	if err != nil {
		return nil, err
	}
	return &chains{partition: part.Certs[0], card: card.Certs[0], devs: append(part.Deviations, card.Deviations...)}, nil
}

// pick builds a path to roots from each certificate of the kind, and returns
// the one that verifies. Two that verify with different keys are an error:
// the evidence must name one partition (or card).
func pick(pool []*x509.Certificate, kind func(*x509.Certificate) bool, name string, roots []attest.Root,
	t time.Time, allow chain.Allow, accept func(*chain.Path) error) (*chain.Path, error) {
	var found *chain.Path
	var firstErr error
	n := 0
	for _, c := range pool {
		if !kind(c) {
			continue
		}
		n++
		p, err := chain.Build(c, pool, roots, t, allow)
		if err == nil && accept != nil {
			err = accept(p)
		}
		if err != nil {
			if firstErr == nil || errors.Is(firstErr, attest.ErrChain) && errors.Is(err, attest.ErrValidity) {
				firstErr = err // a validity error says more than a name mismatch
			}
			continue
		}
		if found != nil && !sameKey(found.Certs[0], p.Certs[0]) {
			return nil, fmt.Errorf("%w: %q and %q both chain to %q with different keys", attest.ErrChain,
				chain.Name(found.Certs[0]), chain.Name(p.Certs[0]), chain.Name(p.Root.Certificate))
		}
		if found == nil {
			found = p
		}
	}
	switch {
	case found != nil:
		return found, nil
	case n == 0:
		return nil, fmt.Errorf("%w: no %s certificate (common name %s) among %d certificates", attest.ErrChain, name, cnShape[name], len(pool))
	}
	return nil, fmt.Errorf("no %s certificate chains to pinned root %q: %w", name, chain.Name(roots[0].Certificate), firstErr)
}

var cnShape = map[string]string{"partition": "HSM:<id>:PARTN:<n>", "card": "HSM:<id>"}

func describe(p *chain.Path) string {
	var names []string
	for _, c := range p.Certs {
		names = append(names, fmt.Sprintf("%q", chain.Name(c)))
	}
	return strings.Join(append(names, fmt.Sprintf("%q", chain.Name(p.Root.Certificate))), " <- ")
}

func sameKey(a, b *x509.Certificate) bool {
	k, ok := a.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b.PublicKey)
}

func sameKeys(mfr, owner *chains) error {
	if !sameKey(mfr.partition, owner.partition) {
		return fmt.Errorf("%w: manufacturer partition certificate %q and owner partition certificate %q carry different keys",
			attest.ErrKeyMismatch, chain.Name(mfr.partition), chain.Name(owner.partition))
	}
	if !sameKey(mfr.card, owner.card) {
		return fmt.Errorf("%w: manufacturer card certificate %q and owner card certificate %q carry different keys",
			attest.ErrKeyMismatch, chain.Name(mfr.card), chain.Name(owner.card))
	}
	return nil
}
