// Package luna verifies Thales Luna Public Key Confirmations (PKC) offline.
//
// # Format
//
// A PKC is a DER PKCS #7 (RFC 2315) ContentInfo of type signedData that
// carries certificates only: no signers, no digest algorithms, no CRLs, and
// empty data content ("certs-only", as in a .p7b file). Its certificates are:
//
//   - the leaf, which certifies the confirmed key: extended key usage
//     1.3.6.1.4.1.12383.1.13 and, in extension 1.3.6.1.4.1.12383.2.1, the
//     HSM's serial number as a little-endian integer;
//   - the HSM's Hardware Origin Certificate (HOC), and for some HSMs a device
//     certificate and a manufacturing integrity certificate between them;
//   - the Luna root, which must also be pinned by the caller.
//
// Luna issues a PKC only for a key generated in the HSM that can never leave
// it, so a verified PKC implies LOCAL, NEVER_EXTRACTABLE, ALWAYS_SENSITIVE and
// SENSITIVE, and not EXTRACTABLE.
//
// # Deviations accepted
//
// Luna's certificates break two rules that Go's crypto/x509 enforces, and
// exactly these two are accepted, each recorded in the chain check:
//
//   - the ECDSA signature on an ECC leaf encodes s as a negative DER INTEGER;
//     r and s are read as unsigned;
//   - the Luna roots are X.509 v3 without basicConstraints, so
//     CheckSignatureFrom refuses them as issuers; as pinned roots, their
//     signatures are checked directly over the TBSCertificate.
//
// # Verification
//
// Verifier.Verify runs these checks, in order: pkc.format, pkc.chain (leaf to
// a pinned root, every certificate valid when the evidence was logged),
// key.csr (the leaf's key is the key of the CSR given with it), key.binding,
// key.non-export, hsm.identity.
package luna

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keytrail/keytrail/attest"
)

// MaxBytes bounds a PKC. A real one is 2 to 8 KiB.
const MaxBytes = 64 << 10

var (
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
)

// PKC is a parsed Public Key Confirmation. ParsePKC does not verify it.
type PKC struct {
	// Certificates are the SignedData's certificates, in their order.
	Certificates []*x509.Certificate
}

// ParsePKC parses a DER PKC: exactly one ContentInfo of type signedData,
// version 1, with no digest algorithms, empty data content, at most
// attest.MaxCertificates certificates, no CRLs and no signers. It
// authenticates nothing.
func ParsePKC(der []byte) (*PKC, error) {
	ders, err := pkcCertificates(der)
	if err != nil {
		return nil, fmt.Errorf("%w: PKCS #7: %w", attest.ErrFormat, err)
	}
	p := &PKC{}
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("%w: PKCS #7 certificate %d: %w", attest.ErrFormat, i+1, err)
		}
		p.Certificates = append(p.Certificates, c)
	}
	return p, nil
}

// pkcCertificates returns the DER certificates of a certs-only SignedData.
func pkcCertificates(der []byte) ([][]byte, error) {
	if len(der) > MaxBytes {
		return nil, fmt.Errorf("%d bytes, at most %d allowed", len(der), MaxBytes)
	}
	in := cryptobyte.String(der)
	var ci, content, sd cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("not one DER ContentInfo")
	}
	if !ci.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidSignedData) {
		return nil, errors.New("content type is not signedData")
	}
	if !ci.ReadASN1(&content, cbasn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty() ||
		!content.ReadASN1(&sd, cbasn1.SEQUENCE) || !content.Empty() {
		return nil, errors.New("malformed signedData content")
	}
	var version int
	var digests, encap, certs, signers cryptobyte.String
	var hasCerts bool
	if !sd.ReadASN1Integer(&version) || version != 1 {
		return nil, errors.New("SignedData version is not 1")
	}
	if !sd.ReadASN1(&digests, cbasn1.SET) || !digests.Empty() {
		return nil, errors.New("digestAlgorithms is not empty: not a certificates-only SignedData")
	}
	if !sd.ReadASN1(&encap, cbasn1.SEQUENCE) || !encap.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidData) || !encap.Empty() {
		return nil, errors.New("contentInfo is not empty data")
	}
	if !sd.ReadOptionalASN1(&certs, &hasCerts, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, errors.New("malformed certificates")
	}
	if sd.PeekASN1Tag(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return nil, errors.New("CRLs present: not a PKC")
	}
	if !sd.ReadASN1(&signers, cbasn1.SET) || !signers.Empty() || !sd.Empty() {
		return nil, errors.New("signerInfos is not empty: not a certificates-only SignedData")
	}
	var out [][]byte
	for !certs.Empty() {
		if len(out) == attest.MaxCertificates {
			return nil, fmt.Errorf("more than %d certificates", attest.MaxCertificates)
		}
		var c cryptobyte.String
		if !certs.ReadASN1Element(&c, cbasn1.SEQUENCE) {
			return nil, fmt.Errorf("certificate %d is not a DER Certificate", len(out)+1)
		}
		if len(c) > attest.MaxCertificateBytes {
			return nil, fmt.Errorf("certificate %d is %d bytes, at most %d allowed", len(out)+1, len(c), attest.MaxCertificateBytes)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificates")
	}
	return out, nil
}
