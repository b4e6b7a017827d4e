package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	fwitness "github.com/transparency-dev/formats/witness"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/internal/checkpoint"
)

// DefaultTimeout is how long Cosign waits for its witnesses by default.
const DefaultTimeout = 10 * time.Second

// maxConflicts bounds the 409 answers one submission follows: each names the
// size the witness has cosigned, and the next request starts from it.
const maxConflicts = 3

// Errors of a witness's answer, each wrapped in an *Error; test with errors.Is.
var (
	// ErrInconsistent: the witness has cosigned a tree of this log that the
	// submitted checkpoint does not extend: another root for the same size
	// (409), or a consistency proof from its size that does not verify (422).
	// Either the log forked (someone with the log's key signed two trees) or
	// the proof the log served is wrong; in both cases the checkpoint must not
	// be trusted.
	ErrInconsistent = errors.New("witness: checkpoint inconsistent with the tree the witness cosigned")
	// ErrWitnessAhead: the witness has cosigned a larger tree of this log than
	// the checkpoint. The log went back (restored from an old copy, or forked),
	// or another client submitted a newer checkpoint: submit the latest.
	ErrWitnessAhead = errors.New("witness: the witness has cosigned a larger tree of this log")
	// ErrUnknownLog: the witness does not witness this origin (404).
	ErrUnknownLog = errors.New("witness: unknown log")
	// ErrForbidden: no signature on the checkpoint verifies under the key the
	// witness trusts for the origin (403).
	ErrForbidden = errors.New("witness: checkpoint not signed by a log key the witness trusts")
	// ErrBadRequest: the witness found the request malformed (400).
	ErrBadRequest = errors.New("witness: request refused as malformed")
	// ErrUnavailable: no usable answer: a network error, a timeout, a 5xx, an
	// unexpected status.
	ErrUnavailable = errors.New("witness: unavailable")
	// ErrBadCosignature: a 200 answer without a valid cosignature by the
	// witness's key.
	ErrBadCosignature = errors.New("witness: bad cosignature")
	// ErrQuorum: too few witnesses cosigned to meet the policy.
	ErrQuorum = errors.New("witness: quorum not met")
)

