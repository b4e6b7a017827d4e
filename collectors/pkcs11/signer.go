//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"

	p11 "github.com/miekg/pkcs11"
)

// Signer is a token's ECDSA private key as a crypto.Signer: it signs a
// digest in the token with CKM_ECDSA and returns the signature ASN.1 DER
// encoded, as crypto/ecdsa does. It is valid while its Token is open.
type Signer struct {
	t    *Token
	priv p11.ObjectHandle
	pub  *ecdsa.PublicKey
	mu   sync.Mutex // one operation at a time on the token's session
}

// Signer returns the ECDSA private key the URI names as a crypto.Signer,
// with the public key of the public object of the same label and id.
func (t *Token) Signer(ctx context.Context, u *URI) (*Signer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	priv, err := t.findObject(u, p11.CKO_PRIVATE_KEY)
	if err != nil {
		return nil, err
	}
	if kt, _ := t.ulongAttr(priv, p11.CKA_KEY_TYPE); kt != p11.CKK_EC {
		return nil, fmt.Errorf("pkcs11: %s is not an EC key (key type 0x%x)", u.Redacted(), kt)
	}
	pubURI := &URI{Path: map[string]string{}}
	if l, ok := t.attr(priv, p11.CKA_LABEL); ok && len(l) > 0 {
		pubURI.Path["object"] = string(l)
	}
	if id, ok := t.attr(priv, p11.CKA_ID); ok && len(id) > 0 {
		pubURI.Path["id"] = string(id)
	}
	po, err := t.findObject(pubURI, p11.CKO_PUBLIC_KEY)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: public key of %s: %w", u.Redacted(), err)
	}
	params, _ := t.attr(priv, p11.CKA_EC_PARAMS)
	if len(params) == 0 {
		params, _ = t.attr(po, p11.CKA_EC_PARAMS)
	}
	point, _ := t.attr(po, p11.CKA_EC_POINT)
	pub, _, err := ecPublic(params, point)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: public key of %s: %w", u.Redacted(), err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("pkcs11: %s is not a NIST-curve ECDSA key", u.Redacted())
	}
	return &Signer{t: t, priv: priv, pub: ec}, nil
}

// Public is the key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign signs digest, which must be the output of opts' hash, in the token.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() == 0 || len(digest) != opts.HashFunc().Size() {
		return nil, errors.New("pkcs11: sign: want a digest of the hash opts names")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.t.ctx == nil {
		return nil, errors.New("pkcs11: sign: the token is closed")
	}
	if err := s.t.ctx.SignInit(s.t.session, []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}, s.priv); err != nil {
		return nil, fmt.Errorf("pkcs11: C_SignInit CKM_ECDSA: %w", err)
	}
	sig, err := s.t.ctx.Sign(s.t.session, digest)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: C_Sign CKM_ECDSA: %w", err)
	}
	// CKM_ECDSA returns r||s, each the size of the curve's order.
	n := (s.pub.Curve.Params().N.BitLen() + 7) / 8
	if len(sig) != 2*n {
		return nil, fmt.Errorf("pkcs11: C_Sign CKM_ECDSA: %d-byte signature, want %d", len(sig), 2*n)
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])})
	if err != nil {
		return nil, err
	}
	if !ecdsa.VerifyASN1(s.pub, digest, der) {
		return nil, errors.New("pkcs11: the token's signature does not verify with its public key")
	}
	return der, nil
}
