// Package server is keytrail's ingestion server (keytrail serve): the HTTP API
// of docs/api.md on top of a ledger.Log.
//
// Collectors POST signed DSSE envelopes to /v1/entries. An envelope is logged
// only if its one signature is by a collector (or principal) of the trust file
// allowed to sign its predicate type, the same rules the offline verifier
// applies (verify.Trust.AuthenticateRecord); only then is its payload parsed.
// The answer, each entry's index and a checkpoint covering it, is sent only
// once the ledger has durably integrated the entries. Submitting the same
// envelope again returns the index it was first given: the ledger's guarantee,
// plus a singleflight here so that concurrent identical submissions make one
// append.
//
// Readers get the log through the C2SP tlog-tiles paths (/checkpoint,
// /tile/...), served from the embedded ledger's directory, and through
// /v1/proofs and /v1/bundles.
//
// The server never dereferences a URL found in a submission (ATTACKS.md 31):
// it makes no outgoing connection at all.
package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/ingest"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/verify"
)

// Defaults of the Config fields left zero.
const (
	DefaultMaxInflightEntries = 32768
	DefaultMaxRequests        = 1024
	DefaultMaxInflightBytes   = 256 << 20
	DefaultReadHeaderTimeout  = 5 * time.Second
	DefaultBodyTimeout        = 30 * time.Second
	DefaultBodyGrace          = 5 * time.Second
	DefaultMinBodyRate        = 8 << 10
	DefaultMaxConnsPerClient  = 64
	DefaultAppendTimeout      = 60 * time.Second
	DefaultIdleTimeout        = 120 * time.Second
	DefaultDrainTimeout       = 30 * time.Second
	DefaultRetryAfter         = time.Second
)

// Config configures New. Log and Trust are required.
type Config struct {
	// Log is the ledger entries are appended to and read from. Required; it
	// must have been opened for appending.
	Log ledger.Log

	// Trust is the trust file whose collectors (and principals) may submit.
	// Required.
	Trust *verify.Trust

	// TilesDir, if set, is the embedded ledger's tlog-tiles directory: the
	// /tile/... paths are served from it. Empty for ledgers without one
	// (Trillian); /tile/... then answers 404.
	TilesDir string

	// MaxBodyBytes bounds a request body; larger bodies get 413.
	// Default: ingest.DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64

	// MaxInflightEntries bounds the entries being verified or appended at once,
	// over all requests; a submission that would exceed it gets 503 with
	// Retry-After. It bounds the memory held by submissions.
	// Default: DefaultMaxInflightEntries.
	MaxInflightEntries int

	// MaxInflightBytes bounds the memory held by submissions being handled:
	// each byte of a body takes two bytes of it (the body and the logged
	// copies of its envelopes) as it arrives, whatever Content-Length
	// announces; a body that would go beyond it gets 503 with Retry-After.
	// Idle or slow clients thus hold only what they sent (ATTACKS.md 44).
	// Default: DefaultMaxInflightBytes (256 MiB).
	MaxInflightBytes int64

	// MaxRequests bounds the requests handled at once (of every kind); beyond
	// it, 503 with Retry-After. Default: DefaultMaxRequests.
	MaxRequests int

	// ReadHeaderTimeout bounds reading a request's headers.
	// Default: DefaultReadHeaderTimeout (5s).
	ReadHeaderTimeout time.Duration

	// BodyTimeout bounds reading a request's body, from the end of its headers.
	// Default: DefaultBodyTimeout (30s).
	BodyTimeout time.Duration

	// MinBodyRate and BodyGrace cut off slow bodies: a body must have
	// delivered MinBodyRate bytes a second after its first BodyGrace, that
	// is its n-th byte must arrive within BodyGrace + n/MinBodyRate of the end
	// of the headers (and all of it within BodyTimeout); a body that falls
	// behind gets 408 and its connection is closed. MinBodyRate is in bytes
	// a second. Defaults: DefaultMinBodyRate (8 KiB/s), DefaultBodyGrace (5s).
	MinBodyRate int64
	BodyGrace   time.Duration

	// MaxConnsPerClient bounds the connections one client may hold open at
	// once, idle or not: a client is an IPv4 address, or an IPv6 /64 (one
	// host's usual allocation). Serve closes a client's connections beyond it
	// as soon as they are accepted, before reading anything, so that one
	// address cannot take the request slots (MaxRequests) or the file
	// descriptors genuine collectors need. Clients behind one NAT share it.
	// Default: DefaultMaxConnsPerClient (64); negative: no limit.
	MaxConnsPerClient int

	// AppendTimeout bounds waiting for the ledger to integrate a submission.
	// Default: DefaultAppendTimeout (60s).
	AppendTimeout time.Duration

	// DrainTimeout bounds the graceful shutdown of Serve: how long in-flight
	// requests may take to finish once its context ends.
	// Default: DefaultDrainTimeout (30s).
	DrainTimeout time.Duration

	// RetryAfter is what 503 answers put in Retry-After (whole seconds).
	// Default: DefaultRetryAfter (1s).
	RetryAfter time.Duration

	// TLS, if set, serves HTTPS. If it asks for client certificates
	// (ClientAuth), a submission over a connection that presented one is
	// accepted only if the certificate names the envelope's signer (see
	// ClientIdentities); with tls.RequireAndVerifyClientCert every submitter
	// must present one.
	TLS *tls.Config

	// Bundles, if set, serves GET /v1/bundles/{rotation-id}.
	Bundles *BundleConfig

	// Logger receives the server's logs. Default: slog.Default().
	Logger *slog.Logger
}

