package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/evidence"
)

// Formats, as evidence.TPMAttestation.Kind and attest.Result.Format name them.
const (
	KindCertify = "certify"
	KindQuote   = "quote"

	FormatCertify = "tpm2-certify"
	FormatQuote   = "tpm2-quote"
)

// Check names, in the order they run (and attest.CheckBinding, attest.CheckNonExport).
const (
	CheckFormat     = "tpm.format"
	CheckAttestType = "tpm.attest-type"
	CheckAKTrust    = "tpm.ak-trust"
	CheckSignature  = "tpm.signature"
	CheckNonce      = "tpm.nonce"
	CheckName       = "tpm.name"
	CheckPCRs       = "tpm.pcrs"
)

// Sentinel errors beyond attest's.
var (
	// ErrUntrustedAK: the attestation key is not enrolled, or not at that time.
	ErrUntrustedAK = errors.New("tpm: attestation key not trusted")
	// ErrNonce: the nonce is missing, short or not the one expected (a replay).
	ErrNonce = errors.New("tpm: nonce")
	// ErrPCR: the quoted PCR selection or digest is not the required one.
	ErrPCR = errors.New("tpm: PCR selection or digest")
	// ErrAttestType: the TPMS_ATTEST is of another type than claimed.
	ErrAttestType = errors.New("tpm: attestation type")
)

// AK is an enrolled attestation key.
type AK struct {
	// Name identifies the AK in results, e.g. "host-7 TPM AK".
	Name string
	// Public is the AK's TPMT_PUBLIC (or TPM2B_PUBLIC).
	Public []byte
	// NotBefore and NotAfter bound when evidence signed by the AK is accepted
	// (inclusive); zero means unbounded.
	NotBefore, NotAfter time.Time
}

// PCRSelection is a set of PCRs of one bank.
type PCRSelection struct {
	// Bank is "sha1", "sha256", "sha384" or "sha512".
	Bank string
	// PCRs are the PCR indices, 0 to 23.
	PCRs []int
}

// String is e.g. "sha256:0,1,7".
func (s PCRSelection) String() string {
	var b strings.Builder
	b.WriteString(s.Bank + ":")
	for i, p := range s.PCRs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, p)
	}
	return b.String()
}

// Config is the trust material and policy of a Verifier.
type Config struct {
	// AttestationKeys are the enrolled AKs. At least one.
	AttestationKeys []AK
	// QuotePCRs is the PCR selection every quote must cover, exactly. Without
	// it quotes fail (tpm.pcrs); certifications do not need it.
	QuotePCRs *PCRSelection
}

type trustedAK struct {
	name     string
	pub      *tpm2.TPMTPublic
	raw      []byte
	key      crypto.PublicKey
	from, to time.Time
}

// Verifier verifies TPM evidence against enrolled AKs. It is safe for
// concurrent use.
type Verifier struct {
	aks  []trustedAK
	pcrs *tpm2.TPMLPCRSelection
	sel  string
}

// NewVerifier validates cfg: every AK parses, is a restricted signing key
// resident in its TPM, and is listed once.
func NewVerifier(cfg Config) (*Verifier, error) {
	if len(cfg.AttestationKeys) == 0 {
		return nil, errors.New("tpm: no attestation key enrolled")
	}
	v := &Verifier{}
	for i, a := range cfg.AttestationKeys {
		p, raw, err := ParsePublic(a.Public)
		if err != nil {
			return nil, fmt.Errorf("tpm: attestation key %d (%s): %w", i+1, a.Name, err)
		}
		if err := akAttributes(p); err != nil {
			return nil, fmt.Errorf("tpm: attestation key %d (%s): %w", i+1, a.Name, err)
		}
		k, err := PublicKey(p)
		if err != nil {
			return nil, fmt.Errorf("tpm: attestation key %d (%s): %w", i+1, a.Name, err)
		}
		if !a.NotAfter.IsZero() && a.NotAfter.Before(a.NotBefore) {
			return nil, fmt.Errorf("tpm: attestation key %d (%s): empty window", i+1, a.Name)
		}
		for _, o := range v.aks {
			if bytes.Equal(o.raw, raw) {
				return nil, fmt.Errorf("tpm: attestation key %d (%s) is already enrolled as %s", i+1, a.Name, o.name)
			}
		}
		v.aks = append(v.aks, trustedAK{name: a.Name, pub: p, raw: bytes.Clone(raw), key: k, from: a.NotBefore, to: a.NotAfter})
	}
	if s := cfg.QuotePCRs; s != nil {
		sel, err := selection(*s)
		if err != nil {
			return nil, err
		}
		v.pcrs, v.sel = sel, s.String()
	}
	return v, nil
}

