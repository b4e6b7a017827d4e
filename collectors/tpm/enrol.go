package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Enrolment is what enrolling an AK established.
type Enrolment struct {
	// AKPublic is the AK's TPMT_PUBLIC: the value the trust file pins.
	AKPublic []byte
	// EKPublic is the TPMT_PUBLIC of the endorsement key the credential was
	// made for: from the TCG template matching the EK certificate the TPM
	// holds (RSA 2048 or ECC P-256), or the ECC P-256 template if it holds none.
	EKPublic []byte
	// EKCertificate is the TPM's EK certificate (DER) from its NV index, if any.
	EKCertificate []byte
	// EKChain is the verified chain, EK certificate first, when roots were given.
	EKChain []*x509.Certificate
}

// EnrolOptions say how to check the EK certificate.
type EnrolOptions struct {
	// Roots are the TPM vendors' EK roots. If set, the TPM must hold an EK
	// certificate that chains to one of them (through Intermediates) at At,
	// and certifies the EK the credential is activated with.
	Roots, Intermediates []*x509.Certificate
	// At is the time the chain is judged at (default now).
	At time.Time
}

// NV indices of EK certificates (TCG EK Credential Profile 2.3, §2.2.1.4) and
// the templates of their keys.
var ekCertIndices = []struct {
	index    uint32
	template tpm2.TPMTPublic
	name     string
}{
	{0x01c00002, tpm2.RSAEKTemplate, "RSA 2048"},
	{0x01c0000a, tpm2.ECCEKTemplate, "ECC P-256"},
}

// ErrEKCertificate: the EK certificate is missing, does not chain to a given
// root, or certifies another key than the TPM's EK.
var ErrEKCertificate = errors.New("tpm: EK certificate")

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
// If the TPM holds an EK certificate (NV 0x01c00002 RSA, 0x01c0000a ECC), the
// EK is made from the matching TCG template; with o.Roots, the certificate
// must chain to one of them and certify that EK.
func (t *TPM) EnrolAK(ctx context.Context, ak *Key, o EnrolOptions) (*Enrolment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := &Enrolment{AKPublic: ak.Public}
	tmpl := tpm2.ECCEKTemplate
	for _, c := range ekCertIndices {
		if der, err := t.readNV(c.index); err == nil {
			out.EKCertificate, tmpl = der, c.template
			t.log.Info("found EK certificate", "index", fmt.Sprintf("0x%08x", c.index), "key", c.name)
			break
		}
	}
	if len(o.Roots) > 0 && out.EKCertificate == nil {
		return nil, fmt.Errorf("%w: the TPM holds none at 0x01c00002 or 0x01c0000a", ErrEKCertificate)
	}
	ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
		InPublic: tpm2.New2B(tmpl)}.Execute(t.t)
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
	out.EKPublic = tpm2.Marshal(*ekPub)
	if len(o.Roots) > 0 {
		if out.EKChain, err = checkEKCertificate(out.EKCertificate, ekPub, o); err != nil {
			return nil, err
		}
	}
	t.log.Info("AK enrolled by credential activation")
	return out, nil
}

// checkEKCertificate verifies the EK certificate's chain and that it
// certifies ekPub.
func checkEKCertificate(der []byte, ekPub *tpm2.TPMTPublic, o EnrolOptions) ([]*x509.Certificate, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEKCertificate, err)
	}
	// EK certificates carry a critical subjectAltName of TPM manufacturer
	// attributes (a directoryName) and sometimes the TCG subject directory
	// attributes; neither constrains the chain.
	var unhandled []asn1.ObjectIdentifier
	for _, oid := range c.UnhandledCriticalExtensions {
		if !oid.Equal(oidSAN) && !oid.Equal(oidSubjectDirectoryAttributes) {
			unhandled = append(unhandled, oid)
		}
	}
	c.UnhandledCriticalExtensions = unhandled
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range o.Roots {
		roots.AddCert(r)
	}
	for _, i := range o.Intermediates {
		inter.AddCert(i)
	}
	at := o.At
	if at.IsZero() {
		at = time.Now()
	}
	chains, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEKCertificate, err)
	}
	pub, err := tpm2.Pub(*ekPub)
	if err != nil {
		return nil, fmt.Errorf("%w: EK public key: %v", ErrEKCertificate, err)
	}
	eq, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(pub) {
		return nil, fmt.Errorf("%w: the certificate %q certifies another key than the TPM's EK", ErrEKCertificate, c.Subject)
	}
	return chains[0], nil
}

var (
	oidSAN                        = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidSubjectDirectoryAttributes = asn1.ObjectIdentifier{2, 5, 29, 9}
)

// readNV reads an NV index whole, with its own (empty) authorisation.
func (t *TPM) readNV(index uint32) ([]byte, error) {
	h := tpm2.TPMHandle(index)
	pub, err := tpm2.NVReadPublic{NVIndex: h}.Execute(t.t)
	if err != nil {
		return nil, err
	}
	p, err := pub.NVPublic.Contents()
	if err != nil {
		return nil, err
	}
	var out []byte
	for off := uint16(0); off < p.DataSize; {
		n := min(p.DataSize-off, 512)
		r, err := tpm2.NVRead{AuthHandle: tpm2.AuthHandle{Handle: h, Name: pub.NVName, Auth: tpm2.PasswordAuth(nil)},
			NVIndex: tpm2.NamedHandle{Handle: h, Name: pub.NVName}, Size: n, Offset: off}.Execute(t.t)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Data.Buffer...)
		off += n
	}
	return out, nil
}
