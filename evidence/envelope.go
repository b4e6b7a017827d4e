package evidence

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"

	"github.com/keytrail/keytrail/internal/strictjson"
)

// Limits on untrusted envelopes.
const (
	// MaxRecordBytes bounds one record envelope: a tlog-tiles entry is at most 64 KiB.
	MaxRecordBytes = 64 << 10
	// MaxSignatures bounds the signatures on one envelope.
	MaxSignatures = 8
)

// streamPAEOver is the payload size above which the PAE is streamed, not built.
const streamPAEOver = 1 << 20

// Sentinel errors of envelope handling.
var (
	ErrMalformed      = errors.New("malformed")
	ErrPayloadType    = errors.New("unexpected payloadType")
	ErrNoSignature    = errors.New("envelope has no signature")
	ErrUnknownSigner  = errors.New("signature by no trusted key")
	ErrBadSignature   = errors.New("signature does not verify")
	ErrKeyIDMismatch  = errors.New("keyid does not name the verifying key")
	ErrTooManySigners = errors.New("too many signatures")
)

// Envelope is a DSSE envelope (https://github.com/secure-systems-lab/dsse,
// envelope.md). Payload holds the decoded bytes.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     []byte      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature. KeyID, if present, must be the keytrail key
// digest of the key that verifies Sig.
type Signature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   []byte `json:"sig"`
}

// ParseEnvelope decodes an envelope strictly. It does not verify it.
func ParseEnvelope(b []byte, maxBytes int) (*Envelope, error) {
	var e Envelope
	if err := strictjson.Unmarshal(b, &e, maxBytes); err != nil {
		return nil, fmt.Errorf("%w: DSSE envelope: %w", ErrMalformed, err)
	}
	if e.PayloadType == "" {
		return nil, fmt.Errorf("%w: DSSE envelope: empty payloadType", ErrMalformed)
	}
	if len(e.Signatures) == 0 {
		return nil, ErrNoSignature
	}
	if len(e.Signatures) > MaxSignatures {
		return nil, fmt.Errorf("%w: %d, limit %d", ErrTooManySigners, len(e.Signatures), MaxSignatures)
	}
	for i, s := range e.Signatures {
		if len(s.Sig) == 0 {
			return nil, fmt.Errorf("%w: DSSE envelope: signatures[%d].sig is empty", ErrMalformed, i)
		}
	}
	return &e, nil
}

// PAE is the DSSE pre-authentication encoding of payloadType and payload: the
// exact bytes every signature covers.
func PAE(payloadType string, payload []byte) []byte {
	return ssldsse.PAE(payloadType, payload)
}

// paeReader streams the PAE without copying the payload, for large payloads
// (bundles): "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body.
func paeReader(payloadType string, payload []byte) io.Reader {
	header := fmt.Sprintf("DSSEv1 %d %s %d ", len(payloadType), payloadType, len(payload))
	return io.MultiReader(strings.NewReader(header), bytes.NewReader(payload))
}

// KeySet finds trusted keys by keytrail key digest.
type KeySet interface {
	// Key returns the key with that digest, or nil.
	Key(digest string) *PublicKey
	// Keys returns every key, for signatures that carry no keyid.
	Keys() []*PublicKey
}

// Verify checks that the envelope has payloadType wantType and that every
// signature verifies under a key of keys, over the PAE of exactly the payload
// bytes. It returns the verifying keys, in signature order. A signature whose
// keyid names a key it does not verify under, or that no trusted key verifies,
// is an error: nothing in an envelope is ignored.
func (e *Envelope) Verify(wantType string, keys KeySet) ([]*PublicKey, error) {
	if e.PayloadType != wantType {
		return nil, fmt.Errorf("%w: %q, want %q", ErrPayloadType, e.PayloadType, wantType)
	}
	if len(e.Signatures) == 0 {
		return nil, ErrNoSignature
	}
	var pae []byte
	verify := func(k *PublicKey, sig []byte) error {
		if len(e.Payload) > streamPAEOver {
			return k.VerifyReader(paeReader(e.PayloadType, e.Payload), sig)
		}
		if pae == nil {
			pae = PAE(e.PayloadType, e.Payload)
		}
		return k.Verify(pae, sig)
	}
	signers := make([]*PublicKey, 0, len(e.Signatures))
	seen := make(map[string]bool, len(e.Signatures))
	for i, s := range e.Signatures {
		var k *PublicKey
		if s.KeyID != "" {
			k = keys.Key(s.KeyID)
			if k == nil {
				return nil, fmt.Errorf("signatures[%d]: %w: keyid %s", i, ErrUnknownSigner, s.KeyID)
			}
			if err := verify(k, s.Sig); err != nil {
				return nil, fmt.Errorf("signatures[%d]: %w under keyid %s", i, ErrBadSignature, s.KeyID)
			}
		} else {
			for _, c := range keys.Keys() {
				if verify(c, s.Sig) == nil {
					k = c
					break
				}
			}
			if k == nil {
				return nil, fmt.Errorf("signatures[%d]: %w", i, ErrUnknownSigner)
			}
		}
		if seen[k.Digest] {
			return nil, fmt.Errorf("signatures[%d]: key %s signed twice", i, k.Digest)
		}
		seen[k.Digest] = true
		signers = append(signers, k)
	}
	return signers, nil
}

// Sign makes a DSSE envelope over payload, signed by every signer, through
// sigstore's DSSE signer adapter, with keyid set to each key's digest. It returns
// the envelope's exact bytes: what is logged, hashed and bundled.
func Sign(ctx context.Context, payloadType string, payload []byte, signers ...*Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, ErrNoSignature
	}
	adapters := make([]ssldsse.Signer, 0, len(signers))
	for _, s := range signers {
		adapters = append(adapters, &sigdsse.SignerAdapter{SignatureSigner: s.s, Pub: s.pub, PubKeyID: s.Digest})
	}
	es, err := ssldsse.NewEnvelopeSigner(adapters...)
	if err != nil {
		return nil, fmt.Errorf("evidence: DSSE signer: %w", err)
	}
	env, err := es.SignPayload(ctx, payloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("evidence: DSSE sign: %w", err)
	}
	out := Envelope{PayloadType: env.PayloadType, Payload: payload}
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			return nil, fmt.Errorf("evidence: DSSE signer returned bad base64: %w", err)
		}
		out.Signatures = append(out.Signatures, Signature{KeyID: s.KeyID, Sig: sig})
	}
	return strictjson.Marshal(&out)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