// Server serves the API. Create it with New.
type Server struct {
	cfg     Config
	log     ledger.Log
	trust   *verify.Trust
	logger  *slog.Logger
	m       *metrics
	flight  singleflight.Group
	appends *workers
	reqs    chan struct{}
	tiles   *tileServer
	bundles *bundleServer
	mux     *http.ServeMux

	mu       sync.Mutex
	draining bool
}

// New validates cfg and builds a server.
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		return nil, errors.New("server: Config.Log is nil")
	}
	if cfg.Trust == nil {
		return nil, errors.New("server: Config.Trust is nil")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = ingest.DefaultMaxBodyBytes
	}
	if cfg.MaxInflightEntries <= 0 {
		cfg.MaxInflightEntries = DefaultMaxInflightEntries
	}
	if cfg.MaxInflightBytes <= 0 {
		cfg.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = DefaultMaxRequests
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.MinBodyRate <= 0 {
		cfg.MinBodyRate = DefaultMinBodyRate
	}
	if cfg.BodyGrace <= 0 {
		cfg.BodyGrace = DefaultBodyGrace
	}
	if cfg.MaxConnsPerClient == 0 {
		cfg.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if cfg.AppendTimeout <= 0 {
		cfg.AppendTimeout = DefaultAppendTimeout
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Log,
		trust:   cfg.Trust,
		logger:  cfg.Logger.With(slog.String("component", "server")),
		m:       newMetrics(),
		reqs:    make(chan struct{}, cfg.MaxRequests),
		appends: newWorkers(),
	}
	if cfg.TilesDir != "" {
		t, err := newTileServer(cfg.TilesDir)
		if err != nil {
			return nil, err
		}
		s.tiles = t
	}
	if cfg.Bundles != nil {
		b, err := newBundleServer(*cfg.Bundles, cfg.Log)
		if err != nil {
			return nil, err
		}
		s.bundles = b
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ingest.PathEntries, s.handleSubmit)
	mux.HandleFunc("GET "+ingest.PathEntries+"/{index}", s.handleEntry)
	mux.HandleFunc("GET "+ingest.PathCheckpoint, s.handleCheckpoint)
	mux.HandleFunc("GET /tile/", s.handleTile)
	mux.HandleFunc("GET "+ingest.PathInclusion, s.handleInclusion)
	mux.HandleFunc("GET "+ingest.PathConsistency, s.handleConsistency)
	mux.HandleFunc("GET "+ingest.PathBundles+"{id...}", s.handleBundle)
	mux.HandleFunc("GET "+ingest.PathHealth, s.handleHealth)
	mux.HandleFunc("GET "+ingest.PathMetrics, s.handleMetrics)
	mux.HandleFunc(ingest.PathEntries, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		s.fail(w, http.StatusMethodNotAllowed, ingest.ReasonMethod, r.Method+" "+ingest.PathEntries+": only POST", nil)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, http.StatusNotFound, ingest.ReasonNotFound, fmt.Sprintf("no such path %q (see docs/api.md)", r.URL.Path), nil)
	})
	s.mux = mux
	return s, nil
}

