package verify_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/luna"
	"github.com/keytrail/keytrail/attest/marvell"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/internal/tpmfake"
	"github.com/keytrail/keytrail/verify"
)

func policyMin(min string) string {
	p := scenario.PolicyYAML
	if min != "" {
		p = strings.Replace(p, "hot-signing: {}", "hot-signing: {minStrength: "+min+"}", 1)
	}
	return p
}

func nonce() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// verifyHW builds a rotation with the records and hardware trust and verifies it.
func verifyHW(t *testing.T, o scenario.HardwareOptions) *verify.Result {
	t.Helper()
	b, err := scenario.BuildHardware(context.Background(), "", o)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(b.Trust, b.Policy)
	if err != nil {
		t.Fatal(err)
	}
	res, err := v.VerifyBundle(b.BundleBytes, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func hwCheck(t *testing.T, res *verify.Result, status verify.Status, want ...string) {
	t.Helper()
	c := res.Check(verify.CheckKeysHardware)
	if c == nil || c.Status != status {
		t.Fatalf("keys.hardware = %+v, want %s", c, status)
	}
	all := c.Reason + " " + strings.Join(c.Failures, " ")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("keys.hardware %q does not mention %q", all, w)
		}
	}
	if status == verify.Fail && (res.Verified || !errors.Is(c.Err(), verify.ErrHardware)) {
		t.Errorf("verified %v, err %v", res.Verified, c.Err())
	}
}

// tpmCertify is a TPM certification of the rotation's new key by fake.
func tpmCertify(fake *tpmfake.TPM, at time.Time, n []byte) func(p *scenario.Parties, r evidence.Rotation) ([]scenario.Record, error) {
	return func(p *scenario.Parties, r evidence.Rotation) ([]scenario.Record, error) {
		a, sig, kp := fake.Certify(p.NewKey.Public(), tpmfake.ResidentAttrs, n)
		return []scenario.Record{{Key: r.NewKey, Pred: &evidence.TPMAttestation{At: evidence.AtTime(at), Kind: evidence.TPMKindCertify,
			Attest: a, Signature: sig, AKPublic: fake.AKPublic(), KeyPublic: kp, Nonce: n}}}, nil
	}
}

func TestHardwareTPMCertified(t *testing.T) {
	fake := tpmfake.New()
	hw := &verify.HardwareTrust{TPMAttestationKeys: []verify.TrustedTPMKey{{ID: "host-7 AK", PublicArea: fake.AKPublic()}}}
	at := scenario.Start.Add(2*time.Hour + 30*time.Minute)
	for _, tc := range []struct {
		min    string
		status verify.Status
		want   []string
	}{
		{"", verify.Pass, []string{"new key", "tpm-certified"}},
		{"self-reported", verify.Pass, []string{"requires self-reported"}},
		{"tpm-certified", verify.Pass, []string{"requires tpm-certified"}},
		{"vendor-attested", verify.Fail, []string{"has tpm-certified evidence, policy requires at least vendor-attested"}},
	} {
		t.Run("min="+tc.min, func(t *testing.T) {
			res := verifyHW(t, scenario.HardwareOptions{Records: tpmCertify(fake, at, nonce()), Hardware: hw, Policy: policyMin(tc.min)})
			hwCheck(t, res, tc.status, tc.want...)
			if res.Hardware[0].Strength != attest.TPMCertified || res.Hardware[0].Role != "new" {
				t.Errorf("hardware %+v", res.Hardware)
			}
			if tc.status == verify.Pass && !res.Verified {
				t.Errorf("not verified: %v", res.Err())
			}
		})
	}
}

// ATTACKS.md 24 end to end: a certification by an AK the trust file does not
// enrol fails; ATTACKS.md 13: no hardware trust material fails closed.
func TestHardwareUntrustedAK(t *testing.T) {
	enrolled, other := tpmfake.New(), tpmfake.New()
	hw := &verify.HardwareTrust{TPMAttestationKeys: []verify.TrustedTPMKey{{ID: "host-7 AK", PublicArea: enrolled.AKPublic()}}}
	at := scenario.Start.Add(3 * time.Hour)
	res := verifyHW(t, scenario.HardwareOptions{Records: tpmCertify(other, at, nonce()), Hardware: hw})
	hwCheck(t, res, verify.Fail, "tpm.ak-trust", "not enrolled")
	res = verifyHW(t, scenario.HardwareOptions{Records: tpmCertify(enrolled, at, nonce())})
	hwCheck(t, res, verify.Fail, "pins no TPM attestation key")
	// The AK's enrolment ended before the record was logged.
	hw.TPMAttestationKeys[0].NotAfter = evidence.FormatTime(at.Add(-time.Minute))
	res = verifyHW(t, scenario.HardwareOptions{Records: tpmCertify(enrolled, at, nonce()), Hardware: hw})
	hwCheck(t, res, verify.Fail, "is enrolled from")
}

