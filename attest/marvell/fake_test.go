package marvell_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"sync"
	"testing"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/internal/fakeca"
	"github.com/keytrail/keytrail/attest/marvell"
)

// fakePKI is a LiquidSecurity-shaped PKI with keys the tests hold: a v1
// manufacturer root and v1 card certificate, a partition certificate, and an
// owner root that certifies the same partition and card keys. Attestations
// signed with partKey are real attestations to a verifier that pins its roots.
type fakePKI struct {
	mroot, mcard, mpart *fakeca.Cert
	oroot, ocard, opart *fakeca.Cert
	partKey             *rsa.PrivateKey
}

var (
	fakeOnce sync.Once
	fake     *fakePKI
)

func subject(cn string) pkix.Name {
	return pkix.Name{CommonName: cn, Organization: []string{"Cavium"}, OrganizationalUnit: []string{"N3FIPS"}}
}

func newFakePKI(tb testing.TB) *fakePKI {
	tb.Helper()
	fakeOnce.Do(func() {
		p := &fakePKI{partKey: fakeca.RSAKey(2048)}
		cardKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		p.mroot = fakeca.MustNew(nil, fakeca.Options{Subject: pkix.Name{CommonName: "fake localca"}, V1: true, Key: fakeca.RSAKey(2048)})
		p.mcard = fakeca.MustNew(p.mroot, fakeca.Options{Subject: subject("HSM:TEST-0001, for FIPS mode"), V1: true, Key: cardKey})
		p.mpart = fakeca.MustNew(p.mcard, fakeca.Options{Subject: subject("HSM:TEST-0001:PARTN:7, for FIPS mode"), Key: p.partKey})
		p.oroot = fakeca.MustNew(nil, fakeca.Options{Subject: pkix.Name{CommonName: "fake owner root"}, CA: true})
		p.ocard = fakeca.MustNew(p.oroot, fakeca.Options{Subject: subject("HSM:TEST-0001, for FIPS mode"), Key: cardKey})
		p.opart = fakeca.MustNew(p.oroot, fakeca.Options{Subject: subject("HSM:TEST-0001:PARTN:7, for FIPS mode"), Key: p.partKey})
		fake = p
	})
	return fake
}

func (p *fakePKI) verifier(tb testing.TB) *marvell.Verifier {
	tb.Helper()
	v, err := marvell.NewVerifier(marvell.Config{
		Manufacturer: attest.Root{Certificate: p.mroot.Cert},
		Owner:        &attest.Root{Certificate: p.oroot.Cert},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func (p *fakePKI) certs(cs ...*fakeca.Cert) [][]byte {
	if cs == nil {
		cs = []*fakeca.Cert{p.mpart, p.mcard, p.opart, p.ocard}
	}
	var out [][]byte
	for _, c := range cs {
		out = append(out, c.Cert.Raw)
	}
	return out
}

// sign encodes a and signs it with the partition key.
func (p *fakePKI) sign(a *marvell.Attestation) []byte {
	return signWith(a, p.partKey)
}

func signWith(a *marvell.Attestation, k *rsa.PrivateKey) []byte {
	a.Signature = make([]byte, marvell.SignatureSize)
	b := marvell.Marshal(a)
	h := sha256.Sum256(b[:len(b)-marvell.SignatureSize])
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
	if err != nil {
		panic(err)
	}
	copy(b[len(b)-marvell.SignatureSize:], sig)
	return b
}

// keyPair returns an attestation of k shaped like the sample: public object,
// then private object, with the sample's attributes.
func keyPair(k crypto.PublicKey) *marvell.Attestation {
	spki, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		panic(err)
	}
	ekcv, kcv := sha256.Sum256(spki), sha1.Sum(spki)
	label := make([]byte, 128)
	copy(label, "test_key")
	common := func(class byte, attrs ...marvell.Attribute) marvell.Object {
		o := marvell.Object{Attributes: []marvell.Attribute{
			{Type: marvell.AttrClass, Value: []byte{class}},
			{Type: marvell.AttrToken, Value: []byte{1}},
			{Type: marvell.AttrPrivate, Value: []byte{1}},
			{Type: marvell.AttrLabel, Value: label},
			{Type: marvell.AttrKCV, Value: kcv[:3]},
			{Type: marvell.AttrEKCV, Value: ekcv[:]},
		}}
		switch k := k.(type) {
		case *ecdsa.PublicKey:
			pt, _ := k.Bytes()
			o.Attributes = append(o.Attributes, marvell.Attribute{Type: marvell.AttrKeyType, Value: []byte{marvell.KeyTypeEC}},
				marvell.Attribute{Type: marvell.AttrModulus, Value: pt})
		case *rsa.PublicKey:
			o.Attributes = append(o.Attributes, marvell.Attribute{Type: marvell.AttrKeyType, Value: []byte{marvell.KeyTypeRSA}},
				marvell.Attribute{Type: marvell.AttrModulus, Value: k.N.Bytes()},
				marvell.Attribute{Type: marvell.AttrPublicExponent, Value: []byte{1, 0, 1}})
		}
		o.Attributes = append(o.Attributes, attrs...)
		return o
	}
	b := func(t uint32, v byte) marvell.Attribute { return marvell.Attribute{Type: t, Value: []byte{v}} }
	pub := common(marvell.ClassPublicKey, b(marvell.AttrLocal, 1), b(marvell.AttrSensitive, 0), b(marvell.AttrExtractable, 1),
		b(marvell.AttrNeverExtractable, 0), b(marvell.AttrAlwaysSensitive, 0))
	priv := common(marvell.ClassPrivateKey, b(marvell.AttrLocal, 1), b(marvell.AttrSensitive, 1), b(marvell.AttrExtractable, 0),
		b(marvell.AttrNeverExtractable, 1), b(marvell.AttrAlwaysSensitive, 1))
	pub.Handle, priv.Handle = 0x10, 0x11
	return &marvell.Attestation{
		Flags:   3,
		Handles: []byte{0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x11},
		Version: 1, InfoFlags: 3,
		Objects: []marvell.Object{pub, priv},
	}
}

// set sets attribute t of o to v, adding it if absent.
func set(o *marvell.Object, t uint32, v []byte) {
	for i := range o.Attributes {
		if o.Attributes[i].Type == t {
			o.Attributes[i].Value = v
			return
		}
	}
	o.Attributes = append(o.Attributes, marvell.Attribute{Type: t, Value: v})
}

func newECKey(tb testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
