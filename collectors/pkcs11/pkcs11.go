//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	p11 "github.com/miekg/pkcs11"

	attestp11 "github.com/keytrail/keytrail/attest/pkcs11"
	"github.com/keytrail/keytrail/evidence"
)

// PKCS #11 v3.0 values that github.com/miekg/pkcs11 v1.1.2 does not define.
const (
	ckkECEdwards             = 0x40
	ckmECEdwardsKeyPairGen   = 0x1055
	ckmEdDSA                 = 0x1057
	ckUnavailableInformation = ^uint(0)
)

// Curve OIDs of CKA_EC_PARAMS.
var (
	oidP256      = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384      = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidSecp256k1 = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
	oidEd25519   = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// Key kinds GenerateKey makes.
const (
	KindP256      = "P-256"
	KindP384      = "P-384"
	KindSecp256k1 = "secp256k1"
	KindEd25519   = "Ed25519"
	KindRSA       = "RSA"
)

// Kinds lists the key kinds.
var Kinds = []string{KindP256, KindP384, KindSecp256k1, KindEd25519, KindRSA}

// Token is an open, logged-in session with one token.
type Token struct {
	ctx     *p11.Ctx
	slot    uint
	session p11.SessionHandle
	info    evidence.TokenInfo
	log     *slog.Logger
	owner   bool
}

// Options open a token.
type Options struct {
	// Module is the path of the PKCS #11 module (e.g.
	// /usr/lib/softhsm/libsofthsm2.so). Required unless the URI has module-path.
	Module string
	// PIN is the user PIN, unless the URI carries pin-value or pin-source.
	PIN string
	// Logger receives progress (never the PIN); nil discards.
	Logger *slog.Logger
}

// Open loads the module, finds the one token the URI's token attributes
// select, and logs in.
func Open(ctx context.Context, u *URI, o Options) (*Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	module := o.Module
	if m := u.Query["module-path"]; m != "" {
		if module != "" && module != m {
			return nil, fmt.Errorf("pkcs11: module %s and the URI's module-path %s differ", module, m)
		}
		module = m
	}
	if module == "" {
		return nil, errors.New("pkcs11: no module path (--module or module-path in the URI)")
	}
	pin := o.PIN
	if v, ok := u.Query["pin-value"]; ok {
		pin = v
	}
	if u.Query["pin-source"] != "" {
		return nil, errors.New("pkcs11: pin-source is not supported; pass the PIN with --pin-env")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := p11.New(module)
	if c == nil {
		return nil, fmt.Errorf("pkcs11: cannot load module %s", module)
	}
	// Another Token may have initialised the same module in this process;
	// then only the first finalises it.
	owner := true
	if err := c.Initialize(); errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		owner = false
	} else if err != nil {
		c.Destroy()
		return nil, fmt.Errorf("pkcs11: initialize %s: %w", module, err)
	}
	t := &Token{ctx: c, log: log, owner: owner}
	fail := func(err error) (*Token, error) {
		t.Close()
		return nil, err
	}
	slot, ti, err := findToken(c, u)
	if err != nil {
		return fail(err)
	}
	t.slot = slot
	info, err := c.GetInfo()
	if err != nil {
		return fail(fmt.Errorf("pkcs11: C_GetInfo: %w", err))
	}
	t.info = evidence.TokenInfo{
		Manufacturer: trim(ti.ManufacturerID), Model: trim(ti.Model), Serial: trim(ti.SerialNumber), Label: trim(ti.Label),
		HardwareVersion: version(ti.HardwareVersion), FirmwareVersion: version(ti.FirmwareVersion),
		Library:        trim(info.ManufacturerID) + " " + trim(info.LibraryDescription),
		LibraryVersion: version(info.LibraryVersion), CryptokiVersion: version(info.CryptokiVersion),
	}
	if t.session, err = c.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION); err != nil {
		return fail(fmt.Errorf("pkcs11: open session on token %q: %w", t.info.Label, err))
	}
	if err := c.Login(t.session, p11.CKU_USER, pin); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
		return fail(fmt.Errorf("pkcs11: log in to token %q: %w", t.info.Label, err))
	}
	log.Info("opened token", "label", t.info.Label, "serial", t.info.Serial, "model", t.info.Model)
	return t, nil
}

