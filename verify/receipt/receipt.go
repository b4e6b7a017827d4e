package receipt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	dcrdecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keytrail/keytrail/evidence"
)

// Limits on receipts.
const (
	// DigestSize is the size of the digest the ECDSA schemes sign.
	DigestSize = 32
	// MaxMessageBytes bounds the message of an Ed25519 receipt. A Solana
	// transaction, signatures included, is at most 1232 bytes.
	MaxMessageBytes = 4096
)

// Sentinel errors. Every error of Verify and VerifyStatement is an *Error
// that wraps one of them.
var (
	// ErrUnsupported: the scheme is not one of Schemes, or a statement is not a
	// signing receipt.
	ErrUnsupported = errors.New("unsupported")
	// ErrKey: the trusted key is not usable with its scheme.
	ErrKey = errors.New("bad key")
	// ErrMalformed: the receipt's digest or signature is not in its scheme's
	// form. ErrMalformedDigest and ErrMalformedSignature wrap it.
	ErrMalformed          = errors.New("malformed")
	ErrMalformedDigest    = fmt.Errorf("%w digest", ErrMalformed)
	ErrMalformedSignature = fmt.Errorf("%w signature", ErrMalformed)
	// ErrBadSignature: the signature does not verify under the key (for rsv: no
	// key recovers from it).
	ErrBadSignature = errors.New("signature does not verify")
	// ErrAddressMismatch: an rsv signature recovers a key whose address is not
	// the trusted key's (a wrong key, a wrong digest or a changed v).
	ErrAddressMismatch = errors.New("recovered address is not the key's")
	// ErrChainMismatch: an EIP-155 v names a chain other than the receipt's.
	ErrChainMismatch = errors.New("EIP-155 chain is not the receipt's chain")
	// ErrHighS: a secp256k1 signature that verifies has s > n/2 and
	// Options.AllowHighS is not set (ATTACKS.md case 28).
	ErrHighS = errors.New("high-S signature")
	// ErrScheme: the receipt names a scheme other than its key's.
	ErrScheme = errors.New("receipt scheme is not the key's")
	// ErrSubject: a statement's subject is not the key the receipt verified
	// under.
	ErrSubject = errors.New("statement subject is not the signing key")
)

// The checks, in the order Verify and VerifyStatement run them; Error.Check
// names the one that failed.
const (
	CheckStatement = "statement"
	CheckKey       = "key"
	CheckDigest    = "digest"
	CheckEncoding  = "signature.encoding"
	CheckSignature = "signature"
	CheckAddress   = "signature.address"
	CheckChain     = "signature.chain"
	CheckLowS      = "signature.low-s"
	CheckSubject   = "subject"
)

// Error is a failed verification: which check failed on which receipt, and
// why. Err wraps one of the sentinel errors and says what was found.
type Error struct {
	RequestID string
	Scheme    Scheme
	Check     string
	Err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("receipt %.128q (%s): %s: %v", e.RequestID, e.Scheme, e.Check, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Options is the policy a receipt is verified under. The zero value is the
// strict default.
type Options struct {
	// AllowHighS accepts secp256k1 signatures with s > n/2 (Result.HighS still
	// reports them). By default they fail with ErrHighS: Bitcoin and Ethereum
	// accept only low S, so an honest signer of those chains never makes one.
	AllowHighS bool
}

// Result is what a successful verification established. It is
// JSON-serialisable.
type Result struct {
	// RequestID is the receipt's request ID.
	RequestID string `json:"requestId"`
	// Scheme is the key's scheme, under which the receipt was read.
	Scheme Scheme `json:"scheme"`
	// KeyDigest is the keytrail digest (KeyDigest) of the key the signature
	// verified under; for rsv, of the recovered key.
	KeyDigest string `json:"keyDigest"`
	// Address is the EIP-55 Ethereum address of a secp256k1 key.
	Address string `json:"address,omitempty"`
	// HighS is true if an ECDSA signature has s > n/2.
	HighS bool `json:"highS"`
	// V is the v byte of an rsv signature, as given.
	V *uint8 `json:"v,omitempty"`
	// ChainID is the EIP-155 chain ID that V encodes, or 0.
	ChainID uint64 `json:"chainId,omitempty"`
	// SPKI is the DER SubjectPublicKeyInfo of the key the signature verified
	// under (for rsv, of the recovered key); its SHA-256 is KeyDigest.
	SPKI []byte `json:"-"`
}

// DecodeDigest decodes a receipt's digest for scheme: lowercase hex without a
// prefix; for the ECDSA schemes exactly DigestSize bytes, for Ed25519 the
// signed message, 1 to MaxMessageBytes bytes.
func DecodeDigest(scheme Scheme, s string) ([]byte, error) {
	lo, hi := DigestSize, DigestSize
	if scheme == SchemeEd25519 {
		lo, hi = 1, MaxMessageBytes
	}
	if len(s)%2 != 0 || len(s)/2 < lo || len(s)/2 > hi {
		if lo == hi {
			return nil, fmt.Errorf("%w: %d hex digits, want %d", ErrMalformedDigest, len(s), 2*lo)
		}
		return nil, fmt.Errorf("%w: %d hex digits, want an even number from %d to %d", ErrMalformedDigest, len(s), 2*lo, 2*hi)
	}
	b, err := decodeLowerHex(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedDigest, err)
	}
	return b, nil
}

// decodeLowerHex decodes lowercase hex; uppercase digits and any prefix are
// errors, so that each byte string has one spelling.
func decodeLowerHex(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("odd number of hex digits (%d)", len(s))
	}
	b := make([]byte, len(s)/2)
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := lowerHexDigit(s[i])
		lo, ok2 := lowerHexDigit(s[i+1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("not lowercase hex at offset %d", i)
		}
		b[i/2] = hi<<4 | lo
	}
	return b, nil
}