// selection builds the TPML_PCR_SELECTION of s.
func selection(s PCRSelection) (*tpm2.TPMLPCRSelection, error) {
	alg, err := BankAlg(s.Bank)
	if err != nil {
		return nil, fmt.Errorf("tpm: quote PCRs: %w", err)
	}
	if len(s.PCRs) == 0 {
		return nil, errors.New("tpm: quote PCRs: empty selection")
	}
	bits := make([]byte, 3)
	for _, p := range s.PCRs {
		if p < 0 || p >= MaxPCRs {
			return nil, fmt.Errorf("tpm: quote PCRs: PCR %d out of range 0-23", p)
		}
		if bits[p/8]&(1<<(p%8)) != 0 {
			return nil, fmt.Errorf("tpm: quote PCRs: PCR %d listed twice", p)
		}
		bits[p/8] |= 1 << (p % 8)
	}
	return &tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: alg, PCRSelect: bits}}}, nil
}

// Evidence is one TPM attestation to verify.
type Evidence struct {
	// Kind is KindCertify or KindQuote: what the attestation must be.
	Kind string
	// Attest is the TPMS_ATTEST the TPM signed.
	Attest []byte
	// Signature is the TPMT_SIGNATURE over Attest.
	Signature []byte
	// AKPublic is the TPMT_PUBLIC of the key that signed; it must be enrolled.
	AKPublic []byte
	// KeyPublic is the certified key's TPMT_PUBLIC (certify only).
	KeyPublic []byte
	// PCRValues are the values of the quoted PCRs, in selection order (quote only).
	PCRValues [][]byte
	// Nonce is the verifier-chosen qualifying data the record states.
	Nonce []byte
	// ExpectedNonce, if set, is the nonce the caller issued: Nonce must equal it.
	ExpectedNonce []byte
	// LoggedAt is when the evidence was logged, a trusted time. Required.
	LoggedAt time.Time
	// ExpectedKey, if set, is the keytrail key digest of the certified key.
	ExpectedKey string
}

// Verify verifies ev. Every problem is a failed check in the result; it never
// panics and never changes ev.
func (v *Verifier) Verify(ev Evidence) (res *attest.Result) {
	res = &attest.Result{Strength: attest.Unverified}
	defer res.Recover()
	auth := []string{CheckFormat, CheckAttestType, CheckAKTrust, CheckSignature, CheckNonce}
	var required []string
	switch ev.Kind {
	case KindCertify:
		res.Format = FormatCertify
		auth = append(auth, CheckName)
		required = append(slices.Clone(auth), attest.CheckNonExport)
	case KindQuote:
		res.Format = FormatQuote
		required = append(slices.Clone(auth), CheckPCRs)
	default:
		res.Fail(CheckFormat, fmt.Errorf("%w: kind %q, want %q or %q", attest.ErrInput, ev.Kind, KindCertify, KindQuote))
		res.Conclude(attest.TPMCertified, auth, auth)
		return res
	}
	v.verify(ev, res)
	res.Conclude(attest.TPMCertified, auth, required)
	return res
}

