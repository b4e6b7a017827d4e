package ingest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/strictjson"
)

// Errors of Submit; test them with errors.Is.
var (
	// ErrRejected: the server refused the submission (a 4xx answer). Sending
	// it again cannot succeed; the *Error in the chain says why.
	ErrRejected = errors.New("rejected by the server")
	// ErrUnavailable: the server could not be reached or was overloaded for
	// every attempt. The submission may be sent again later.
	ErrUnavailable = errors.New("server unavailable")
	// ErrBadAnswer: the server's answer does not match the submission.
	ErrBadAnswer = errors.New("unexpected answer from the server")
)

// ClientOptions configure a Client; the zero value is usable.
type ClientOptions struct {
	// HTTPClient sends the requests; set its Transport for mTLS.
	// Default: a client with a 2-minute timeout.
	HTTPClient *http.Client
	// MaxAttempts is how many times a submission is sent before Submit
	// returns ErrUnavailable. Default 6.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts, which doubles
	// from MinBackoff (with jitter) and honours the server's Retry-After.
	// Defaults 200ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// LogVerifier, if set, authenticates the checkpoint of every answer.
	LogVerifier note.Verifier
	// Logger receives retry notices. Default: slog.Default().
	Logger *slog.Logger
}

// Client submits envelopes to a keytrail server. It is safe for concurrent use.
type Client struct {
	base string
	opts ClientOptions
}

// NewClient returns a client of the server at base, e.g. "https://keytrail.example:8443".
func NewClient(base string, opts *ClientOptions) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", base, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://HOST[:PORT][/PREFIX]", base)
	}
	var o ClientOptions
	if opts != nil {
		o = *opts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 2 * time.Minute}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), opts: o}, nil
}

// Submit sends envelopes (the exact bytes of DSSE envelopes; one, or a batch
// of up to MaxBatchEntries) and returns their indices once the server has
// durably logged them. Transient failures (no connection, 5xx, 503 with
// Retry-After) are retried with backoff; sending the same envelopes again is
// safe because the server is exactly-once. A 4xx answer wraps ErrRejected and
// the server's *Error.
func (c *Client) Submit(ctx context.Context, envs [][]byte) (*SubmitResponse, error) {
	if len(envs) == 0 || len(envs) > MaxBatchEntries {
		return nil, fmt.Errorf("submit: %d envelopes, want 1 to %d", len(envs), MaxBatchEntries)
	}
	body := envs[0]
	if len(envs) > 1 {
		var err error
		if body, err = MarshalBatch(envs); err != nil {
			return nil, err
		}
	}
	var last error
	backoff := c.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		res, retryAfter, err := c.post(ctx, body)
		if err == nil {
			if err := c.check(res, envs); err != nil {
				return nil, err
			}
			return res, nil
		}
		if errors.Is(err, ErrRejected) || ctx.Err() != nil {
			return nil, err
		}
		last = err
		if attempt >= c.opts.MaxAttempts {
			break
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if retryAfter > wait {
			wait = retryAfter
		}
		c.opts.Logger.WarnContext(ctx, "keytrail server: retrying", slog.Int("attempt", attempt), slog.Duration("wait", wait), slog.Any("err", err))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w (after %v)", ErrUnavailable, ctx.Err(), last)
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
	return nil, fmt.Errorf("%w: %d attempts: %w", ErrUnavailable, c.opts.MaxAttempts, last)
}

// post sends one request. It returns a retry hint for 503 answers.
func (c *Client) post(ctx context.Context, body []byte) (*SubmitResponse, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+PathEntries, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		var res SubmitResponse
		if err := strictjson.Unmarshal(raw, &res, 64<<20); err != nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrBadAnswer, err)
		}
		return &res, 0, nil
	}
	var e Error
	if strictjson.Unmarshal(raw, &e, 1<<20) != nil || e.Status != resp.StatusCode {
		e = Error{Status: resp.StatusCode, Reason: "http", Message: strings.TrimSpace(string(raw[:min(len(raw), 512)]))}
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return nil, 0, fmt.Errorf("%w: %w", ErrRejected, &e)
	}
	var ra time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		ra = min(time.Duration(s)*time.Second, c.opts.MaxBackoff)
	}
	return nil, ra, &e
}

// check compares an answer with what was sent: the server logs an
// envelope's canonical form (Canonical), which is usually the bytes sent.
func (c *Client) check(res *SubmitResponse, envs [][]byte) error {
	if len(res.Entries) != len(envs) {
		return fmt.Errorf("%w: %d entries acknowledged, %d sent", ErrBadAnswer, len(res.Entries), len(envs))
	}
	var cp checkpoint.Checkpoint
	var err error
	if c.opts.LogVerifier != nil {
		cp, _, err = checkpoint.Open([]byte(res.Checkpoint), c.opts.LogVerifier.Name(), c.opts.LogVerifier)
	} else {
		cp, err = checkpoint.ParseUnverified([]byte(res.Checkpoint))
	}
	if err != nil {
		return fmt.Errorf("%w: checkpoint: %w", ErrBadAnswer, err)
	}
	for i, e := range res.Entries {
		if subtle.ConstantTimeCompare(e.LeafHash, rfc6962.DefaultHasher.HashLeaf(envs[i])) != 1 {
			can, err := Canonical(envs[i])
			if err != nil || subtle.ConstantTimeCompare(e.LeafHash, rfc6962.DefaultHasher.HashLeaf(can)) != 1 {
				return fmt.Errorf("%w: entries[%d]: leaf hash is not that of the envelope sent", ErrBadAnswer, i)
			}
		}
		if e.Index >= cp.Size {
			return fmt.Errorf("%w: entries[%d]: index %d not covered by the checkpoint of size %d", ErrBadAnswer, i, e.Index, cp.Size)
		}
	}
	return nil
}
