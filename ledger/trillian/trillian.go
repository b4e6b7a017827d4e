// Package trillian is the keytrail ledger on a Trillian log (github.com/google/trillian):
// a [ledger.Log] whose leaves are stored, sequenced and proven by a Trillian log
// server and log signer, and whose C2SP checkpoints (https://c2sp.org/tlog-checkpoint)
// keytrail signs itself.
//
// # Appends
//
// Append sends the entry to Trillian with QueueLeaf, its leaf identity hash
// being its RFC 6962 leaf hash, and returns its index once Trillian has
// sequenced it and a checkpoint keytrail signed covers it. Trillian refuses a
// second leaf with the same identity hash (a primary key of its LeafData table,
// in PostgreSQL and MySQL alike), so appends are exactly-once as the ledger
// contract requires: a duplicate is answered ALREADY_EXISTS, and Append then
// returns the original leaf's index, found by hash. Concurrent identical
// Appends in one process share one QueueLeaf. QueueLeaf is retried on
// transient errors (a database restart, an unavailable server) until ctx ends;
// being idempotent, a retry never adds a second leaf.
//
// Entries are 1 to MaxEntrySize bytes: Trillian refuses empty leaves.
//
// # Checkpoints
//
// Trillian's log roots are not signed. keytrail signs a checkpoint (origin and
// note key of Config.Signer, the same as an embedded log's) only for a root
// it has checked against the last checkpoint it signed:
//
//  1. it reads the new leaves from Trillian (GetLeavesByRange), checks each
//     leaf's Merkle hash is the RFC 6962 hash of its value and its index is
//     the next one, and extends the compact range of the last checkpoint with
//     them; the resulting root must equal Trillian's root;
//  2. it fetches Trillian's consistency proof from the last checkpoint's size
//     to the new one and verifies it against both roots;
//  3. it writes the new checkpoint and compact range to the state file durably
//     (fsync, rename, fsync) before any Append is acknowledged with it.
//
// If any check fails, or Trillian reports a smaller tree than the last
// checkpoint, the Log stops signing for good, logs an error carrying the
// evidence (at level ERROR, message "ALERT: ..."), and every Append fails with
// ErrInconsistent. Reads keep serving the last good checkpoint.
//
// # State
//
// Config.StateDir holds:
//
//	state        the last signed checkpoint and its compact range (see stateMagic)
//	witnessed    the latest checkpoint the witnesses cosigned (see Witnessing)
//	writer.lock  held by the one writer (a second one waits in Open)
//
// Without the state file a writer starts from an empty tree, so it reads every
// leaf from Trillian and signs the root it computes: keep the state directory
// on durable storage and back it up with the signing key. A reader (no
// signer) serves the checkpoint in the state file, rereading it on each call,
// so it must share the writer's state directory.
//
// # Witnessing
//
// With Config.Witnesses, the writer has each checkpoint it signs cosigned by
// witnesses (https://c2sp.org/tlog-witness) in the background, as the
// embedded ledger does (ledger/posix, "Witnessing"): Appends do not wait for
// witnesses; a loop submits the latest checkpoint at most once per
// Config.WitnessInterval, with Trillian's consistency proof; when the
// cosignatures meet the policy, the state file's checkpoint gains them if it
// is still the latest, and the file witnessed in the state directory keeps
// the latest cosigned checkpoint (WitnessedCheckpoint). Close witnesses the
// last checkpoint before it returns.
//
// # Key index
//
// KeyIndex is served from memory: the first call reads every leaf from
// Trillian, checks the leaves reproduce the checkpoint's root, and indexes
// them; later calls read only the new leaves. Nothing is persisted, since the
// writer (keytrail serve) is long-lived and Trillian is the source of truth.
package trillian

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/keytrail/keytrail/ledger/internal/backend"

	tpb "github.com/google/trillian"
	tclient "github.com/google/trillian/client"
	"github.com/google/trillian/types"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/keytrail/keytrail/ledger"
)

// ErrInconsistent reports that Trillian served a tree that does not extend the
// last checkpoint keytrail signed: keytrail refuses to sign it.
var ErrInconsistent = errors.New("trillian: log is inconsistent with the last signed checkpoint")

// Defaults for the Config fields left zero.
const (
	DefaultPollInterval = 20 * time.Millisecond
	DefaultFetchBatch   = 1000
)

// MaxEntrySize is the largest entry accepted, as for the embedded ledger (a
// tlog-tiles entry's length is a uint16), so that any log can be exported.
const MaxEntrySize = 1<<16 - 1