func (v *Verifier) verify(ev Evidence, res *attest.Result) {
	if ev.LoggedAt.IsZero() {
		res.Fail(attest.CheckEvidenceTime, attest.ErrNoTime)
		return
	}
	a, err := ParseAttest(ev.Attest)
	var sig *tpm2.TPMTSignature
	var akPub *tpm2.TPMTPublic
	var akRaw []byte
	if err == nil {
		sig, err = ParseSignature(ev.Signature)
	}
	if err == nil {
		akPub, akRaw, err = ParsePublic(ev.AKPublic)
	}
	if !res.Record(CheckFormat, err, fmt.Sprintf("TPMS_ATTEST (magic 0x%08x), TPMT_SIGNATURE and AK TPMT_PUBLIC parse canonically", Magic)) {
		for _, n := range []string{CheckAttestType, CheckAKTrust, CheckSignature, CheckNonce} {
			res.Skip(n, CheckFormat+" failed")
		}
		return
	}
	res.Facts.Token = evidence.TokenInfo{Model: "TPM 2.0", FirmwareVersion: fmt.Sprintf("0x%016x", a.FirmwareVersion)}

	want := map[string]tpm2.TPMST{KindCertify: tpm2.TPMSTAttestCertify, KindQuote: tpm2.TPMSTAttestQuote}[ev.Kind]
	if a.Type != want {
		res.Fail(CheckAttestType, fmt.Errorf("%w: TPMS_ATTEST type 0x%04x, want 0x%04x (%s)", ErrAttestType, uint16(a.Type), uint16(want), ev.Kind))
	} else {
		res.Pass(CheckAttestType, fmt.Sprintf("TPMS_ATTEST type 0x%04x (%s)", uint16(a.Type), ev.Kind))
	}

	ak, err := v.trustAK(akPub, akRaw, ev.LoggedAt)
	res.Record(CheckAKTrust, err, "signed by enrolled attestation key "+akName(ak)+", restricted, fixedTPM, fixedParent, sensitiveDataOrigin")
	if ak == nil {
		res.Skip(CheckSignature, CheckAKTrust+" failed: no trusted key to verify with")
	} else {
		res.Record(CheckSignature, verifySignature(ak, sig, ev.Attest), "TPMT_SIGNATURE over the TPMS_ATTEST verifies with the AK")
	}
	if ev.Kind == KindCertify {
		// A certification states immutable facts about a key (its Name and
		// attributes), so a replayed one proves nothing new: its nonce may be
		// short or fixed (tpm2_certify before tpm2-tools 5.5 always uses
		// 00ff55aa), but it must be what the record states. Quotes, whose PCRs
		// change, need a fresh nonce of at least MinNonce bytes.
		var err error
		switch {
		case !bytes.Equal(a.ExtraData.Buffer, ev.Nonce):
			err = fmt.Errorf("%w: extraData %s is not the nonce %s", ErrNonce, shortHex(a.ExtraData.Buffer), shortHex(ev.Nonce))
		case ev.ExpectedNonce != nil && !bytes.Equal(ev.Nonce, ev.ExpectedNonce):
			err = fmt.Errorf("%w: nonce %s is not the one issued, %s", ErrNonce, shortHex(ev.Nonce), shortHex(ev.ExpectedNonce))
		}
		res.Record(CheckNonce, err, fmt.Sprintf("extraData is the record's nonce %s (a certification's facts are immutable; any nonce is accepted)", shortHex(ev.Nonce)))
	} else {
		res.Record(CheckNonce, checkNonce(a.ExtraData.Buffer, ev.Nonce, ev.ExpectedNonce),
			fmt.Sprintf("extraData is the %d-byte nonce %s", len(ev.Nonce), shortHex(ev.Nonce)))
	}

	switch ev.Kind {
	case KindCertify:
		v.certify(ev, a, res)
	case KindQuote:
		v.quote(ev, a, sig, res)
	}
}

func (v *Verifier) certify(ev Evidence, a *tpm2.TPMSAttest, res *attest.Result) {
	ci, err := a.Attested.Certify()
	var kp *tpm2.TPMTPublic
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrAttestType, err)
	} else if len(ev.KeyPublic) == 0 {
		err = fmt.Errorf("%w: no public area of the certified key", attest.ErrInput)
	} else {
		kp, _, err = ParsePublic(ev.KeyPublic)
	}
	var name []byte
	if err == nil {
		name, err = Name(kp)
	}
	if err == nil && !bytes.Equal(name, ci.Name.Buffer) {
		err = fmt.Errorf("%w: certified Name %x is not the Name %x of the key's public area", attest.ErrKeyMismatch, ci.Name.Buffer, name)
	}
	if !res.Record(CheckName, err, "certified Name "+shortHex(name)+" is nameAlg || H(TPMT_PUBLIC) of the key") {
		res.Skip(attest.CheckBinding, CheckName+" failed")
		res.Skip(attest.CheckNonExport, CheckName+" failed")
		return
	}
	k, err := PublicKey(kp)
	if err != nil {
		res.Fail(CheckName, fmt.Errorf("certified key: %w", err))
		return
	}
	digest, err := evidence.KeyDigest(k)
	if err != nil {
		res.Fail(CheckName, fmt.Errorf("%w: certified key: %v", attest.ErrFormat, err))
		return
	}
	alg, keyType := attest.KeyAlgorithm(k)
	res.Facts.KeyDigest, res.Facts.Algorithm, res.Facts.PublicKey = digest, alg, k
	res.CheckKeyBinding(ev.ExpectedKey)
	oa := kp.ObjectAttributes
	fixed := oa.FixedTPM && oa.FixedParent
	res.Facts.Attributes = &evidence.KeyAttributes{
		KeyType:          keyType,
		Local:            oa.SensitiveDataOrigin,
		NeverExtractable: fixed,
		Extractable:      !fixed,
		Sensitive:        oa.FixedTPM,
		AlwaysSensitive:  oa.FixedTPM && oa.SensitiveDataOrigin,
	}
	res.Facts.AttributeSource = attest.SourceAttested
	res.CheckKeyPolicy(res.Facts.Attributes, fmt.Sprintf("TPMT_PUBLIC objectAttributes fixedTPM=%d fixedParent=%d sensitiveDataOrigin=%d, bound by the certified Name",
		b2i(oa.FixedTPM), b2i(oa.FixedParent), b2i(oa.SensitiveDataOrigin)))
}

