package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/ingest"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/ingesttest"
	"github.com/keytrail/keytrail/internal/server"
	"github.com/keytrail/keytrail/ledger/posix"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// serve runs a real server with a real embedded ledger on ln until the test ends.
func serve(t *testing.T, fx *ingesttest.Fixture, dir string, ln net.Listener) *posix.Log {
	t.Helper()
	l, err := posix.Open(context.Background(), posix.Config{Dir: dir, Signer: fx.LogSigner, KeyIDs: evidence.SubjectKeyIDs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Log: l, Trust: fx.Trust, TilesDir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		l.Close(context.Background())
	})
	return l
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func receipts(t *testing.T, fx *ingesttest.Fixture, signer *evidence.Signer, tag string, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		e, err := fx.Receipt(context.Background(), signer, tag, i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func logSize(t *testing.T, l *posix.Log) uint64 {
	cp, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := checkpoint.ParseUnverified(cp)
	if err != nil {
		t.Fatal(err)
	}
	return c.Size
}

func fixture(t *testing.T) *ingesttest.Fixture {
	fx, err := ingesttest.New()
	if err != nil {
		t.Fatal(err)
	}
	return fx
}

// TestClientRetries: 503 answers (with Retry-After) and 502s are retried
// until the server takes the batch; a 4xx is not retried.
func TestClientRetries(t *testing.T) {
	fx := fixture(t)
	back := listen(t, "127.0.0.1:0")
	serve(t, fx, t.TempDir(), back)
	bu, _ := url.Parse("http://" + back.Addr().String())
	proxy := httputil.NewSingleHostReverseProxy(bu)
	var calls atomic.Int32
	front := listen(t, "127.0.0.1:0")
	fs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
		case 2:
			w.WriteHeader(502)
		default:
			proxy.ServeHTTP(w, r)
		}
	})}
	go fs.Serve(front)
	defer fs.Close()

	c, err := ingest.NewClient("http://"+front.Addr().String(), &ingest.ClientOptions{MinBackoff: 10 * time.Millisecond, Logger: quiet, LogVerifier: mustVerifier(t, fx.LogVKey)})
	if err != nil {
		t.Fatal(err)
	}
	envs := receipts(t, fx, nil, "retry", 3)
	start := time.Now()
	res, err := c.Submit(context.Background(), envs)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || len(res.Entries) != 3 {
		t.Fatalf("%d calls, %d entries", calls.Load(), len(res.Entries))
	}
	if time.Since(start) < time.Second {
		t.Errorf("Retry-After: 1 not honoured (%v)", time.Since(start))
	}
	// A reformatted envelope is logged in its canonical form; the client
	// accepts that leaf hash.
	var pretty bytes.Buffer
	json.Indent(&pretty, envs[0], "", "  ")
	again, err := c.Submit(context.Background(), [][]byte{pretty.Bytes()})
	if err != nil || again.Entries[0].Index != res.Entries[0].Index {
		t.Fatalf("reformatted envelope: %v", err)
	}
	// A refusal is final.
	calls.Store(10)
	_, err = c.Submit(context.Background(), receipts(t, fx, fx.Stranger, "retry", 1))
	var ae *ingest.Error
	if !errors.Is(err, ingest.ErrRejected) || !errors.As(err, &ae) || ae.Status != 403 || calls.Load() != 11 {
		t.Fatalf("stranger: %v after %d calls", err, calls.Load()-10)
	}
	// Unreachable: ErrUnavailable after MaxAttempts.
	dead := listen(t, "127.0.0.1:0")
	addr := dead.Addr().String()
	dead.Close()
	c2, _ := ingest.NewClient("http://"+addr, &ingest.ClientOptions{MaxAttempts: 3, MinBackoff: time.Millisecond, Logger: quiet})
	if _, err := c2.Submit(context.Background(), envs); !errors.Is(err, ingest.ErrUnavailable) {
		t.Fatalf("unreachable: %v", err)
	}
}

