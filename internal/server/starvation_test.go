package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keytrail/keytrail/ingest"
	"github.com/keytrail/keytrail/internal/server"
)

// metric reads one unlabelled series from /metrics; -1 if it is absent.
func (e *env) metric(name string) int64 {
	e.t.Helper()
	a := e.do(http.MethodGet, ingest.PathMetrics, nil)
	sc := bufio.NewScanner(bytes.NewReader(a.body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				e.t.Fatalf("%s: %v", name, err)
			}
			return n
		}
	}
	return -1
}

// waitMetric waits, at most 10 s, until the series reaches at least want.
func (e *env) waitMetric(name string, want int64) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.metric(name)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s is %d after 10s, want at least %d", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// slowBody is the start of a submission that announces the largest body and
// sends one byte of it.
const slowBody = "POST /v1/entries HTTP/1.1\r\nHost: keytrail\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{"

// openSlow opens n connections from the loopback address from (127.0.0.0/8
// is all loopback on Linux), each sending slowBody, 50 at a time; it returns
// those the server did not close at once. The test's cleanup closes them.
func openSlow(t *testing.T, addr, from string, n int) []net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conns := make([]net.Conn, n)
	sem := make(chan struct{}, 50)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := d.Dial("tcp", addr)
			if err == nil {
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Write([]byte(slowBody))
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if c != nil {
					c.Close()
				}
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Logf("from %s: %v", from, firstErr)
	}
	var open []net.Conn
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	t.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	return open
}

// TestKeylessStarvation (ATTACKS.md 44): 500 connections without keys, each
// announcing a body of the largest size and sending one byte of it, from ten
// addresses (under the per-client cap), do not keep a genuine collector out:
// its submissions get 200 within a second while all 500 are held open. The
// server takes body budget as bytes arrive; by the announced length, 128 such
// connections took the whole 256 MiB and everyone else got 503.
func TestKeylessStarvation(t *testing.T) {
	// A long grace keeps the slow bodies in progress for the whole test: what
	// is tested here is the budget, not the rate (TestMinBodyRate).
	e := start(t, func(c *server.Config) { c.BodyGrace = time.Minute })
	addr := strings.TrimPrefix(e.url, "http://")
	const perAddr, addrs = 50, 10
	var slow []net.Conn
	for i := range addrs {
		slow = append(slow, openSlow(t, addr, fmt.Sprintf("127.0.0.%d", 2+i), perAddr)...)
	}
	if len(slow) != perAddr*addrs {
		t.Fatalf("%d slow connections open, want %d", len(slow), perAddr*addrs)
	}
	// Every slow body is in the handler, holding a request slot and its byte.
	e.waitMetric("keytrail_requests_in_progress", perAddr*addrs+1)
	e.waitMetric("keytrail_inflight_body_bytes", 2*perAddr*addrs)

	for i, body := range [][]byte{
		e.receipt(nil, "genuine", 0),
		mustBatch(t, e.receipt(nil, "genuine", 1), e.receipt(nil, "genuine", 2), e.receipt(nil, "genuine", 3)),
	} {
		t0 := time.Now()
		res, a := e.submit(body)
		took := time.Since(t0)
		if res == nil {
			t.Fatalf("genuine submission %d with %d slow connections open: %d %s", i, len(slow), a.status, a.body)
		}
		t.Logf("genuine submission %d: 200 in %v with %d slow connections open", i, took.Round(time.Millisecond), len(slow))
		if took > time.Second {
			t.Errorf("genuine submission %d took %v, want under 1s", i, took)
		}
	}
	// The slow bodies were still there all along.
	if n := e.metric("keytrail_requests_in_progress"); n < perAddr*addrs+1 {
		t.Errorf("only %d requests in progress after the genuine submissions, want the %d slow ones still held", n, perAddr*addrs)
	}
}

// TestPerClientConnectionCap (ATTACKS.md 44): one address opening 200
// connections gets MaxConnsPerClient (64) of them; the rest are closed as soon
// as accepted, so that it cannot take the 100 request slots; a collector at
// another address still gets 200 within a second. Closed connections give
// their slots back.
func TestPerClientConnectionCap(t *testing.T) {
	e := start(t, func(c *server.Config) { c.MaxRequests = 100; c.BodyGrace = time.Minute })
	addr := strings.TrimPrefix(e.url, "http://")
	conns := openSlow(t, addr, "127.0.0.2", 200)
	// Those over the cap are closed by the server: reading them ends at once.
	held := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil && isTimeout(err) {
			held++
		}
	}
	if held != server.DefaultMaxConnsPerClient {
		t.Errorf("%d connections of one address held open, want %d", held, server.DefaultMaxConnsPerClient)
	}
	if n := e.metric("keytrail_connections_refused_total"); n < int64(200-server.DefaultMaxConnsPerClient) {
		t.Errorf("keytrail_connections_refused_total %d, want at least %d", n, 200-server.DefaultMaxConnsPerClient)
	}
	t0 := time.Now()
	if res, a := e.submit(e.receipt(nil, "capped", 0)); res == nil || time.Since(t0) > time.Second {
		t.Fatalf("genuine submission beside a capped client: %d %s in %v", a.status, a.body, time.Since(t0))
	}
	// Closing them frees the address's slots.
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.metric("keytrail_connections_open") > 1 {
		if time.Now().After(deadline) {
			t.Fatal("the closed connections still count after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if again := openSlow(t, addr, "127.0.0.2", server.DefaultMaxConnsPerClient); len(again) != server.DefaultMaxConnsPerClient {
		t.Errorf("after closing, %d of %d new connections accepted", len(again), server.DefaultMaxConnsPerClient)
	}
	e.waitMetric("keytrail_requests_in_progress", int64(server.DefaultMaxConnsPerClient)+1)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestMinBodyRate (ATTACKS.md 44): a body that trickles in slower than
// MinBodyRate after BodyGrace is cut off with 408 long before BodyTimeout (30
// s); a genuine body sent slowly but above the rate is logged.
func TestMinBodyRate(t *testing.T) {
	e := start(t, func(c *server.Config) { c.BodyGrace = 200 * time.Millisecond; c.MinBodyRate = 1000 })
	addr := strings.TrimPrefix(e.url, "http://")

	// 20 bytes every 100 ms: 200 bytes/s, under the rate.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Now()
	c.Write([]byte("POST /v1/entries HTTP/1.1\r\nHost: keytrail\r\nContent-Length: 100000\r\n\r\n"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		chunk := bytes.Repeat([]byte(" "), 20)
		for ctx.Err() == nil && time.Since(t0) < 5*time.Second {
			if _, err := c.Write(chunk); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	took := time.Since(t0)
	if err != nil {
		t.Fatalf("trickling body: no answer after %v: %v", took, err)
	}
	b, _ := io.ReadAll(resp.Body)
	t.Logf("trickling body: %d after %v: %s", resp.StatusCode, took.Round(time.Millisecond), b)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), ingest.ReasonTooSlow) || took > 2*time.Second {
		t.Errorf("trickling body: %d %s after %v, want 408 %s within 2s", resp.StatusCode, b, took, ingest.ReasonTooSlow)
	}
	cancel()

	// A genuine envelope sent in 100-byte pieces every 50 ms: 2,000 bytes/s.
	env := e.receipt(nil, "slow-but-fine", 0)
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < len(env); i += 100 {
			pw.Write(env[i:min(i+100, len(env))])
			time.Sleep(50 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, e.url+ingest.PathEntries, pr)
	req.ContentLength = int64(len(env))
	resp, err = e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("slow genuine body: %d %s", resp.StatusCode, b)
	}
}
