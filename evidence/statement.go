package evidence

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/keytrail/keytrail/internal/strictjson"
)

// In-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md).
const (
	// StatementType is the _type of every statement keytrail reads or writes.
	StatementType = "https://in-toto.io/Statement/v1"
	// PayloadType is the DSSE payloadType of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// MaxSubjects bounds the subjects of one statement.
	MaxSubjects = 16
)

// Statement errors.
var (
	ErrSubject       = errors.New("subject")
	ErrPredicateType = errors.New("unknown predicateType")
	ErrPredicate     = errors.New("predicate")
)

// Statement is an in-toto Statement v1 whose predicate keytrail knows.
type Statement struct {
	Type          string         `json:"_type"`
	Subject       []Subject      `json:"subject"`
	PredicateType string         `json:"predicateType"`
	Predicate     jsontext.Value `json:"predicate"`
}

// Subject names a key: Name is its stable key ID, Digest["sha256"] the
// KeyDigest of its public key. keytrail accepts no other digest algorithm.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// KeyRef names a key the way subjects do.
type KeyRef struct {
	// ID is the stable key ID (for example a KMS key version name or a PKCS#11 URI).
	ID string `json:"id"`
	// SPKISHA256 is the lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo.
	SPKISHA256 string `json:"spkiSha256"`
}

// Subject returns the in-toto subject for the key.
func (k KeyRef) Subject() Subject {
	return Subject{Name: k.ID, Digest: map[string]string{"sha256": k.SPKISHA256}}
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@=+%-]{0,254}$`)

// Validate checks the key reference's syntax.
func (k KeyRef) Validate() error {
	if !keyIDPattern.MatchString(k.ID) {
		return fmt.Errorf("key id %q: want 1-255 characters of [A-Za-z0-9._:/@=+%%-]", k.ID)
	}
	if !isSHA256Hex(k.SPKISHA256) {
		return fmt.Errorf("key %s: spkiSha256 %q is not 64 lowercase hex digits", k.ID, k.SPKISHA256)
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Keys returns the statement's subjects as key references.
func (s *Statement) Keys() []KeyRef {
	out := make([]KeyRef, 0, len(s.Subject))
	for _, sub := range s.Subject {
		out = append(out, KeyRef{ID: sub.Name, SPKISHA256: sub.Digest["sha256"]})
	}
	return out
}

// ParseStatement decodes and validates an in-toto statement strictly, and the
// predicate for its type. Callers pass only payload bytes whose DSSE signature
// they have verified.
func ParseStatement(payload []byte) (*Statement, Predicate, error) {
	var s Statement
	if err := strictjson.Unmarshal(payload, &s, MaxRecordBytes); err != nil {
		return nil, nil, fmt.Errorf("%w: in-toto statement: %w", ErrMalformed, err)
	}
	if s.Type != StatementType {
		return nil, nil, fmt.Errorf("%w: _type %q, want %q", ErrMalformed, s.Type, StatementType)
	}
	if len(s.Subject) == 0 {
		return nil, nil, fmt.Errorf("%w: no subject", ErrSubject)
	}
	if len(s.Subject) > MaxSubjects {
		return nil, nil, fmt.Errorf("%w: %d subjects, limit %d", ErrSubject, len(s.Subject), MaxSubjects)
	}
	names := make(map[string]bool, len(s.Subject))
	for i, sub := range s.Subject {
		if names[sub.Name] {
			return nil, nil, fmt.Errorf("%w[%d]: name %q appears twice", ErrSubject, i, sub.Name)
		}
		names[sub.Name] = true
		if len(sub.Digest) != 1 {
			return nil, nil, fmt.Errorf("%w[%d] %q: digest must hold exactly one algorithm, sha256", ErrSubject, i, sub.Name)
		}
		ref := KeyRef{ID: sub.Name, SPKISHA256: sub.Digest["sha256"]}
		if err := ref.Validate(); err != nil {
			return nil, nil, fmt.Errorf("%w[%d]: %w", ErrSubject, i, err)
		}
	}
	p, err := parsePredicate(s.PredicateType, s.Predicate)
	if err != nil {
		return nil, nil, err
	}
	if err := p.validate(&s); err != nil {
		return nil, nil, fmt.Errorf("%w %s: %w", ErrPredicate, s.PredicateType, err)
	}
	return &s, p, nil
}

// NewStatement builds a statement about keys with predicate p.
func NewStatement(p Predicate, keys ...KeyRef) (*Statement, error) {
	raw, err := strictjson.Marshal(p)
	if err != nil {
		return nil, err
	}
	s := &Statement{Type: StatementType, PredicateType: p.PredicateType(), Predicate: raw}
	for _, k := range keys {
		if err := k.Validate(); err != nil {
			return nil, err
		}
		s.Subject = append(s.Subject, k.Subject())
	}
	if err := p.validate(s); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrPredicate, p.PredicateType(), err)
	}
	return s, nil
}

// SignStatement encodes s and signs it as a DSSE envelope of PayloadType.
func SignStatement(ctx context.Context, s *Statement, signers ...*Signer) ([]byte, error) {
	payload, err := strictjson.Marshal(s)
	if err != nil {
		return nil, err
	}
	if _, _, err := ParseStatement(payload); err != nil {
		return nil, fmt.Errorf("evidence: refusing to sign an invalid statement: %w", err)
	}
	return Sign(ctx, PayloadType, payload, signers...)
}

// ParseTime parses a record time: RFC 3339 in UTC with a Z suffix, in its
// canonical form (as time.RFC3339Nano formats it), so each instant has exactly one
// spelling.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: %w", s, err)
	}
	t = t.UTC()
	if FormatTime(t) != s {
		return time.Time{}, fmt.Errorf("time %q is not canonical RFC 3339 UTC (want %q)", s, FormatTime(t))
	}
	return t, nil
}

// FormatTime formats t as ParseTime accepts it.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
