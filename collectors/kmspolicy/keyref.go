package kmspolicy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keytrail/keytrail/evidence"
)

// A snapshot's subject is the key's evidence.KeyRef: a stable ID and the
// SHA-256 of the key's DER SubjectPublicKeyInfo. The collector does not call
// the provider for the public key; the operator exports it beside the policy
// and one of these functions computes the digest:
//
//	aws kms get-public-key --key-id KEY --output json           -> KeyRefFromAWSPublicKey
//	gcloud kms keys versions get-public-key N --key KEY \
//	    --keyring RING --location LOC --output-file key.pem     -> KeyRefFromPEM
//
// Neither parses the key itself, only the SubjectPublicKeyInfo framing, so
// secp256k1 wallet keys (which Go's x509 package does not parse) work too. The
// digest is over the DER bytes exactly as the provider returned them.

type awsGetPublicKey struct {
	KeyID     string `json:"KeyId"`
	PublicKey string `json:"PublicKey"`
}

// KeyRefFromAWSPublicKey reads `aws kms get-public-key --output json` and
// returns the key's reference: ID the key ARN, SPKISHA256 the SHA-256 of the
// DER SubjectPublicKeyInfo in PublicKey (base64, as the CLI prints blobs).
func KeyRefFromAWSPublicKey(f File) (evidence.KeyRef, error) {
	if err := scan(f.Name, f.Data, MaxFileBytes); err != nil {
		return evidence.KeyRef{}, err
	}
	var g awsGetPublicKey
	if err := decodeOpen(f.Name, f.Data, &g); err != nil {
		return evidence.KeyRef{}, err
	}
	if _, err := ParseKeyARN(g.KeyID); err != nil {
		return evidence.KeyRef{}, &InputError{File: f.Name, Field: "/KeyId", Err: err}
	}
	der, err := base64.StdEncoding.Strict().DecodeString(g.PublicKey)
	if err != nil {
		return evidence.KeyRef{}, inputErr(f.Name, "/PublicKey", ErrMalformed, "not standard base64: %v", err)
	}
	if !isSPKI(der) {
		return evidence.KeyRef{}, inputErr(f.Name, "/PublicKey", ErrMalformed, "not a DER SubjectPublicKeyInfo")
	}
	return keyRef(f.Name, g.KeyID, der)
}

// KeyRefFromPEM reads one PEM "PUBLIC KEY" block (a SubjectPublicKeyInfo, as
// gcloud's get-public-key writes it) and returns the reference with the given
// ID, typically the CryptoKeyVersion name.
func KeyRefFromPEM(id string, f File) (evidence.KeyRef, error) {
	if len(f.Data) > MaxFileBytes {
		return evidence.KeyRef{}, inputErr(f.Name, "", ErrTooLarge, "%d bytes, limit %d", len(f.Data), MaxFileBytes)
	}
	block, rest := pem.Decode(f.Data)
	switch {
	case block == nil:
		return evidence.KeyRef{}, inputErr(f.Name, "", ErrMalformed, "no PEM block")
	case block.Type != "PUBLIC KEY":
		return evidence.KeyRef{}, inputErr(f.Name, "", ErrMalformed, "PEM block is %q, want \"PUBLIC KEY\"", block.Type)
	case len(block.Headers) != 0:
		return evidence.KeyRef{}, inputErr(f.Name, "", ErrMalformed, "PEM headers")
	case len(bytes.TrimSpace(rest)) != 0:
		return evidence.KeyRef{}, inputErr(f.Name, "", ErrMalformed, "data after the PEM block")
	case !isSPKI(block.Bytes):
		return evidence.KeyRef{}, inputErr(f.Name, "", ErrMalformed, "not a DER SubjectPublicKeyInfo")
	}
	return keyRef(f.Name, id, block.Bytes)
}

func keyRef(file, id string, der []byte) (evidence.KeyRef, error) {
	sum := sha256.Sum256(der)
	k := evidence.KeyRef{ID: id, SPKISHA256: hex.EncodeToString(sum[:])}
	if err := k.Validate(); err != nil {
		return evidence.KeyRef{}, inputErr(file, "", ErrMalformed, "%v", err)
	}
	return k, nil
}

// isSPKI reports whether der is exactly one DER SubjectPublicKeyInfo:
// SEQUENCE { SEQUENCE { OID, [parameters] }, BIT STRING }.
func isSPKI(der []byte) bool {
	in := cryptobyte.String(der)
	var spki, alg cryptobyte.String
	var oid cryptobyte.String
	var key []byte
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !in.Empty() ||
		!spki.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || len(oid) == 0 {
		return false
	}
	if !alg.Empty() {
		var params cryptobyte.String
		var tag cbasn1.Tag
		if !alg.ReadAnyASN1Element(&params, &tag) || !alg.Empty() {
			return false
		}
	}
	var bits cryptobyte.String
	if !spki.ReadASN1(&bits, cbasn1.BIT_STRING) || !spki.Empty() || len(bits) < 2 || bits[0] != 0 {
		return false
	}
	key = bits[1:]
	return len(key) > 0
}
