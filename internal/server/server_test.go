package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	tclient "github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/ingest"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/ingesttest"
	"github.com/keytrail/keytrail/internal/server"
	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/posix"
)

// env is a running server on a real 127.0.0.1 socket over a real embedded ledger.
type env struct {
	t      *testing.T
	url    string
	fx     *ingesttest.Fixture
	log    ledger.Log
	dir    string
	client *http.Client
	stop   func() error
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func start(t *testing.T, mutate func(*server.Config)) *env {
	t.Helper()
	fx, err := ingesttest.New()
	if err != nil {
		t.Fatal(err)
	}
	return startWith(t, fx, t.TempDir(), mutate)
}

func startWith(t *testing.T, fx *ingesttest.Fixture, dir string, mutate func(*server.Config)) *env {
	t.Helper()
	ctx := context.Background()
	l, err := posix.Open(ctx, posix.Config{Dir: dir, Signer: fx.LogSigner, KeyIDs: evidence.SubjectKeyIDs, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, fx, l, dir, mutate)
}

// startOn serves l (its tlog-tiles directory tilesDir, if it has one); the
// env's stop closes l.
func startOn(t *testing.T, fx *ingesttest.Fixture, l ledger.Log, tilesDir string, mutate func(*server.Config)) *env {
	t.Helper()
	ctx := context.Background()
	dir := tilesDir
	cfg := server.Config{Log: l, Trust: fx.Trust, TilesDir: tilesDir, Logger: quietLogger()}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	e := &env{t: t, url: scheme + "://" + ln.Addr().String(), fx: fx, log: l, dir: dir, client: &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	var once sync.Once
	var stopErr error
	e.stop = func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
			if err := l.Close(context.Background()); err != nil && stopErr == nil {
				stopErr = err
			}
		})
		return stopErr
	}
	t.Cleanup(func() { e.stop() })
	return e
}

func (e *env) receipt(signer *evidence.Signer, tag string, i int) []byte {
	e.t.Helper()
	b, err := e.fx.Receipt(context.Background(), signer, tag, i)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, path string, body []byte) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func (e *env) submit(body []byte) (*ingest.SubmitResponse, answer) {
	e.t.Helper()
	a := e.do(http.MethodPost, ingest.PathEntries, body)
	if a.status != http.StatusOK {
		return nil, a
	}
	var res ingest.SubmitResponse
	if err := json.Unmarshal(a.body, &res); err != nil {
		e.t.Fatalf("answer %s: %v", a.body, err)
	}
	return &res, a
}