// Config configures Open. Addr (or Conn), TreeID, StateDir and KeyIDs are required.
type Config struct {
	// Addr is the Trillian log server's gRPC address, HOST:PORT. Ignored if
	// Conn is set.
	Addr string
	// Conn, if set, is used instead of dialling Addr; Close does not close it.
	Conn grpc.ClientConnInterface
	// DialOptions are passed to grpc.NewClient. Default: plaintext
	// (insecure.NewCredentials()), for a server on the same host or network.
	DialOptions []grpc.DialOption

	// TreeID is the Trillian log tree.
	TreeID int64

	// StateDir holds keytrail's state for the tree (see the package doc).
	StateDir string

	// Signer signs checkpoints; its name is the log's origin. If nil, the log
	// is opened read-only and Append returns ledger.ErrReadOnly.
	Signer note.Signer
	// Verifier, if set, authenticates the checkpoint in the state file; with a
	// Signer it must be the signer's verifier. If nil, a writer checks that
	// the stored checkpoint names its signer (origin and key hash).
	Verifier note.Verifier

	// KeyIDs extracts the key IDs an entry names, for KeyIndex. Required.
	KeyIDs ledger.KeyIDsFunc

	// Logger receives the ledger's logs. Default: slog.Default().
	Logger *slog.Logger

	// PollInterval is how often the latest Trillian root is read while an
	// Append waits. Default: DefaultPollInterval (20ms).
	PollInterval time.Duration
	// FetchBatch is the most leaves read with one GetLeavesByRange. Default:
	// DefaultFetchBatch (1000).
	FetchBatch int

	// Witnesses, if set, cosign the writer's checkpoints (a *witness.Cosigner):
	// see the package doc, "Witnessing". Ignored by a reader.
	Witnesses ledger.Cosigner
	// WitnessInterval is the shortest time between two witnessing rounds
	// under load. Default: 1s.
	WitnessInterval time.Duration
}

// Log is a ledger.Log on a Trillian tree. It is safe for concurrent use.
type Log struct {
	cfg    Config
	client tpb.TrillianLogClient
	conn   *grpc.ClientConn // dialled by Open; nil if Config.Conn was given
	logger *slog.Logger
	what   string // "trillian ADDR tree ID", for messages

	// Writer state.
	lock      *os.File
	kick      chan struct{}
	done      chan struct{}
	stopped   sync.WaitGroup
	pendMu    sync.Mutex
	pending   map[[32]byte]*pend
	waiting   int
	followMu  sync.Mutex          // serialises follow and publishCosigned
	witnesses *backend.Witnessing // nil without Config.Witnesses

	mu     sync.RWMutex
	cp     *signed // the latest checkpoint signed (writer) or read (reader)
	halt   error   // set when Trillian is found inconsistent
	closed bool

	index keyIndex
}

// signed is a signed checkpoint and what it commits to.
type signed struct {
	raw  []byte
	size uint64
	root []byte
	rng  *compact.Range // writer only
}

// pend is an Append waiting for its leaf to be sequenced and checkpointed.
type pend struct {
	done chan struct{}
	idx  uint64
}

var _ ledger.Log = (*Log)(nil)

