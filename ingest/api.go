package ingest

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/strictjson"
)

// Paths of the API (docs/api.md).
const (
	PathEntries     = "/v1/entries"
	PathInclusion   = "/v1/proofs/inclusion"
	PathConsistency = "/v1/proofs/consistency"
	PathBundles     = "/v1/bundles/"
	PathHealth      = "/healthz"
	PathMetrics     = "/metrics"
	PathCheckpoint  = "/checkpoint"
)

// Limits of a submission.
const (
	// DefaultMaxBodyBytes is the default limit on a request body (1 MiB).
	DefaultMaxBodyBytes = 1 << 20
	// MaxBatchEntries bounds the envelopes of one batch.
	MaxBatchEntries = 4096
)

// Batch is the body of a batch submission: {"envelopes": [ENVELOPE, ...]}.
// A single submission is just one DSSE envelope.
type Batch struct {
	Envelopes []jsontext.Value `json:"envelopes"`
}

// SubmitResponse is the answer to a successful POST /v1/entries: the index of
// each envelope, in submission order, and a checkpoint whose tree covers all
// of them.
type SubmitResponse struct {
	Entries []Submitted `json:"entries"`
	// Checkpoint is a C2SP signed note (tlog-checkpoint) of a tree that
	// contains every entry above.
	Checkpoint string `json:"checkpoint"`
}

// Submitted is one acknowledged envelope.
type Submitted struct {
	Index uint64 `json:"index"`
	// LeafHash is the RFC 6962 leaf hash of the logged bytes (base64).
	LeafHash []byte `json:"leafHash"`
}

// Error is the body of every error answer.
type Error struct {
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Reason is a stable, machine-readable word: see the Reason constants.
	Reason string `json:"reason"`
	// Message says what was wrong, naming the field or check.
	Message string `json:"message"`
	// Entry is the position in a batch of the envelope at fault, if any.
	Entry *int `json:"entry,omitempty"`
}

func (e *Error) Error() string {
	if e.Entry != nil {
		return fmt.Sprintf("keytrail server: %d %s: envelopes[%d]: %s", e.Status, e.Reason, *e.Entry, e.Message)
	}
	return fmt.Sprintf("keytrail server: %d %s: %s", e.Status, e.Reason, e.Message)
}

// Reasons of error answers; the rejects_total metric counts them.
const (
	ReasonMalformed    = "malformed"     // 400
	ReasonBadSignature = "bad-signature" // 401
	ReasonUnknownKey   = "unknown-signer"
	ReasonNotAllowed   = "not-allowed"     // 403
	ReasonIdentity     = "client-identity" // 403: mTLS identity is not the signer
	ReasonTooSlow      = "too-slow"        // 408: the body arrived too slowly
	ReasonTooLarge     = "too-large"       // 413
	ReasonOverloaded   = "overloaded"      // 503
	ReasonUnavailable  = "unavailable"     // 503 (shutting down)
	ReasonNotFound     = "not-found"       // 404
	ReasonMethod       = "method"          // 405
	ReasonInternal     = "internal"        // 500
)

// ErrBody reports a request body that is neither an envelope nor a batch.
var ErrBody = errors.New("request body")

// ParseSubmission splits a POST /v1/entries body into the envelopes it holds,
// each the exact JSON text submitted: a body that is a JSON object with the
// member "envelopes" first is a batch (Batch, strictly decoded), any other
// object is one envelope. It does not parse the envelopes.
func ParseSubmission(body []byte, maxBytes int) ([][]byte, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBody, err)
	}
	if tok.Kind() != '{' {
		return nil, fmt.Errorf("%w: want a JSON object (a DSSE envelope or {\"envelopes\": [...]})", ErrBody)
	}
	first, err := dec.ReadToken()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBody, err)
	}
	if first.Kind() != '"' || first.String() != "envelopes" {
		return [][]byte{body}, nil
	}
	var b Batch
	if err := strictjson.Unmarshal(body, &b, maxBytes); err != nil {
		return nil, fmt.Errorf("%w: batch: %w", ErrBody, err)
	}
	if len(b.Envelopes) == 0 {
		return nil, fmt.Errorf("%w: batch: no envelopes", ErrBody)
	}
	if len(b.Envelopes) > MaxBatchEntries {
		return nil, fmt.Errorf("%w: batch: %d envelopes, limit %d", ErrBody, len(b.Envelopes), MaxBatchEntries)
	}
	out := make([][]byte, len(b.Envelopes))
	for i, v := range b.Envelopes {
		out[i] = v
	}
	return out, nil
}

// Canonical returns the bytes keytrail logs for an envelope: the envelope
// strictly decoded and encoded again as evidence.Sign encodes it (compact, in
// field order). Two submissions of the same envelope, however formatted, are
// the same leaf. Envelopes made by evidence.Sign are already canonical.
func Canonical(raw []byte) ([]byte, error) {
	env, err := evidence.ParseEnvelope(raw, evidence.MaxRecordBytes)
	if err != nil {
		return nil, err
	}
	return strictjson.Marshal(env)
}

// MarshalBatch encodes envelopes as a batch body.
func MarshalBatch(envs [][]byte) ([]byte, error) {
	b := Batch{Envelopes: make([]jsontext.Value, len(envs))}
	for i, e := range envs {
		b.Envelopes[i] = jsontext.Value(e)
	}
	return strictjson.Marshal(&b)
}
