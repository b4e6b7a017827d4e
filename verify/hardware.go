package verify

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/luna"
	"github.com/keytrail/keytrail/attest/marvell"
	"github.com/keytrail/keytrail/attest/pkcs11"
	"github.com/keytrail/keytrail/attest/tpm"
	"github.com/keytrail/keytrail/evidence"
)

// CheckKeysHardware: every hardware record (hsm-attestation, tpm-attestation)
// about the rotation's keys verifies against the trust file's hardware roots
// and attestation keys, at the time it was logged; the new key's evidence is
// at least the minStrength of the rotation's key class.
const CheckKeysHardware = "keys.hardware"

// ErrHardware: hardware evidence does not verify, or is weaker than the policy
// requires for the key's class.
var ErrHardware = errors.New("hardware evidence")

// HardwareTrust is the trust file's "hardware" section: the vendor roots and
// TPM attestation keys hardware evidence is verified against. See
// docs/trust-file.md.
type HardwareTrust struct {
	// VendorRoots are the pinned vendor roots, each for one format and role.
	VendorRoots []TrustedVendorRoot `json:"vendorRoots,omitempty"`
	// TPMAttestationKeys are the enrolled TPM attestation keys.
	TPMAttestationKeys []TrustedTPMKey `json:"tpmAttestationKeys,omitempty"`
	// TPMQuotePCRs is the PCR selection every TPM quote must cover exactly.
	TPMQuotePCRs *TrustedPCRSelection `json:"tpmQuotePCRs,omitempty"`
}

// Vendor root roles.
const (
	RoleManufacturer = "manufacturer" // marvell: the Marvell LiquidSecurity root
	RoleOwner        = "owner"        // marvell: the cloud operator's root
	RoleRoot         = "root"         // luna: a Luna root
)

// TrustedVendorRoot is a vendor root certificate and the window in which it is
// trusted (narrowing, never widening, the certificate's own validity).
type TrustedVendorRoot struct {
	// Format is "marvell-cavium-v1-compressed" or "luna-pkc".
	Format string `json:"format"`
	// Role is "manufacturer" or "owner" (marvell) or "root" (luna).
	Role string `json:"role"`
	// CertificatePEM is one PEM certificate.
	CertificatePEM string `json:"certificatePEM"`
	// NotBefore and NotAfter (RFC 3339, UTC), if set, narrow the window.
	NotBefore string `json:"notBefore,omitempty"`
	NotAfter  string `json:"notAfter,omitempty"`
}

// TrustedTPMKey is an enrolled TPM attestation key.
type TrustedTPMKey struct {
	// ID names the AK, e.g. "host-7 AK".
	ID string `json:"id"`
	// PublicArea is the AK's TPMT_PUBLIC (or TPM2B_PUBLIC), base64.
	PublicArea []byte `json:"publicArea"`
	// NotBefore and NotAfter (RFC 3339, UTC), if set, bound when evidence it
	// signed is accepted.
	NotBefore string `json:"notBefore,omitempty"`
	NotAfter  string `json:"notAfter,omitempty"`
}

// TrustedPCRSelection is a PCR bank and indices, e.g. sha256 [0 1 2 3 7].
type TrustedPCRSelection struct {
	Bank string `json:"bank"`
	PCRs []int  `json:"pcrs"`
}

// hardware holds the verifiers built from the trust file's hardware section;
// a nil verifier means no trust material for that format (its records fail).
type hardware struct {
	marvell *marvell.Verifier
	luna    *luna.Verifier
	tpm     *tpm.Verifier
}

func parseWindow(field, nb, na string) (from, to time.Time, err error) {
	if nb != "" {
		if from, err = evidence.ParseTime(nb); err != nil {
			return from, to, fmt.Errorf("%w: %s.notBefore: %w", ErrTrust, field, err)
		}
	}
	if na != "" {
		if to, err = evidence.ParseTime(na); err != nil {
			return from, to, fmt.Errorf("%w: %s.notAfter: %w", ErrTrust, field, err)
		}
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return from, to, fmt.Errorf("%w: %s: notAfter is before notBefore", ErrTrust, field)
	}
	return from, to, nil
}

