// Package backend holds what the ledger's backends (ledger/posix,
// ledger/trillian) share: reading their own checkpoints back, and the
// one-writer-at-a-time lock.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// ParseCheckpoint authenticates raw, a C2SP checkpoint the backend published,
// with v if there is one and parses it. Without v, a reader that holds the
// log's signer s still requires a signature by s's name and key hash, and the
// origin to be s's name. The root hash must be 32 bytes.
func ParseCheckpoint(raw []byte, v note.Verifier, s note.Signer) (flog.Checkpoint, error) {
	var cp flog.Checkpoint
	if v != nil {
		c, _, _, err := flog.ParseCheckpoint(raw, v.Name(), v)
		if err != nil {
			return cp, err
		}
		cp = *c
	} else {
		// Nothing to authenticate with: parse the note as unverified.
		_, err := note.Open(raw, nil)
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) {
			return cp, fmt.Errorf("malformed signed note: %v", err)
		}
		n := unverified.Note
		if s != nil {
			signed := false
			for _, sig := range n.UnverifiedSigs {
				signed = signed || sig.Name == s.Name() && sig.Hash == s.KeyHash()
			}
			if !signed {
				return cp, fmt.Errorf("no signature by %q (key hash %08x)", s.Name(), s.KeyHash())
			}
		}
		if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
			return cp, err
		}
		if s != nil && cp.Origin != s.Name() {
			return cp, fmt.Errorf("origin %q, want the signer's name %q", cp.Origin, s.Name())
		}
	}
	if len(cp.Hash) != 32 {
		return cp, fmt.Errorf("root hash of %d bytes, want 32", len(cp.Hash))
	}
	return cp, nil
}

// LockWriter takes an exclusive flock on the file at path (creating it and
// its directory), waiting for another process to release it until ctx ends;
// it logs once that it waits. The lock is released when the returned file is
// closed or the process exits.
func LockWriter(ctx context.Context, path string, logger *slog.Logger) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !logged {
			logged = true
			logger.WarnContext(ctx, "waiting for another writer to stop (it holds the writer lock)", slog.String("lock", path))
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: another writer holds it: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
