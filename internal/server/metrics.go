package server

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// metrics is a small Prometheus text exposition (format 0.0.4) of the few
// series the server keeps. It avoids a dependency on client_golang for five
// counters and two histograms.
type metrics struct {
	appended  atomic.Uint64 // entries acknowledged
	requests  atomic.Uint64 // POST /v1/entries requests answered 200
	inflight  atomic.Int64  // entries being verified or appended
	bodyBytes atomic.Int64  // in-flight byte budget taken by submissions (2 per body byte)
	connsOpen atomic.Int64  // connections open, counted by Serve's per-client limit
	refused   atomic.Uint64 // connections closed at accept: their client had too many
	mu        sync.Mutex
	rejects   map[string]uint64 // by reason
	submitLat histogram         // POST /v1/entries, whole request
	appendLat histogram         // one ledger append
}

// Latency buckets, seconds.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func newMetrics() *metrics {
	return &metrics{
		rejects:   map[string]uint64{},
		submitLat: newHistogram(latencyBuckets),
		appendLat: newHistogram(latencyBuckets),
	}
}

func (m *metrics) reject(reason string) {
	m.mu.Lock()
	m.rejects[reason]++
	m.mu.Unlock()
}

type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64 // per bucket, not cumulative; last is +Inf
	sum    float64
	n      uint64
}

func newHistogram(bounds []float64) histogram {
	return histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(d time.Duration) { h.observeN(d, 1) }

// observeN records n observations of d (n entries appended together).
func (h *histogram) observeN(d time.Duration, n int) {
	s := d.Seconds()
	i := sort.SearchFloat64s(h.bounds, s)
	h.mu.Lock()
	h.counts[i] += uint64(n)
	h.sum += s * float64(n)
	h.n += uint64(n)
	h.mu.Unlock()
}

func (h *histogram) write(w io.Writer, name, help string) {
	h.mu.Lock()
	counts := slices.Clone(h.counts)
	sum, n := h.sum, h.n
	h.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var cum uint64
	for i, b := range h.bounds {
		cum += counts[i]
		fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", name, fmtFloat(b), cum)
	}
	cum += counts[len(h.bounds)]
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", name, cum, name, fmtFloat(sum), name, n)
}

func fmtFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return fmt.Sprintf("%g", f)
}

// write writes the exposition; logSize is the latest checkpoint's size, or -1
// if it could not be read; requests is the number of requests in progress.
func (m *metrics) write(w io.Writer, logSize int64, requests int) {
	fmt.Fprintf(w, "# HELP keytrail_appends_total Entries acknowledged by POST /v1/entries (durably integrated, covered by a checkpoint).\n# TYPE keytrail_appends_total counter\nkeytrail_appends_total %d\n", m.appended.Load())
	fmt.Fprintf(w, "# HELP keytrail_submissions_total POST /v1/entries requests answered 200.\n# TYPE keytrail_submissions_total counter\nkeytrail_submissions_total %d\n", m.requests.Load())
	m.mu.Lock()
	reasons := make([]string, 0, len(m.rejects))
	for r := range m.rejects {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "# HELP keytrail_rejects_total Requests refused, by reason.\n# TYPE keytrail_rejects_total counter\n")
	for _, r := range reasons {
		fmt.Fprintf(w, "keytrail_rejects_total{reason=%q} %d\n", r, m.rejects[r])
	}
	m.mu.Unlock()
	fmt.Fprintf(w, "# HELP keytrail_inflight_entries Entries being verified or appended.\n# TYPE keytrail_inflight_entries gauge\nkeytrail_inflight_entries %d\n", m.inflight.Load())
	fmt.Fprintf(w, "# HELP keytrail_inflight_body_bytes In-flight byte budget taken by submissions: two bytes per body byte received.\n# TYPE keytrail_inflight_body_bytes gauge\nkeytrail_inflight_body_bytes %d\n", m.bodyBytes.Load())
	fmt.Fprintf(w, "# HELP keytrail_requests_in_progress Requests being handled, of every kind (this one included).\n# TYPE keytrail_requests_in_progress gauge\nkeytrail_requests_in_progress %d\n", requests)
	fmt.Fprintf(w, "# HELP keytrail_connections_open Client connections open.\n# TYPE keytrail_connections_open gauge\nkeytrail_connections_open %d\n", m.connsOpen.Load())
	fmt.Fprintf(w, "# HELP keytrail_connections_refused_total Connections closed as soon as accepted: their client already had the most it may.\n# TYPE keytrail_connections_refused_total counter\nkeytrail_connections_refused_total %d\n", m.refused.Load())
	m.submitLat.write(w, "keytrail_submit_duration_seconds", "Latency of POST /v1/entries, from the request to the acknowledgement.")
	m.appendLat.write(w, "keytrail_append_duration_seconds", "Latency of one ledger append, until a published checkpoint covers it.")
	if logSize >= 0 {
		fmt.Fprintf(w, "# HELP keytrail_log_size Size of the latest published checkpoint.\n# TYPE keytrail_log_size gauge\nkeytrail_log_size %d\n", logSize)
	}
}
