package tpm_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/keytrail/keytrail/attest/tpm"
)

// fakeTPM mints real TPM 2.0 structures and real signatures in Go: an AK and
// keys as a TPM would describe them, TPMS_ATTEST as a TPM would sign it. The
// simulator and swtpm tests in collectors/tpm exercise a real TPM.
type fakeTPM struct {
	ak    *ecdsa.PrivateKey
	akPub tpm2.TPMTPublic
}

var loggedAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var residentAttrs = tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true}

func newFake(t testing.TB) *fakeTPM {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := residentAttrs
	a.Restricted = true
	return &fakeTPM{ak: k, akPub: eccPublic(&k.PublicKey, a, true)}
}

func eccPublic(k *ecdsa.PublicKey, attrs tpm2.TPMAObject, signing bool) tpm2.TPMTPublic {
	scheme := tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull}
	if signing && attrs.Restricted {
		scheme = tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})}
	}
	b, _ := k.Bytes()
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

func (f *fakeTPM) config() tpm.Config {
	return tpm.Config{
		AttestationKeys: []tpm.AK{{Name: "fake AK", Public: tpm2.Marshal(f.akPub)}},
		QuotePCRs:       &tpm.PCRSelection{Bank: "sha256", PCRs: []int{0, 1, 7}},
	}
}

func (f *fakeTPM) verifier(t testing.TB) *tpm.Verifier {
	v, err := tpm.NewVerifier(f.config())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (f *fakeTPM) sign(t testing.TB, msg []byte) []byte {
	d := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, f.ak, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
		&tpm2.TPMSSignatureECC{Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()}})})
}

func attestOf(typ tpm2.TPMST, nonce []byte, info tpm2.TPMUAttest) tpm2.TPMSAttest {
	return tpm2.TPMSAttest{
		Magic: tpm2.TPMGeneratedValue, Type: typ,
		QualifiedSigner: tpm2.TPM2BName{Buffer: make([]byte, 34)},
		ExtraData:       tpm2.TPM2BData{Buffer: nonce},
		ClockInfo:       tpm2.TPMSClockInfo{Clock: 1000, Safe: true},
		FirmwareVersion: 0x2023,
		Attested:        info,
	}
}

var testNonce = []byte("0123456789abcdef0123456789abcdef")

// key returns a fresh P-256 key and its public area with attrs.
func key(t testing.TB, attrs tpm2.TPMAObject) (*ecdsa.PrivateKey, tpm2.TPMTPublic) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, eccPublic(&k.PublicKey, attrs, true)
}

// certify is a TPM2_Certify of pub, signed by the AK, and its evidence.
func (f *fakeTPM) certify(t testing.TB, pub tpm2.TPMTPublic, nonce []byte) tpm.Evidence {
	name, err := tpm2.ObjectName(&pub)
	if err != nil {
		t.Fatal(err)
	}
	a := tpm2.Marshal(attestOf(tpm2.TPMSTAttestCertify, nonce, tpm2.NewTPMUAttest(tpm2.TPMSTAttestCertify, &tpm2.TPMSCertifyInfo{Name: *name, QualifiedName: *name})))
	return tpm.Evidence{Kind: tpm.KindCertify, Attest: a, Signature: f.sign(t, a), AKPublic: tpm2.Marshal(f.akPub),
		KeyPublic: tpm2.Marshal(pub), Nonce: nonce, LoggedAt: loggedAt}
}

// pcrValues are values for PCRs 0, 1 and 7.
func pcrValues() [][]byte {
	var out [][]byte
	for _, i := range []byte{0, 1, 7} {
		v := sha256.Sum256([]byte{i})
		out = append(out, v[:])
	}
	return out
}

func selBits(pcrs ...int) []byte {
	b := make([]byte, 3)
	for _, p := range pcrs {
		b[p/8] |= 1 << (p % 8)
	}
	return b
}

// quote is a TPM2_Quote over sha256 PCRs pcrs whose values are values.
func (f *fakeTPM) quote(t testing.TB, pcrs []int, values [][]byte, nonce []byte) tpm.Evidence {
	h := crypto.SHA256.New()
	for _, v := range values {
		h.Write(v)
	}
	qi := &tpm2.TPMSQuoteInfo{
		PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: selBits(pcrs...)}}},
		PCRDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)},
	}
	a := tpm2.Marshal(attestOf(tpm2.TPMSTAttestQuote, nonce, tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, qi)))
	return tpm.Evidence{Kind: tpm.KindQuote, Attest: a, Signature: f.sign(t, a), AKPublic: tpm2.Marshal(f.akPub),
		PCRValues: values, Nonce: nonce, LoggedAt: loggedAt}
}

func asEvidence(e any) tpm.Evidence { return e.(tpm.Evidence) }