// Open opens the tree: for appending if cfg.Signer is set, read-only
// otherwise. A writer catches up with Trillian (signing a checkpoint of its
// current root, if that extends the last one) before it returns. ctx bounds
// only the opening.
func Open(ctx context.Context, cfg Config) (_ *Log, err error) {
	if cfg.TreeID <= 0 {
		return nil, errors.New("trillian: open: Config.TreeID must be positive")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("trillian: open: Config.StateDir is empty")
	}
	if cfg.KeyIDs == nil {
		return nil, errors.New("trillian: open: Config.KeyIDs is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.FetchBatch <= 0 {
		cfg.FetchBatch = DefaultFetchBatch
	}
	if cfg.Signer != nil && cfg.Verifier != nil &&
		(cfg.Signer.Name() != cfg.Verifier.Name() || cfg.Signer.KeyHash() != cfg.Verifier.KeyHash()) {
		return nil, fmt.Errorf("trillian: open: verifier %q (key hash %08x) does not match signer %q (key hash %08x)",
			cfg.Verifier.Name(), cfg.Verifier.KeyHash(), cfg.Signer.Name(), cfg.Signer.KeyHash())
	}
	l := &Log{cfg: cfg, pending: map[[32]byte]*pend{}}
	conn := cfg.Conn
	if conn == nil {
		if cfg.Addr == "" {
			return nil, errors.New("trillian: open: Config.Addr is empty")
		}
		opts := cfg.DialOptions
		if len(opts) == 0 {
			opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		}
		c, err := grpc.NewClient(cfg.Addr, opts...)
		if err != nil {
			return nil, fmt.Errorf("trillian: open %s: %w", cfg.Addr, err)
		}
		l.conn, conn = c, c
	}
	defer func() {
		if err != nil && l.conn != nil {
			l.conn.Close()
		}
	}()
	l.client = tpb.NewTrillianLogClient(conn)
	l.what = fmt.Sprintf("trillian %s tree %d", cfg.Addr, cfg.TreeID)
	l.logger = cfg.Logger.With(slog.String("ledger", "trillian"), slog.String("addr", cfg.Addr), slog.Int64("tree", cfg.TreeID))
	l.index.keyIDs = cfg.KeyIDs

	if cfg.Signer == nil {
		if _, err := l.reload(); err != nil {
			return nil, err
		}
		return l, nil
	}

	if l.lock, err = lockWriter(ctx, cfg.StateDir, l.logger); err != nil {
		return nil, fmt.Errorf("trillian: open %s: %w", l.what, err)
	}
	defer func() {
		if err != nil {
			l.lock.Close()
		}
	}()
	if err := l.loadWriterState(); err != nil {
		return nil, err
	}
	// Catch up with whatever Trillian holds, including leaves queued by a
	// writer that crashed before acknowledging them.
	if err := l.follow(ctx); err != nil {
		return nil, fmt.Errorf("trillian: open %s: %w", l.what, err)
	}
	l.kick = make(chan struct{}, 1)
	l.done = make(chan struct{})
	if cfg.Witnesses != nil {
		l.startWitnessing()
	}
	l.stopped.Add(1)
	go l.followLoop()
	l.logger.InfoContext(ctx, "opened ledger for appending", slog.String("origin", cfg.Signer.Name()), slog.Uint64("size", l.cp.size))
	return l, nil
}

// loadWriterState loads the state file, or starts from the empty tree.
func (l *Log) loadWriterState() error {
	b, err := readState(l.cfg.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		l.logger.Info("no state yet: starting from the empty tree", slog.String("state", l.cfg.StateDir))
		rng := rangeFactory.NewEmptyRange(0)
		l.cp = &signed{size: 0, root: rfc6962.DefaultHasher.EmptyRoot(), rng: rng}
		return nil
	}
	if err != nil {
		return fmt.Errorf("trillian: open %s: state: %w", l.what, err)
	}
	raw, hashes, err := decodeState(b)
	if err != nil {
		return fmt.Errorf("trillian: open %s: state %s: %w", l.what, filepath.Join(l.cfg.StateDir, stateFile), err)
	}
	cp, err := l.parseCheckpoint(raw)
	if err != nil {
		return fmt.Errorf("trillian: open %s: state %s: checkpoint: %w", l.what, filepath.Join(l.cfg.StateDir, stateFile), err)
	}
	rng, err := rangeFactory.NewRange(0, cp.Size, hashes)
	if err != nil {
		return fmt.Errorf("trillian: open %s: state: compact range: %w", l.what, err)
	}
	root, err := rootOf(rng)
	if err != nil || !bytes.Equal(root, cp.Hash) {
		return fmt.Errorf("trillian: open %s: state: compact range does not reproduce the checkpoint's root", l.what)
	}
	l.cp = &signed{raw: raw, size: cp.Size, root: cp.Hash, rng: rng}
	return nil
}

// reload rereads the state file (a reader's view of the writer's checkpoints).
func (l *Log) reload() (*signed, error) {
	b, err := readState(l.cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("trillian: %s: no signed checkpoint in %s: %w (append to the log once, or point state= at the writer's state directory)", l.what, l.cfg.StateDir, err)
	}
	raw, _, err := decodeState(b)
	if err != nil {
		return nil, fmt.Errorf("trillian: %s: state %s: %w", l.what, l.cfg.StateDir, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cp != nil && bytes.Equal(raw, l.cp.raw) {
		return l.cp, nil
	}
	cp, err := l.parseCheckpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("trillian: %s: state %s: checkpoint: %w", l.what, l.cfg.StateDir, err)
	}
	if l.cp != nil && (cp.Size < l.cp.size || cp.Size == l.cp.size && !bytes.Equal(cp.Hash, l.cp.root)) {
		return nil, fmt.Errorf("trillian: %s: %w: state holds size %d root %x after size %d root %x",
			l.what, ErrInconsistent, cp.Size, cp.Hash, l.cp.size, l.cp.root)
	}
	l.cp = &signed{raw: raw, size: cp.Size, root: cp.Hash}
	return l.cp, nil
}

// latest returns the current checkpoint: a writer's own, a reader's reread.
func (l *Log) latest() (*signed, error) {
	l.mu.RLock()
	closed, cp, writer := l.closed, l.cp, l.cfg.Signer != nil
	l.mu.RUnlock()
	if closed {
		return nil, fmt.Errorf("trillian: %s: %w", l.what, ledger.ErrClosed)
	}
	if writer {
		return cp, nil
	}
	return l.reload()
}

// Append adds entry as a leaf and returns its index once a checkpoint signed
// by keytrail covers it; a byte-identical entry already in the log keeps its
// index and adds nothing. If ctx ends while Append waits, Append returns its
// error, but the entry may still be appended (a retry returns its index).
func (l *Log) Append(ctx context.Context, entry []byte) (uint64, error) {
	if l.cfg.Signer == nil {
		return 0, fmt.Errorf("trillian: append to %s: %w", l.what, ledger.ErrReadOnly)
	}
	if len(entry) == 0 {
		return 0, fmt.Errorf("trillian: append to %s: empty entry (Trillian refuses empty leaves)", l.what)
	}
	if len(entry) > MaxEntrySize {
		return 0, fmt.Errorf("trillian: append to %s: entry of %d bytes exceeds the limit of %d bytes", l.what, len(entry), MaxEntrySize)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("trillian: append to %s: %w", l.what, err)
	}
	l.mu.RLock()
	closed, halt := l.closed, l.halt
	l.mu.RUnlock()
	if closed {
		return 0, fmt.Errorf("trillian: append to %s: %w", l.what, ledger.ErrClosed)
	}
	if halt != nil {
		return 0, fmt.Errorf("trillian: append to %s: %w", l.what, halt)
	}
	h := [32]byte(rfc6962.DefaultHasher.HashLeaf(entry))

	// Coalesce identical Appends in this process; register before QueueLeaf
	// so that the follower cannot sequence the leaf unseen.
	l.pendMu.Lock()
	p, shared := l.pending[h]
	if !shared {
		p = &pend{done: make(chan struct{})}
		l.pending[h] = p
	}
	l.waiting++
	l.pendMu.Unlock()
	defer func() {
		l.pendMu.Lock()
		l.waiting--
		l.pendMu.Unlock()
	}()

	if !shared {
		if err := l.queue(ctx, h, entry, p); err != nil {
			l.pendMu.Lock()
			if l.pending[h] == p {
				// Nobody else waits on p for a leaf that may not exist:
				// another Append will queue it again (idempotently).
				delete(l.pending, h)
				p.idx = noIndex
				close(p.done)
			}
			l.pendMu.Unlock()
			return 0, err
		}
	}
	l.poke()
	for {
		select {
		case <-p.done:
			if p.idx == noIndex {
				// The first Append gave up; queue it ourselves.
				return l.Append(ctx, entry)
			}
			return p.idx, nil
		case <-ctx.Done():
			return 0, fmt.Errorf("trillian: append to %s: waiting for the leaf to be sequenced and checkpointed: %w", l.what, ctx.Err())
		case <-l.done:
			l.mu.RLock()
			halt := l.halt
			l.mu.RUnlock()
			if halt != nil {
				return 0, fmt.Errorf("trillian: append to %s: %w", l.what, halt)
			}
			return 0, fmt.Errorf("trillian: append to %s: %w", l.what, ledger.ErrClosed)
		}
	}
}

const noIndex = ^uint64(0)

// maxDisplayName is the width of the DisplayName column in Trillian's
// PostgreSQL and MySQL schemas (VARCHAR(20)).
const maxDisplayName = 20

// queue sends the leaf to Trillian, retrying transient failures until ctx
// ends. A duplicate already covered by the checkpoint resolves p at once.
func (l *Log) queue(ctx context.Context, h [32]byte, entry []byte, p *pend) error {
	req := &tpb.QueueLeafRequest{LogId: l.cfg.TreeID, Leaf: &tpb.LogLeaf{LeafValue: entry, LeafIdentityHash: h[:]}}
	backoff := 10 * time.Millisecond
	for {
		resp, err := l.client.QueueLeaf(ctx, req)
		if err == nil {
			code := codes.OK
			if resp.GetQueuedLeaf().GetStatus() != nil {
				code = codes.Code(resp.GetQueuedLeaf().GetStatus().GetCode())
			}
			switch code {
			case codes.OK:
				return nil
			case codes.AlreadyExists:
				return l.resolveDuplicate(ctx, h, p)
			default:
				return fmt.Errorf("trillian: append to %s: QueueLeaf: %v", l.what, resp.GetQueuedLeaf().GetStatus())
			}
		}
		if !retryable(err) {
			return fmt.Errorf("trillian: append to %s: QueueLeaf: %w", l.what, err)
		}
		l.logger.WarnContext(ctx, "QueueLeaf failed, retrying", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("trillian: append to %s: QueueLeaf: %w (last error: %v)", l.what, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// resolveDuplicate finds the index of a leaf Trillian already holds. If the
// last checkpoint covers it, p is resolved now; otherwise the follower will
// see it sequenced.
func (l *Log) resolveDuplicate(ctx context.Context, h [32]byte, p *pend) error {
	cp, err := l.latest()
	if err != nil {
		return err
	}
	if cp.size == 0 {
		return nil
	}
	resp, err := l.client.GetInclusionProofByHash(ctx, &tpb.GetInclusionProofByHashRequest{
		LogId: l.cfg.TreeID, LeafHash: h[:], TreeSize: int64(cp.size), OrderBySequence: true,
	})
	if status.Code(err) == codes.NotFound {
		return nil // queued but not yet in the checkpoint: the follower resolves it
	}
	if err != nil {
		return fmt.Errorf("trillian: append to %s: finding the duplicate's index: %w", l.what, err)
	}
	for _, pr := range resp.GetProof() {
		if idx := pr.GetLeafIndex(); idx >= 0 && uint64(idx) < cp.size {
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(idx), cp.size, h[:], pr.GetHashes(), cp.root); err != nil {
				return fmt.Errorf("trillian: append to %s: %w: inclusion proof of the duplicate at %d: %v", l.what, ErrInconsistent, idx, err)
			}
			l.resolve(h, uint64(idx))
			return nil
		}
	}
	return nil
}

func (l *Log) resolve(h [32]byte, idx uint64) {
	l.pendMu.Lock()
	defer l.pendMu.Unlock()
	if p, ok := l.pending[h]; ok {
		delete(l.pending, h)
		p.idx = idx
		close(p.done)
	}
}

func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

func (l *Log) poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// followLoop polls Trillian while Appends wait and signs each new root.
func (l *Log) followLoop() {
	defer l.stopped.Done()
	t := time.NewTicker(l.cfg.PollInterval)
	defer t.Stop()
	var lastErr string
	for {
		l.pendMu.Lock()
		idle := l.waiting == 0
		l.pendMu.Unlock()
		if idle {
			select {
			case <-l.kick:
			case <-l.done:
				return
			}
		}
		select {
		case <-t.C:
		case <-l.done:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := l.follow(ctx)
		cancel()
		if errors.Is(err, ErrInconsistent) {
			return
		}
		if err != nil {
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				l.logger.Warn("following the Trillian log", slog.Any("error", err))
			}
			continue
		}
		lastErr = ""
	}
}

// follow reads Trillian's latest root and, if it extends the last checkpoint
// and passes every check of the package doc, signs and persists a checkpoint
// of it and resolves the Appends it covers.
func (l *Log) follow(ctx context.Context) error {
	l.followMu.Lock()
	defer l.followMu.Unlock()
	l.mu.RLock()
	cur, halt := l.cp, l.halt
	l.mu.RUnlock()
	if halt != nil {
		return halt
	}
	resp, err := l.client.GetLatestSignedLogRoot(ctx, &tpb.GetLatestSignedLogRootRequest{LogId: l.cfg.TreeID})
	if err != nil {
		return fmt.Errorf("GetLatestSignedLogRoot: %w", err)
	}
	var root types.LogRootV1
	if err := root.UnmarshalBinary(resp.GetSignedLogRoot().GetLogRoot()); err != nil {
		return fmt.Errorf("GetLatestSignedLogRoot: %w", err)
	}
	if root.TreeSize < cur.size {
		return l.alert(fmt.Errorf("Trillian's tree has size %d, smaller than the last signed checkpoint's %d", root.TreeSize, cur.size))
	}
	if root.TreeSize == cur.size {
		if !bytes.Equal(root.RootHash, cur.root) {
			return l.alert(fmt.Errorf("Trillian's root of size %d is %x, the last signed checkpoint's is %x", root.TreeSize, root.RootHash, cur.root))
		}
		if cur.raw == nil {
			return l.sign(ctx, cur.rng, nil)
		}
		return nil
	}

	// 1. The new leaves, appended to the last checkpoint's range, must give
	// Trillian's root.
	rng, err := rangeFactory.NewRange(0, cur.size, cloneHashes(cur.rng.Hashes()))
	if err != nil {
		return err
	}
	var seen []sighting
	for rng.End() < root.TreeSize {
		n := min(root.TreeSize-rng.End(), uint64(l.cfg.FetchBatch))
		lr, err := l.client.GetLeavesByRange(ctx, &tpb.GetLeavesByRangeRequest{LogId: l.cfg.TreeID, StartIndex: int64(rng.End()), Count: int64(n)})
		if err != nil {
			return fmt.Errorf("GetLeavesByRange(%d, %d): %w", rng.End(), n, err)
		}
		if len(lr.GetLeaves()) == 0 {
			return fmt.Errorf("GetLeavesByRange(%d, %d): no leaves", rng.End(), n)
		}
		for _, leaf := range lr.GetLeaves() {
			i := rng.End()
			if leaf.GetLeafIndex() != int64(i) {
				return l.alert(fmt.Errorf("leaf at position %d has index %d", i, leaf.GetLeafIndex()))
			}
			h := rfc6962.DefaultHasher.HashLeaf(leaf.GetLeafValue())
			if !bytes.Equal(h, leaf.GetMerkleLeafHash()) {
				return l.alert(fmt.Errorf("leaf %d has Merkle hash %x, but its value hashes to %x", i, leaf.GetMerkleLeafHash(), h))
			}
			if err := rng.Append(h, nil); err != nil {
				return err
			}
			seen = append(seen, sighting{hash: [32]byte(h), idx: i})
			if rng.End() == root.TreeSize {
				break
			}
		}
	}
	got, err := rootOf(rng)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, root.RootHash) {
		return l.alert(fmt.Errorf("the leaves of [0, %d) hash to root %x, Trillian says %x", root.TreeSize, got, root.RootHash))
	}
	// 2. Trillian's own consistency proof must verify too.
	if cur.size > 0 {
		cr, err := l.client.GetConsistencyProof(ctx, &tpb.GetConsistencyProofRequest{LogId: l.cfg.TreeID, FirstTreeSize: int64(cur.size), SecondTreeSize: int64(root.TreeSize)})
		if err != nil {
			return fmt.Errorf("GetConsistencyProof(%d, %d): %w", cur.size, root.TreeSize, err)
		}
		if cr.GetProof() == nil {
			return fmt.Errorf("GetConsistencyProof(%d, %d): no proof (the server's tree is behind)", cur.size, root.TreeSize)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cur.size, root.TreeSize, cr.GetProof().GetHashes(), cur.root, root.RootHash); err != nil {
			return l.alert(fmt.Errorf("Trillian's consistency proof from size %d (root %x) to %d (root %x) fails: %v", cur.size, cur.root, root.TreeSize, root.RootHash, err))
		}
	}
	// 3. Sign, persist, publish.
	return l.sign(ctx, rng, seen)
}

type sighting struct {
	hash [32]byte
	idx  uint64
}

// sign signs a checkpoint of rng's tree, persists it, publishes it, and
// resolves the Appends of the leaves seen.
func (l *Log) sign(ctx context.Context, rng *compact.Range, seen []sighting) error {
	root, err := rootOf(rng)
	if err != nil {
		return err
	}
	body := flog.Checkpoint{Origin: l.cfg.Signer.Name(), Size: rng.End(), Hash: root}.Marshal()
	raw, err := note.Sign(&note.Note{Text: string(body)}, l.cfg.Signer)
	if err != nil {
		return fmt.Errorf("signing checkpoint: %w", err)
	}
	if err := writeState(l.cfg.StateDir, state{raw: raw, rng: rng}); err != nil {
		return fmt.Errorf("persisting checkpoint of size %d: %w", rng.End(), err)
	}
	l.mu.Lock()
	l.cp = &signed{raw: raw, size: rng.End(), root: root, rng: rng}
	l.mu.Unlock()
	l.logger.DebugContext(ctx, "signed checkpoint", slog.Uint64("size", rng.End()))
	if l.witnesses != nil {
		l.witnesses.Notify()
	}
	l.pendMu.Lock()
	for _, s := range seen {
		if p, ok := l.pending[s.hash]; ok {
			delete(l.pending, s.hash)
			p.idx = s.idx
			close(p.done)
		}
	}
	l.pendMu.Unlock()
	return nil
}

// alert stops signing for good and logs the evidence.
func (l *Log) alert(err error) error {
	err = fmt.Errorf("%w: %v", ErrInconsistent, err)
	l.mu.Lock()
	if l.halt == nil {
		l.halt = err
		l.logger.Error("ALERT: refusing to sign: Trillian's log does not extend the last signed checkpoint",
			slog.Any("error", err), slog.String("state", l.cfg.StateDir))
	}
	l.mu.Unlock()
	return err
}

func cloneHashes(h [][]byte) [][]byte {
	out := make([][]byte, len(h))
	for i, x := range h {
		out[i] = bytes.Clone(x)
	}
	return out
}

func rootOf(r *compact.Range) ([]byte, error) {
	if r.End() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot(), nil
	}
	return r.GetRootHash(nil)
}

// Checkpoint returns the latest checkpoint keytrail signed.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	cp, err := l.latest()
	if err != nil {
		return nil, err
	}
	if cp.raw == nil {
		return nil, fmt.Errorf("trillian: %s: no checkpoint signed yet", l.what)
	}
	return bytes.Clone(cp.raw), nil
}

// InclusionProof returns Trillian's inclusion proof of leaf index in the tree
// of size treeSize, at most the latest checkpoint's size.
func (l *Log) InclusionProof(ctx context.Context, index, treeSize uint64) ([][]byte, error) {
	what := fmt.Sprintf("inclusion proof of leaf %d in tree size %d", index, treeSize)
	if err := l.checkSize(what, treeSize); err != nil {
		return nil, err
	}
	if index >= treeSize {
		return nil, fmt.Errorf("trillian: %s of %s: leaf beyond the tree: %w", what, l.what, ledger.ErrOutOfRange)
	}
	resp, err := l.client.GetInclusionProof(ctx, &tpb.GetInclusionProofRequest{LogId: l.cfg.TreeID, LeafIndex: int64(index), TreeSize: int64(treeSize)})
	if err != nil {
		return nil, fmt.Errorf("trillian: %s of %s: %w", what, l.what, err)
	}
	if resp.GetProof() == nil {
		return nil, fmt.Errorf("trillian: %s of %s: %w: the server's tree is smaller than the checkpoint", what, l.what, ErrInconsistent)
	}
	return resp.GetProof().GetHashes(), nil
}

// ConsistencyProof returns Trillian's consistency proof between tree sizes
// size1 and size2, 0 < size1 <= size2 <= the latest checkpoint's size.
func (l *Log) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	what := fmt.Sprintf("consistency proof from tree size %d to %d", size1, size2)
	if size1 == 0 || size1 > size2 {
		return nil, fmt.Errorf("trillian: %s of %s: want 0 < size1 <= size2", what, l.what)
	}
	if err := l.checkSize(what, size2); err != nil {
		return nil, err
	}
	if size1 == size2 {
		return [][]byte{}, nil
	}
	resp, err := l.client.GetConsistencyProof(ctx, &tpb.GetConsistencyProofRequest{LogId: l.cfg.TreeID, FirstTreeSize: int64(size1), SecondTreeSize: int64(size2)})
	if err != nil {
		return nil, fmt.Errorf("trillian: %s of %s: %w", what, l.what, err)
	}
	if resp.GetProof() == nil {
		return nil, fmt.Errorf("trillian: %s of %s: %w: the server's tree is smaller than the checkpoint", what, l.what, ErrInconsistent)
	}
	return resp.GetProof().GetHashes(), nil
}

// Entry returns the exact bytes of leaf index, below the latest checkpoint's size.
func (l *Log) Entry(ctx context.Context, index uint64) ([]byte, error) {
	what := fmt.Sprintf("entry %d", index)
	cp, err := l.latest()
	if err != nil {
		return nil, err
	}
	if index >= cp.size {
		return nil, fmt.Errorf("trillian: %s of %s: checkpoint has size %d: %w", what, l.what, cp.size, ledger.ErrOutOfRange)
	}
	leaves, err := l.leaves(ctx, index, 1)
	if err != nil {
		return nil, fmt.Errorf("trillian: %s of %s: %w", what, l.what, err)
	}
	return leaves[0], nil
}

// Entries returns the exact bytes of leaves [start, start+n), all below the
// latest checkpoint's size, in batches of Config.FetchBatch.
func (l *Log) Entries(ctx context.Context, start, n uint64) ([][]byte, error) {
	what := fmt.Sprintf("entries [%d, %d)", start, start+n)
	if start+n < start {
		return nil, fmt.Errorf("trillian: %s of %s: %w", what, l.what, ledger.ErrOutOfRange)
	}
	if err := l.checkSize(what, start+n); err != nil {
		return nil, err
	}
	out, err := l.leaves(ctx, start, n)
	if err != nil {
		return nil, fmt.Errorf("trillian: %s of %s: %w", what, l.what, err)
	}
	return out, nil
}

// leaves reads the values of leaves [start, start+n), checking each one's
// index and Merkle hash.
func (l *Log) leaves(ctx context.Context, start, n uint64) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for uint64(len(out)) < n {
		next := start + uint64(len(out))
		resp, err := l.client.GetLeavesByRange(ctx, &tpb.GetLeavesByRangeRequest{LogId: l.cfg.TreeID, StartIndex: int64(next), Count: int64(min(n-uint64(len(out)), uint64(l.cfg.FetchBatch)))})
		if err != nil {
			return nil, fmt.Errorf("GetLeavesByRange(%d): %w", next, err)
		}
		if len(resp.GetLeaves()) == 0 {
			return nil, fmt.Errorf("GetLeavesByRange(%d): no leaves: %w", next, ErrInconsistent)
		}
		for _, leaf := range resp.GetLeaves() {
			i := start + uint64(len(out))
			if uint64(len(out)) == n {
				break
			}
			if leaf.GetLeafIndex() != int64(i) || !bytes.Equal(rfc6962.DefaultHasher.HashLeaf(leaf.GetLeafValue()), leaf.GetMerkleLeafHash()) {
				return nil, fmt.Errorf("GetLeavesByRange(%d): leaf %d: %w: wrong index or hash", next, i, ErrInconsistent)
			}
			out = append(out, leaf.GetLeafValue())
		}
	}
	return out, nil
}