func (v *Verifier) quote(ev Evidence, a *tpm2.TPMSAttest, sig *tpm2.TPMTSignature, res *attest.Result) {
	qi, err := a.Attested.Quote()
	if err != nil {
		res.Fail(CheckPCRs, fmt.Errorf("%w: %v", ErrAttestType, err))
		return
	}
	if v.pcrs == nil {
		res.Fail(CheckPCRs, fmt.Errorf("%w: no PCR selection is required by the trust material; a quote proves nothing without one", ErrPCR))
		return
	}
	res.Record(CheckPCRs, checkPCRs(qi, v.pcrs, ev.PCRValues, sig), "quote covers exactly "+v.sel+" and its PCR digest is recomputed from the reported values in selection order")
}

// checkPCRs compares the quoted selection with the required one, exactly, and
// recomputes the PCR digest from the values, with the signature's hash.
func checkPCRs(qi *tpm2.TPMSQuoteInfo, want *tpm2.TPMLPCRSelection, values [][]byte, sig *tpm2.TPMTSignature) error {
	if !bytes.Equal(tpm2.Marshal(qi.PCRSelect), tpm2.Marshal(*want)) {
		return fmt.Errorf("%w: quoted selection %s, required %s", ErrPCR, describeSel(qi.PCRSelect), describeSel(*want))
	}
	n := 0
	for _, s := range want.PCRSelections {
		for _, b := range s.PCRSelect {
			for ; b != 0; b &= b - 1 {
				n++
			}
		}
	}
	if len(values) != n {
		return fmt.Errorf("%w: %d PCR values for %d selected PCRs", ErrPCR, len(values), n)
	}
	h, err := sigHash(sig)
	if err != nil {
		return err
	}
	bankHash, err := hashOf(want.PCRSelections[0].Hash)
	if want.PCRSelections[0].Hash == tpm2.TPMAlgSHA1 {
		bankHash, err = crypto.SHA1, nil
	}
	if err != nil {
		return err
	}
	d := h.New()
	for i, val := range values {
		if len(val) != bankHash.Size() {
			return fmt.Errorf("%w: PCR value %d is %d bytes, want %d", ErrPCR, i, len(val), bankHash.Size())
		}
		d.Write(val)
	}
	if got := d.Sum(nil); subtle.ConstantTimeCompare(got, qi.PCRDigest.Buffer) != 1 {
		return fmt.Errorf("%w: PCR digest of the reported values %x, quoted %x", ErrPCR, got, qi.PCRDigest.Buffer)
	}
	return nil
}

func describeSel(l tpm2.TPMLPCRSelection) string {
	var parts []string
	for _, s := range l.PCRSelections {
		var idx []string
		for i, b := range s.PCRSelect {
			for bit := range 8 {
				if b&(1<<bit) != 0 {
					idx = append(idx, fmt.Sprint(i*8+bit))
				}
			}
		}
		parts = append(parts, bankName(s.Hash)+":"+strings.Join(idx, ","))
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, " ")
}

// trustAK finds the enrolled AK whose public area is pub, valid at t.
func (v *Verifier) trustAK(pub *tpm2.TPMTPublic, raw []byte, t time.Time) (*trustedAK, error) {
	for i := range v.aks {
		ak := &v.aks[i]
		if !bytes.Equal(ak.raw, raw) {
			continue
		}
		if !ak.from.IsZero() && t.Before(ak.from) || !ak.to.IsZero() && t.After(ak.to) {
			return nil, fmt.Errorf("%w: %s is enrolled from %s to %s, evidence logged at %s", ErrUntrustedAK, ak.name,
				fmtTime(ak.from), fmtTime(ak.to), t.UTC().Format(time.RFC3339))
		}
		return ak, nil
	}
	name, _ := Name(pub)
	return nil, fmt.Errorf("%w: AK with Name %x is not enrolled in the trust file", ErrUntrustedAK, name)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "(unbounded)"
	}
	return t.UTC().Format(time.RFC3339)
}

