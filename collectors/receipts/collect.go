// Package receipts collects signing receipts: it reads the JSON Lines log of
// a wallet signer, verifies each receipt's signature under the key it names
// (verify/receipt), and makes each an in-toto statement with a signing-receipt
// predicate (evidence.SigningReceipt) about that key, signed by the collector
// as a DSSE envelope, ready to be logged.
//
// # Input
//
// One JSON object per line (Line documents each member). The input is
// untrusted: lines and their number are bounded (Limits), decoding is strict
// (duplicate, unknown and case-variant members are errors), every byte string
// is lowercase hex, and every error names its line and member.
//
// # What the collector vouches for
//
// The collector signs a statement only for a receipt whose signature verifies
// under the key its keyId names in Config.Keys, in that key's scheme, under
// Config.Verify. The statement's subject is that key (its ID and
// SubjectPublicKeyInfo digest; for a key known only by its Ethereum address,
// the digest of the key the signature recovers). The scheme is not part of
// the statement: a verifier takes it from its own trust material.
package receipts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/verify/receipt"
)

// Config configures a Collector.
type Config struct {
	// Keys are the wallet keys whose receipts are collected, by key ID (a
	// line's keyId). Each key's scheme is the one its receipts must name.
	// Required.
	Keys map[string]*receipt.Key
	// Signer signs the statements: the collector's key, which the trust file
	// must allow the signing-receipt predicate type. Required.
	Signer *evidence.Signer
	// Verify is the policy each receipt is verified under before it is
	// signed. The zero value fails high-S secp256k1 signatures.
	Verify receipt.Options
	// Limits bound the input; zero fields take their defaults.
	Limits Limits
	// Logger, if not nil, gets a summary of each input at Info and each
	// collected receipt at Debug. Receipts hold no secrets.
	Logger *slog.Logger
}

// Collector turns receipts into signed statements. It is safe for concurrent
// use if its Config is not changed.
type Collector struct {
	cfg Config
}

// New returns a Collector, or an error if cfg lacks keys or a signer.
func New(cfg Config) (*Collector, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("receipts: no keys")
	}
	for id, k := range cfg.Keys {
		if k == nil {
			return nil, fmt.Errorf("receipts: key %q is nil", id)
		}
		if err := validKeyID(id); err != nil {
			return nil, fmt.Errorf("receipts: %w", err)
		}
	}
	if cfg.Signer == nil {
		return nil, errors.New("receipts: no signer")
	}
	cfg.Limits = cfg.Limits.withDefaults()
	return &Collector{cfg: cfg}, nil
}

// Record is one collected receipt.
type Record struct {
	// Line is the receipt's line number.
	Line int
	// Key is the statement's subject.
	Key evidence.KeyRef
	// Receipt is the statement's predicate.
	Receipt *evidence.SigningReceipt
	// Result is what verifying the receipt established (for example HighS,
	// when Config.Verify allows it).
	Result *receipt.Result
	// Envelope is the signed statement, a DSSE envelope.
	Envelope []byte
}

// Collect reads receipts from r and, for each in order, verifies it, signs
// its statement and passes the record to emit. It stops at the first line
// that cannot be collected and returns a *LineError naming it: the records
// emitted before it are sound, nothing after it is read. It also stops when
// emit or ctx fails. It returns how many records were emitted.
func (c *Collector) Collect(ctx context.Context, r io.Reader, emit func(Record) error) (int, error) {
	rd := NewReader(r, c.cfg.Limits)
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		out, err := c.collect(ctx, rec)
		if err != nil {
			return n, err
		}
		if err := emit(out); err != nil {
			return n, fmt.Errorf("line %d: %w", rec.Line, err)
		}
		n++
		if c.cfg.Logger != nil {
			c.cfg.Logger.Debug("receipt collected", "line", rec.Line, "key", rec.KeyID, "requestId", rec.Predicate.RequestID, "highS", out.Result.HighS)
		}
	}
	if c.cfg.Logger != nil {
		c.cfg.Logger.Info("receipts collected", "count", n)
	}
	return n, nil
}

func (c *Collector) collect(ctx context.Context, rec *Receipt) (Record, error) {
	fail := func(field string, err error) (Record, error) {
		return Record{}, &LineError{Line: rec.Line, Field: field, Err: err}
	}
	key := c.cfg.Keys[rec.KeyID]
	if key == nil {
		return fail("keyId", fmt.Errorf("%w %q", ErrUnknownKey, rec.KeyID))
	}
	if key.Scheme() != rec.Scheme {
		return fail("scheme", fmt.Errorf("%w: %s, key %s is %s", ErrScheme, rec.Scheme, rec.KeyID, key.Scheme()))
	}
	res, err := receipt.Verify(key, rec.Predicate, c.cfg.Verify)
	if err != nil {
		field := "signature"
		var e *receipt.Error
		if errors.As(err, &e) {
			switch e.Check {
			case receipt.CheckDigest:
				field = "digest"
			case receipt.CheckChain:
				field = "chain"
			}
		}
		return fail(field, err)
	}
	ref := evidence.KeyRef{ID: rec.KeyID, SPKISHA256: res.KeyDigest}
	// The statement carries the scheme and the key, so that a verifier can
	// check the signature again under the key the subject's digest names.
	pred := *rec.Predicate
	pred.Scheme, pred.PublicKey = string(key.Scheme()), res.SPKI
	rec.Predicate = &pred
	st, err := evidence.NewStatement(rec.Predicate, ref)
	if err != nil {
		return fail("", err)
	}
	env, err := evidence.SignStatement(ctx, st, c.cfg.Signer)
	if err != nil {
		return fail("", fmt.Errorf("sign statement: %w", err))
	}
	return Record{Line: rec.Line, Key: ref, Receipt: rec.Predicate, Result: res, Envelope: env}, nil
}
