package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/ingest"
	"github.com/keytrail/keytrail/internal/regfile"
	"github.com/keytrail/keytrail/internal/strictjson"
	"github.com/keytrail/keytrail/ledger"
)

// BundleConfig configures GET /v1/bundles/{rotation-id}.
type BundleConfig struct {
	// RotationsDir holds rotation descriptors, one JSON file (*.json) each, in
	// the format of 'keytrail bundle build --rotation'. A request names a
	// rotation by the id inside the file, never by a file name. Required.
	RotationsDir string
	// Signer is the operator key that signs bundles. Required.
	Signer *evidence.Signer
	// LogVerifier authenticates the ledger's checkpoints. Required.
	LogVerifier note.Verifier
	// MaxConcurrent bounds the bundles built at once; more requests get 503.
	// Default: 2.
	MaxConcurrent int
}

// MaxRotationFiles bounds the descriptors read from RotationsDir.
const MaxRotationFiles = 100000

type bundleServer struct {
	cfg  BundleConfig
	log  ledger.Log
	slot chan struct{}
}

func newBundleServer(cfg BundleConfig, l ledger.Log) (*bundleServer, error) {
	if cfg.RotationsDir == "" || cfg.Signer == nil || cfg.LogVerifier == nil {
		return nil, errors.New("server: BundleConfig needs RotationsDir, Signer and LogVerifier")
	}
	if st, err := os.Stat(cfg.RotationsDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("server: rotations directory %s: not a directory", cfg.RotationsDir)
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 2
	}
	return &bundleServer{cfg: cfg, log: l, slot: make(chan struct{}, cfg.MaxConcurrent)}, nil
}

// errNoRotation: no descriptor has the requested id.
var errNoRotation = errors.New("no such rotation")

// errNoRecords: the log holds nothing about the rotation yet.
var errNoRecords = errors.New("no records")

// rotation finds the descriptor whose id is id. Files are read afresh on each
// request, so descriptors can be added while the server runs. The id is
// compared with file contents, never used as a path.
func (b *bundleServer) rotation(id string) (evidence.Rotation, error) {
	ents, err := os.ReadDir(b.cfg.RotationsDir)
	if err != nil {
		return evidence.Rotation{}, err
	}
	if len(ents) > MaxRotationFiles {
		ents = ents[:MaxRotationFiles]
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(b.cfg.RotationsDir, e.Name())
		raw, err := regfile.ReadFile(p, 64<<10) // never blocks on a FIFO
		if err != nil {
			continue
		}
		var r evidence.Rotation
		if strictjson.Unmarshal(raw, &r, 64<<10) != nil || r.Validate() != nil {
			continue
		}
		if r.ID == id {
			return r, nil
		}
	}
	return evidence.Rotation{}, fmt.Errorf("%w %q in %s", errNoRotation, id, b.cfg.RotationsDir)
}

func (b *bundleServer) build(ctx context.Context, id string) ([]byte, error) {
	r, err := b.rotation(id)
	if err != nil {
		return nil, err
	}
	bundle, err := evidence.BuildBundle(ctx, b.log, r, evidence.BuildOptions{Origin: b.cfg.LogVerifier.Name(), LogVerifier: b.cfg.LogVerifier})
	if err != nil {
		return nil, err
	}
	if len(bundle.Entries) == 0 {
		return nil, fmt.Errorf("%w: rotation %q: no records about %s or %s inside its window", errNoRecords, id, r.OldKey.ID, r.NewKey.ID)
	}
	return evidence.SignBundle(ctx, bundle, b.cfg.Signer)
}

func (s *Server) handleBundle(w http.ResponseWriter, r *http.Request) {
	if s.bundles == nil {
		s.fail(w, http.StatusNotFound, ingest.ReasonNotFound, "this server builds no bundles (start it with --rotations and --bundle-signer)", nil)
		return
	}
	id := r.PathValue("id")
	if err := (evidence.KeyRef{ID: id, SPKISHA256: strings.Repeat("0", 64)}).Validate(); err != nil {
		s.fail(w, http.StatusBadRequest, ingest.ReasonMalformed, "rotation id: "+err.Error(), nil)
		return
	}
	select {
	case s.bundles.slot <- struct{}{}:
		defer func() { <-s.bundles.slot }()
	default:
		s.fail(w, http.StatusServiceUnavailable, ingest.ReasonOverloaded, "bundles are being built; try again", nil)
		return
	}
	signed, err := s.bundles.build(r.Context(), id)
	if err != nil {
		if errors.Is(err, errNoRotation) || errors.Is(err, errNoRecords) {
			s.fail(w, http.StatusNotFound, ingest.ReasonNotFound, err.Error(), nil)
			return
		}
		s.logger.Error("bundle build failed", "rotation", id, "err", err)
		s.fail(w, http.StatusInternalServerError, ingest.ReasonInternal, "building the bundle failed", nil)
		return
	}
	w.Header().Set("Content-Type", evidence.BundleMediaType)
	w.Write(signed)
}