// DecodeHex decodes lowercase hex as receipts spell byte strings.
func DecodeHex(s string) ([]byte, error) { return decodeLowerHex(s) }

func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Verify checks that r.Signature is a signature over r.Digest by k, in k's
// scheme, under the policy opts. It neither trusts nor changes anything in r:
// the scheme is k's and the key is k. The checks run in the order of the
// Check constants: the digest and signature are decoded strictly, the
// signature is verified (for rsv: a key is recovered and its address must be
// k's), an EIP-155 v must name the receipt's chain, and a secp256k1 signature
// must have low S unless opts.AllowHighS. On failure it returns a nil Result
// and an *Error naming the check and the receipt's request ID.
func Verify(k *Key, r *evidence.SigningReceipt, opts Options) (*Result, error) {
	if r == nil {
		return nil, &Error{Check: CheckStatement, Err: fmt.Errorf("%w: no receipt", ErrMalformed)}
	}
	fail := func(check string, err error) (*Result, error) {
		e := &Error{RequestID: r.RequestID, Check: check, Err: err}
		if k != nil {
			e.Scheme = k.scheme
		}
		return nil, e
	}
	if k == nil {
		return fail(CheckKey, fmt.Errorf("%w: no key", ErrKey))
	}
	digest, err := DecodeDigest(k.scheme, r.Digest)
	if err != nil {
		return fail(CheckDigest, err)
	}
	sig := r.Signature
	res := &Result{RequestID: r.RequestID, Scheme: k.scheme, KeyDigest: k.digest, Address: k.Address()}
	var s secp256k1.ModNScalar // the S of a secp256k1 signature
	switch k.scheme {
	case SchemeSecp256k1DER:
		d, err := decodeSecp256k1DER(sig)
		if err != nil {
			return fail(CheckEncoding, fmt.Errorf("%w: not a strict DER secp256k1 signature (%d bytes): %s", ErrMalformedSignature, len(sig), err))
		}
		if !d.Verify(digest, k.pub.(*secp256k1.PublicKey)) {
			return fail(CheckSignature, fmt.Errorf("%w under key %s (%s)", ErrBadSignature, res.Address, k.digest))
		}
		s = d.S()
		res.HighS = s.IsOverHalfOrder()
	case SchemeSecp256k1RSV:
		x, err := decodeRSV(sig)
		if err != nil {
			return fail(CheckEncoding, fmt.Errorf("%w: not r||s||v: %s", ErrMalformedSignature, err))
		}
		pub, _, err := dcrdecdsa.RecoverCompact(x.compact(), digest)
		if err != nil {
			return fail(CheckSignature, fmt.Errorf("%w: no public key recovers from it: %w", ErrBadSignature, err))
		}
		if got := ethereumAddress(pub); got != k.address {
			return fail(CheckAddress, fmt.Errorf("%w: recovered %s, want %s", ErrAddressMismatch, FormatAddress(got), res.Address))
		}
		if res.KeyDigest, err = KeyDigest(pub); err != nil {
			return fail(CheckSignature, err)
		}
		res.SPKI = MarshalSecp256k1SPKI(pub)
		v := x.v
		res.V, res.ChainID = &v, x.chainID
		if x.chainID != 0 && r.Chain != eip155Chain(x.chainID) {
			return fail(CheckChain, fmt.Errorf("%w: v = %d is EIP-155 chain %s, the receipt's chain is %q", ErrChainMismatch, x.v, eip155Chain(x.chainID), r.Chain))
		}
		s = x.s
		res.HighS = s.IsOverHalfOrder()
	case SchemeEd25519:
		if len(sig) != ed25519.SignatureSize {
			return fail(CheckEncoding, fmt.Errorf("%w: %d bytes, want %d", ErrMalformedSignature, len(sig), ed25519.SignatureSize))
		}
		if !ed25519.Verify(k.pub.(ed25519.PublicKey), digest, sig) {
			return fail(CheckSignature, fmt.Errorf("%w under key %s", ErrBadSignature, k.digest))
		}
	case SchemeP256DER:
		_, ps, err := decodeP256DER(sig)
		if err != nil {
			return fail(CheckEncoding, fmt.Errorf("%w: not a strict DER P-256 signature (%d bytes): %s", ErrMalformedSignature, len(sig), err))
		}
		if !ecdsa.VerifyASN1(k.pub.(*ecdsa.PublicKey), digest, sig) {
			return fail(CheckSignature, fmt.Errorf("%w under key %s", ErrBadSignature, k.digest))
		}
		res.HighS = ps.Cmp(p256HalfN) > 0
	default:
		return fail(CheckKey, fmt.Errorf("%w: scheme %q", ErrUnsupported, k.scheme))
	}
	if res.HighS && !opts.AllowHighS && (k.scheme == SchemeSecp256k1DER || k.scheme == SchemeSecp256k1RSV) {
		b := s.Bytes()
		return fail(CheckLowS, fmt.Errorf("%w: s = %x > n/2; Bitcoin (BIP 62) and Ethereum (EIP-2) accept only its twin n-s", ErrHighS, b))
	}
	if res.SPKI == nil {
		if res.SPKI, err = k.SPKI(); err != nil {
			return fail(CheckKey, err)
		}
	}
	return res, nil
}

