package main

import (
	"context"
	"crypto"
	"fmt"
	"strings"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/collectors/tpm"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/verify"
)

// demoHardware is where the demo makes its new key.
type demoHardware struct {
	uri, module, pinEnv string
}

// demoKey is the demo's new key: its name, the signer that holds it, the
// hardware records about it, the trust material they need and the strength
// the policy requires.
type demoKey struct {
	ref evidence.KeyRef
	// signer signs with the key where it lives (the TPM, the token); nil
	// keeps the scenario's software key.
	signer crypto.Signer
	// serial is the HSM serial of the token that holds the key, for receipts
	// and residency; "" for a TPM or software key.
	serial string
	// records collects the key's hardware records, stamped at; nil when
	// there is no hardware.
	records func(ctx context.Context, at time.Time) ([]record, error)
	trust   *verify.HardwareTrust
	min     attest.Strength
	// close releases the TPM or the token, after the last signature.
	close func() error
}

// demoQuotePCRs are the PCRs the demo quotes and its trust file requires.
var demoQuotePCRs = []int{0, 1, 2, 3, 7}

// demoTPMKeyID names the new key the demo makes in the TPM simulator.
const demoTPMKeyID = "tpm:simulator/custody/hot-1/v2"

// demoPolicy is the scenario's full policy with the hot-signing class's
// minimum hardware strength for the new key, requiring log.completeness: a
// verdict on the demo's bundle always rests on the log.
func demoPolicy(min attest.Strength) (string, error) {
	const class = "  hot-signing:\n"
	if !strings.Contains(scenario.PolicyYAMLFull, class) {
		return "", fmt.Errorf("demo: the scenario policy has no hot-signing key class")
	}
	return strings.Replace(scenario.PolicyYAMLFull, class, class+fmt.Sprintf(
		"    # the new key's hardware evidence (docs/hardware.md)\n    minStrength: %s\n", min), 1) +
		"# checks that must run and pass: a bundle verified without the log copy\n# (--log) could omit records\nrequire: [log.completeness]\n", nil
}

// newKey makes the new key in the TPM simulator, or in the PKCS #11 token,
// or, without cgo, leaves it in software.
func (h demoHardware) newKey(ctx context.Context, p *scenario.Parties, label time.Time, step func(string, ...any)) (*demoKey, error) {
	if h.uri != "" {
		return h.pkcs11Key(ctx, label, step)
	}
	if !tpm.SimulatorAvailable {
		step("this keytrail was built without cgo: no TPM simulator, the new key stays in software")
		return &demoKey{ref: p.NewRef, min: attest.Software, close: func() error { return nil }}, nil
	}
	step("creating the new key inside the in-process TPM 2.0 simulator")
	dev, err := tpm.OpenSimulator(nil)
	if err != nil {
		return nil, fmt.Errorf("%w (use --hsm with a PKCS #11 token instead)", err)
	}
	fail := func(err error) (*demoKey, error) {
		dev.Close()
		return nil, err
	}
	ak, err := dev.CreateAK(ctx)
	if err != nil {
		return fail(err)
	}
	// The AK must be resident in this TPM before anyone trusts it.
	if _, err := dev.EnrolAK(ctx, ak, tpm.EnrolOptions{}); err != nil {
		return fail(err)
	}
	key, err := dev.CreateKey(ctx)
	if err != nil {
		return fail(err)
	}
	ref, err := key.Ref(demoTPMKeyID)
	if err != nil {
		return fail(err)
	}
	return &demoKey{
		ref:    ref,
		signer: dev.Signer(key),
		records: func(ctx context.Context, at time.Time) ([]record, error) {
			cert, err := dev.Certify(ctx, ak, key, tpm.Nonce(), at)
			if err != nil {
				return nil, err
			}
			q, err := dev.Quote(ctx, ak, demoQuotePCRs, tpm.Nonce(), at)
			if err != nil {
				return nil, err
			}
			return []record{{"tpm-certify", ref, cert}, {"tpm-quote", ref, q}}, nil
		},
		trust: &verify.HardwareTrust{
			TPMAttestationKeys: []verify.TrustedTPMKey{{ID: "demo TPM simulator AK", PublicArea: ak.Public}},
			TPMQuotePCRs:       &verify.TrustedPCRSelection{Bank: "sha256", PCRs: demoQuotePCRs},
		},
		min:   attest.TPMCertified,
		close: dev.Close,
	}, nil
}

// useHardware puts the new key's real hardware evidence into the policy
// rotation in place of the scenario's software stand-in: the hardware
// records at the time of the scenario's HSM record (and at daily, for the
// freshness gate), the receipts' HSM serial, and the residency claims that
// locate it. A key in a TPM has no HSM serial: its key-policy snapshot's KMS
// region locates it (docs/policy.md, Residency).
func (nk *demoKey) useHardware(ctx context.Context, pr *scenario.PolicyRotation, daily time.Time) error {
	newKey := pr.Rotation.NewKey
	var steps []scenario.Step
	times := func(at time.Time) []time.Time { return []time.Time{at, daily} }
	for _, s := range pr.Steps {
		att, ok := s.Record.(*evidence.HSMAttestation)
		if !ok || s.Key != newKey {
			if r, ok := s.Record.(*evidence.SigningReceipt); ok && s.Key == newKey {
				r.HSMSerial = nk.serial
			}
			steps = append(steps, s)
			continue
		}
		for _, at := range times(att.RecordTime()) {
			if nk.records == nil {
				break
			}
			recs, err := nk.records(ctx, at)
			if err != nil {
				return err
			}
			for _, r := range recs {
				steps = append(steps, scenario.Step{By: s.By, Key: r.key, Record: r.pred})
			}
		}
		times = func(at time.Time) []time.Time { return []time.Time{at} } // one daily record
	}
	pr.Steps = steps
	var claims []*evidence.ResidencyClaim
	var hsm *evidence.ResidencyClaim
	for _, c := range pr.Claims {
		if c.Subject.Kind != evidence.ResidencyHSM {
			claims = append(claims, c)
		} else if nk.serial != "" {
			c.Subject.Serial = nk.serial
			hsm = c
		}
	}
	if hsm != nil {
		claims = append(claims, hsm)
	}
	pr.Claims = claims
	return nil
}
