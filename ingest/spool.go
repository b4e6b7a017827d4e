package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/keytrail/keytrail/evidence"
)

// ErrSpooled: Push kept the envelope in the spool because the server is
// unavailable; a later Push or Drain sends it. It is not a failure.
var ErrSpooled = errors.New("server unavailable; envelope kept in the spool")

// Spool is a directory of envelopes waiting to be sent, oldest first. Each
// envelope is one file, NNNNNNNNNNNNNNNNNNNN.dsse (a 20-digit sequence
// number), written to a temporary name, fsynced, renamed and the directory
// fsynced, so a crash leaves either the whole envelope or nothing. An
// envelope is deleted only after the server acknowledged it; one the server
// refuses (4xx) moves to rejected/ with the reason beside it, so that it does
// not block the envelopes behind it.
//
// A Spool holds an exclusive lock on the directory (flock on .lock): one
// process at a time. Its methods are safe for concurrent use.
type Spool struct {
	// BatchSize is how many envelopes Drain sends per request (default
	// DefaultDrainBatch). The server logs the envelopes of one request in no
	// particular order among themselves; set 1 for an index order that is
	// exactly the spool order (at one request per envelope).
	BatchSize int

	dir  string
	lock *os.File
	mu   sync.Mutex
	next uint64
}

const spoolExt = ".dsse"

// OpenSpool opens (creating it if needed) the spool directory dir.
func OpenSpool(dir string) (*Spool, error) {
	if err := os.MkdirAll(filepath.Join(dir, "rejected"), 0o700); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("spool %s: locked by another process: %w", dir, err)
	}
	s := &Spool{BatchSize: DefaultDrainBatch, dir: dir, lock: lock}
	seqs, err := s.list()
	if err != nil {
		lock.Close()
		return nil, err
	}
	if len(seqs) > 0 {
		s.next = seqs[len(seqs)-1] + 1
	}
	// Never reuse the name of a rejected envelope.
	rej, _ := os.ReadDir(filepath.Join(dir, "rejected"))
	for _, e := range rej {
		if n, ok := ParseSpoolName(e.Name()); ok && n >= s.next {
			s.next = n + 1
		}
	}
	// Leftovers of a crash in the middle of Add: never renamed, never acknowledged.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return s, nil
}

// Close releases the spool's lock.
func (s *Spool) Close() error { return s.lock.Close() }