func mustBatch(t *testing.T, envs ...[]byte) []byte {
	b, err := ingest.MarshalBatch(envs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSubmitAndRead(t *testing.T) {
	e := start(t, nil)
	one := e.receipt(nil, "a", 0)
	res, a := e.submit(one)
	if res == nil {
		t.Fatalf("single: %d %s", a.status, a.body)
	}
	if len(res.Entries) != 1 || res.Entries[0].Index != 0 {
		t.Fatalf("single: entries %+v", res.Entries)
	}
	cp, _, err := checkpoint.Open([]byte(res.Checkpoint), ingesttest.Origin, mustVerifier(t, e.fx.LogVKey))
	if err != nil || cp.Size < 1 {
		t.Fatalf("checkpoint %q: %v (size %d)", res.Checkpoint, err, cp.Size)
	}

	var batch [][]byte
	for i := range 10 {
		batch = append(batch, e.receipt(nil, "b", i))
	}
	res, a = e.submit(mustBatch(t, batch...))
	if res == nil {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}
	cp, _, err = checkpoint.Open([]byte(res.Checkpoint), ingesttest.Origin, mustVerifier(t, e.fx.LogVKey))
	if err != nil {
		t.Fatal(err)
	}
	e.checkLogged(batch, res, cp, one)
	// Without a size: the latest checkpoint comes with the proof.
	la := e.do(http.MethodGet, "/v1/proofs/inclusion?index=0", nil)
	if la.status != 200 || !strings.Contains(string(la.body), "checkpoint") {
		t.Errorf("inclusion without size: %d %s", la.status, la.body)
	}
	if h := e.do(http.MethodGet, "/healthz", nil); h.status != 200 {
		t.Errorf("healthz: %d", h.status)
	}
}

// checkLogged checks an answer to the submission of envs against cp (a
// checkpoint covering it) through the API: each index is covered, its leaf
// hash is the envelope's, the entry reads back byte for byte, and its
// inclusion proof verifies; a consistency proof from the tree of first (the
// log's first entry) to cp verifies.
func (e *env) checkLogged(envs [][]byte, res *ingest.SubmitResponse, cp checkpoint.Checkpoint, first []byte) {
	t := e.t
	t.Helper()
	for i, s := range res.Entries {
		if s.Index >= cp.Size {
			t.Errorf("entry %d: index %d not covered by checkpoint size %d", i, s.Index, cp.Size)
		}
		if !bytes.Equal(s.LeafHash, rfc6962.DefaultHasher.HashLeaf(envs[i])) {
			t.Errorf("entry %d: leaf hash is not that of the envelope", i)
		}
		got := e.do(http.MethodGet, fmt.Sprintf("/v1/entries/%d", s.Index), nil)
		if got.status != 200 || !bytes.Equal(got.body, envs[i]) {
			t.Errorf("GET entry %d: %d, bytes differ: %v", s.Index, got.status, !bytes.Equal(got.body, envs[i]))
		}
		pa := e.do(http.MethodGet, fmt.Sprintf("/v1/proofs/inclusion?index=%d&size=%d", s.Index, cp.Size), nil)
		var ir server.InclusionResponse
		if pa.status != 200 || json.Unmarshal(pa.body, &ir) != nil {
			t.Fatalf("inclusion: %d %s", pa.status, pa.body)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, s.Index, cp.Size, s.LeafHash, ir.Proof, cp.Root); err != nil {
			t.Errorf("inclusion proof of %d: %v", s.Index, err)
		}
	}
	ca := e.do(http.MethodGet, fmt.Sprintf("/v1/proofs/consistency?from=1&to=%d", cp.Size), nil)
	var cr server.ConsistencyResponse
	if ca.status != 200 || json.Unmarshal(ca.body, &cr) != nil {
		t.Fatalf("consistency: %d %s", ca.status, ca.body)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, 1, cp.Size, cr.Proof, rfc6962.DefaultHasher.HashLeaf(first), cp.Root); err != nil {
		t.Errorf("consistency proof: %v", err)
	}
}

func mustVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := noteVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestTlogTilesClient reads the log through the tlog-tiles paths with
// Tessera's own client, as any tlog-tiles client would.
func TestTlogTilesClient(t *testing.T) {
	e := start(t, nil)
	var envs [][]byte
	for i := range 300 { // more than one entry bundle (256)
		envs = append(envs, e.receipt(nil, "t", i))
	}
	if res, a := e.submit(mustBatch(t, envs...)); res == nil {
		t.Fatalf("%d %s", a.status, a.body)
	}
	u, _ := url.Parse(e.url + "/")
	f, err := tclient.NewHTTPFetcher(u, e.client)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v := mustVerifier(t, e.fx.LogVKey)
	cp, _, _, err := tclient.FetchCheckpoint(ctx, f.ReadCheckpoint, v, ingesttest.Origin)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 300 {
		t.Fatalf("checkpoint size %d, want 300", cp.Size)
	}
	// Every entry, from the entry bundles; each leaf proven from the tiles.
	pb, err := tclient.NewProofBuilder(ctx, cp.Size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, b := range []uint64{0, 1} {
		bundle, err := tclient.GetEntryBundle(ctx, f.ReadEntryBundle, b, cp.Size)
		if err != nil {
			t.Fatalf("entry bundle %d: %v", b, err)
		}
		for j, ent := range bundle.Entries {
			idx := b*256 + uint64(j)
			p, err := pb.InclusionProof(ctx, idx)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cp.Size, rfc6962.DefaultHasher.HashLeaf(ent), p, cp.Hash); err != nil {
				t.Fatalf("entry %d: %v", idx, err)
			}
			seen[string(ent)] = true
		}
	}
	for i, env := range envs {
		if !seen[string(env)] {
			t.Errorf("envelope %d not found in the entry bundles", i)
		}
	}
}

// TestTilePaths: only tlog-tiles paths are served; nothing else in the
// directory, and no traversal.
func TestTilePaths(t *testing.T) {
	e := start(t, nil)
	if res, a := e.submit(e.receipt(nil, "p", 0)); res == nil {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(e.dir), "secret"), []byte("TOPSECRETCONTENT"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := e.do(http.MethodGet, "/tile/entries/000.p/1", nil)
	if ok.status != 200 {
		t.Fatalf("entry bundle: %d %s", ok.status, ok.body)
	}
	for _, p := range []string{
		"/tile/../secret", "/tile/0/../../secret", "/tile/entries/..%2f..%2fsecret", "/tile/0/000.p/1/../../../.state/treeState",
		"/.state/treeState", "/tile/.keytrail/keyindex", "/tile/0/0000", "/tile/00/000.p/1", "/tile/64/000",
		"/tile/0/x000/000", "/tile/0/000.p/0", "/tile/0/000.p/256", "/tile/entries//000.p/1", "/tile/entries/000.p/01",
	} {
		a := e.do(http.MethodGet, p, nil)
		if a.status == 200 || bytes.Contains(a.body, []byte("TOPSECRETCONTENT")) {
			t.Errorf("GET %s: %d %q", p, a.status, a.body)
		}
	}
	cases := map[string]bool{
		"/tile/0/000":               true,
		"/tile/0/x001/x234/067.p/8": true,
		"/tile/entries/x001/234":    true,
		"/tile/63/000":              true,
		"/tile/0/001/":              false,
		"/tile/0/x001":              false,
		"/tile/0/1":                 false,
		"/tile/+1/000":              false,
		"/tile/entries/000.p/":      false,
	}
	for p, want := range cases {
		if _, got := server.TilePath(p); got != want {
			t.Errorf("TilePath(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestStatusCodes: every answer of POST /v1/entries, on a real socket.
func TestStatusCodes(t *testing.T) {
	e := start(t, func(c *server.Config) { c.MaxBodyBytes = 64 << 10 })
	good := e.receipt(nil, "s", 0)

	tampered := func() []byte {
		env, err := evidence.ParseEnvelope(good, evidence.MaxRecordBytes)
		if err != nil {
			t.Fatal(err)
		}
		env.Payload = bytes.Replace(env.Payload, []byte("wallet-signer-eu-1"), []byte("wallet-signer-eu-2"), 1)
		b, _ := json.Marshal(env)
		return b
	}()
	signedGarbage, err := evidence.Sign(context.Background(), evidence.PayloadType, []byte(`{"not":"a statement"}`), e.fx.Receipts)
	if err != nil {
		t.Fatal(err)
	}
	wrongType, err := evidence.Sign(context.Background(), "text/plain", []byte("hello"), e.fx.Receipts)
	if err != nil {
		t.Fatal(err)
	}
	twoSigs, err := func() ([]byte, error) {
		st, err := evidence.NewStatement(&evidence.SigningReceipt{At: evidence.AtTime(ingesttest.Start), Scheme: evidence.SchemeP256DER, PublicKey: e.fx.KeySPKI, Digest: "00", Signature: []byte{1}, Operator: "o", RequestID: "r"}, e.fx.Key)
		if err != nil {
			return nil, err
		}
		return evidence.SignStatement(context.Background(), st, e.fx.Receipts, e.fx.Policy)
	}()
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte(" "), 65<<10)

	tests := []struct {
		name   string
		body   []byte
		status int
		reason string
	}{
		{"one envelope", good, 200, ""},
		{"batch", mustBatch(t, e.receipt(nil, "s", 1), e.receipt(nil, "s", 2)), 200, ""},
		{"not JSON", []byte("hello"), 400, ingest.ReasonMalformed},
		{"JSON array", []byte("[1,2]"), 400, ingest.ReasonMalformed},
		{"empty body", nil, 400, ingest.ReasonMalformed},
		{"no payloadType", []byte(`{"payload":"e30=","signatures":[{"sig":"AAAA"}]}`), 400, ingest.ReasonMalformed},
		{"no signatures", []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`), 400, ingest.ReasonMalformed},
		{"unknown member", bytes.Replace(good, []byte(`{"payloadType"`), []byte(`{"x":1,"payloadType"`), 1), 400, ingest.ReasonMalformed},
		{"duplicate member", bytes.Replace(good, []byte(`{"payloadType":"application/vnd.in-toto+json"`), []byte(`{"payloadType":"application/vnd.in-toto+json","payloadType":"application/vnd.in-toto+json"`), 1), 400, ingest.ReasonMalformed},
		{"empty batch", []byte(`{"envelopes":[]}`), 400, ingest.ReasonMalformed},
		{"batch with extra member", []byte(`{"envelopes":[` + string(good) + `],"x":1}`), 400, ingest.ReasonMalformed},
		{"wrong payloadType", wrongType, 400, ingest.ReasonMalformed},
		{"signed non-statement", signedGarbage, 400, ingest.ReasonMalformed},
		{"tampered payload", tampered, 401, ingest.ReasonBadSignature},
		{"unknown signer", e.receipt(e.fx.Stranger, "s", 3), 403, ingest.ReasonUnknownKey},
		{"collector not allowed this predicate", e.receipt(e.fx.Policy, "s", 4), 403, ingest.ReasonNotAllowed},
		{"two signatures", twoSigs, 403, ingest.ReasonNotAllowed},
		{"batch with one bad envelope", mustBatch(t, e.receipt(nil, "s", 5), e.receipt(e.fx.Stranger, "s", 6)), 403, ingest.ReasonUnknownKey},
		{"body over the limit", append(append([]byte{}, good...), big...), 413, ingest.ReasonTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(http.MethodPost, ingest.PathEntries, tc.body)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if tc.reason == "" {
				return
			}
			var ae ingest.Error
			if err := json.Unmarshal(a.body, &ae); err != nil {
				t.Fatalf("error body %q: %v", a.body, err)
			}
			if ae.Reason != tc.reason || ae.Status != tc.status || ae.Message == "" {
				t.Errorf("error %+v, want reason %s", ae, tc.reason)
			}
		})
	}
	// The batch with a bad envelope names it, and logged nothing.
	a := e.do(http.MethodPost, ingest.PathEntries, mustBatch(t, e.receipt(nil, "s", 7), e.receipt(e.fx.Stranger, "s", 8)))
	var ae ingest.Error
	if json.Unmarshal(a.body, &ae) != nil || ae.Entry == nil || *ae.Entry != 1 {
		t.Errorf("batch error %s: want entry 1", a.body)
	}
	// A chunked body (no Content-Length) over the limit is cut at the limit.
	req, _ := http.NewRequest(http.MethodPost, e.url+ingest.PathEntries, io.MultiReader(bytes.NewReader(good), bytes.NewReader(big)))
	req.ContentLength = -1
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked body over the limit: %d, want 413", resp.StatusCode)
	}
	// Other paths and methods.
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/nope", 404},
		{"GET", "/v1/entries/999999", 404},
		{"GET", "/v1/entries/01", 400},
		{"GET", "/v1/proofs/inclusion?index=x", 400},
		{"GET", "/v1/proofs/inclusion?index=5&size=3", 400},
		{"GET", "/v1/proofs/inclusion?index=0&size=999999", 404},
		{"GET", "/v1/proofs/consistency?from=0&to=2", 400},
		{"GET", "/v1/proofs/consistency?from=1&to=999999", 404},
		{"GET", "/v1/bundles/rot-1", 404},
		{"PUT", "/v1/entries", 405},
		{"GET", "/v1/entries", 405},
	} {
		if a := e.do(c.method, c.path, nil); a.status != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, a.status, c.status, a.body)
		}
	}
	// The metrics count what happened.
	m := string(e.do("GET", "/metrics", nil).body)
	for _, want := range []string{
		"keytrail_appends_total 3\n",
		`keytrail_rejects_total{reason="bad-signature"} 1`,
		`keytrail_rejects_total{reason="too-large"} 2`,
		`keytrail_rejects_total{reason="unknown-signer"} 3`,
		"keytrail_log_size 3\n",
		`keytrail_submit_duration_seconds_bucket{le="+Inf"} 2`,
		"keytrail_append_duration_seconds_count 3\n",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// TestOverload: beyond MaxInflightEntries, 503 with Retry-After.
func TestOverload(t *testing.T) {
	e := start(t, func(c *server.Config) { c.MaxInflightEntries = 2; c.RetryAfter = 3 * time.Second })
	a := e.do(http.MethodPost, ingest.PathEntries, mustBatch(t, e.receipt(nil, "o", 0), e.receipt(nil, "o", 1), e.receipt(nil, "o", 2)))
	if a.status != 503 || a.header.Get("Retry-After") != "3" {
		t.Fatalf("status %d, Retry-After %q: %s", a.status, a.header.Get("Retry-After"), a.body)
	}
	// Within the limit it is accepted.
	if res, a := e.submit(mustBatch(t, e.receipt(nil, "o", 0), e.receipt(nil, "o", 1))); res == nil {
		t.Fatalf("%d %s", a.status, a.body)
	}
	// Too many bytes in progress: 503.
	e3 := start(t, func(c *server.Config) { c.MaxInflightBytes = 1000 })
	if a := e3.do(http.MethodPost, ingest.PathEntries, e3.receipt(nil, "o", 0)); a.status != 503 || a.header.Get("Retry-After") == "" {
		t.Fatalf("over the byte budget: %d %s", a.status, a.body)
	}
	// Too many requests at once: 503 too.
	e2 := start(t, func(c *server.Config) { c.MaxRequests = 1 })
	pr, pw := io.Pipe()
	go func() {
		req, _ := http.NewRequest(http.MethodPost, e2.url+ingest.PathEntries, pr)
		resp, err := e2.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	pw.Write([]byte(`{"envelopes":[`)) // the first request holds the only slot
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := e2.do(http.MethodGet, "/healthz", nil)
		if a.status == 503 {
			if a.header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 503 while the only request slot is taken: %d", a.status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	pw.CloseWithError(errors.New("done"))
}

// TestExactlyOnce: the same envelope submitted again, or many times at once,
// is one entry with one index.
func TestExactlyOnce(t *testing.T) {
	e := start(t, nil)
	env := e.receipt(nil, "x", 0)
	first, a := e.submit(env)
	if first == nil {
		t.Fatalf("%d %s", a.status, a.body)
	}
	// Again, alone, and reformatted (the same envelope, other JSON spacing).
	var pretty bytes.Buffer
	json.Indent(&pretty, env, "", "  ")
	for _, body := range [][]byte{env, pretty.Bytes(), mustBatch(t, env)} {
		again, a := e.submit(body)
		if again == nil {
			t.Fatalf("%d %s", a.status, a.body)
		}
		if again.Entries[0].Index != first.Entries[0].Index {
			t.Fatalf("resubmission got index %d, first %d", again.Entries[0].Index, first.Entries[0].Index)
		}
	}
	// 32 concurrent submissions of a new envelope.
	env2 := e.receipt(nil, "x", 1)
	var wg sync.WaitGroup
	idx := make([]uint64, 32)
	var failed atomic.Int32
	for i := range idx {
		wg.Go(func() {
			res, _ := e.submit(env2)
			if res == nil {
				failed.Add(1)
				return
			}
			idx[i] = res.Entries[0].Index
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d submissions failed", failed.Load())
	}
	for _, i := range idx {
		if i != idx[0] {
			t.Fatalf("concurrent identical submissions got indices %v", idx)
		}
	}
	cp, err := e.log.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := checkpoint.ParseUnverified(cp)
	if c.Size != 2 {
		t.Fatalf("log size %d after two distinct envelopes, want 2", c.Size)
	}
}

// TestNoURLDereference: a submission full of URLs pointing at a listener
// makes the server open no connection (ATTACKS.md 31).
func TestNoURLDereference(t *testing.T) {
	trap, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer trap.Close()
	var hits atomic.Int32
	go func() {
		for {
			c, err := trap.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			c.Close()
		}
	}()
	e := start(t, nil)
	u := "http://" + trap.Addr().String() + "/x"
	r := &evidence.SigningReceipt{At: evidence.AtTime(ingesttest.Start), Scheme: evidence.SchemeP256DER, PublicKey: e.fx.KeySPKI, Digest: u, Signature: []byte(u), Operator: u, RequestID: u, Chain: u, TxHash: u}
	st, err := evidence.NewStatement(r, e.fx.Key)
	if err != nil {
		t.Fatal(err)
	}
	env, err := evidence.SignStatement(context.Background(), st, e.fx.Receipts)
	if err != nil {
		t.Fatal(err)
	}
	withURLKeyID := bytes.Replace(env, []byte(`"keyid":"`), []byte(`"keyid":"`+u+`#`), 1)
	for _, body := range [][]byte{env, withURLKeyID, []byte(`{"payloadType":"` + u + `","payload":"","signatures":[{"keyid":"` + u + `","sig":"AA=="}]}`)} {
		e.do(http.MethodPost, ingest.PathEntries, body)
	}
	time.Sleep(100 * time.Millisecond)
	if n := hits.Load(); n != 0 {
		t.Fatalf("the server connected to a URL from a submission %d times", n)
	}
}

// TestGracefulShutdown: a request in flight when shutdown starts is answered
// and its entry is in the log; new requests are refused.
func TestGracefulShutdown(t *testing.T) {
	e := start(t, nil)
	env := e.receipt(nil, "g", 0)
	pr, pw := io.Pipe()
	type result struct {
		status int
		body   []byte
		err    error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, e.url+ingest.PathEntries, pr)
		resp, err := e.client.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{status: resp.StatusCode, body: b}
	}()
	pw.Write(env[:10])
	time.Sleep(100 * time.Millisecond) // the request is being read
	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }()
	time.Sleep(100 * time.Millisecond) // shutdown has begun
	pw.Write(env[10:])
	pw.Close()
	r := <-got
	if r.err != nil || r.status != 200 {
		t.Fatalf("in-flight request: %v %d %s", r.err, r.status, r.body)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// Reopen: the acknowledged entry is there.
	l, err := posix.Open(context.Background(), posix.Config{Dir: e.dir, KeyIDs: evidence.SubjectKeyIDs, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	b, err := l.Entry(context.Background(), 0)
	if err != nil || !bytes.Equal(b, env) {
		t.Fatalf("entry 0 after shutdown: %v", err)
	}
}

// TestMTLS: with client certificates, the certificate must name the signer.
func TestMTLS(t *testing.T) {
	ca, caKey := newCA(t)
	serverCert := issue(t, ca, caKey, "127.0.0.1", true)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	e := start(t, func(c *server.Config) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	})
	clientFor := func(cert *tls.Certificate) *http.Client {
		tc := &tls.Config{RootCAs: pool}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: time.Minute}
	}
	env := e.receipt(nil, "m", 0)
	post := func(c *http.Client) (int, error) {
		resp, err := c.Post(e.url+ingest.PathEntries, "application/json", bytes.NewReader(env))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	right := issue(t, ca, caKey, ingesttest.ReceiptCollector, false)
	wrong := issue(t, ca, caKey, ingesttest.PolicyCollector, false)
	if s, err := post(clientFor(&wrong)); err != nil || s != 403 {
		t.Errorf("certificate of another collector: %d %v, want 403", s, err)
	}
	if s, err := post(clientFor(&right)); err != nil || s != 200 {
		t.Errorf("certificate of the signer: %d %v, want 200", s, err)
	}
	if _, err := post(clientFor(nil)); err == nil {
		t.Errorf("no client certificate: accepted")
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, k
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, isServer bool) tls.Certificate {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if isServer {
		tmpl.IPAddresses = []net.IP{net.ParseIP(name)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// TestBundles: GET /v1/bundles/{id} builds and signs the rotation's bundle.
func TestBundles(t *testing.T) {
	fx, err := ingesttest.New()
	if err != nil {
		t.Fatal(err)
	}
	rotDir := t.TempDir()
	_, rb, err := fx.Rotation("rot-1")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(rotDir, "anything.json"), rb, 0o644)
	os.WriteFile(filepath.Join(rotDir, "junk.json"), []byte("{"), 0o644)
	v, _ := noteVerifier(fx.LogVKey)
	e := startWith(t, fx, t.TempDir(), func(c *server.Config) {
		c.Bundles = &server.BundleConfig{RotationsDir: rotDir, Signer: fx.Operator, LogVerifier: v}
	})
	if a := e.do("GET", "/v1/bundles/rot-1", nil); a.status != 404 || !strings.Contains(string(a.body), "no records") {
		t.Errorf("bundle of an empty log: %d %s", a.status, a.body)
	}
	var envs [][]byte
	for i := range 5 {
		envs = append(envs, e.receipt(nil, "r", i))
	}
	if res, a := e.submit(mustBatch(t, envs...)); res == nil {
		t.Fatalf("%d %s", a.status, a.body)
	}
	a := e.do("GET", "/v1/bundles/rot-1", nil)
	if a.status != 200 || a.header.Get("Content-Type") != evidence.BundleMediaType {
		t.Fatalf("bundle: %d %s", a.status, a.body[:min(len(a.body), 300)])
	}
	b, _, err := evidence.OpenBundle(a.body, oneKey{fx.Operator.PublicKey()})
	if err != nil {
		t.Fatalf("served bundle: %v", err)
	}
	if len(b.Entries) != 5 || b.Rotation.ID != "rot-1" {
		t.Fatalf("bundle of %s has %d entries, want 5", b.Rotation.ID, len(b.Entries))
	}
	for _, c := range []struct {
		path   string
		status int
	}{{"/v1/bundles/rot-2", 404}, {"/v1/bundles/..%2f..%2fetc", 400}, {"/v1/bundles/anything", 404}} {
		if a := e.do("GET", c.path, nil); a.status != c.status {
			t.Errorf("GET %s: %d, want %d", c.path, a.status, c.status)
		}
	}
}

type oneKey struct{ k *evidence.PublicKey }

func (o oneKey) Key(d string) *evidence.PublicKey {
	if d == o.k.Digest {
		return o.k
	}
	return nil
}
func (o oneKey) Keys() []*evidence.PublicKey { return []*evidence.PublicKey{o.k} }

func noteVerifier(vkey string) (note.Verifier, error) { return note.NewVerifier(vkey) }

// TestSlowClients: a client that stalls in its headers or its body is cut off
// after ReadHeaderTimeout or BodyTimeout (a body with 408).
func TestSlowClients(t *testing.T) {
	e := start(t, func(c *server.Config) {
		c.ReadHeaderTimeout = 200 * time.Millisecond
		c.BodyTimeout = 300 * time.Millisecond
	})
	addr := strings.TrimPrefix(e.url, "http://")
	for _, c := range []struct{ name, send string }{
		{"headers", "POST /v1/entries HTTP/1.1\r\nHost: x\r\n"},
		{"body", "POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"payloadType\""},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		conn.Write([]byte(c.send))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(conn) // returns when the server closes the connection
		conn.Close()
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("%s: the server waited %v for a stalled client", c.name, el)
		}
		if c.name == "body" && !bytes.Contains(b, []byte("408")) {
			t.Errorf("stalled body: answer %q, want 408", b)
		}
	}
}
