package receipt_test

import (
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/verify/receipt"
)

var (
	k1N   = secp256k1.Params().N
	p256N = elliptic.P256().Params().N
)

// splitDER returns the content bytes of r and s of a DER signature built by
// the helpers (one-byte lengths).
func splitDER(sig []byte) (r, s []byte) {
	rl := int(sig[3])
	r = sig[4 : 4+rl]
	s = sig[4+rl+2:]
	return r, s
}

// rawDER builds 30 len 02 len r 02 len s from integer contents, right or wrong.
func rawDER(r, s []byte) []byte {
	body := cat([]byte{0x02, byte(len(r))}, r, []byte{0x02, byte(len(s))}, s)
	return cat([]byte{0x30, byte(len(body))}, body)
}

// p1363 is r||s, 32 bytes each: the encoding strict DER excludes.
func p1363(t testing.TB, der []byte) []byte {
	s := parseDER(t, der)
	out := make([]byte, 64)
	s.R.FillBytes(out[:32])
	s.S.FillBytes(out[32:])
	return out
}

// errAny is a verifyCase.err that accepts any failure: the input is wrong in
// a way that can fail more than one check.
var errAny = errors.New("any failure")

type verifyCase struct {
	name  string
	key   *receipt.Key
	r     *evidence.SigningReceipt
	opts  receipt.Options
	err   error // nil: the receipt verifies
	check string
	highS bool
}

func withChain(r *evidence.SigningReceipt, chain string) *evidence.SigningReceipt {
	r.Chain = chain
	return r
}

func withDigest(r *evidence.SigningReceipt, digest string) *evidence.SigningReceipt {
	r.Digest = digest
	return r
}