// TestSpool: records pushed while the server is down wait in the spool and
// are sent, in order and once, when it comes back; a record acknowledged but
// not yet deleted (a crash) is sent again and keeps its index.
func TestSpool(t *testing.T) {
	fx := fixture(t)
	reserved := listen(t, "127.0.0.1:0")
	addr := reserved.Addr().String()
	reserved.Close()
	c, err := ingest.NewClient("http://"+addr, &ingest.ClientOptions{MaxAttempts: 2, MinBackoff: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	spoolDir := t.TempDir()
	sp, err := ingest.OpenSpool(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.OpenSpool(spoolDir); err == nil {
		t.Fatal("a second OpenSpool of a locked spool succeeded")
	}
	envs := receipts(t, fx, nil, "spool", 6)
	ctx := context.Background()
	for _, e := range envs[:5] {
		if _, err := sp.Push(ctx, c, e); !errors.Is(err, ingest.ErrSpooled) {
			t.Fatalf("push while down: %v", err)
		}
	}
	if n, _ := sp.Len(); n != 5 {
		t.Fatalf("spool holds %d, want 5", n)
	}
	// A crash in the middle of an Add leaves a temporary file; reopening drops it.
	os.WriteFile(filepath.Join(spoolDir, ".tmp-123"), []byte("half"), 0o600)
	sp.Close()
	if sp, err = ingest.OpenSpool(spoolDir); err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if _, err := os.Stat(filepath.Join(spoolDir, ".tmp-123")); err == nil {
		t.Fatal("temporary file survived reopening")
	}

	// The server comes back on the same address.
	l := serve(t, fx, t.TempDir(), listen(t, addr))
	// Envelope 0 reaches the log directly (as if acknowledged just before a
	// crash prevented its deletion from the spool).
	direct, err := c.Submit(ctx, envs[:1])
	if err != nil {
		t.Fatal(err)
	}
	// Push of envelope 5 sends the five waiting first, then it.
	last, err := sp.Push(ctx, c, envs[5])
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := sp.Len(); n != 0 {
		t.Fatalf("spool holds %d after draining", n)
	}
	if size := logSize(t, l); size != 6 {
		t.Fatalf("log size %d, want 6 (no duplicates)", size)
	}
	if last == nil || last.Index > 5 {
		t.Fatalf("the last pushed record: %+v", last)
	}
	// One envelope per request: the log's order is exactly the spool's.
	sp.BatchSize = 1
	more := receipts(t, fx, nil, "spool-more", 4)
	for _, e := range more {
		if err := sp.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	acked, err := sp.Drain(ctx, c)
	if err != nil || len(acked) != 4 {
		t.Fatalf("drain: %d, %v", len(acked), err)
	}
	for i, a := range acked {
		if a.Index != uint64(6+i) {
			t.Fatalf("spool order: entry %d got index %d, want %d", i, a.Index, 6+i)
		}
	}
	got, err := l.Entry(ctx, direct.Entries[0].Index)
	if err != nil || string(got) != string(envs[0]) {
		t.Fatalf("entry %d: %v", direct.Entries[0].Index, err)
	}
}

// TestSpoolRejected: a record the server refuses moves to rejected/ with the
// reason, and does not block the ones behind it.
func TestSpoolRejected(t *testing.T) {
	fx := fixture(t)
	ln := listen(t, "127.0.0.1:0")
	l := serve(t, fx, t.TempDir(), ln)
	c, _ := ingest.NewClient("http://"+ln.Addr().String(), &ingest.ClientOptions{Logger: quiet})
	dir := t.TempDir()
	sp, err := ingest.OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	good := receipts(t, fx, nil, "rej", 2)
	bad := receipts(t, fx, fx.Policy, "rej-bad", 1)[0]
	for _, e := range [][]byte{good[0], bad, good[1]} {
		if err := sp.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	acked, err := sp.Drain(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(acked) != 2 || logSize(t, l) != 2 {
		t.Fatalf("%d acknowledged, log size %d; want 2, 2", len(acked), logSize(t, l))
	}
	reason, err := os.ReadFile(filepath.Join(dir, "rejected", "00000000000000000001.dsse.reason"))
	if err != nil || !strings.Contains(string(reason), "403") {
		t.Fatalf("rejected reason %q: %v", reason, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rejected", "00000000000000000001.dsse")); err != nil {
		t.Fatal(err)
	}
	if err := sp.Add([]byte("not an envelope")); err == nil {
		t.Fatal("Add accepted a non-envelope")
	}
}

func TestParseSubmission(t *testing.T) {
	fx := fixture(t)
	e := receipts(t, fx, nil, "p", 2)
	batch, _ := ingest.MarshalBatch(e)
	for _, c := range []struct {
		body string
		n    int
	}{
		{string(e[0]), 1},
		{string(batch), 2},
		{` {"envelopes": [` + string(e[0]) + `]}`, 1},
		{`{"payloadType":"x","envelopes":[]}`, 1}, // an envelope (that will not parse)
		{`{"envelopes":[],"x":1}`, -1},
		{`{"envelopes":{}}`, -1},
		{`{"envelopes":[1],"envelopes":[2]}`, -1},
		{`[]`, -1},
		{``, -1},
		{`"x"`, -1},
	} {
		got, err := ingest.ParseSubmission([]byte(c.body), 1<<20)
		if c.n < 0 {
			if err == nil {
				t.Errorf("ParseSubmission(%.40q) accepted", c.body)
			}
			continue
		}
		if err != nil || len(got) != c.n {
			t.Errorf("ParseSubmission(%.40q) = %d, %v; want %d", c.body, len(got), err, c.n)
		}
	}
}
