// Package tpmfake mints TPM 2.0 evidence in Go, with real signatures: an
// attestation key (AK) and the TPMS_ATTEST a TPM would produce for TPM2_Certify
// and TPM2_Quote. Tests use it where a TPM would be out of place (the verifier's
// tests); collectors/tpm tests use the simulator and swtpm instead.
package tpmfake

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// ResidentAttrs are the attributes of a key generated in a TPM that cannot
// leave it.
var ResidentAttrs = tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true}

// TPM is a fake TPM's AK.
type TPM struct {
	ak    *ecdsa.PrivateKey
	akPub tpm2.TPMTPublic
}

// New returns a fake TPM with a fresh ECDSA P-256 AK.
func New() *TPM {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	a := ResidentAttrs
	a.Restricted = true
	return &TPM{ak: k, akPub: ECCPublic(&k.PublicKey, a)}
}

// AKPublic is the AK's TPMT_PUBLIC.
func (t *TPM) AKPublic() []byte { return tpm2.Marshal(t.akPub) }

// ECCPublic is the TPMT_PUBLIC of a P-256 key with attrs (ECDSA-SHA256 scheme
// if restricted).
func ECCPublic(k *ecdsa.PublicKey, attrs tpm2.TPMAObject) tpm2.TPMTPublic {
	scheme := tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull}
	if attrs.Restricted {
		scheme = tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})}
	}
	b, err := k.Bytes()
	if err != nil || len(b) != 65 {
		panic(fmt.Sprintf("tpmfake: not a P-256 key: %v", err))
	}
	return tpm2.TPMTPublic{
		Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme:    scheme,
			CurveID:   tpm2.TPMECCNistP256,
			KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{X: tpm2.TPM2BECCParameter{Buffer: b[1:33]}, Y: tpm2.TPM2BECCParameter{Buffer: b[33:]}}),
	}
}

// Sign returns the AK's TPMT_SIGNATURE over msg.
func (t *TPM) Sign(msg []byte) []byte {
	d := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, t.ak, d[:])
	if err != nil {
		panic(err)
	}
	return tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
		&tpm2.TPMSSignatureECC{Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()}})})
}

func attestOf(typ tpm2.TPMST, nonce []byte, info tpm2.TPMUAttest) []byte {
	return tpm2.Marshal(tpm2.TPMSAttest{
		Magic: tpm2.TPMGeneratedValue, Type: typ,
		QualifiedSigner: tpm2.TPM2BName{Buffer: make([]byte, 34)},
		ExtraData:       tpm2.TPM2BData{Buffer: nonce},
		ClockInfo:       tpm2.TPMSClockInfo{Clock: 1000, Safe: true},
		FirmwareVersion: 0x2023,
		Attested:        info,
	})
}

// Certify returns a TPM2_Certify of the key pub (P-256) with attrs: the
// TPMS_ATTEST, its signature and the key's TPMT_PUBLIC.
func (t *TPM) Certify(pub crypto.PublicKey, attrs tpm2.TPMAObject, nonce []byte) (attest, sig, keyPublic []byte) {
	p := ECCPublic(pub.(*ecdsa.PublicKey), attrs)
	name, err := tpm2.ObjectName(&p)
	if err != nil {
		panic(err)
	}
	attest = attestOf(tpm2.TPMSTAttestCertify, nonce, tpm2.NewTPMUAttest(tpm2.TPMSTAttestCertify, &tpm2.TPMSCertifyInfo{Name: *name, QualifiedName: *name}))
	return attest, t.Sign(attest), tpm2.Marshal(p)
}

// Quote returns a TPM2_Quote over the sha256 PCRs pcrs with the given values.
func (t *TPM) Quote(pcrs []int, values [][]byte, nonce []byte) (attest, sig []byte) {
	h := sha256.New()
	for _, v := range values {
		h.Write(v)
	}
	bits := make([]byte, 3)
	for _, p := range pcrs {
		bits[p/8] |= 1 << (p % 8)
	}
	qi := &tpm2.TPMSQuoteInfo{
		PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: bits}}},
		PCRDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)},
	}
	attest = attestOf(tpm2.TPMSTAttestQuote, nonce, tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, qi))
	return attest, t.Sign(attest)
}