// akAttributes: an AK signs only what the TPM generates (restricted), cannot
// leave its TPM, and was generated in it.
func akAttributes(p *tpm2.TPMTPublic) error {
	oa := p.ObjectAttributes
	var bad []string
	if !oa.Restricted {
		bad = append(bad, "restricted=0")
	}
	if !oa.SignEncrypt {
		bad = append(bad, "sign=0")
	}
	if oa.Decrypt {
		bad = append(bad, "decrypt=1")
	}
	if !oa.FixedTPM {
		bad = append(bad, "fixedTPM=0")
	}
	if !oa.FixedParent {
		bad = append(bad, "fixedParent=0")
	}
	if !oa.SensitiveDataOrigin {
		bad = append(bad, "sensitiveDataOrigin=0")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: not a TPM-resident restricted signing key: %s", ErrUntrustedAK, strings.Join(bad, ", "))
	}
	return nil
}

func sigHash(sig *tpm2.TPMTSignature) (crypto.Hash, error) {
	switch sig.SigAlg {
	case tpm2.TPMAlgECDSA:
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return 0, fmt.Errorf("%w: %v", attest.ErrFormat, err)
		}
		return hashOf(s.Hash)
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		s, err := sig.Signature.RSASSA()
		if sig.SigAlg == tpm2.TPMAlgRSAPSS {
			s, err = sig.Signature.RSAPSS()
		}
		if err != nil {
			return 0, fmt.Errorf("%w: %v", attest.ErrFormat, err)
		}
		return hashOf(s.Hash)
	}
	return 0, fmt.Errorf("%w: signature algorithm 0x%04x not accepted (want ECDSA, RSASSA or RSAPSS)", attest.ErrSignature, uint16(sig.SigAlg))
}

func verifySignature(ak *trustedAK, sig *tpm2.TPMTSignature, msg []byte) error {
	h, err := sigHash(sig)
	if err != nil {
		return err
	}
	d := h.New()
	d.Write(msg)
	digest := d.Sum(nil)
	switch k := ak.key.(type) {
	case *ecdsa.PublicKey:
		s, err := sig.Signature.ECDSA()
		if err != nil {
			return fmt.Errorf("%w: an ECC AK made a 0x%04x signature", attest.ErrSignature, uint16(sig.SigAlg))
		}
		r, ss := new(big.Int).SetBytes(s.SignatureR.Buffer), new(big.Int).SetBytes(s.SignatureS.Buffer)
		if !ecdsa.Verify(k, digest, r, ss) {
			return fmt.Errorf("%w: ECDSA signature does not verify with AK %s", attest.ErrSignature, ak.name)
		}
	case *rsa.PublicKey:
		switch sig.SigAlg {
		case tpm2.TPMAlgRSASSA:
			s, _ := sig.Signature.RSASSA()
			err = rsa.VerifyPKCS1v15(k, h, digest, s.Sig.Buffer)
		case tpm2.TPMAlgRSAPSS:
			s, _ := sig.Signature.RSAPSS()
			err = rsa.VerifyPSS(k, h, digest, s.Sig.Buffer, nil)
		default:
			err = fmt.Errorf("an RSA AK made a 0x%04x signature", uint16(sig.SigAlg))
		}
		if err != nil {
			return fmt.Errorf("%w: RSA signature does not verify with AK %s: %v", attest.ErrSignature, ak.name, err)
		}
	default:
		return fmt.Errorf("%w: AK key type %T", attest.ErrSignature, k)
	}
	return nil
}

func checkNonce(extra, nonce, expected []byte) error {
	switch {
	case len(nonce) == 0:
		return fmt.Errorf("%w: empty nonce: a quote or certification without one can be replayed", ErrNonce)
	case len(nonce) < MinNonce:
		return fmt.Errorf("%w: nonce of %d bytes, want at least %d", ErrNonce, len(nonce), MinNonce)
	case !bytes.Equal(extra, nonce):
		return fmt.Errorf("%w: extraData %s is not the nonce %s", ErrNonce, shortHex(extra), shortHex(nonce))
	case expected != nil && !bytes.Equal(nonce, expected):
		return fmt.Errorf("%w: nonce %s is not the one issued, %s (replayed?)", ErrNonce, shortHex(nonce), shortHex(expected))
	}
	return nil
}

func shortHex(b []byte) string {
	if len(b) == 0 {
		return "(empty)"
	}
	return hex.EncodeToString(b)
}

func akName(ak *trustedAK) string {
	if ak == nil {
		return ""
	}
	return fmt.Sprintf("%q", ak.name)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