// ATTACKS.md 23 across records: the same quote nonce twice is a replay.
func TestHardwareNonceReplay(t *testing.T) {
	fake := tpmfake.New()
	hw := &verify.HardwareTrust{TPMAttestationKeys: []verify.TrustedTPMKey{{ID: "ak", PublicArea: fake.AKPublic()}},
		TPMQuotePCRs: &verify.TrustedPCRSelection{Bank: "sha256", PCRs: []int{0, 7}}}
	values := [][]byte{make([]byte, 32), make([]byte, 32)}
	quote := func(at time.Time, n []byte) evidence.Predicate {
		a, sig := fake.Quote([]int{0, 7}, values, n)
		return &evidence.TPMAttestation{At: evidence.AtTime(at), Kind: evidence.TPMKindQuote, Attest: a, Signature: sig,
			AKPublic: fake.AKPublic(), PCRValues: values, Nonce: n}
	}
	n := nonce()
	res := verifyHW(t, scenario.HardwareOptions{Hardware: hw, Records: func(p *scenario.Parties, r evidence.Rotation) ([]scenario.Record, error) {
		return []scenario.Record{{Key: r.NewKey, Pred: quote(scenario.Start.Add(3*time.Hour), n)}, {Key: r.NewKey, Pred: quote(scenario.Start.Add(4*time.Hour), n)}}, nil
	}})
	hwCheck(t, res, verify.Fail, "already used by entry", "replay")
	// Distinct nonces: both quotes verify, and a quote does not make the key
	// TPM-certified (it attests a platform, not a key).
	res = verifyHW(t, scenario.HardwareOptions{Hardware: hw, Records: func(p *scenario.Parties, r evidence.Rotation) ([]scenario.Record, error) {
		return []scenario.Record{{Key: r.NewKey, Pred: quote(scenario.Start.Add(3*time.Hour), nonce())}, {Key: r.NewKey, Pred: quote(scenario.Start.Add(4*time.Hour), nonce())}}, nil
	}})
	hwCheck(t, res, verify.Pass, "software (2 records)")
}

func TestHardwareNoEvidence(t *testing.T) {
	hwCheck(t, verifyHW(t, scenario.HardwareOptions{}), verify.Skip, "no hardware records")
	hwCheck(t, verifyHW(t, scenario.HardwareOptions{Policy: policyMin("self-reported")}), verify.Fail,
		"has software evidence, policy requires at least self-reported")
	hwCheck(t, verifyHW(t, scenario.HardwareOptions{Policy: policyMin("software")}), verify.Pass, "software (0 records)")
}

// pkcs11 is a pkcs11-attributes record for the new key with a real proof of
// possession by it (ATTACKS.md 25: self-reported, never more).
func pkcs11Record(at time.Time, edit func(*evidence.KeyAttributes)) func(p *scenario.Parties, r evidence.Rotation) ([]scenario.Record, error) {
	return func(p *scenario.Parties, r evidence.Rotation) ([]scenario.Record, error) {
		n := nonce()
		d := sha256.Sum256(n)
		der, err := p.NewKey.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		sig, err := derToRS(der)
		if err != nil {
			return nil, err
		}
		spki, _ := x509.MarshalPKIXPublicKey(p.NewKey.Public())
		attrs := evidence.KeyAttributes{Class: "PRIVATE_KEY", KeyType: "EC", Curve: "P-256", Label: "hot-1", Sensitive: true,
			NeverExtractable: true, AlwaysSensitive: true, Local: true, KeyGenMechanism: "CKM_EC_KEY_PAIR_GEN", Token: true, Private: true}
		if edit != nil {
			edit(&attrs)
		}
		return []scenario.Record{{Key: r.NewKey, Pred: &evidence.HSMAttestation{At: evidence.AtTime(at), Format: evidence.HSMFormatPKCS11,
			Token:  evidence.TokenInfo{Manufacturer: "SoftHSM project", Model: "SoftHSM v2", Serial: "0a1b2c3d", Label: "custody"},
			KeyURI: "pkcs11:token=custody;object=hot-1;type=private", Attributes: attrs, PublicKey: spki,
			ProofOfPossession: &evidence.ProofOfPossession{Nonce: n, Mechanism: "CKM_ECDSA", Signature: sig}}}}, nil
	}
}

