// Package open opens a keytrail ledger from the value of a --ledger flag: a
// directory (the embedded ledger, ledger/posix) or a URL naming another backend.
//
// Accepted forms:
//
//	DIR                                   embedded ledger in a tlog-tiles directory (the default)
//	file://DIR                            the same
//	trillian://HOST:PORT/TREE_ID          a Trillian log tree (ledger/trillian)
//	trillian://HOST:PORT/TREE_ID?state=DIR  the same, with keytrail's state for that tree in DIR
//	trillian://HOST:PORT/TREE_ID?tls=1      over TLS, the server checked against the system's roots
//	trillian://HOST:PORT/TREE_ID?ca=FILE    over TLS, the server checked against the PEM CA certificates in FILE
//
// Parameters combine (state=DIR&ca=FILE). Without tls or ca the connection is
// plaintext, for a server on the same host or a private network.
//
// A Trillian ledger keeps keytrail's own state (the last checkpoint it signed)
// in a local directory: by default $XDG_STATE_HOME/keytrail/trillian/HOST_PORT/TREE_ID
// (XDG_STATE_HOME defaulting to ~/.local/state).
package open

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/posix"
)

// Backends named by Spec.Backend.
const (
	Embedded = "embedded"
	Trillian = "trillian"
)

// ErrNoLedger reports an embedded ledger directory that holds no log.
var ErrNoLedger = errors.New("no checkpoint: not a keytrail ledger directory")

// Spec is a parsed --ledger value.
type Spec struct {
	Backend string // Embedded or Trillian
	Dir     string // Embedded: the tlog-tiles directory
	Addr    string // Trillian: the log server's gRPC address, HOST:PORT
	TreeID  int64  // Trillian: the log tree
	State   string // Trillian: keytrail's state directory for the tree
	TLS     bool   // Trillian: connect over TLS
	CAFile  string // Trillian: PEM CA certificates to check the server with (implies TLS); empty: the system's roots
}

// String returns the canonical --ledger value of s.
func (s Spec) String() string {
	if s.Backend == Trillian {
		u := fmt.Sprintf("trillian://%s/%d", s.Addr, s.TreeID)
		q := url.Values{}
		if s.State != "" && s.State != DefaultStateDir(s.Addr, s.TreeID) {
			q.Set("state", s.State)
		}
		if s.CAFile != "" {
			q.Set("ca", s.CAFile)
		} else if s.TLS {
			q.Set("tls", "1")
		}
		if len(q) > 0 {
			// Keep "/" readable in paths; Encode sorts the keys.
			u += "?" + strings.ReplaceAll(q.Encode(), "%2F", "/")
		}
		return u
	}
	return s.Dir
}

// Parse parses a --ledger value.
func Parse(value string) (Spec, error) {
	if value == "" {
		return Spec{}, errors.New("empty ledger")
	}
	if !strings.Contains(value, "://") {
		return Spec{Backend: Embedded, Dir: value}, nil
	}
	scheme, rest, _ := strings.Cut(value, "://")
	switch scheme {
	case "file":
		if rest == "" {
			return Spec{}, fmt.Errorf("ledger %q: empty directory", value)
		}
		return Spec{Backend: Embedded, Dir: rest}, nil
	case "trillian":
		u, err := url.Parse(value)
		if err != nil {
			return Spec{}, fmt.Errorf("ledger %q: %w", value, err)
		}
		if u.User != nil || u.Fragment != "" || u.Opaque != "" {
			return Spec{}, fmt.Errorf("ledger %q: want trillian://HOST:PORT/TREE_ID", value)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" {
			return Spec{}, fmt.Errorf("ledger %q: want trillian://HOST:PORT/TREE_ID: bad address %q", value, u.Host)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return Spec{}, fmt.Errorf("ledger %q: bad port %q", value, port)
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(u.Path, "/"), 10, 64)
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != strings.TrimPrefix(u.Path, "/") {
			return Spec{}, fmt.Errorf("ledger %q: want trillian://HOST:PORT/TREE_ID with a positive decimal tree ID", value)
		}
		s := Spec{Backend: Trillian, Addr: u.Host, TreeID: id}
		q := u.Query()
		for k, vs := range q {
			if k != "state" && k != "tls" && k != "ca" {
				return Spec{}, fmt.Errorf("ledger %q: unknown parameter %q (want state=DIR, tls=1 or ca=FILE)", value, k)
			}
			if len(vs) != 1 || vs[0] == "" {
				return Spec{}, fmt.Errorf("ledger %q: %s= must be given once, not empty", value, k)
			}
		}
		if t := q.Get("tls"); t != "" && t != "1" {
			return Spec{}, fmt.Errorf("ledger %q: tls=%q, want tls=1", value, t)
		}
		s.TLS = q.Get("tls") == "1"
		if ca := q.Get("ca"); ca != "" {
			s.CAFile, s.TLS = ca, true
		}
		if q.Get("tls") == "1" && s.CAFile != "" {
			return Spec{}, fmt.Errorf("ledger %q: give tls=1 or ca=FILE, not both", value)
		}
		if st := q.Get("state"); st != "" {
			s.State = st
		} else {
			s.State = DefaultStateDir(s.Addr, s.TreeID)
		}
		return s, nil
	default:
		return Spec{}, fmt.Errorf("ledger %q: unknown scheme %q (want a directory or trillian://HOST:PORT/TREE_ID)", value, scheme)
	}
}

// DefaultStateDir is where keytrail keeps its state for a Trillian tree when
// the ledger URL names no state directory.
func DefaultStateDir(addr string, treeID int64) string {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "."
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "keytrail", "trillian", strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(addr), strconv.FormatInt(treeID, 10))
}

// Options configures Open.
type Options struct {
	// Signer signs checkpoints; with it the ledger is opened for appending,
	// without it read-only.
	Signer note.Signer
	// Verifier, if set, authenticates every checkpoint the backend reads.
	Verifier note.Verifier
	// KeyIDs extracts the key IDs an entry names (for KeyIndex). Required.
	KeyIDs ledger.KeyIDsFunc
	// Logger receives the backend's logs. Default: slog.Default().
	Logger *slog.Logger
	// Witnesses, if set, cosign a writer's checkpoints (ledger.Witnessed).
	Witnesses ledger.Cosigner
	// WitnessInterval is the shortest time between two witnessing rounds.
	// Default: the backend's (1s).
	WitnessInterval time.Duration
}

// Open opens the ledger spec names (see Parse).
func Open(ctx context.Context, value string, opts Options) (ledger.Log, error) {
	s, err := Parse(value)
	if err != nil {
		return nil, err
	}
	return OpenSpec(ctx, s, opts)
}

// OpenSpec opens a parsed ledger.
func OpenSpec(ctx context.Context, s Spec, opts Options) (ledger.Log, error) {
	switch s.Backend {
	case Embedded:
		if opts.Signer == nil {
			if st, err := os.Stat(filepath.Join(s.Dir, "checkpoint")); err != nil || st.IsDir() {
				return nil, fmt.Errorf("%s: %w", s.Dir, ErrNoLedger)
			}
		}
		return posix.Open(ctx, posix.Config{Dir: s.Dir, Signer: opts.Signer, Verifier: opts.Verifier, KeyIDs: opts.KeyIDs, Logger: opts.Logger,
			Witnesses: opts.Witnesses, WitnessInterval: opts.WitnessInterval})
	case Trillian:
		return openTrillian(ctx, s, opts)
	default:
		return nil, fmt.Errorf("unknown ledger backend %q", s.Backend)
	}
}