func secp256k1DERCases(t *testing.T) []verifyCase {
	priv := k1Priv("btc-treasury")
	key := mustKey(t, receipt.SchemeSecp256k1DER, priv.PubKey())
	other := mustKey(t, receipt.SchemeSecp256k1DER, k1Priv("other").PubKey())
	d := sum("bitcoin sighash 1")
	sig := signDER(priv, d)
	high := twinDER(t, sig, k1N)
	r, s := splitDER(sig)
	zero := []byte{0}
	nBytes := k1N.Bytes()
	return []verifyCase{
		{name: "valid", key: key, r: newReceipt(d, sig)},
		{name: "high-S fails by default", key: key, r: newReceipt(d, high), err: receipt.ErrHighS, check: receipt.CheckLowS},
		{name: "high-S allowed is reported", key: key, r: newReceipt(d, high), opts: receipt.Options{AllowHighS: true}, highS: true},
		{name: "bad signature (other digest)", key: key, r: newReceipt(sum("bitcoin sighash 2"), sig), err: receipt.ErrBadSignature, check: receipt.CheckSignature},
		{name: "bad signature (r changed)", key: key, r: newReceipt(d, with(sig, 10, sig[10]^1)), err: receipt.ErrBadSignature, check: receipt.CheckSignature},
		{name: "wrong key", key: other, r: newReceipt(d, sig), err: receipt.ErrBadSignature, check: receipt.CheckSignature},
		{name: "truncated", key: key, r: newReceipt(d, sig[:len(sig)-1]), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "trailing byte", key: key, r: newReceipt(d, cat(sig, zero)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "oversized", key: key, r: newReceipt(d, make([]byte, 73)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "empty", key: key, r: newReceipt(d, nil), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "BER long-form length", key: key, r: newReceipt(d, cat([]byte{0x30, 0x81, sig[1]}, sig[2:])), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "non-minimal r", key: key, r: newReceipt(d, rawDER(cat(zero, zero, r), s)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "negative s", key: key, r: newReceipt(d, rawDER(r, with(s, 0, s[0]|0x80))), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "s = 0", key: key, r: newReceipt(d, rawDER(r, zero)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "r = n", key: key, r: newReceipt(d, rawDER(cat(zero, nBytes), s)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "P1363 r||s", key: key, r: newReceipt(d, p1363(t, sig)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "rsv form", key: key, r: newReceipt(d, signRSV(priv, d, v27)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "digest uppercase", key: key, r: withDigest(newReceipt(d, sig), strings.ToUpper(newReceipt(d, nil).Digest)), err: receipt.ErrMalformedDigest, check: receipt.CheckDigest},
		{name: "digest 0x", key: key, r: withDigest(newReceipt(d, sig), "0x"+newReceipt(d, nil).Digest[2:]), err: receipt.ErrMalformedDigest, check: receipt.CheckDigest},
		{name: "digest 31 bytes", key: key, r: newReceipt(d[:31], sig), err: receipt.ErrMalformedDigest, check: receipt.CheckDigest},
		{name: "digest 33 bytes", key: key, r: newReceipt(cat(d, zero), sig), err: receipt.ErrMalformedDigest, check: receipt.CheckDigest},
		{name: "digest odd", key: key, r: withDigest(newReceipt(d, sig), newReceipt(d, nil).Digest+"0"), err: receipt.ErrMalformedDigest, check: receipt.CheckDigest},
	}
}

func rsvCases(t *testing.T) []verifyCase {
	priv := k1Priv("eth-hot")
	key := mustKey(t, receipt.SchemeSecp256k1RSV, priv.PubKey())
	addrOnly, err := receipt.NewAddressKey(receipt.Address(priv.PubKey()))
	if err != nil {
		t.Fatal(err)
	}
	otherPub := k1Priv("other").PubKey()
	other := mustKey(t, receipt.SchemeSecp256k1RSV, otherPub)
	otherAddr, err := receipt.NewAddressKey(strings.ToLower(receipt.Address(otherPub)))
	if err != nil {
		t.Fatal(err)
	}
	d := sum("ethereum signing hash 1")
	sig := signRSV(priv, d, v27)
	sig155 := signRSV(priv, d, eip155(1))
	nBytes := k1N.Bytes()
	return []verifyCase{
		{name: "valid v=27/28", key: key, r: newReceipt(d, sig)},
		{name: "valid v=0/1", key: key, r: newReceipt(d, signRSV(priv, d, v0))},
		{name: "valid EIP-155 chain 1", key: key, r: withChain(newReceipt(d, sig155), "eip155:1")},
		{name: "valid EIP-155 chain 109", key: key, r: withChain(newReceipt(d, signRSV(priv, d, eip155(109))), "eip155:109")},
		{name: "valid by address", key: addrOnly, r: newReceipt(d, sig)},
		{name: "malleated v", key: key, r: newReceipt(d, with(sig, 64, flipV(sig[64]))), err: receipt.ErrAddressMismatch, check: receipt.CheckAddress},
		{name: "malleated v=0/1", key: key, r: newReceipt(d, with(sig, 64, (sig[64]-27)^1)), err: receipt.ErrAddressMismatch, check: receipt.CheckAddress},
		{name: "malleated EIP-155 v", key: key, r: withChain(newReceipt(d, with(sig155, 64, flipV(sig155[64]))), "eip155:1"), err: receipt.ErrAddressMismatch, check: receipt.CheckAddress},
		{name: "wrong address", key: otherAddr, r: newReceipt(d, sig), err: receipt.ErrAddressMismatch, check: receipt.CheckAddress},
		{name: "wrong key", key: other, r: newReceipt(d, sig), err: receipt.ErrAddressMismatch, check: receipt.CheckAddress},
		{name: "bad signature (other digest)", key: key, r: newReceipt(sum("ethereum signing hash 2"), sig), err: receipt.ErrAddressMismatch, check: receipt.CheckAddress},
		{name: "high-S fails by default", key: key, r: newReceipt(d, twinRSV(sig)), err: receipt.ErrHighS, check: receipt.CheckLowS},
		{name: "high-S EIP-155 fails by default", key: key, r: withChain(newReceipt(d, twinRSV(sig155)), "eip155:1"), err: receipt.ErrHighS, check: receipt.CheckLowS},
		{name: "high-S allowed is reported", key: key, r: newReceipt(d, twinRSV(sig)), opts: receipt.Options{AllowHighS: true}, highS: true},
		{name: "high-S with unflipped v", key: key, r: newReceipt(d, with(twinRSV(sig), 64, sig[64])), opts: receipt.Options{AllowHighS: true}, err: receipt.ErrAddressMismatch, check: receipt.CheckAddress},
		{name: "EIP-155 v, other chain", key: key, r: withChain(newReceipt(d, sig155), "eip155:10"), err: receipt.ErrChainMismatch, check: receipt.CheckChain},
		{name: "EIP-155 v, no chain", key: key, r: newReceipt(d, sig155), err: receipt.ErrChainMismatch, check: receipt.CheckChain},
		{name: "EIP-155 v, other namespace", key: key, r: withChain(newReceipt(d, sig155), "eip155:01"), err: receipt.ErrChainMismatch, check: receipt.CheckChain},
		{name: "v = 2", key: key, r: newReceipt(d, with(sig, 64, 2)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "v = 29", key: key, r: newReceipt(d, with(sig, 64, 29)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "v = 35 (chain 0)", key: key, r: newReceipt(d, with(sig, 64, 35)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "v = 36 (chain 0)", key: key, r: newReceipt(d, with(sig, 64, 36)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "truncated", key: key, r: newReceipt(d, sig[:64]), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "oversized", key: key, r: newReceipt(d, cat(sig, []byte{0})), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "v first (compact form)", key: key, r: newReceipt(d, cat(sig[64:], sig[:64])), err: errAny},
		{name: "r = 0", key: key, r: newReceipt(d, cat(make([]byte, 32), sig[32:])), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "s = n", key: key, r: newReceipt(d, cat(sig[:32], nBytes, sig[64:])), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "DER form", key: key, r: newReceipt(d, signDER(priv, d)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "digest 31 bytes", key: key, r: newReceipt(d[:31], sig), err: receipt.ErrMalformedDigest, check: receipt.CheckDigest},
	}
}

func ed25519Cases(t *testing.T) []verifyCase {
	priv := edPriv("sol-hot")
	key := mustKey(t, receipt.SchemeEd25519, priv.Public())
	other := mustKey(t, receipt.SchemeEd25519, edPriv("other").Public())
	msg := []byte("\x01\x00\x01\x03 a Solana transaction message, signed as is")
	sig := signEd(priv, msg)
	// S + L: the same signature with a non-canonical S (RFC 8032 §5.1.7).
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	sBytes := make([]byte, 32)
	for i := range sBytes {
		sBytes[i] = sig[63-i] // little-endian
	}
	sPlusL := new(big.Int).Add(new(big.Int).SetBytes(sBytes), l).FillBytes(make([]byte, 32))
	nonCanon := append([]byte(nil), sig[:32]...)
	for i := 31; i >= 0; i-- {
		nonCanon = append(nonCanon, sPlusL[i])
	}
	long := make([]byte, receipt.MaxMessageBytes)
	return []verifyCase{
		{name: "valid", key: key, r: newReceipt(msg, sig)},
		{name: "valid longest message", key: key, r: newReceipt(long, signEd(priv, long))},
		{name: "bad signature (other message)", key: key, r: newReceipt(msg[1:], sig), err: receipt.ErrBadSignature, check: receipt.CheckSignature},
		{name: "bad signature (hash of the message)", key: key, r: newReceipt(sum(string(msg)), sig), err: receipt.ErrBadSignature, check: receipt.CheckSignature},
		{name: "wrong key", key: other, r: newReceipt(msg, sig), err: receipt.ErrBadSignature, check: receipt.CheckSignature},
		{name: "non-canonical S", key: key, r: newReceipt(msg, nonCanon), err: receipt.ErrBadSignature, check: receipt.CheckSignature},
		{name: "truncated", key: key, r: newReceipt(msg, sig[:63]), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "oversized", key: key, r: newReceipt(msg, cat(sig, []byte{0})), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "empty message", key: key, r: newReceipt(nil, sig), err: receipt.ErrMalformedDigest, check: receipt.CheckDigest},
		{name: "message too long", key: key, r: newReceipt(cat(long, []byte{0}), sig), err: receipt.ErrMalformedDigest, check: receipt.CheckDigest},
	}
}

func p256Cases(t *testing.T) []verifyCase {
	priv := p256Priv("settlement")
	key := mustKey(t, receipt.SchemeP256DER, &priv.PublicKey)
	other := mustKey(t, receipt.SchemeP256DER, &p256Priv("other").PublicKey)
	d := sum("settlement instruction 1")
	sig := signP256(t, priv, d)
	twin := twinDER(t, sig, p256N)
	low, high := sig, twin
	if parseDER(t, sig).S.Cmp(new(big.Int).Rsh(p256N, 1)) > 0 {
		low, high = twin, sig
	}
	r, s := splitDER(sig)
	return []verifyCase{
		{name: "valid low-S", key: key, r: newReceipt(d, low)},
		{name: "valid high-S is reported, not failed", key: key, r: newReceipt(d, high), highS: true},
		{name: "bad signature (other digest)", key: key, r: newReceipt(sum("settlement instruction 2"), sig), err: receipt.ErrBadSignature, check: receipt.CheckSignature},
		{name: "wrong key", key: other, r: newReceipt(d, sig), err: receipt.ErrBadSignature, check: receipt.CheckSignature},
		{name: "truncated", key: key, r: newReceipt(d, sig[:len(sig)-1]), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "oversized", key: key, r: newReceipt(d, make([]byte, 73)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "trailing byte", key: key, r: newReceipt(d, cat(sig, []byte{0})), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "non-minimal r", key: key, r: newReceipt(d, rawDER(cat([]byte{0, 0}, r), s)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "r = n", key: key, r: newReceipt(d, rawDER(cat([]byte{0}, p256N.Bytes()), s)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "P1363 r||s", key: key, r: newReceipt(d, p1363(t, sig)), err: receipt.ErrMalformedSignature, check: receipt.CheckEncoding},
		{name: "digest 20 bytes", key: key, r: newReceipt(d[:20], sig), err: receipt.ErrMalformedDigest, check: receipt.CheckDigest},
	}
}

func TestVerify(t *testing.T) {
	for scheme, cases := range map[receipt.Scheme][]verifyCase{
		receipt.SchemeSecp256k1DER: secp256k1DERCases(t),
		receipt.SchemeSecp256k1RSV: rsvCases(t),
		receipt.SchemeEd25519:      ed25519Cases(t),
		receipt.SchemeP256DER:      p256Cases(t),
	} {
		for _, tc := range cases {
			t.Run(string(scheme)+"/"+tc.name, func(t *testing.T) {
				before := *tc.r
				before.Signature = append([]byte(nil), tc.r.Signature...)
				res, err := receipt.Verify(tc.key, tc.r, tc.opts)
				if diff := cmp.Diff(&before, tc.r, cmpopts.IgnoreUnexported(evidence.At{})); diff != "" {
					t.Errorf("Verify changed the receipt (-before +after):\n%s", diff)
				}
				if tc.err == nil {
					if err != nil {
						t.Fatalf("Verify: %v", err)
					}
					if res.HighS != tc.highS || res.Scheme != scheme || res.RequestID != tc.r.RequestID {
						t.Errorf("result %+v, want highS %v scheme %s", res, tc.highS, scheme)
					}
					if d := tc.key.Digest(); d != "" && res.KeyDigest != d {
						t.Errorf("KeyDigest %s, want the key's %s", res.KeyDigest, d)
					}
					if _, err := json.Marshal(res); err != nil {
						t.Errorf("result does not serialise: %v", err)
					}
					return
				}
				if res != nil {
					t.Errorf("failed verification returned a result: %+v", res)
				}
				var e *receipt.Error
				if !errors.As(err, &e) || (tc.err != errAny && !errors.Is(err, tc.err)) {
					t.Fatalf("Verify = %v, want an *Error wrapping %v", err, tc.err)
				}
				if tc.err == errAny {
					tc.check = e.Check
				}
				if e.Check != tc.check || e.Scheme != scheme || e.RequestID != tc.r.RequestID {
					t.Errorf("error check %q scheme %q request %q, want %q %q %q", e.Check, e.Scheme, e.RequestID, tc.check, scheme, tc.r.RequestID)
				}
				if msg := err.Error(); !strings.Contains(msg, tc.r.RequestID) || !strings.Contains(msg, tc.check) {
					t.Errorf("message %q does not name the receipt and the check", msg)
				}
				t.Log(err)
			})
		}
	}
}

// A high-S failure says what was found, and its low twin passes.
func TestHighSNamesTheReason(t *testing.T) {
	priv := k1Priv("eth-hot")
	key := mustKey(t, receipt.SchemeSecp256k1RSV, priv.PubKey())
	d := sum("x")
	_, err := receipt.Verify(key, newReceipt(d, twinRSV(signRSV(priv, d, v27))), receipt.Options{})
	if err == nil || !strings.Contains(err.Error(), "high-S signature: s = ") || !strings.Contains(err.Error(), "> n/2") {
		t.Errorf("error %v does not name the high S", err)
	}
}

func TestVerifyRejectsNil(t *testing.T) {
	key := mustKey(t, receipt.SchemeEd25519, edPriv("a").Public())
	if _, err := receipt.Verify(key, nil, receipt.Options{}); !errors.Is(err, receipt.ErrMalformed) {
		t.Errorf("nil receipt: %v", err)
	}
	if _, err := receipt.Verify(nil, newReceipt([]byte{1}, make([]byte, 64)), receipt.Options{}); !errors.Is(err, receipt.ErrKey) {
		t.Errorf("nil key: %v", err)
	}
	if _, err := receipt.Verify(&receipt.Key{}, newReceipt(sum(""), make([]byte, 64)), receipt.Options{}); !errors.Is(err, receipt.ErrMalformedDigest) && !errors.Is(err, receipt.ErrUnsupported) {
		t.Errorf("zero key: %v", err)
	}
}

// The request ID in a message is quoted and bounded, whatever it holds.
func TestErrorQuotesRequestID(t *testing.T) {
	key := mustKey(t, receipt.SchemeEd25519, edPriv("a").Public())
	r := newReceipt([]byte{1}, nil)
	r.RequestID = "evil\nline " + strings.Repeat("x", 10000)
	_, err := receipt.Verify(key, r, receipt.Options{})
	if err == nil || strings.Contains(err.Error(), "\n") || len(err.Error()) > 400 {
		t.Errorf("error message not quoted and bounded: %.500q", err)
	}
}

func TestVerifyStatement(t *testing.T) {
	priv := k1Priv("eth-hot")
	key := mustKey(t, receipt.SchemeSecp256k1RSV, priv.PubKey())
	addrOnly, _ := receipt.NewAddressKey(receipt.Address(priv.PubKey()))
	ref, err := key.Ref("kms:eu-central-1/custody/eth-hot-1/v1")
	if err != nil {
		t.Fatal(err)
	}
	d := sum("tx")
	r := newReceipt(d, signRSV(priv, d, v27))
	r.Scheme = string(receipt.SchemeSecp256k1RSV)
	if r.PublicKey, err = key.SPKI(); err != nil {
		t.Fatal(err)
	}
	st, err := evidence.NewStatement(r, ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*receipt.Key{key, addrOnly} {
		res, err := receipt.VerifyStatement(k, st, r, receipt.Options{})
		if err != nil || res.KeyDigest != ref.SPKISHA256 {
			t.Errorf("VerifyStatement = %+v, %v", res, err)
		}
	}

	otherRef, _ := mustKey(t, receipt.SchemeSecp256k1RSV, k1Priv("other").PubKey()).Ref(ref.ID)
	// evidence.ParseStatement rejects such a statement (its publicKey is not
	// the subject's); VerifyStatement does not rely on that.
	wrong := *st
	wrong.Subject = []evidence.Subject{otherRef.Subject()}
	if _, err := receipt.VerifyStatement(addrOnly, &wrong, r, receipt.Options{}); !errors.Is(err, receipt.ErrSubject) {
		t.Errorf("subject of another key: %v", err)
	}
	two := *st
	two.Subject = append([]evidence.Subject{ref.Subject()}, otherRef.Subject())
	if _, err := receipt.VerifyStatement(key, &two, r, receipt.Options{}); !errors.Is(err, receipt.ErrSubject) {
		t.Errorf("two subjects: %v", err)
	}
	other := *r
	other.Scheme = string(receipt.SchemeSecp256k1DER)
	if _, err := receipt.VerifyStatement(key, st, &other, receipt.Options{}); !errors.Is(err, receipt.ErrScheme) {
		t.Errorf("receipt naming another scheme: %v", err)
	}
	ev := &evidence.LifecycleEvent{At: evidence.AtTime(t0), Event: evidence.EventCreate, Actor: evidence.Actor{ID: "svc"}}
	evSt, _ := evidence.NewStatement(ev, ref)
	if _, err := receipt.VerifyStatement(key, evSt, ev, receipt.Options{}); !errors.Is(err, receipt.ErrUnsupported) {
		t.Errorf("lifecycle event: %v", err)
	}
}