// newHardware validates the hardware section.
func newHardware(h *HardwareTrust) (*hardware, error) {
	hw := &hardware{}
	if h == nil {
		return hw, nil
	}
	var mfr, owner *attest.Root
	var lunaRoots []attest.Root
	for i, r := range h.VendorRoots {
		field := fmt.Sprintf("hardware.vendorRoots[%d]", i)
		root, err := attest.ParseRootPEM([]byte(r.CertificatePEM))
		if err != nil {
			return nil, fmt.Errorf("%w: %s.certificatePEM: %w", ErrTrust, field, err)
		}
		if root.NotBefore, root.NotAfter, err = parseWindow(field, r.NotBefore, r.NotAfter); err != nil {
			return nil, err
		}
		if err := root.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrTrust, field, err)
		}
		switch {
		case r.Format == evidence.HSMFormatMarvell && r.Role == RoleManufacturer && mfr == nil:
			mfr = &root
		case r.Format == evidence.HSMFormatMarvell && r.Role == RoleOwner && owner == nil:
			owner = &root
		case r.Format == evidence.HSMFormatLuna && r.Role == RoleRoot:
			lunaRoots = append(lunaRoots, root)
		case r.Format == evidence.HSMFormatMarvell && (r.Role == RoleManufacturer || r.Role == RoleOwner):
			return nil, fmt.Errorf("%w: %s: a second marvell %s root; list one", ErrTrust, field, r.Role)
		default:
			return nil, fmt.Errorf("%w: %s: format %q with role %q; want %s with manufacturer or owner, or %s with root",
				ErrTrust, field, r.Format, r.Role, evidence.HSMFormatMarvell, evidence.HSMFormatLuna)
		}
	}
	var err error
	if mfr != nil {
		if hw.marvell, err = marvell.NewVerifier(marvell.Config{Manufacturer: *mfr, Owner: owner}); err != nil {
			return nil, fmt.Errorf("%w: hardware.vendorRoots: %w", ErrTrust, err)
		}
	} else if owner != nil {
		return nil, fmt.Errorf("%w: hardware.vendorRoots: a marvell owner root without a manufacturer root", ErrTrust)
	}
	if len(lunaRoots) > 0 {
		if hw.luna, err = luna.NewVerifier(luna.Config{Roots: lunaRoots}); err != nil {
			return nil, fmt.Errorf("%w: hardware.vendorRoots: %w", ErrTrust, err)
		}
	}
	if len(h.TPMAttestationKeys) > 0 {
		cfg := tpm.Config{}
		for i, k := range h.TPMAttestationKeys {
			field := fmt.Sprintf("hardware.tpmAttestationKeys[%d]", i)
			if k.ID == "" {
				return nil, fmt.Errorf("%w: %s.id is empty", ErrTrust, field)
			}
			from, to, err := parseWindow(field, k.NotBefore, k.NotAfter)
			if err != nil {
				return nil, err
			}
			cfg.AttestationKeys = append(cfg.AttestationKeys, tpm.AK{Name: k.ID, Public: k.PublicArea, NotBefore: from, NotAfter: to})
		}
		if s := h.TPMQuotePCRs; s != nil {
			cfg.QuotePCRs = &tpm.PCRSelection{Bank: s.Bank, PCRs: slices.Clone(s.PCRs)}
		}
		if hw.tpm, err = tpm.NewVerifier(cfg); err != nil {
			return nil, fmt.Errorf("%w: hardware.tpmAttestationKeys: %w", ErrTrust, err)
		}
	} else if h.TPMQuotePCRs != nil {
		return nil, fmt.Errorf("%w: hardware.tpmQuotePCRs without tpmAttestationKeys", ErrTrust)
	}
	return hw, nil
}

// KeyHardware is what the hardware evidence of one of the rotation's keys
// established.
type KeyHardware struct {
	// Key is the key's ID; Role is "new" or "old".
	Key  string `json:"key"`
	Role string `json:"role"`
	// Strength is the strongest verified evidence of the key; "software" when
	// it has no hardware evidence at all.
	Strength attest.Strength `json:"strength"`
	// Results are the verifications of each record about the key, by entry.
	Results []HardwareRecord `json:"results"`
}

// HardwareRecord is one record's verification.
type HardwareRecord struct {
	// Entry is the record's log index.
	Entry  uint64         `json:"entry"`
	Result *attest.Result `json:"result"`
}

