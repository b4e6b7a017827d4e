package main

import (
	"context"
	"fmt"
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

// demoKey is the demo's new key: its name, the hardware records about it, the
// trust material they need and the policy that requires them.
type demoKey struct {
	ref     evidence.KeyRef
	records []record
	trust   *verify.HardwareTrust
	policy  string
}

// demoQuotePCRs are the PCRs the demo quotes and its trust file requires.
var demoQuotePCRs = []int{0, 1, 2, 3, 7}

func demoPolicy(min attest.Strength) string {
	return scenario.PolicyYAML + fmt.Sprintf(`keyClasses:
  hot-signing:
    # the new key's hardware evidence (docs/hardware.md)
    minStrength: %s
`, min)
}

// newKey makes the new key in the TPM simulator, or in the PKCS #11 token.
func (h demoHardware) newKey(ctx context.Context, p *scenario.Parties, now time.Time, step func(string, ...any)) (*demoKey, error) {
	if h.uri != "" {
		return h.pkcs11Key(ctx, now, step)
	}
	if !tpm.SimulatorAvailable {
		step("this keytrail was built without cgo: no TPM simulator, the new key stays in software")
		return &demoKey{ref: p.NewRef, policy: demoPolicy(attest.Software)}, nil
	}
	step("creating the new key inside the in-process TPM 2.0 simulator")
	dev, err := tpm.OpenSimulator(nil)
	if err != nil {
		return nil, fmt.Errorf("%w (use --hsm with a PKCS #11 token instead)", err)
	}
	defer dev.Close()
	recs, ak, err := collectTPM(ctx, dev, "", demoQuotePCRs, now, tpm.EnrolOptions{}, tpmHandles{})
	if err != nil {
		return nil, err
	}
	ref := recs[0].key
	ref.ID = "tpm:simulator/hot-1/" + ref.SPKISHA256[:12]
	for i := range recs {
		recs[i].key = ref
	}
	return &demoKey{
		ref:     ref,
		records: recs,
		trust: &verify.HardwareTrust{
			TPMAttestationKeys: []verify.TrustedTPMKey{{ID: "demo TPM simulator AK", PublicArea: ak}},
			TPMQuotePCRs:       &verify.TrustedPCRSelection{Bank: "sha256", PCRs: demoQuotePCRs},
		},
		policy: demoPolicy(attest.TPMCertified),
	}, nil
}