func (l *Log) checkSize(what string, size uint64) error {
	cp, err := l.latest()
	if err != nil {
		return err
	}
	if size > cp.size {
		return fmt.Errorf("trillian: %s of %s: checkpoint has size %d: %w", what, l.what, cp.size, ledger.ErrOutOfRange)
	}
	return nil
}

// KeyIndex returns, in ascending order, the indices of the leaves whose entries
// name keyID, up to the latest checkpoint. See the package doc.
func (l *Log) KeyIndex(ctx context.Context, keyID string) ([]uint64, error) {
	cp, err := l.latest()
	if err != nil {
		return nil, err
	}
	return l.index.lookup(ctx, l, cp, keyID)
}

// Close stops the log: a writer stops following Trillian and releases its
// lock; Appends still waiting fail with ledger.ErrClosed. Leaves already
// queued stay queued in Trillian and are checkpointed by the next writer.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("trillian: close %s: %w", l.what, ledger.ErrClosed)
	}
	l.closed = true
	l.mu.Unlock()
	if l.done != nil {
		close(l.done)
		l.stopped.Wait()
	}
	var errs []error
	if l.witnesses != nil {
		if err := l.witnesses.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("trillian: close %s: %w", l.what, err))
		}
		l.witnesses.Stop()
	}
	if l.lock != nil {
		l.lock.Close()
	}
	if l.conn != nil {
		errs = append(errs, l.conn.Close())
	}
	return errors.Join(errs...)
}