func derToRS(der []byte) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, err
	}
	return append(sig.R.FillBytes(make([]byte, 32)), sig.S.FillBytes(make([]byte, 32))...), nil
}

func TestHardwareSelfReported(t *testing.T) {
	at := scenario.Start.Add(2*time.Hour + 10*time.Minute)
	res := verifyHW(t, scenario.HardwareOptions{Records: pkcs11Record(at, nil), Policy: policyMin("self-reported")})
	hwCheck(t, res, verify.Pass, "self-reported")
	res = verifyHW(t, scenario.HardwareOptions{Records: pkcs11Record(at, nil), Policy: policyMin("tpm-certified")})
	hwCheck(t, res, verify.Fail, "has self-reported evidence, policy requires at least tpm-certified")
	// ATTACKS.md 26: an imported key fails whatever the policy.
	res = verifyHW(t, scenario.HardwareOptions{Records: pkcs11Record(at, func(a *evidence.KeyAttributes) { a.Local = false })})
	hwCheck(t, res, verify.Fail, "LOCAL=0")
}

func readAttest(t *testing.T, format, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "attest", format, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The real Google Cloud HSM (Marvell) sample as the rotation's new key: it
// verifies as vendor-attested when logged while the Marvell root was valid,
// and fails when logged after the root expired (2025-11-16, ATTACKS.md 19).
func TestHardwareMarvellSample(t *testing.T) {
	chains, err := attest.CertificatesPEM(readAttest(t, "marvell", "cert-chains.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blob := readAttest(t, "marvell", "ec-key-attestation.dat.gz")
	hw := &verify.HardwareTrust{VendorRoots: []verify.TrustedVendorRoot{
		{Format: evidence.HSMFormatMarvell, Role: verify.RoleManufacturer, CertificatePEM: string(readAttest(t, "marvell", "marvell-cavium-root-2015.pem"))},
		{Format: evidence.HSMFormatMarvell, Role: verify.RoleOwner, CertificatePEM: string(readAttest(t, "marvell", "google-hawksbill-root-v1-prod.pem"))},
	}}
	mfr, _ := attest.ParseRootPEM([]byte(hw.VendorRoots[0].CertificatePEM))
	owner, _ := attest.ParseRootPEM([]byte(hw.VendorRoots[1].CertificatePEM))
	mv, _ := marvell.NewVerifier(marvell.Config{Manufacturer: mfr, Owner: &owner})
	key := evidence.KeyRef{ID: "gcp:projects/p/locations/europe-west3/keyRings/custody/cryptoKeys/hot-1/cryptoKeyVersions/1",
		SPKISHA256: mv.Verify(marvell.Evidence{Attestation: blob, Certificates: chains, LoggedAt: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)}).Facts.KeyDigest}
	records := func(p *scenario.Parties, r evidence.Rotation) ([]scenario.Record, error) {
		start, _, _ := r.Window.Bounds()
		return []scenario.Record{{Key: r.NewKey, Pred: &evidence.HSMAttestation{At: evidence.AtTime(start.Add(150 * time.Minute)),
			Format: evidence.HSMFormatMarvell, Token: evidence.TokenInfo{Manufacturer: "Cavium", Model: "N3FIPS", Serial: "5.3G1953-ICM001225"},
			Attributes: evidence.KeyAttributes{KeyType: "EC"}, Attestation: blob, Certificates: chains}}}, nil
	}
	before := time.Date(2025, 11, 10, 9, 0, 0, 0, time.UTC)
	res := verifyHW(t, scenario.HardwareOptions{Start: before, NewKey: &key, Records: records, Hardware: hw, Policy: policyMin("vendor-attested")})
	hwCheck(t, res, verify.Pass, "vendor-attested")
	if !res.Verified {
		t.Fatalf("not verified: %v", res.Err())
	}
	after := time.Date(2025, 12, 1, 9, 0, 0, 0, time.UTC)
	res = verifyHW(t, scenario.HardwareOptions{Start: after, NewKey: &key, Records: records, Hardware: hw})
	hwCheck(t, res, verify.Fail, "marvell", "2025-11-16")
	// The negative sample (an imported key's attestation from another HSM
	// than the chains certify) fails, named by its signature check.
	neg := func(p *scenario.Parties, r evidence.Rotation) ([]scenario.Record, error) {
		recs, _ := records(p, r)
		recs[0].Pred.(*evidence.HSMAttestation).Attestation = readAttest(t, "marvell", "rsa-key-attestation-other-hsm.dat.gz")
		return recs, nil
	}
	res = verifyHW(t, scenario.HardwareOptions{Start: before, NewKey: &key, Records: neg, Hardware: hw})
	hwCheck(t, res, verify.Fail, "marvell-cavium-v1-compressed", "attestation signature")
	// Without the Marvell roots pinned, the sample fails closed.
	res = verifyHW(t, scenario.HardwareOptions{Start: before, NewKey: &key, Records: records})
	hwCheck(t, res, verify.Fail, "pins no marvell manufacturer root")
}

// The real Luna PKC and its CSR as the rotation's new key.
func TestHardwareLunaSample(t *testing.T) {
	pkc, csr := readAttest(t, "luna", "ecc-pkc.p7b"), readAttest(t, "luna", "ecc-test.csr")
	root := string(readAttest(t, "luna", "luna-ecc-root-certificate.pem"))
	hw := &verify.HardwareTrust{VendorRoots: []verify.TrustedVendorRoot{{Format: evidence.HSMFormatLuna, Role: verify.RoleRoot, CertificatePEM: root}}}
	r, _ := attest.ParseRootPEM([]byte(root))
	lv, _ := luna.NewVerifier(luna.Config{Roots: []attest.Root{r}})
	at := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	key := evidence.KeyRef{ID: "luna:custody/hot-1", SPKISHA256: lv.Verify(luna.Evidence{PKC: pkc, LoggedAt: at}).Facts.KeyDigest}
	records := func(p *scenario.Parties, r evidence.Rotation) ([]scenario.Record, error) {
		return []scenario.Record{{Key: r.NewKey, Pred: &evidence.HSMAttestation{At: evidence.AtTime(at.Add(2 * time.Hour)),
			Format: evidence.HSMFormatLuna, Token: evidence.TokenInfo{Manufacturer: "Thales", Model: "Luna", Serial: "unknown"},
			Attributes: evidence.KeyAttributes{KeyType: "EC"}, Attestation: pkc, CSR: csr}}}, nil
	}
	res := verifyHW(t, scenario.HardwareOptions{Start: at, NewKey: &key, Records: records, Hardware: hw, Policy: policyMin("vendor-attested")})
	hwCheck(t, res, verify.Pass, "vendor-attested")
	// The other Luna sample's CSR does not match.
	other := func(p *scenario.Parties, r evidence.Rotation) ([]scenario.Record, error) {
		recs, _ := records(p, r)
		recs[0].Pred.(*evidence.HSMAttestation).CSR = readAttest(t, "luna", "rsa-test.csr")
		return recs, nil
	}
	res = verifyHW(t, scenario.HardwareOptions{Start: at, NewKey: &key, Records: other, Hardware: hw})
	hwCheck(t, res, verify.Fail, "key.csr")
}

func TestHardwareTrustFile(t *testing.T) {
	for _, tc := range []struct {
		hw   verify.HardwareTrust
		want string
	}{
		{verify.HardwareTrust{VendorRoots: []verify.TrustedVendorRoot{{Format: "luna-pkc", Role: "owner", CertificatePEM: "x"}}}, "certificatePEM"},
		{verify.HardwareTrust{TPMAttestationKeys: []verify.TrustedTPMKey{{ID: "ak", PublicArea: []byte{1, 2}}}}, "tpmAttestationKeys"},
		{verify.HardwareTrust{TPMAttestationKeys: []verify.TrustedTPMKey{{PublicArea: tpmfake.New().AKPublic()}}}, "id is empty"},
		{verify.HardwareTrust{TPMQuotePCRs: &verify.TrustedPCRSelection{Bank: "sha256", PCRs: []int{0}}}, "without tpmAttestationKeys"},
		{verify.HardwareTrust{TPMAttestationKeys: []verify.TrustedTPMKey{{ID: "ak", PublicArea: tpmfake.New().AKPublic(), NotBefore: "2026-01-01"}}}, "notBefore"},
	} {
		p, err := scenario.NewParties("", "keytrail.example/custody-log")
		if err != nil {
			t.Fatal(err)
		}
		tf := p.TrustFile()
		tf.Hardware = &tc.hw
		_, err = verify.NewTrust(tf)
		if !errors.Is(err, verify.ErrTrust) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrTrust naming %s", tc.hw, err, tc.want)
		}
	}
}

// BenchmarkVerifyBundleHardware is a whole bundle's verification with a TPM
// certification and a quote of the new key (compare BenchmarkVerifyBundle).
func BenchmarkVerifyBundleHardware(b *testing.B) {
	fake := tpmfake.New()
	hw := &verify.HardwareTrust{TPMAttestationKeys: []verify.TrustedTPMKey{{ID: "ak", PublicArea: fake.AKPublic()}},
		TPMQuotePCRs: &verify.TrustedPCRSelection{Bank: "sha256", PCRs: []int{0, 7}}}
	values := [][]byte{make([]byte, 32), make([]byte, 32)}
	bu, err := scenario.BuildHardware(context.Background(), "bench", scenario.HardwareOptions{Hardware: hw, Policy: policyMin("tpm-certified"),
		Records: func(p *scenario.Parties, r evidence.Rotation) ([]scenario.Record, error) {
			at := scenario.Start.Add(3 * time.Hour)
			a, sig, kp := fake.Certify(p.NewKey.Public(), tpmfake.ResidentAttrs, nil)
			n := nonce()
			qa, qsig := fake.Quote([]int{0, 7}, values, n)
			return []scenario.Record{
				{Key: r.NewKey, Pred: &evidence.TPMAttestation{At: evidence.AtTime(at), Kind: evidence.TPMKindCertify, Attest: a, Signature: sig, AKPublic: fake.AKPublic(), KeyPublic: kp}},
				{Key: r.NewKey, Pred: &evidence.TPMAttestation{At: evidence.AtTime(at), Kind: evidence.TPMKindQuote, Attest: qa, Signature: qsig, AKPublic: fake.AKPublic(), PCRValues: values, Nonce: n}},
			}, nil
		}})
	if err != nil {
		b.Fatal(err)
	}
	v, err := verify.New(bu.Trust, bu.Policy)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		res, err := v.VerifyBundle(bu.BundleBytes, verify.Options{})
		if err != nil || !res.Verified {
			b.Fatalf("%v %v", err, res.Err())
		}
	}
}

