package server

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/keytrail/keytrail/ingest"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/regfile"
	"github.com/keytrail/keytrail/ledger"
)

func leafHash(e []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(e) }

// ClientIdentities returns the identities a client certificate names: its
// subject common name, DNS names, URIs and e-mail addresses. A submission over
// mTLS is accepted only if one of them is the signer's ID in the trust file.
func ClientIdentities(c *x509.Certificate) []string {
	var ids []string
	if c.Subject.CommonName != "" {
		ids = append(ids, c.Subject.CommonName)
	}
	ids = append(ids, c.DNSNames...)
	for _, u := range c.URIs {
		ids = append(ids, u.String())
	}
	ids = append(ids, c.EmailAddresses...)
	return ids
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.isDraining() {
		s.fail(w, http.StatusServiceUnavailable, ingest.ReasonUnavailable, "shutting down", nil)
		return
	}
	if _, err := s.log.Checkpoint(r.Context()); err != nil {
		s.fail(w, http.StatusServiceUnavailable, ingest.ReasonUnavailable, "ledger: "+err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	size := int64(-1)
	if cp, err := s.log.Checkpoint(r.Context()); err == nil {
		if c, err := checkpoint.ParseUnverified(cp); err == nil {
			size = int64(c.Size)
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.m.write(w, size, len(s.reqs))
}

func (s *Server) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := s.log.Checkpoint(r.Context())
	if err != nil {
		s.ledgerError(w, "checkpoint", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp)
}

// handleEntry: GET /v1/entries/{index}, the exact logged bytes of one entry.
func (s *Server) handleEntry(w http.ResponseWriter, r *http.Request) {
	idx, err := parseUint(r.PathValue("index"))
	if err != nil {
		s.fail(w, http.StatusBadRequest, ingest.ReasonMalformed, "index: "+err.Error(), nil)
		return
	}
	e, err := s.log.Entry(r.Context(), idx)
	if err != nil {
		s.ledgerError(w, fmt.Sprintf("entry %d", idx), err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(e)
}

// ledgerError answers a failed read: 404 beyond the published tree.
func (s *Server) ledgerError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, ledger.ErrOutOfRange):
		s.fail(w, http.StatusNotFound, ingest.ReasonNotFound, what+": beyond the latest checkpoint", nil)
	case errors.Is(err, ledger.ErrClosed):
		s.fail(w, http.StatusServiceUnavailable, ingest.ReasonUnavailable, what+": the server is shutting down", nil)
	default:
		s.logger.Error("ledger read failed", "what", what, "err", err)
		s.fail(w, http.StatusInternalServerError, ingest.ReasonInternal, what+": the ledger failed to answer", nil)
	}
}

// parseUint parses a canonical decimal uint64 (no sign, no leading zeros).
func parseUint(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("missing")
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	return n, nil
}

// InclusionResponse is the answer of GET /v1/proofs/inclusion.
type InclusionResponse struct {
	Index    uint64   `json:"index"`
	TreeSize uint64   `json:"treeSize"`
	Proof    [][]byte `json:"proof"`
	// Checkpoint is the latest checkpoint, when the request named no size.
	Checkpoint string `json:"checkpoint,omitempty"`
}

// ConsistencyResponse is the answer of GET /v1/proofs/consistency.
type ConsistencyResponse struct {
	From       uint64   `json:"from"`
	To         uint64   `json:"to"`
	Proof      [][]byte `json:"proof"`
	Checkpoint string   `json:"checkpoint,omitempty"`
}

// querySize reads the tree size parameter name; if absent, the latest
// checkpoint's size and the checkpoint.
func (s *Server) querySize(r *http.Request, name string) (uint64, []byte, error) {
	if v := r.URL.Query().Get(name); v != "" || r.URL.Query().Has(name) {
		n, err := parseUint(v)
		return n, nil, err
	}
	cp, err := s.log.Checkpoint(r.Context())
	if err != nil {
		return 0, nil, err
	}
	c, err := checkpoint.ParseUnverified(cp)
	if err != nil {
		return 0, nil, err
	}
	return c.Size, cp, nil
}

func (s *Server) handleInclusion(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	idx, err := parseUint(q.Get("index"))
	if err != nil {
		s.fail(w, http.StatusBadRequest, ingest.ReasonMalformed, "index: "+err.Error(), nil)
		return
	}
	size, cp, err := s.querySize(r, "size")
	if err != nil {
		s.fail(w, http.StatusBadRequest, ingest.ReasonMalformed, "size: "+err.Error(), nil)
		return
	}
	if idx >= size {
		s.fail(w, http.StatusBadRequest, ingest.ReasonMalformed, fmt.Sprintf("index %d is not below size %d", idx, size), nil)
		return
	}
	p, err := s.log.InclusionProof(r.Context(), idx, size)
	if err != nil {
		s.ledgerError(w, fmt.Sprintf("inclusion proof of %d in %d", idx, size), err)
		return
	}
	writeJSON(w, &InclusionResponse{Index: idx, TreeSize: size, Proof: nonNil(p), Checkpoint: string(cp)})
}

func (s *Server) handleConsistency(w http.ResponseWriter, r *http.Request) {
	from, err := parseUint(r.URL.Query().Get("from"))
	if err != nil {
		s.fail(w, http.StatusBadRequest, ingest.ReasonMalformed, "from: "+err.Error(), nil)
		return
	}
	to, cp, err := s.querySize(r, "to")
	if err != nil {
		s.fail(w, http.StatusBadRequest, ingest.ReasonMalformed, "to: "+err.Error(), nil)
		return
	}
	if from == 0 || from > to {
		s.fail(w, http.StatusBadRequest, ingest.ReasonMalformed, fmt.Sprintf("want 0 < from <= to, have from=%d to=%d", from, to), nil)
		return
	}
	p, err := s.log.ConsistencyProof(r.Context(), from, to)
	if err != nil {
		s.ledgerError(w, fmt.Sprintf("consistency proof %d to %d", from, to), err)
		return
	}
	writeJSON(w, &ConsistencyResponse{From: from, To: to, Proof: nonNil(p), Checkpoint: string(cp)})
}

func nonNil(p [][]byte) [][]byte {
	if p == nil {
		return [][]byte{}
	}
	return p
}

// tileServer serves the tlog-tiles paths of a ledger directory.
type tileServer struct {
	fsys *regfile.FS // inside dir, never blocking on a FIFO
}

func newTileServer(dir string) (*tileServer, error) {
	fsys, err := regfile.DirFS(dir)
	if err != nil {
		return nil, fmt.Errorf("server: tiles directory: %w", err)
	}
	return &tileServer{fsys: fsys}, nil
}

// TilePath returns the file a tlog-tiles URL path names, relative to the log
// directory, if p is exactly a tile or entry bundle path in the canonical
// form tlog-tiles specifies ("/tile/0/x001/234", "/tile/entries/000.p/7");
// anything else (other files, "..", redundant slashes, leading zeros, levels
// over 63) is refused.
func TilePath(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "/tile/")
	if !ok {
		return "", false
	}
	level, index, ok := strings.Cut(rest, "/")
	if !ok || len(p) > 128 {
		return "", false
	}
	i, w, err := layout.ParseTileIndexPartial(index)
	if err != nil {
		return "", false
	}
	var canon string
	if level == "entries" {
		canon = layout.EntriesPath(i, w)
	} else {
		l, err := layout.ParseTileLevel(level)
		if err != nil {
			return "", false
		}
		canon = layout.TilePath(l, i, w)
	}
	if "/"+canon != p {
		return "", false
	}
	return canon, true
}

func (s *Server) handleTile(w http.ResponseWriter, r *http.Request) {
	if s.tiles == nil {
		s.fail(w, http.StatusNotFound, ingest.ReasonNotFound, "this ledger has no tlog-tiles directory to serve", nil)
		return
	}
	rel, ok := TilePath(r.URL.Path)
	if !ok {
		s.fail(w, http.StatusNotFound, ingest.ReasonNotFound, fmt.Sprintf("%q is not a tlog-tiles path", r.URL.Path), nil)
		return
	}
	f, err := s.tiles.fsys.Open(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			s.fail(w, http.StatusNotFound, ingest.ReasonNotFound, rel+": not in the log (yet)", nil)
			return
		}
		s.logger.Error("tile read failed", "path", rel, "err", err)
		s.fail(w, http.StatusInternalServerError, ingest.ReasonInternal, rel+": unreadable", nil)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		s.fail(w, http.StatusNotFound, ingest.ReasonNotFound, rel+": not a file", nil)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	if strings.Contains(rel, ".p/") {
		// A partial tile is replaced by a fuller one as the log grows.
		w.Header().Set("Cache-Control", "public, max-age=60")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	io.Copy(w, f)
}