// ServeHTTP limits concurrent requests, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case s.reqs <- struct{}{}:
		defer func() { <-s.reqs }()
	default:
		s.fail(w, http.StatusServiceUnavailable, ingest.ReasonOverloaded, fmt.Sprintf("%d requests in progress", cap(s.reqs)), nil)
		return
	}
	// A wrong method on a known path is a 405 from the mux; keep our JSON body.
	s.mux.ServeHTTP(w, r)
}

// HTTPServer returns an http.Server for s with its timeouts set.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         s.cfg.TLS,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets in-flight requests finish (within DrainTimeout) and
// returns. It does not close the ledger. Each client may hold at most
// MaxConnsPerClient connections of ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.MaxConnsPerClient > 0 {
		ln = newClientListener(ln, s.cfg.MaxConnsPerClient, s.m)
	}
	hs := s.HTTPServer()
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLS != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DrainTimeout)
	defer cancel()
	s.logger.Info("shutting down: draining in-flight requests", slog.Duration("timeout", s.cfg.DrainTimeout))
	if err := hs.Shutdown(dctx); err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// fail writes an error answer and counts it.
func (s *Server) fail(w http.ResponseWriter, status int, reason, msg string, entry *int) {
	s.m.reject(reason)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int((s.cfg.RetryAfter+time.Second-1)/time.Second)))
	}
	body, _ := strictjson.Marshal(&ingest.Error{Status: status, Reason: reason, Message: msg, Entry: entry})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := strictjson.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(append(body, '\n'))
}

// statusOf maps an authentication error to its answer.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, evidence.ErrBadSignature), errors.Is(err, evidence.ErrKeyIDMismatch):
		return http.StatusUnauthorized, ingest.ReasonBadSignature
	case errors.Is(err, evidence.ErrUnknownSigner):
		return http.StatusForbidden, ingest.ReasonUnknownKey
	case errors.Is(err, verify.ErrNotAllowed):
		return http.StatusForbidden, ingest.ReasonNotAllowed
	default:
		return http.StatusBadRequest, ingest.ReasonMalformed
	}
}

// checked is one authenticated submission.
type checked struct {
	entry  []byte // canonical envelope bytes
	signer string
}

// authenticate checks every envelope, in parallel; the first failure (by
// position) wins.
func (s *Server) authenticate(r *http.Request, raws [][]byte) ([]checked, int, error) {
	out := make([]checked, len(raws))
	errs := make([]error, len(raws))
	workers := min(runtime.GOMAXPROCS(0), len(raws))
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				next.Lock()
				j := i
				i++
				next.Unlock()
				if j >= len(raws) {
					return
				}
				out[j], errs[j] = s.authenticateOne(r, raws[j])
			}
		})
	}
	wg.Wait()
	for j, err := range errs {
		if err != nil {
			return nil, j, err
		}
	}
	return out, -1, nil
}

// errIdentity: the mTLS client certificate does not name the signer.
var errIdentity = errors.New("client certificate does not name the envelope's signer")