// FuzzParseTrustHardware: trust files with a hardware section never panic the
// parser, and what parses builds a verifier.
func FuzzParseTrustHardware(f *testing.F) {
	fake := tpmfake.New()
	for _, hw := range []*verify.HardwareTrust{
		{TPMAttestationKeys: []verify.TrustedTPMKey{{ID: "ak", PublicArea: fake.AKPublic(), NotAfter: "2030-01-01T00:00:00Z"}},
			TPMQuotePCRs: &verify.TrustedPCRSelection{Bank: "sha256", PCRs: []int{0, 7}}},
		{VendorRoots: []verify.TrustedVendorRoot{{Format: evidence.HSMFormatLuna, Role: verify.RoleRoot,
			CertificatePEM: string(readAttestF(f, "luna", "luna-ecc-root-certificate.pem"))}}},
	} {
		p, err := scenario.NewParties("fuzz", "keytrail.example/custody-log")
		if err != nil {
			f.Fatal(err)
		}
		tf := p.TrustFile()
		tf.Hardware = hw
		b, err := json.Marshal(tf)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := verify.ParseTrust(b); err != nil {
			f.Fatalf("seed: %v", err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := verify.ParseTrust(b)
		if err != nil {
			return
		}
		p, _ := verify.ParsePolicy([]byte(scenario.PolicyYAML))
		if _, err := verify.New(tr, p); err != nil {
			t.Fatalf("a parsed trust file builds no verifier: %v", err)
		}
	})
}

func readAttestF(f *testing.F, format, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "attest", format, name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}
