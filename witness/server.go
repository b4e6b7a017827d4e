package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/durable"
	"github.com/keytrail/keytrail/internal/strictjson"
)

// Files in ServerConfig.StateDir.
const (
	stateFile = "state.json"
	lockFile  = "lock"
)

// maxStateBytes bounds the state file.
const maxStateBytes = 16 << 20

// ServerConfig configures a Server. Every field but Logger is required.
type ServerConfig struct {
	// Signer makes the witness's cosignatures: a cosignature/v1 signer
	// (fnote.NewSignerForCosignatureV1), whose name is the witness's name.
	Signer note.Signer
	// Logs are the verifier keys of the logs the witness witnesses. A log is
	// known by its origin, which must be its key's name; one key per origin.
	Logs []note.Verifier
	// StateDir holds the witness's state (state.json: the size and root it
	// last cosigned for each origin) and its lock. Keep it on durable
	// storage: a witness that loses its state cosigns a fork as readily as
	// the real log.
	StateDir string
	// Logger receives a line per refused submission, with the checkpoint:
	// a refused fork is evidence. Default: slog.Default().
	Logger *slog.Logger
}

// Server is a witness (https://c2sp.org/tlog-witness): an http.Handler that
// answers POST /add-checkpoint. For each log it keeps the size and root hash
// of the latest checkpoint it cosigned, and it cosigns a checkpoint only if
// the log's key signed it and it extends that tree: the request's old size
// must be that size (else 409 with the size), and the consistency proof from
// it must verify against both roots (else 422); a checkpoint of the same size
// must have the same root (else 409). The new size and root are written to
// disk and synced before the cosignature is returned, and checks and write
// happen under one lock, so no two answers can roll the state back.
type Server struct {
	signer note.Signer
	logs   map[string]note.Verifier
	dir    string
	logger *slog.Logger
	lock   *os.File

	mu    sync.Mutex // serialises check, persist and sign
	state map[string]treeHead
}

// treeHead is what the witness keeps about a log.
type treeHead struct {
	size uint64
	root []byte
}

// stateJSON is state.json.
type stateJSON struct {
	Version int        `json:"version"`
	Logs    []logState `json:"logs"`
}

type logState struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   []byte `json:"root"`
}

// NewServer takes the state directory's lock (one witness per state), loads
// its state and returns the Server. Close releases the lock.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Signer == nil {
		return nil, errors.New("witness: ServerConfig.Signer is nil")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("witness: ServerConfig.StateDir is empty")
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("witness: ServerConfig.Logs is empty: the witness would witness no log")
	}
	s := &Server{signer: cfg.Signer, logs: map[string]note.Verifier{}, dir: cfg.StateDir, logger: cfg.Logger, state: map[string]treeHead{}}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.logger = s.logger.With(slog.String("witness", cfg.Signer.Name()))
	for _, v := range cfg.Logs {
		if _, dup := s.logs[v.Name()]; dup {
			return nil, fmt.Errorf("witness: log %s listed twice", v.Name())
		}
		s.logs[v.Name()] = v
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("witness: state: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cfg.StateDir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("witness: state: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("witness: state %s: another witness holds its lock: %w", cfg.StateDir, err)
	}
	s.lock = lock
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the state directory's lock.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lock.Close()
}

// Name returns the witness's name.
func (s *Server) Name() string { return s.signer.Name() }

func (s *Server) load() error {
	path := filepath.Join(s.dir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("witness: state: %w", err)
	}
	var st stateJSON
	if err := strictjson.Unmarshal(b, &st, maxStateBytes); err != nil {
		return fmt.Errorf("witness: state %s: %w", path, err)
	}
	if st.Version != 1 {
		return fmt.Errorf("witness: state %s: version %d, want 1", path, st.Version)
	}
	for i, l := range st.Logs {
		if _, dup := s.state[l.Origin]; dup || l.Origin == "" || len(l.Root) != 32 {
			return fmt.Errorf("witness: state %s: logs[%d]: empty or repeated origin, or a root that is not 32 bytes", path, i)
		}
		s.state[l.Origin] = treeHead{size: l.Size, root: l.Root}
	}
	return nil
}

// persistLocked writes the state with origin's new tree head, synced, and
// only then updates the state in memory.
func (s *Server) persistLocked(origin string, th treeHead) error {
	st := stateJSON{Version: 1}
	for o, h := range s.state {
		if o != origin {
			st.Logs = append(st.Logs, logState{Origin: o, Size: h.size, Root: h.root})
		}
	}
	st.Logs = append(st.Logs, logState{Origin: origin, Size: th.size, Root: th.root})
	slices.SortFunc(st.Logs, func(a, b logState) int { return strings.Compare(a.Origin, b.Origin) })
	b, err := strictjson.MarshalIndent(st)
	if err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(s.dir, stateFile), append(b, '\n'), 0o600); err != nil {
		return err
	}
	s.state[origin] = th
	return nil
}