func (s *Server) authenticateOne(r *http.Request, raw []byte) (checked, error) {
	// Decoded once: the canonical bytes are what is logged, the decoded
	// envelope what is verified (the same value: Canonical's fixed point).
	env, err := evidence.ParseEnvelope(raw, evidence.MaxRecordBytes)
	if err != nil {
		return checked{}, err
	}
	entry, err := strictjson.Marshal(env)
	if err != nil {
		return checked{}, err
	}
	if len(entry) > evidence.MaxRecordBytes {
		return checked{}, fmt.Errorf("%w: envelope of %d bytes, limit %d", evidence.ErrMalformed, len(entry), evidence.MaxRecordBytes)
	}
	h, _, _, err := s.trust.AuthenticateEnvelope(env)
	if err != nil {
		return checked{}, err
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		ids := ClientIdentities(r.TLS.PeerCertificates[0])
		found := false
		for _, id := range ids {
			found = found || id == h.ID
		}
		if !found {
			return checked{}, fmt.Errorf("%w: signed by %s %q, certificate names %q", errIdentity, h.Kind, h.ID, ids)
		}
	}
	return checked{entry: entry, signer: h.ID}, nil
}

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.isDraining() {
		s.fail(w, http.StatusServiceUnavailable, ingest.ReasonUnavailable, "the server is shutting down", nil)
		return
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.fail(w, http.StatusRequestEntityTooLarge, ingest.ReasonTooLarge, fmt.Sprintf("body of %d bytes, limit %d", r.ContentLength, s.cfg.MaxBodyBytes), nil)
		return
	}
	body, reserved, err := s.readBody(w, r)
	defer s.m.bodyBytes.Add(-reserved)
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			s.fail(w, http.StatusRequestEntityTooLarge, ingest.ReasonTooLarge, fmt.Sprintf("body over the limit of %d bytes", s.cfg.MaxBodyBytes), nil)
		case errors.Is(err, errBudget):
			s.fail(w, http.StatusServiceUnavailable, ingest.ReasonOverloaded, fmt.Sprintf("more than %d bytes of submissions in progress", s.cfg.MaxInflightBytes), nil)
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			s.fail(w, http.StatusRequestTimeout, ingest.ReasonTooSlow, fmt.Sprintf("body too slow: %d bytes in %v (want %d bytes/s after %v, all within %v)", len(body), time.Since(start).Round(time.Millisecond), s.cfg.MinBodyRate, s.cfg.BodyGrace, s.cfg.BodyTimeout), nil)
		default:
			s.fail(w, http.StatusBadRequest, ingest.ReasonMalformed, fmt.Sprintf("reading the body: %v", err), nil)
		}
		return
	}
	raws, err := ingest.ParseSubmission(body, int(s.cfg.MaxBodyBytes))
	if err != nil {
		s.fail(w, http.StatusBadRequest, ingest.ReasonMalformed, err.Error(), nil)
		return
	}
	n := int64(len(raws))
	if s.m.inflight.Add(n) > int64(s.cfg.MaxInflightEntries) {
		s.m.inflight.Add(-n)
		s.fail(w, http.StatusServiceUnavailable, ingest.ReasonOverloaded, fmt.Sprintf("more than %d entries in progress", s.cfg.MaxInflightEntries), nil)
		return
	}
	defer s.m.inflight.Add(-n)

	entries, at, err := s.authenticate(r, raws)
	if err != nil {
		status, reason := statusOf(err)
		if errors.Is(err, errIdentity) {
			status, reason = http.StatusForbidden, ingest.ReasonIdentity
		}
		var pos *int
		if len(raws) != 1 || !bytes.Equal(raws[0], body) { // a batch: name the envelope
			pos = &at
		}
		s.fail(w, status, reason, err.Error(), pos)
		return
	}
	res, err := s.appendAll(r.Context(), entries)
	if err != nil {
		if errors.Is(err, ledger.ErrClosed) {
			s.fail(w, http.StatusServiceUnavailable, ingest.ReasonUnavailable, "the ledger is closed: the server is shutting down", nil)
			return
		}
		s.logger.Error("append failed", slog.Any("err", err))
		s.fail(w, http.StatusServiceUnavailable, ingest.ReasonUnavailable, "the ledger did not acknowledge the entries; submit them again", nil)
		return
	}
	// The answer must not wait forever on a client that stopped reading.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.BodyTimeout))
	s.m.appended.Add(uint64(len(entries)))
	s.m.requests.Add(1)
	s.m.submitLat.observe(time.Since(start))
	writeJSON(w, res)
}

// errBudget: the body would take more than MaxInflightBytes.
var errBudget = errors.New("over the in-flight byte budget")