// Error is one witness's refusal or failure, with what was submitted.
type Error struct {
	Witness    string                // the witness's key name
	URL        string                // its add-checkpoint URL
	Checkpoint checkpoint.Checkpoint // the checkpoint submitted
	OldSize    uint64                // the old size of the last request
	Proof      [][]byte              // the consistency proof of the last request
	// WitnessSize is the size the witness said it has cosigned (409 with
	// text/x.tlog.size), if it said.
	WitnessSize *uint64
	Status      int    // the HTTP status, 0 if none
	Body        string // the start of the answer's body
	Err         error  // one of the sentinel errors above, possibly wrapping the cause
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "witness %s (%s): %v: checkpoint %s, old size %d", e.Witness, e.URL, e.Err, e.Checkpoint, e.OldSize)
	if e.WitnessSize != nil {
		fmt.Fprintf(&b, ", the witness has cosigned size %d", *e.WitnessSize)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
		if e.Body != "" {
			fmt.Fprintf(&b, " %q", e.Body)
		}
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// QuorumError reports a checkpoint that too few witnesses cosigned.
type QuorumError struct {
	Checkpoint checkpoint.Checkpoint
	Cosigned   []string // the witnesses that did cosign
	Errs       []error  // each other witness's *Error
}

func (e *QuorumError) Error() string {
	msg := fmt.Sprintf("%v for %s: cosigned by %d witness(es) %v", ErrQuorum, e.Checkpoint, len(e.Cosigned), e.Cosigned)
	for _, err := range e.Errs {
		msg += "; " + err.Error()
	}
	return msg
}

func (e *QuorumError) Unwrap() []error { return append([]error{ErrQuorum}, e.Errs...) }

// Config configures a Cosigner.
type Config struct {
	// Policy names the witnesses (each its add-checkpoint URL and its
	// cosignature/v1 verifier key) and which of them must cosign: a witness
	// policy in the format of Sigsum, Tessera and torchwood, parsed with
	// fwitness.ParsePolicy, or built with fwitness.New and fwitness.NewGroup.
	// It must name at least one witness and require at least one cosignature.
	Policy fwitness.Group
	// Timeout bounds one Cosign. Default: DefaultTimeout.
	Timeout time.Duration
	// HTTPClient sends the requests. Default: a client of its own (keep-alive,
	// no cookies, no redirects followed).
	HTTPClient *http.Client
	// Logger receives a line per witness answer that is not a cosignature.
	// Default: slog.Default().
	Logger *slog.Logger
}

// Cosigner gathers cosignatures on a log's checkpoints from the witnesses of a
// policy, with the add-checkpoint call of c2sp.org/tlog-witness. It remembers,
// in memory, the size each witness last cosigned, to send the consistency
// proof from there; it learns it from the witness's 409 answer when it does
// not know it (after a restart, say). It is safe for concurrent use, and
// meant to be used by one log.
type Cosigner struct {
	policy    fwitness.Group
	timeout   time.Duration
	client    *http.Client
	logger    *slog.Logger
	endpoints []*endpoint
}

type endpoint struct {
	url      string
	verifier note.Verifier

	mu   sync.Mutex
	size uint64 // the size this witness last cosigned, as far as we know
}

// NewCosigner checks cfg and returns a Cosigner.
func NewCosigner(cfg Config) (*Cosigner, error) {
	eps := cfg.Policy.Endpoints()
	if len(eps) == 0 {
		return nil, errors.New("witness: the policy names no witness")
	}
	if cfg.Policy.N <= 0 {
		return nil, errors.New("witness: the policy requires no cosignature")
	}
	c := &Cosigner{policy: cfg.Policy, timeout: cfg.Timeout, client: cfg.HTTPClient, logger: cfg.Logger}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.client == nil {
		c.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	for u, v := range eps {
		c.endpoints = append(c.endpoints, &endpoint{url: u, verifier: v})
	}
	slices.SortFunc(c.endpoints, func(a, b *endpoint) int { return strings.Compare(a.url, b.url) })
	return c, nil
}

// Witnesses returns the names of the policy's witnesses.
func (c *Cosigner) Witnesses() []string {
	var names []string
	for _, e := range c.endpoints {
		names = append(names, e.verifier.Name())
	}
	return names
}

// Cosign submits signed, a checkpoint signed by its log, to every witness of
// the policy and returns signed with the witnesses' cosignature lines
// appended as soon as they meet the policy; requests still in flight are then
// cancelled. proof returns the log's consistency proof between two tree
// sizes, 0 < size1 < size2, for the witnesses that ask from an older size.
// If the policy cannot be met within the timeout, the error is a
// *QuorumError carrying each witness's *Error.
//
// Cosign does not check the log's signature: the witnesses do.
func (c *Cosigner) Cosign(ctx context.Context, signed []byte, proof func(ctx context.Context, size1, size2 uint64) ([][]byte, error)) ([]byte, error) {
	cp, err := checkpoint.ParseUnverified(signed)
	if err != nil {
		return nil, fmt.Errorf("witness: cosign: %w", err)
	}
	if !bytes.HasSuffix(signed, []byte("\n")) {
		return nil, fmt.Errorf("witness: cosign %s: the signed note does not end in a newline", cp)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	proofs := &proofCache{fetch: proof, size: cp.Size, got: map[uint64]func() ([][]byte, error){}}

	type result struct {
		ep   *endpoint
		line []byte
		err  error
	}
	results := make(chan result, len(c.endpoints))
	for _, ep := range c.endpoints {
		go func() {
			line, err := ep.add(ctx, c.client, signed, cp, proofs)
			results <- result{ep, line, err}
		}()
	}
	out := bytes.Clone(signed)
	var cosigned []string
	var errs []error
	for range c.endpoints {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			c.logger.WarnContext(ctx, "witness did not cosign", slog.String("witness", r.ep.verifier.Name()), slog.Any("error", r.err))
			continue
		}
		out = append(out, r.line...)
		cosigned = append(cosigned, r.ep.verifier.Name())
		if c.policy.Satisfied(out) {
			return out, nil
		}
	}
	return nil, &QuorumError{Checkpoint: cp, Cosigned: cosigned, Errs: errs}
}

// proofCache fetches each consistency proof once however many witnesses ask.
type proofCache struct {
	fetch func(ctx context.Context, size1, size2 uint64) ([][]byte, error)
	size  uint64
	mu    sync.Mutex
	got   map[uint64]func() ([][]byte, error)
}

func (p *proofCache) get(ctx context.Context, from uint64) ([][]byte, error) {
	if from == 0 || from == p.size {
		return nil, nil
	}
	p.mu.Lock()
	f, ok := p.got[from]
	if !ok {
		f = sync.OnceValues(func() ([][]byte, error) { return p.fetch(ctx, from, p.size) })
		p.got[from] = f
	}
	p.mu.Unlock()
	return f()
}

// add submits the checkpoint to one witness and returns its cosignature line.
func (ep *endpoint) add(ctx context.Context, client *http.Client, signed []byte, cp checkpoint.Checkpoint, proofs *proofCache) ([]byte, error) {
	ep.mu.Lock()
	old := ep.size
	ep.mu.Unlock()
	fail := func(old uint64, p [][]byte, status int, body []byte, err error) *Error {
		e := &Error{Witness: ep.verifier.Name(), URL: ep.url, Checkpoint: cp, OldSize: old, Proof: p, Status: status, Err: err}
		if len(body) > 200 {
			body = body[:200]
		}
		e.Body = strings.TrimSpace(strings.ToValidUTF8(string(body), "?"))
		return e
	}
	for range maxConflicts + 1 {
		if old > cp.Size {
			e := fail(old, nil, 0, nil, ErrWitnessAhead)
			e.WitnessSize = &old
			return nil, e
		}
		p, err := proofs.get(ctx, old)
		if err != nil {
			return nil, fail(old, nil, 0, nil, fmt.Errorf("%w: the log's consistency proof from size %d: %w", ErrUnavailable, old, err))
		}
		body := Request{OldSize: old, Proof: p, Checkpoint: signed}.Marshal()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(body))
		if err != nil {
			return nil, fail(old, p, 0, nil, fmt.Errorf("%w: %w", ErrUnavailable, err))
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		resp, err := client.Do(req)
		if err != nil {
			return nil, fail(old, p, 0, nil, fmt.Errorf("%w: %w", ErrUnavailable, err))
		}
		rb, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
		resp.Body.Close()
		if err != nil {
			return nil, fail(old, p, resp.StatusCode, nil, fmt.Errorf("%w: reading the answer: %w", ErrUnavailable, err))
		}
		if len(rb) > MaxResponseBytes {
			return nil, fail(old, p, resp.StatusCode, nil, fmt.Errorf("%w: answer larger than %d bytes", ErrUnavailable, MaxResponseBytes))
		}
		switch resp.StatusCode {
		case http.StatusOK:
			line, err := ep.cosignature(signed, rb)
			if err != nil {
				return nil, fail(old, p, resp.StatusCode, rb, err)
			}
			ep.mu.Lock()
			ep.size = max(ep.size, cp.Size)
			ep.mu.Unlock()
			return line, nil
		case http.StatusConflict:
			k, isSize := conflictSize(resp, rb)
			if !isSize || k == old {
				// The witness holds another root for the size we named.
				e := fail(old, p, resp.StatusCode, rb, ErrInconsistent)
				if isSize {
					e.WitnessSize = &k
				}
				return nil, e
			}
			ep.mu.Lock()
			ep.size = k
			ep.mu.Unlock()
			old = k
			continue
		case http.StatusUnprocessableEntity:
			return nil, fail(old, p, resp.StatusCode, rb, ErrInconsistent)
		case http.StatusNotFound:
			return nil, fail(old, p, resp.StatusCode, rb, ErrUnknownLog)
		case http.StatusForbidden:
			return nil, fail(old, p, resp.StatusCode, rb, ErrForbidden)
		case http.StatusBadRequest:
			return nil, fail(old, p, resp.StatusCode, rb, ErrBadRequest)
		default:
			return nil, fail(old, p, resp.StatusCode, rb, ErrUnavailable)
		}
	}
	return nil, fail(old, nil, http.StatusConflict, nil, fmt.Errorf("%w: %d conflicting answers in a row", ErrUnavailable, maxConflicts+1))
}

// conflictSize reads the witness's size from a 409 answer, if it carries one
// (Content-Type text/x.tlog.size, a decimal and a newline).
func conflictSize(resp *http.Response, body []byte) (uint64, bool) {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "text/x.tlog.size" {
		return 0, false
	}
	s, ok := strings.CutSuffix(string(body), "\n")
	if !ok || s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	k, err := strconv.ParseUint(s, 10, 64)
	return k, err == nil
}

// cosignature checks a 200 answer: signature lines of which one, by the
// witness's key, verifies on the checkpoint. It returns that line; lines by
// other keys are dropped.
func (ep *endpoint) cosignature(signed, answer []byte) ([]byte, error) {
	if len(answer) == 0 || answer[len(answer)-1] != '\n' {
		return nil, fmt.Errorf("%w: the answer is not newline-terminated signature lines", ErrBadCosignature)
	}
	for l := range strings.Lines(string(answer)) {
		if !strings.HasPrefix(l, "\u2014 ") {
			return nil, fmt.Errorf("%w: answer line %q is not a signature line", ErrBadCosignature, strings.TrimSpace(l))
		}
	}
	n, err := note.Open(append(bytes.Clone(signed), answer...), note.VerifierList(ep.verifier))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCosignature, err)
	}
	// note.Open verified the first line by the witness's key (a bad one is
	// an error) and dropped the lines by other keys.
	for _, s := range n.Sigs {
		if s.Name == ep.verifier.Name() && s.Hash == ep.verifier.KeyHash() {
			return fmt.Appendf(nil, "\u2014 %s %s\n", s.Name, s.Base64), nil
		}
	}
	return nil, fmt.Errorf("%w: no cosignature by %s", ErrBadCosignature, ep.verifier.Name())
}