// ServeHTTP answers POST /add-checkpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/add-checkpoint" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "add-checkpoint takes POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	sigs, status, msg, size := s.addCheckpoint(body)
	switch {
	case status == http.StatusOK:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(sigs)
	case size != nil:
		w.Header().Set("Content-Type", "text/x.tlog.size")
		w.WriteHeader(status)
		fmt.Fprintf(w, "%d\n", *size)
	default:
		http.Error(w, msg, status)
	}
}

// addCheckpoint runs the checks of c2sp.org/tlog-witness on one request. It
// returns the cosignature lines, or the refusal's status and message (and,
// for a 409 about the old size, the size the witness has cosigned).
func (s *Server) addCheckpoint(body []byte) (sigs []byte, status int, msg string, size *uint64) {
	req, err := ParseRequest(body)
	if err != nil {
		return nil, http.StatusBadRequest, err.Error(), nil
	}
	origin, _, _ := bytes.Cut(req.Checkpoint, []byte("\n"))
	v, ok := s.logs[string(origin)]
	if !ok {
		return nil, http.StatusNotFound, fmt.Sprintf("unknown log %q", origin), nil
	}
	cp, n, err := checkpoint.Open(req.Checkpoint, v.Name(), v)
	switch {
	case errors.Is(err, checkpoint.ErrSignature):
		return nil, http.StatusForbidden, err.Error(), nil
	case err != nil:
		return nil, http.StatusBadRequest, err.Error(), nil
	}
	if req.OldSize > cp.Size {
		return nil, http.StatusBadRequest, fmt.Sprintf("old size %d is larger than the checkpoint's %d", req.OldSize, cp.Size), nil
	}
	log := s.logger.With(slog.String("origin", cp.Origin), slog.Uint64("size", cp.Size), slog.Uint64("old", req.OldSize))

	s.mu.Lock()
	defer s.mu.Unlock()
	have := s.state[cp.Origin]
	if req.OldSize != have.size {
		k := have.size
		return nil, http.StatusConflict, "", &k
	}
	switch {
	case req.OldSize == 0:
		if len(req.Proof) != 0 {
			return nil, http.StatusBadRequest, "a request from old size 0 carries no consistency proof", nil
		}
	case req.OldSize == cp.Size:
		if !bytes.Equal(cp.Root, have.root) {
			log.Warn("refused a checkpoint: another root for a size already cosigned (a fork)",
				slog.String("root", base64.StdEncoding.EncodeToString(cp.Root)), slog.String("cosigned_root", base64.StdEncoding.EncodeToString(have.root)),
				slog.String("checkpoint", string(req.Checkpoint)))
			return nil, http.StatusConflict, fmt.Sprintf("fork: the witness cosigned size %d with root %s, not %s",
				cp.Size, base64.StdEncoding.EncodeToString(have.root), base64.StdEncoding.EncodeToString(cp.Root)), nil
		}
		if len(req.Proof) != 0 {
			return nil, http.StatusUnprocessableEntity, "a consistency proof between equal sizes must be empty", nil
		}
	default:
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, req.OldSize, cp.Size, req.Proof, have.root, cp.Root); err != nil {
			log.Warn("refused a checkpoint: no valid consistency proof from the tree already cosigned",
				slog.String("cosigned_root", base64.StdEncoding.EncodeToString(have.root)), slog.Any("error", err),
				slog.String("checkpoint", string(req.Checkpoint)))
			return nil, http.StatusUnprocessableEntity, fmt.Sprintf("consistency proof from size %d to %d: %v", req.OldSize, cp.Size, err), nil
		}
	}
	if have.size != cp.Size || !bytes.Equal(have.root, cp.Root) {
		if err := s.persistLocked(cp.Origin, treeHead{size: cp.Size, root: bytes.Clone(cp.Root)}); err != nil {
			log.Error("cannot persist the witness state; not cosigning", slog.Any("error", err))
			return nil, http.StatusInternalServerError, "the witness cannot persist its state", nil
		}
	}
	signed, err := note.Sign(&note.Note{Text: n.Text}, s.signer)
	if err != nil {
		log.Error("signing the cosignature", slog.Any("error", err))
		return nil, http.StatusInternalServerError, "the witness cannot sign", nil
	}
	return signed[len(n.Text)+1:], http.StatusOK, "", nil
}