// Info is the token's identity as recorded.
func (t *Token) Info() evidence.TokenInfo { return t.info }

// Close logs out and unloads the module.
func (t *Token) Close() error {
	if t.ctx == nil {
		return nil
	}
	if t.session != 0 {
		t.ctx.Logout(t.session)
		t.ctx.CloseSession(t.session)
	}
	if t.owner {
		t.ctx.Finalize()
		t.ctx.Destroy()
	}
	t.ctx = nil
	return nil
}

func trim(s string) string { return strings.TrimRight(s, " \x00") }

func version(v p11.Version) string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// findToken returns the one slot whose token matches the URI's token, serial,
// model and manufacturer attributes.
func findToken(c *p11.Ctx, u *URI) (uint, p11.TokenInfo, error) {
	slots, err := c.GetSlotList(true)
	if err != nil {
		return 0, p11.TokenInfo{}, fmt.Errorf("pkcs11: C_GetSlotList: %w", err)
	}
	var found []uint
	var infos []p11.TokenInfo
	for _, s := range slots {
		ti, err := c.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if !matches(u.Path, "token", ti.Label) || !matches(u.Path, "serial", ti.SerialNumber) ||
			!matches(u.Path, "model", ti.Model) || !matches(u.Path, "manufacturer", ti.ManufacturerID) {
			continue
		}
		found, infos = append(found, s), append(infos, ti)
	}
	switch len(found) {
	case 0:
		return 0, p11.TokenInfo{}, fmt.Errorf("pkcs11: no token matches %s", (&URI{Path: tokenAttrs(u)}).String())
	case 1:
		return found[0], infos[0], nil
	}
	return 0, p11.TokenInfo{}, fmt.Errorf("pkcs11: %d tokens match %s; add serial= to the URI", len(found), (&URI{Path: tokenAttrs(u)}).String())
}

func tokenAttrs(u *URI) map[string]string {
	m := map[string]string{}
	for _, k := range []string{"token", "serial", "model", "manufacturer"} {
		if v, ok := u.Path[k]; ok {
			m[k] = v
		}
	}
	return m
}

func matches(path map[string]string, k, v string) bool {
	want, ok := path[k]
	return !ok || want == trim(v)
}

// findObject returns the one object of class with the URI's object and id.
func (t *Token) findObject(u *URI, class uint) (p11.ObjectHandle, error) {
	tmpl := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, class)}
	if v, ok := u.Path["object"]; ok {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_LABEL, v))
	}
	if v, ok := u.Path["id"]; ok {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_ID, []byte(v)))
	}
	if len(tmpl) == 1 {
		return 0, errors.New("pkcs11: the URI names no object (object= or id=)")
	}
	if err := t.ctx.FindObjectsInit(t.session, tmpl); err != nil {
		return 0, fmt.Errorf("pkcs11: C_FindObjectsInit: %w", err)
	}
	objs, _, err := t.ctx.FindObjects(t.session, 2)
	t.ctx.FindObjectsFinal(t.session)
	if err != nil {
		return 0, fmt.Errorf("pkcs11: C_FindObjects: %w", err)
	}
	switch len(objs) {
	case 0:
		return 0, fmt.Errorf("pkcs11: no %s object matches %s", className(class), u.Redacted())
	case 1:
		return objs[0], nil
	}
	return 0, fmt.Errorf("pkcs11: several %s objects match %s; add id= to the URI", className(class), u.Redacted())
}

func className(c uint) string {
	switch c {
	case p11.CKO_PRIVATE_KEY:
		return "PRIVATE_KEY"
	case p11.CKO_PUBLIC_KEY:
		return "PUBLIC_KEY"
	}
	return fmt.Sprintf("0x%x", c)
}

// attr reads one attribute; ok is false if the token does not have it.
func (t *Token) attr(o p11.ObjectHandle, typ uint) ([]byte, bool) {
	a, err := t.ctx.GetAttributeValue(t.session, o, []*p11.Attribute{p11.NewAttribute(typ, nil)})
	if err != nil || len(a) != 1 {
		return nil, false
	}
	return a[0].Value, true
}

func (t *Token) boolAttr(o p11.ObjectHandle, typ uint) bool {
	v, ok := t.attr(o, typ)
	return ok && len(v) == 1 && v[0] != 0
}