// CreateTree creates and initialises a new Trillian LOG tree through the admin
// and log APIs at addr (the log server usually serves both) and returns its ID.
// The display name is cut to the 20 bytes Trillian's schemas store.
// Unavailable servers are retried until ctx ends.
func CreateTree(ctx context.Context, addr, displayName string, opts ...grpc.DialOption) (int64, error) {
	if len(displayName) > maxDisplayName {
		displayName = strings.ToValidUTF8(displayName[:maxDisplayName], "")
	}
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return 0, fmt.Errorf("trillian: create tree at %s: %w", addr, err)
	}
	defer conn.Close()
	// CreateAndInitTree retries an unavailable server until ctx ends; fail
	// fast instead when nothing answers (wrong address, TLS mismatch).
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = tpb.NewTrillianAdminClient(conn).GetTree(pctx, &tpb.GetTreeRequest{TreeId: 1})
	cancel()
	if c := status.Code(err); c == codes.Unavailable || c == codes.DeadlineExceeded || c == codes.Unimplemented {
		return 0, fmt.Errorf("trillian: create tree at %s: %w", addr, err)
	}
	tree, err := tclient.CreateAndInitTree(ctx, &tpb.CreateTreeRequest{Tree: &tpb.Tree{
		TreeState:       tpb.TreeState_ACTIVE,
		TreeType:        tpb.TreeType_LOG,
		DisplayName:     displayName,
		MaxRootDuration: durationpb.New(time.Hour),
	}}, tpb.NewTrillianAdminClient(conn), tpb.NewTrillianLogClient(conn))
	if err != nil {
		return 0, fmt.Errorf("trillian: create tree at %s: %w", addr, err)
	}
	return tree.GetTreeId(), nil
}

// parseCheckpoint authenticates raw with the verifier if there is one.
func (l *Log) parseCheckpoint(raw []byte) (flog.Checkpoint, error) {
	return backend.ParseCheckpoint(raw, l.cfg.Verifier, l.cfg.Signer)
}

// lockWriter takes the state directory's writer lock, waiting for another
// process to release it until ctx ends: two writers would each sign
// checkpoints of their own.
func lockWriter(ctx context.Context, dir string, logger *slog.Logger) (*os.File, error) {
	return backend.LockWriter(ctx, filepath.Join(dir, lockFile), logger)
}