// VerifyStatement verifies a signing-receipt statement, as
// evidence.ParseStatement returns it from an envelope whose signature the
// caller has verified: its predicate is a signing receipt, it has exactly one
// subject, the receipt verifies under k (Verify), and the subject's digest is
// the digest of the key it verified under. Matching the subject's name (the
// key ID) to k is the caller's, who knows which ID k is trusted under.
func VerifyStatement(k *Key, s *evidence.Statement, p evidence.Predicate, opts Options) (*Result, error) {
	r, ok := p.(*evidence.SigningReceipt)
	if s == nil || !ok || r == nil || s.PredicateType != evidence.PredicateSigningReceipt {
		e := &Error{Check: CheckStatement, Err: fmt.Errorf("%w: not a signing-receipt statement (%T)", ErrUnsupported, p)}
		if k != nil {
			e.Scheme = k.scheme
		}
		return nil, e
	}
	if k != nil && r.Scheme != "" && Scheme(r.Scheme) != k.scheme {
		return nil, &Error{RequestID: r.RequestID, Scheme: k.scheme, Check: CheckKey, Err: fmt.Errorf("%w: receipt says %.32q, key is %s", ErrScheme, r.Scheme, k.scheme)}
	}
	res, err := Verify(k, r, opts)
	if err != nil {
		return nil, err
	}
	subjectErr := func(err error) (*Result, error) {
		return nil, &Error{RequestID: r.RequestID, Scheme: k.scheme, Check: CheckSubject, Err: err}
	}
	if len(s.Subject) != 1 {
		return subjectErr(fmt.Errorf("%w: %d subjects, want 1", ErrSubject, len(s.Subject)))
	}
	if sub := s.Subject[0]; sub.Digest["sha256"] != res.KeyDigest {
		return subjectErr(fmt.Errorf("%w: subject %.128q has sha256 %.64q, the key's is %s", ErrSubject, sub.Name, sub.Digest["sha256"], res.KeyDigest))
	}
	return res, nil
}