func (t *Token) ulongAttr(o p11.ObjectHandle, typ uint) (uint, bool) {
	v, ok := t.attr(o, typ)
	if !ok || len(v) == 0 || len(v) > 8 {
		return 0, false
	}
	var n uint64
	for i := len(v) - 1; i >= 0; i-- { // CK_ULONG in host (little-endian) order
		n = n<<8 | uint64(v[i])
	}
	return uint(n), true
}

var mechNames = map[uint]string{
	p11.CKM_EC_KEY_PAIR_GEN:       "CKM_EC_KEY_PAIR_GEN",
	p11.CKM_RSA_PKCS_KEY_PAIR_GEN: "CKM_RSA_PKCS_KEY_PAIR_GEN",
	ckmECEdwardsKeyPairGen:        "CKM_EC_EDWARDS_KEY_PAIR_GEN",
	ckUnavailableInformation:      "CK_UNAVAILABLE_INFORMATION",
}

// Collected is a key's record and what names it.
type Collected struct {
	// Record is the hsm-attestation predicate, time set.
	Record *evidence.HSMAttestation
	// Key names the key: its URI (token and object, no query) and SPKI digest.
	Key evidence.KeyRef
	// Public is the key.
	Public crypto.PublicKey
}

// Collect reads the private key the URI names, its public key, and proves
// possession by signing a fresh nonce. The proof is verified before the
// record is returned.
func (t *Token) Collect(ctx context.Context, u *URI, now time.Time) (*Collected, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ty, ok := u.Path["type"]; ok && ty != "private" {
		return nil, fmt.Errorf("pkcs11: the URI's type is %q; name the private key (type=private)", ty)
	}
	priv, err := t.findObject(u, p11.CKO_PRIVATE_KEY)
	if err != nil {
		return nil, err
	}
	a := evidence.KeyAttributes{Class: "PRIVATE_KEY"}
	label, _ := t.attr(priv, p11.CKA_LABEL)
	id, _ := t.attr(priv, p11.CKA_ID)
	a.Label, a.ID = string(label), hex.EncodeToString(id)
	kt, _ := t.ulongAttr(priv, p11.CKA_KEY_TYPE)
	for _, f := range []struct {
		dst *bool
		typ uint
	}{
		{&a.Sensitive, p11.CKA_SENSITIVE}, {&a.Extractable, p11.CKA_EXTRACTABLE}, {&a.NeverExtractable, p11.CKA_NEVER_EXTRACTABLE},
		{&a.AlwaysSensitive, p11.CKA_ALWAYS_SENSITIVE}, {&a.Local, p11.CKA_LOCAL}, {&a.Token, p11.CKA_TOKEN},
		{&a.Private, p11.CKA_PRIVATE}, {&a.Modifiable, p11.CKA_MODIFIABLE}, {&a.WrapWithTrusted, p11.CKA_WRAP_WITH_TRUSTED},
	} {
		*f.dst = t.boolAttr(priv, f.typ)
	}
	if m, ok := t.ulongAttr(priv, p11.CKA_KEY_GEN_MECHANISM); ok {
		a.KeyGenMechanism = mechNames[m]
		if a.KeyGenMechanism == "" {
			a.KeyGenMechanism = fmt.Sprintf("0x%x", m)
		}
	}
	// The public key: from the public object with the same label/id, or, for
	// RSA, from the private object itself.
	pubURI := &URI{Path: map[string]string{}}
	if len(label) > 0 {
		pubURI.Path["object"] = string(label)
	}
	if len(id) > 0 {
		pubURI.Path["id"] = string(id)
	}
	var pub crypto.PublicKey
	var curve string
	switch kt {
	case p11.CKK_EC, ckkECEdwards:
		a.KeyType = map[uint]string{p11.CKK_EC: "EC", ckkECEdwards: "EC_EDWARDS"}[kt]
		params, _ := t.attr(priv, p11.CKA_EC_PARAMS)
		po, err := t.findObject(pubURI, p11.CKO_PUBLIC_KEY)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: public key of %s: %w", u.Redacted(), err)
		}
		if len(params) == 0 {
			params, _ = t.attr(po, p11.CKA_EC_PARAMS)
		}
		point, _ := t.attr(po, p11.CKA_EC_POINT)
		if pub, curve, err = ecPublic(params, point); err != nil {
			return nil, fmt.Errorf("pkcs11: public key of %s: %w", u.Redacted(), err)
		}
	case p11.CKK_RSA:
		a.KeyType = "RSA"
		n, ok1 := t.attr(priv, p11.CKA_MODULUS)
		e, ok2 := t.attr(priv, p11.CKA_PUBLIC_EXPONENT)
		if !ok1 || !ok2 {
			po, err := t.findObject(pubURI, p11.CKO_PUBLIC_KEY)
			if err != nil {
				return nil, fmt.Errorf("pkcs11: public key of %s: %w", u.Redacted(), err)
			}
			n, _ = t.attr(po, p11.CKA_MODULUS)
			e, _ = t.attr(po, p11.CKA_PUBLIC_EXPONENT)
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	default:
		return nil, fmt.Errorf("pkcs11: %s has key type 0x%x; want EC, EC_EDWARDS or RSA", u.Redacted(), kt)
	}
	a.Curve = curve
	spki, err := marshalSPKI(pub)
	if err != nil {
		return nil, err
	}
	k, err := attestp11.ParseSPKI(spki)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: public key of %s: %w", u.Redacted(), err)
	}
	pop, err := t.prove(priv, k)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: proof of possession of %s: %w", u.Redacted(), err)
	}
	keyURI := &URI{Path: map[string]string{"token": t.info.Label, "serial": t.info.Serial, "type": "private"}}
	if len(label) > 0 {
		keyURI.Path["object"] = string(label)
	}
	if len(id) > 0 {
		keyURI.Path["id"] = string(id)
	}
	rec := &evidence.HSMAttestation{
		At: evidence.AtTime(now), Format: evidence.HSMFormatPKCS11, Token: t.info, KeyURI: keyURI.String(),
		Attributes: a, PublicKey: spki, ProofOfPossession: pop,
	}
	t.log.Info("collected key", "uri", keyURI.String(), "key", k.Digest, "local", a.Local, "neverExtractable", a.NeverExtractable)
	return &Collected{Record: rec, Key: evidence.KeyRef{ID: KeyID(t.info.Serial, string(label)), SPKISHA256: k.Digest}, Public: pub}, nil
}

