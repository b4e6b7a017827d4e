package tpm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Enrolment is what enrolling an AK established.
type Enrolment struct {
	// AKPublic is the AK's TPMT_PUBLIC: the value the trust file pins.
	AKPublic []byte
	// EKPublic is the TPMT_PUBLIC of the endorsement key (TCG ECC P-256 EK
	// template) the credential was made for.
	EKPublic []byte
}

// ErrActivation: the TPM could not activate a credential made for the AK, so
// the AK is not shown to be resident in the TPM that holds the EK.
var ErrActivation = errors.New("tpm: credential activation")

// EnrolAK checks, by credential activation (TPM 2.0 Part 1, §24), that ak is a
// key of the TPM that holds the endorsement key: a credential (a random
// secret) is made in software for ak's Name under the EK's public key — the
// verifier's side, TPM2_MakeCredential computed without the TPM's help — and
// the TPM must return the secret with TPM2_ActivateCredential, which it does
// only if it holds both the EK and an object with that Name.
//
// It does not check the EK's certificate: the EK public key is returned, and
// the operator compares it with the TPM's EK certificate (docs/trust-file.md).
func (t *TPM) EnrolAK(ctx context.Context, ak *Key) (*Enrolment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
		InPublic: tpm2.New2B(tpm2.ECCEKTemplate)}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("tpm: create EK: %w", err)
	}
	defer tpm2.FlushContext{FlushHandle: ek.ObjectHandle}.Execute(t.t)
	ekPub, err := ek.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("tpm: EK public area: %w", err)
	}
	encap, err := tpm2.ImportEncapsulationKey(ekPub)
	if err != nil {
		return nil, fmt.Errorf("tpm: EK: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	idObject, encSecret, err := tpm2.CreateCredential(rand.Reader, encap, ak.Name.Buffer, secret)
	if err != nil {
		return nil, fmt.Errorf("tpm: make credential: %w", err)
	}
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: ak.Handle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle: tpm2.AuthHandle{Handle: ek.ObjectHandle, Name: ek.Name,
			Auth: tpm2.Policy(tpm2.TPMAlgSHA256, 16, func(tp transport.TPM, h tpm2.TPMISHPolicy, nonce tpm2.TPM2BNonce) error {
				_, err := tpm2.PolicySecret{AuthHandle: tpm2.TPMRHEndorsement, PolicySession: h, NonceTPM: nonce}.Execute(tp)
				return err
			})},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: idObject},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: encSecret},
	}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrActivation, err)
	}
	if !bytes.Equal(rsp.CertInfo.Buffer, secret) {
		return nil, fmt.Errorf("%w: the TPM returned another secret", ErrActivation)
	}
	t.log.Info("AK enrolled by credential activation")
	return &Enrolment{AKPublic: ak.Public, EKPublic: tpm2.Marshal(*ekPub)}, nil
}
