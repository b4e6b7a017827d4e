package tpm

import (
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"

	attesttpm "github.com/keytrail/keytrail/attest/tpm"
	"github.com/keytrail/keytrail/evidence"
)

// Files are what tpm2-tools wrote for one attestation.
type Files struct {
	// Kind is evidence.TPMKindCertify or evidence.TPMKindQuote.
	Kind string
	// Attest is tpm2_certify -o / tpm2_quote -m: the TPMS_ATTEST.
	Attest []byte
	// Signature is tpm2_certify -s / tpm2_quote -s in the default tss format:
	// a TPMT_SIGNATURE.
	Signature []byte
	// AKPublic and KeyPublic are the -u outputs of tpm2_createak,
	// tpm2_createprimary or tpm2_create: TPM2B_PUBLIC (TPMT_PUBLIC accepted).
	AKPublic, KeyPublic []byte
	// PCRValues is tpm2_pcrread -o for the quoted selection: the values
	// concatenated in selection order (quote only).
	PCRValues []byte
	// Nonce is the qualifying data passed with -q.
	Nonce []byte
}

// Import turns tpm2-tools output into a record, checking only that each file
// is the structure it should be; attest/tpm verifies it.
func Import(f Files, now time.Time) (*evidence.TPMAttestation, error) {
	if _, err := attesttpm.ParseAttest(f.Attest); err != nil {
		return nil, fmt.Errorf("attestation (tpm2 -o/-m): %w", err)
	}
	if _, err := attesttpm.ParseSignature(f.Signature); err != nil {
		return nil, fmt.Errorf("signature (-s, tss format): %w", err)
	}
	_, ak, err := attesttpm.ParsePublic(f.AKPublic)
	if err != nil {
		return nil, fmt.Errorf("AK public area: %w", err)
	}
	rec := &evidence.TPMAttestation{At: evidence.AtTime(now), Kind: f.Kind, Attest: f.Attest, Signature: f.Signature, AKPublic: ak, Nonce: f.Nonce}
	switch f.Kind {
	case evidence.TPMKindCertify:
		_, kp, err := attesttpm.ParsePublic(f.KeyPublic)
		if err != nil {
			return nil, fmt.Errorf("key public area: %w", err)
		}
		rec.KeyPublic = kp
	case evidence.TPMKindQuote:
		a, _ := attesttpm.ParseAttest(f.Attest)
		q, err := a.Attested.Quote()
		if err != nil {
			return nil, fmt.Errorf("attestation: not a quote: %w", err)
		}
		size := 0
		for _, s := range q.PCRSelect.PCRSelections {
			var n int
			switch s.Hash {
			case tpm2.TPMAlgSHA1:
				n = 20
			case tpm2.TPMAlgSHA256:
				n = 32
			case tpm2.TPMAlgSHA384:
				n = 48
			case tpm2.TPMAlgSHA512:
				n = 64
			default:
				return nil, fmt.Errorf("quote over an unknown PCR bank 0x%04x", uint16(s.Hash))
			}
			if size != 0 && size != n {
				return nil, fmt.Errorf("quote over several banks; import one bank at a time")
			}
			size = n
		}
		if size == 0 || len(f.PCRValues) == 0 || len(f.PCRValues)%size != 0 {
			return nil, fmt.Errorf("PCR values: %d bytes, want a multiple of %d", len(f.PCRValues), size)
		}
		for i := 0; i < len(f.PCRValues); i += size {
			rec.PCRValues = append(rec.PCRValues, f.PCRValues[i:i+size])
		}
	default:
		return nil, fmt.Errorf("kind %q, want %q or %q", f.Kind, evidence.TPMKindCertify, evidence.TPMKindQuote)
	}
	return rec, nil
}