// KeyID is the ID records give a token's key: "pkcs11:SERIAL/LABEL", with
// every byte outside [A-Za-z0-9._-] percent-encoded (keytrail key IDs allow
// no ";"). The record's keyUri keeps the full PKCS #11 URI.
func KeyID(serial, label string) string {
	esc := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	return "pkcs11:" + esc(serial) + "/" + esc(label)
}

// prove signs a fresh 32-byte nonce with the key and checks the signature.
func (t *Token) prove(priv p11.ObjectHandle, k *attestp11.Key) (*evidence.ProofOfPossession, error) {
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	digest := sha256.Sum256(nonce)
	var mech uint
	var name string
	msg := nonce
	switch k.KeyType {
	case "EC":
		mech, name, msg = p11.CKM_ECDSA, attestp11.MechECDSA, digest[:]
	case "EC_EDWARDS":
		mech, name = ckmEdDSA, attestp11.MechEdDSA
	case "RSA":
		mech, name = p11.CKM_SHA256_RSA_PKCS, attestp11.MechRSA256
	}
	if err := t.ctx.SignInit(t.session, []*p11.Mechanism{p11.NewMechanism(mech, nil)}, priv); err != nil {
		return nil, fmt.Errorf("C_SignInit %s: %w", name, err)
	}
	sig, err := t.ctx.Sign(t.session, msg)
	if err != nil {
		return nil, fmt.Errorf("C_Sign %s: %w", name, err)
	}
	if err := attestp11.VerifyPossession(k.Public, name, nonce, sig); err != nil {
		return nil, fmt.Errorf("the token's signature does not verify with the recorded public key: %w", err)
	}
	return &evidence.ProofOfPossession{Nonce: nonce, Mechanism: name, Signature: sig}, nil
}