// ParseSpoolName returns the sequence number of a spool file name.
func ParseSpoolName(name string) (uint64, bool) {
	num, ok := strings.CutSuffix(name, spoolExt)
	if !ok || len(num) != 20 {
		return 0, false
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	return n, err == nil
}

func spoolName(n uint64) string { return fmt.Sprintf("%020d%s", n, spoolExt) }

// list returns the queued sequence numbers, ascending.
func (s *Spool) list() ([]uint64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", s.dir, err)
	}
	var seqs []uint64
	for _, e := range ents {
		if n, ok := ParseSpoolName(e.Name()); ok && e.Type().IsRegular() {
			seqs = append(seqs, n)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// Len returns how many envelopes wait.
func (s *Spool) Len() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seqs, err := s.list()
	return len(seqs), err
}

// Add queues env durably. It checks only that env is a well-formed DSSE
// envelope of at most evidence.MaxRecordBytes; the server judges the rest.
func (s *Spool) Add(env []byte) error {
	if _, err := Canonical(env); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(env)
}

func (s *Spool) add(env []byte) error {
	name := spoolName(s.next)
	if err := writeDurable(s.dir, name, env); err != nil {
		return fmt.Errorf("spool %s: %w", s.dir, err)
	}
	s.next++
	return nil
}

// writeDurable writes dir/name atomically and durably.
func writeDurable(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// DefaultDrainBatch is how many spooled envelopes Drain sends per request.
const DefaultDrainBatch = 256

// Drain sends every queued envelope, oldest first, in batches of up to
// BatchSize, deleting each once acknowledged: a batch is sent only once the
// one before it is acknowledged, so its entries follow the earlier ones in the
// log. It returns what was acknowledged, in spool order. It stops at the first batch the server cannot take
// now (ErrUnavailable), leaving it and everything after it queued. Envelopes
// the server refuses move to rejected/.
func (s *Spool) Drain(ctx context.Context, c *Client) ([]Submitted, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drain(ctx, c)
}

func (s *Spool) drain(ctx context.Context, c *Client) ([]Submitted, error) {
	seqs, err := s.list()
	if err != nil {
		return nil, err
	}
	var acked []Submitted
	for len(seqs) > 0 {
		n := min(len(seqs), max(1, min(s.BatchSize, MaxBatchEntries)))
		chunk := seqs[:n]
		envs := make([][]byte, 0, n)
		for _, q := range chunk {
			b, err := os.ReadFile(filepath.Join(s.dir, spoolName(q)))
			if err != nil {
				return acked, fmt.Errorf("spool %s: %w", s.dir, err)
			}
			envs = append(envs, b)
		}
		res, err := c.Submit(ctx, envs)
		switch {
		case err == nil:
			for _, q := range chunk {
				if err := os.Remove(filepath.Join(s.dir, spoolName(q))); err != nil {
					return acked, fmt.Errorf("spool %s: %w", s.dir, err)
				}
			}
			if err := syncDir(s.dir); err != nil {
				return acked, err
			}
			acked = append(acked, res.Entries...)
			seqs = seqs[n:]
		case errors.Is(err, ErrRejected) && n > 1:
			// Find the culprit by sending one at a time, in order.
			for _, q := range chunk {
				one, err := s.sendOne(ctx, c, q)
				if err != nil {
					return acked, err
				}
				acked = append(acked, one...)
			}
			seqs = seqs[n:]
		case errors.Is(err, ErrRejected):
			if err := s.reject(chunk[0], err); err != nil {
				return acked, err
			}
			seqs = seqs[1:]
		default:
			return acked, err
		}
	}
	return acked, nil
}

// sendOne submits one queued envelope; a refusal moves it to rejected/.
func (s *Spool) sendOne(ctx context.Context, c *Client, q uint64) ([]Submitted, error) {
	p := filepath.Join(s.dir, spoolName(q))
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", s.dir, err)
	}
	res, err := c.Submit(ctx, [][]byte{b})
	if errors.Is(err, ErrRejected) {
		return nil, s.reject(q, err)
	}
	if err != nil {
		return nil, err
	}
	if err := os.Remove(p); err != nil {
		return nil, err
	}
	return res.Entries, syncDir(s.dir)
}

// reject moves envelope q to rejected/, with the reason in a .reason file.
func (s *Spool) reject(q uint64, why error) error {
	name := spoolName(q)
	rej := filepath.Join(s.dir, "rejected")
	if err := writeDurable(rej, name+".reason", []byte(why.Error()+"\n")); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(s.dir, name), filepath.Join(rej, name)); err != nil {
		return err
	}
	if err := syncDir(rej); err != nil {
		return err
	}
	return syncDir(s.dir)
}

// Push queues env and sends the queue, env last (order is kept: nothing is
// sent ahead of older envelopes). It returns env's acknowledgement; if the
// server is unavailable, ErrSpooled (env is safe in the spool); if the server
// refused env, an error wrapping ErrRejected.
func (s *Spool) Push(ctx context.Context, c *Client, env []byte) (*Submitted, error) {
	if len(env) > evidence.MaxRecordBytes {
		return nil, fmt.Errorf("spool: envelope of %d bytes, limit %d", len(env), evidence.MaxRecordBytes)
	}
	if _, err := Canonical(env); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.next
	if err := s.add(env); err != nil {
		return nil, err
	}
	acked, err := s.drain(ctx, c)
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(s.dir, spoolName(q))); statErr == nil {
			return nil, fmt.Errorf("%w: %w", ErrSpooled, err)
		}
	}
	if _, statErr := os.Stat(filepath.Join(s.dir, "rejected", spoolName(q))); statErr == nil {
		why, _ := os.ReadFile(filepath.Join(s.dir, "rejected", spoolName(q)+".reason"))
		return nil, fmt.Errorf("%w: %s", ErrRejected, strings.TrimPrefix(strings.TrimSpace(string(why)), ErrRejected.Error()+": "))
	}
	if len(acked) == 0 {
		return nil, err
	}
	last := acked[len(acked)-1]
	return &last, nil
}