// readBody reads r's body, at most MaxBodyBytes (an *http.MaxBytesError
// beyond). As bytes arrive, never before, it takes two bytes of the in-flight
// budget for each (errBudget beyond MaxInflightBytes); it returns how much it
// took, which the caller gives back once the request is done. The buffer
// grows as bytes arrive too: an announced Content-Length is never allocated
// ahead. Before each read the connection's read deadline is moved to the
// time by which the body must have reached its next byte (MinBodyRate after
// BodyGrace, all within BodyTimeout); a body that falls behind fails with
// an error wrapping os.ErrDeadlineExceeded.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (body []byte, reserved int64, err error) {
	const minChunk = 16 << 10
	limit := s.cfg.MaxBodyBytes
	rc := http.NewResponseController(w)
	start := time.Now()
	end := start.Add(s.cfg.BodyTimeout)
	rd := http.MaxBytesReader(w, r.Body, limit)
	size := limit + 1 // room to see one byte too many
	if r.ContentLength >= 0 {
		size = min(size, r.ContentLength+1)
	}
	buf := make([]byte, 0, min(size, minChunk))
	for {
		due := start.Add(s.cfg.BodyGrace + time.Duration(float64(len(buf))/float64(s.cfg.MinBodyRate)*float64(time.Second)))
		if due.After(end) {
			due = end
		}
		if err := rc.SetReadDeadline(due); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return buf, reserved, err
		}
		if len(buf) == cap(buf) {
			if int64(cap(buf)) >= size {
				// Cannot happen: the body ends or goes over limit first.
				return buf, reserved, fmt.Errorf("body longer than its %d announced bytes", r.ContentLength)
			}
			grown := make([]byte, len(buf), min(max(2*int64(cap(buf)), minChunk), size))
			copy(grown, buf)
			buf = grown
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		reserved += 2 * int64(n)
		if s.m.bodyBytes.Add(2*int64(n)) > s.cfg.MaxInflightBytes {
			return buf, reserved, errBudget
		}
		if err == io.EOF {
			// The rest of the request is not bound by the body's deadline.
			// (After an error it stays: nothing more is read in time.)
			rc.SetReadDeadline(time.Time{})
			return buf, reserved, nil
		}
		if err != nil {
			return buf, reserved, err
		}
	}
}

// appendAll appends every entry, concurrently, and returns once all are
// acknowledged, with a checkpoint covering them.
func (s *Server) appendAll(ctx context.Context, entries []checked) (*ingest.SubmitResponse, error) {
	// The append outlives a client that goes away: once started it completes,
	// so that an entry is never left half-acknowledged by our side.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.AppendTimeout)
	defer cancel()
	res := &ingest.SubmitResponse{Entries: make([]ingest.Submitted, len(entries))}
	if err := s.appendEntries(actx, entries, res.Entries); err != nil {
		return nil, err
	}
	var maxIdx uint64
	for _, e := range res.Entries {
		maxIdx = max(maxIdx, e.Index)
	}
	// The ledger publishes a checkpoint covering each entry before Append
	// returns; the latest one covers them all. Check rather than assume.
	for range 3 {
		cp, err := s.log.Checkpoint(actx)
		if err != nil {
			return nil, err
		}
		c, err := checkpoint.ParseUnverified(cp)
		if err != nil {
			return nil, fmt.Errorf("ledger checkpoint: %w", err)
		}
		if c.Size > maxIdx {
			res.Checkpoint = string(cp)
			return res, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, fmt.Errorf("ledger acknowledged entry %d but its latest checkpoint does not cover it", maxIdx)
}

// appendEntries appends entries and sets out[i] to entry i's index and leaf
// hash. A ledger that appends batches (ledger/posix) takes them in one call;
// other ledgers get one Append per entry, concurrently, identical entries
// coalesced.
func (s *Server) appendEntries(ctx context.Context, entries []checked, out []ingest.Submitted) error {
	if ba, ok := s.log.(ledger.BatchAppender); ok {
		raw := make([][]byte, len(entries))
		for i, e := range entries {
			raw[i] = e.entry
		}
		t := time.Now()
		idx, err := ba.AppendBatch(ctx, raw)
		if err != nil {
			return err
		}
		s.m.appendLat.observeN(time.Since(t), len(entries))
		for i, e := range entries {
			out[i] = ingest.Submitted{Index: idx[i], LeafHash: leafHash(e.entry)}
		}
		return nil
	}
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	wg.Add(len(entries))
	for i, e := range entries {
		s.appends.run(func() {
			defer wg.Done()
			lh := leafHash(e.entry)
			v, err, _ := s.flight.Do(string(lh), func() (any, error) {
				t := time.Now()
				idx, err := s.log.Append(ctx, e.entry)
				if err == nil {
					s.m.appendLat.observe(time.Since(t))
				}
				return idx, err
			})
			if err != nil {
				errs[i] = err
				return
			}
			out[i] = ingest.Submitted{Index: v.(uint64), LeafHash: lh}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