// ecPublic decodes CKA_EC_PARAMS and CKA_EC_POINT.
func ecPublic(params, point []byte) (crypto.PublicKey, string, error) {
	curve, err := curveOf(params)
	if err != nil {
		return nil, "", err
	}
	// CKA_EC_POINT is a DER OCTET STRING holding the point; some tokens give
	// the raw point.
	var raw []byte
	if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) != 0 {
		raw = point
	}
	switch curve {
	case KindP256, KindP384:
		c := map[string]elliptic.Curve{KindP256: elliptic.P256(), KindP384: elliptic.P384()}[curve]
		k, err := ecdsa.ParseUncompressedPublicKey(c, raw)
		if err != nil {
			return nil, "", fmt.Errorf("EC point: %w", err)
		}
		return k, curve, nil
	case KindSecp256k1:
		k, err := secp256k1.ParsePubKey(raw)
		if err != nil {
			return nil, "", fmt.Errorf("EC point: %w", err)
		}
		return k, curve, nil
	case KindEd25519:
		if len(raw) != ed25519.PublicKeySize {
			return nil, "", fmt.Errorf("Ed25519 point of %d bytes", len(raw))
		}
		return ed25519.PublicKey(raw), curve, nil
	}
	return nil, "", fmt.Errorf("curve %s", curve)
}

func curveOf(params []byte) (string, error) {
	var oid asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(params, &oid); err == nil && len(rest) == 0 {
		switch {
		case oid.Equal(oidP256):
			return KindP256, nil
		case oid.Equal(oidP384):
			return KindP384, nil
		case oid.Equal(oidSecp256k1):
			return KindSecp256k1, nil
		case oid.Equal(oidEd25519):
			return KindEd25519, nil
		}
		return "", fmt.Errorf("unsupported curve %s", oid)
	}
	var name string
	if rest, err := asn1.UnmarshalWithParams(params, &name, "printable"); err == nil && len(rest) == 0 && name == "edwards25519" {
		return KindEd25519, nil
	}
	return "", fmt.Errorf("unsupported CKA_EC_PARAMS %x", params)
}

func marshalSPKI(pub crypto.PublicKey) ([]byte, error) {
	if k, ok := pub.(*secp256k1.PublicKey); ok {
		prefix := []byte{0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00}
		return append(prefix, k.SerializeUncompressed()...), nil
	}
	return x509.MarshalPKIXPublicKey(pub)
}

// GenerateKey makes a key pair of kind in the token, labelled label with
// CKA_ID id, that can never leave it: CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE,
// CKA_EXTRACTABLE false. It returns the URI of the private key.
func (t *Token) GenerateKey(ctx context.Context, kind, label string, id []byte) (*URI, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	common := func() []*p11.Attribute {
		return []*p11.Attribute{p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_LABEL, label), p11.NewAttribute(p11.CKA_ID, id)}
	}
	pubT := append(common(), p11.NewAttribute(p11.CKA_VERIFY, true))
	privT := append(common(), p11.NewAttribute(p11.CKA_SIGN, true), p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true), p11.NewAttribute(p11.CKA_EXTRACTABLE, false))
	var mech uint
	ecParams := func(oid asn1.ObjectIdentifier) []*p11.Attribute {
		b, _ := asn1.Marshal(oid)
		return append(pubT, p11.NewAttribute(p11.CKA_EC_PARAMS, b))
	}
	switch kind {
	case KindP256:
		mech, pubT = p11.CKM_EC_KEY_PAIR_GEN, ecParams(oidP256)
	case KindP384:
		mech, pubT = p11.CKM_EC_KEY_PAIR_GEN, ecParams(oidP384)
	case KindSecp256k1:
		mech, pubT = p11.CKM_EC_KEY_PAIR_GEN, ecParams(oidSecp256k1)
	case KindEd25519:
		mech, pubT = ckmECEdwardsKeyPairGen, ecParams(oidEd25519)
	case KindRSA:
		mech = p11.CKM_RSA_PKCS_KEY_PAIR_GEN
		pubT = append(pubT, p11.NewAttribute(p11.CKA_MODULUS_BITS, 2048), p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
	default:
		return nil, fmt.Errorf("pkcs11: key kind %q is not one of %v", kind, Kinds)
	}
	if _, _, err := t.ctx.GenerateKeyPair(t.session, []*p11.Mechanism{p11.NewMechanism(mech, nil)}, pubT, privT); err != nil {
		return nil, fmt.Errorf("pkcs11: generate %s key %q: %w", kind, label, err)
	}
	t.log.Info("generated key", "kind", kind, "label", label)
	return &URI{Path: map[string]string{"token": t.info.Label, "object": label, "id": string(id), "type": "private"}, Query: map[string]string{}}, nil
}