// verifyHardware verifies one record; the result is nil for a record that
// says nothing about hardware.
func (hw *hardware) verifyRecord(p evidence.Predicate, key evidence.KeyRef) *attest.Result {
	at := p.RecordTime()
	missing := func(format, what string) *attest.Result {
		r := &attest.Result{Format: format, Strength: attest.Unverified}
		r.Fail("trust", fmt.Errorf("%w: the trust file pins no %s (hardware section)", attest.ErrChain, what))
		return r
	}
	switch a := p.(type) {
	case *evidence.HSMAttestation:
		switch a.Format {
		case evidence.HSMFormatPKCS11:
			return pkcs11.Verify(pkcs11.Evidence{Record: a, LoggedAt: at, ExpectedKey: key.SPKISHA256})
		case evidence.HSMFormatMarvell:
			if hw.marvell == nil {
				return missing(a.Format, "marvell manufacturer root")
			}
			return hw.marvell.Verify(marvell.Evidence{Attestation: a.Attestation, Certificates: a.Certificates, LoggedAt: at, ExpectedKey: key.SPKISHA256})
		case evidence.HSMFormatLuna:
			if hw.luna == nil {
				return missing(a.Format, "luna root")
			}
			return hw.luna.Verify(luna.Evidence{PKC: a.Attestation, CSR: a.CSR, LoggedAt: at, ExpectedKey: key.SPKISHA256})
		}
		r := &attest.Result{Format: a.Format, Strength: attest.Unverified}
		r.Fail("format", fmt.Errorf("%w: unknown format %q", attest.ErrFormat, a.Format))
		return r
	case *evidence.TPMAttestation:
		if hw.tpm == nil {
			return missing("tpm2-"+a.Kind, "TPM attestation key")
		}
		ev := tpm.Evidence{Kind: a.Kind, Attest: a.Attest, Signature: a.Signature, AKPublic: a.AKPublic,
			KeyPublic: a.KeyPublic, PCRValues: a.PCRValues, Nonce: a.Nonce, LoggedAt: at}
		if a.Kind == evidence.TPMKindCertify {
			ev.ExpectedKey = key.SPKISHA256
		}
		return hw.tpm.Verify(ev)
	}
	return nil
}

// checkHardware verifies the hardware records about the rotation's keys and
// enforces the key class's minStrength on the new key.
func (v *Verifier) checkHardware(r evidence.Rotation, entries []verifiedEntry, res *Result) {
	keys := []*KeyHardware{
		{Key: r.NewKey.ID, Role: "new", Strength: attest.Software},
		{Key: r.OldKey.ID, Role: "old", Strength: attest.Software},
	}
	refs := []evidence.KeyRef{r.NewKey, r.OldKey}
	var f failures
	nonces := map[string]uint64{}
	n := 0
	for _, e := range entries {
		if len(e.keys) != 1 {
			continue
		}
		i := slices.Index(refs, e.keys[0])
		if i < 0 {
			continue
		}
		if t, ok := e.pred.(*evidence.TPMAttestation); ok && t.Kind == evidence.TPMKindQuote {
			// A quote's nonce is used once: the same nonce twice is a replay.
			// (A certification's facts are immutable; its nonce may repeat.)
			if prev, dup := nonces[string(t.Nonce)]; dup {
				f.add(fmt.Errorf("%w: entry %d: TPM nonce %x already used by entry %d (replay)", ErrHardware, e.index, t.Nonce, prev))
			}
			nonces[string(t.Nonce)] = e.index
		}
		ar := v.trust.hardware.verifyRecord(e.pred, refs[i])
		if ar == nil {
			continue
		}
		n++
		kh := keys[i]
		kh.Results = append(kh.Results, HardwareRecord{Entry: e.index, Result: ar})
		if !ar.Verified {
			f.add(fmt.Errorf("%w: entry %d (%s, %s key %s): %w", ErrHardware, e.index, ar.Format, kh.Role, kh.Key, ar.Err()))
			continue
		}
		// Only evidence about the key itself raises its strength: a quote
		// attests a platform, not a key.
		if ar.Facts.KeyDigest == refs[i].SPKISHA256 && ar.Strength.AtLeast(kh.Strength) {
			kh.Strength = ar.Strength
		}
	}
	res.Hardware = []KeyHardware{*keys[0]}
	if len(keys[1].Results) > 0 {
		res.Hardware = append(res.Hardware, *keys[1])
	}
	var min attest.Strength
	if c, err := v.keyClass(r); err != nil {
		f.add(err)
	} else {
		min = c.MinStrength
	}
	if min != "" && !keys[0].Strength.AtLeast(min) {
		f.add(fmt.Errorf("%w: new key %s of class %q has %s evidence, policy requires at least %s", ErrHardware, r.NewKey.ID, r.KeyClass, keys[0].Strength, min))
	}
	if n == 0 && min == "" && f.first == nil {
		res.skip(CheckKeysHardware, fmt.Sprintf("no hardware records and no minStrength for key class %q", r.KeyClass))
		return
	}
	var parts []string
	for _, k := range res.Hardware {
		parts = append(parts, fmt.Sprintf("%s key %s: %s (%d records)", k.Role, k.Key, k.Strength, len(k.Results)))
	}
	reason := strings.Join(parts, "; ")
	if min != "" {
		reason += fmt.Sprintf("; class %q requires %s", r.KeyClass, min)
	}
	f.report(res, CheckKeysHardware, reason)
}
