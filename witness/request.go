package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/keytrail/keytrail/internal/checkpoint"
)

// Limits of the add-checkpoint request (https://c2sp.org/tlog-witness).
const (
	// MaxProofLines is the most consistency proof lines a request may carry.
	MaxProofLines = 63
	// MaxRequestBytes bounds a request body: the size line, 63 proof lines
	// of 45 bytes and a checkpoint of at most checkpoint.MaxBytes.
	MaxRequestBytes = 32 + MaxProofLines*45 + 1 + checkpoint.MaxBytes
	// MaxResponseBytes bounds the cosignature lines a witness answers with.
	MaxResponseBytes = 16 << 10
)

// ErrMalformed reports a request that is not in the add-checkpoint form.
var ErrMalformed = errors.New("witness: malformed add-checkpoint request")

// Request is the body of an add-checkpoint call: the size of the checkpoint
// the client believes the witness last cosigned for the log, a consistency
// proof from that size to the checkpoint's, and the signed checkpoint.
type Request struct {
	OldSize    uint64
	Proof      [][]byte
	Checkpoint []byte
}

// Marshal encodes r as the protocol says: "old N", one base64 line per proof
// hash, an empty line, and the checkpoint.
func (r Request) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", r.OldSize)
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseRequest parses an add-checkpoint body strictly: a canonical decimal
// old size, at most MaxProofLines proof lines each the canonical base64 of 32
// bytes, an empty line, and a checkpoint. The checkpoint is not parsed or
// authenticated here.
func ParseRequest(body []byte) (Request, error) {
	if len(body) > MaxRequestBytes {
		return Request{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(body), MaxRequestBytes)
	}
	head, cp, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return Request{}, fmt.Errorf("%w: no empty line before the checkpoint", ErrMalformed)
	}
	lines := strings.Split(string(head), "\n")
	s, ok := strings.CutPrefix(lines[0], "old ")
	if !ok {
		return Request{}, fmt.Errorf("%w: first line %q is not \"old SIZE\"", ErrMalformed, lines[0])
	}
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return Request{}, fmt.Errorf("%w: old size %q is not a decimal number without leading zeros", ErrMalformed, s)
	}
	old, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return Request{}, fmt.Errorf("%w: old size %q: %v", ErrMalformed, s, err)
	}
	if len(lines)-1 > MaxProofLines {
		return Request{}, fmt.Errorf("%w: %d proof lines, limit %d", ErrMalformed, len(lines)-1, MaxProofLines)
	}
	r := Request{OldSize: old, Checkpoint: cp}
	for i, l := range lines[1:] {
		h, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(h) != 32 || base64.StdEncoding.EncodeToString(h) != l {
			return Request{}, fmt.Errorf("%w: proof line %d is not the base64 of a 32-byte hash", ErrMalformed, i+1)
		}
		r.Proof = append(r.Proof, h)
	}
	if len(cp) == 0 {
		return Request{}, fmt.Errorf("%w: no checkpoint", ErrMalformed)
	}
	return r, nil
}
