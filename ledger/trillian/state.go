package trillian

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Files in Config.StateDir.
const (
	stateFile = "state"
	lockFile  = "writer.lock"
)

// stateMagic starts the state file. After it:
//
//	uvarint len, len bytes    the last checkpoint keytrail signed for the tree
//	uvarint n, n × 32 bytes   the compact range of [0, size) of that checkpoint: the
//	                          subtree roots from which the next root is computed
//	32 bytes                  SHA-256 of everything before
const stateMagic = "keytrail trillian state v1\n"

// Bounds on the state file: a checkpoint with a few cosignatures is well under
// a kilobyte, and a compact range has at most 64 hashes.
const (
	maxCheckpointSize = 64 << 10
	maxStateSize      = len(stateMagic) + 10 + maxCheckpointSize + 10 + 64*32 + 32
)

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// state is what keytrail keeps about a tree: the last checkpoint it signed and
// the compact range of the tree at that checkpoint's size.
type state struct {
	raw []byte // the signed checkpoint
	rng *compact.Range
}

func encodeState(s state) []byte {
	b := []byte(stateMagic)
	b = binary.AppendUvarint(b, uint64(len(s.raw)))
	b = append(b, s.raw...)
	hashes := s.rng.Hashes()
	b = binary.AppendUvarint(b, uint64(len(hashes)))
	for _, h := range hashes {
		b = append(b, h...)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// decodeState parses a state file. size is the checkpoint's tree size, which
// the caller reads from the (authenticated) checkpoint: the compact range is
// only meaningful with it.
func decodeState(b []byte) (raw []byte, hashes [][]byte, err error) {
	if len(b) > maxStateSize {
		return nil, nil, errors.New("state file too large")
	}
	if len(b) < len(stateMagic)+sha256.Size || !bytes.HasPrefix(b, []byte(stateMagic)) {
		return nil, nil, errors.New("not a keytrail trillian state file")
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, nil, errors.New("checksum mismatch")
	}
	d := body[len(stateMagic):]
	n, k := binary.Uvarint(d)
	if k <= 0 || n > maxCheckpointSize || n > uint64(len(d)-k) {
		return nil, nil, errors.New("bad checkpoint length")
	}
	raw, d = d[k:k+int(n)], d[k+int(n):]
	nh, k := binary.Uvarint(d)
	if k <= 0 || nh > 64 || uint64(len(d)-k) != nh*32 {
		return nil, nil, errors.New("bad compact range")
	}
	d = d[k:]
	for i := range nh {
		hashes = append(hashes, bytes.Clone(d[i*32:i*32+32]))
	}
	return bytes.Clone(raw), hashes, nil
}

// writeState replaces the state file atomically and durably: a synced
// temporary file renamed over the old one, then the directory synced. Until it
// returns, no checkpoint it holds is published.
func writeState(dir string, s state) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, stateFile+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(encodeState(s)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, stateFile)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readState reads the raw state file; fs.ErrNotExist if there is none.
func readState(dir string) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(maxStateSize)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", f.Name(), maxStateSize)
	}
	return b, nil
}
