// Package posix is keytrail's embedded default ledger: a [ledger.Log] kept in a
// local directory laid out as a C2SP tlog-tiles log (https://c2sp.org/tlog-tiles),
// written by Tessera's POSIX storage driver.
//
// # Layout
//
// Config.Dir holds, side by side:
//
//	checkpoint          the latest published checkpoint, a C2SP signed note (https://c2sp.org/tlog-checkpoint)
//	checkpoint.witnessed  the latest checkpoint the log's witnesses cosigned (see Witnessing)
//	tile/...            hash tiles and entry bundles (tile/entries/...), as tlog-tiles specifies
//	.state/...          Tessera's private state and lock files
//	.keytrail/keyindex  keytrail's key index, a cache derived from the log alone
//	.keytrail/leafhashes  the leaf-hash map of exactly-once appends, also a cache
//	.keytrail/writer.lock the writer's lock file
//
// Each leaf is the exact bytes of one entry, hashed as RFC 6962 specifies. Every
// file but keytrail's caches is written by Tessera; they live under .keytrail/,
// a name tlog-tiles and Tessera do not use.
//
// # Writers and readers
//
// Open with a Config.Signer appends: it runs a Tessera appender, which batches
// concurrent Appends (up to Config.BatchMaxSize entries, waiting at most
// Config.BatchMaxAge), writes each batch's entry bundles, integrates it into
// the tree's tiles and records the new tree size, every file synced. Append
// returns once a published checkpoint covers the new entry (see Checkpoints).
// keytrail keeps at most one batch in Tessera at a time (group commit): an
// Append arriving while a batch is being written waits for it, and all that
// waited go together as the next batch, so batches grow with the load instead
// of being cut every BatchMaxAge into many small ones (each costs the same
// synced files); a lone Append goes at once. AppendBatch does the work of
// many concurrent Appends from one goroutine: its entries take their room in
// the queue together and join one group commit.
// Only one writer per directory may be open in a process; writers in several
// processes take turns through Tessera's file locks.
//
// A writer holds an exclusive lock (.keytrail/writer.lock) from Open to Close;
// a second writer process waits in Open, within its context, for the first to
// close. One writer at a time is what makes appends exactly-once.
//
// Open without a signer reads only: it takes no lock and starts no background
// job, so any number of readers, in this process or others, can serve
// checkpoints, entries and proofs while a writer appends. Every read is bounded
// by the latest published checkpoint; anything beyond it is [ledger.ErrOutOfRange].
//
// # Checkpoints
//
// keytrail, not Tessera, publishes the writer's checkpoints. Tessera's POSIX
// driver publishes at most every 100 ms, and when an integration finds the
// last checkpoint younger than that it waits a whole interval again, so an
// Append waited 100 to 200 ms for a checkpoint after its entry was integrated
// (measured: docs/benchmarks.md, "Ingestion server"). Instead:
//
//   - An Append whose entry Tessera has integrated (its index future has
//     resolved) asks the writer's publisher for a checkpoint and waits. The
//     publisher reads Tessera's integrated tree size (LogReader.IntegratedSize,
//     Tessera's synced tree state), computes that tree's root from the hash
//     tiles Tessera wrote (tessera/client.FetchRangeNodes: the same tiles
//     readers build proofs from), signs the C2SP checkpoint with Config.Signer
//     (the very note Tessera's WithCheckpointSigner would make: origin, size,
//     base64 root, one signature) once a consistency proof built from the
//     same tiles shows the new tree extends the last published one (else
//     ErrCorrupt, naming both), writes it to .keytrail/checkpoint.tmp,
//     syncs it, renames it over checkpoint and syncs the directory. It then
//     checks it as readers do (verified with Config.Verifier if set, and
//     refused if it is behind a checkpoint seen before), keeps it in memory
//     (the writer serves its checkpoint without rereading the file, which it
//     alone writes) and wakes the waiters it covers. Requests that arrive
//     during a publication are served by the next one, which covers every
//     entry integrated by then: one publication per integrated batch under
//     load, none while idle.
//   - Tessera still needs a signer to open the log (it signs the empty tree
//     of a new one); it is given the same signer behind a guard that refuses
//     to sign once Open has started keytrail's publisher, and a checkpoint
//     interval of a century, so its publisher always finds the checkpoint
//     recent and skips. It could write a checkpoint only if the file vanished,
//     and then it cannot sign one. One writer of the checkpoint file means the
//     published size never goes back: every publication is of a tree that
//     extends the last one, read from files that only grow.
//   - Tessera's garbage collector removes the partial versions of tiles and
//     bundles whose full versions the published checkpoint (read from the
//     same file) covers; readers fall back to the full ones.
//   - Open publishes a checkpoint of the whole integrated tree (if the
//     published one does not already cover it) before it accepts appends;
//     Close publishes one after the last pending Append returns, which is
//     what Tessera's shutdown waits for.
//
// Crash windows: a crash before the rename leaves the previous checkpoint (and
// a stray checkpoint.tmp, overwritten next time); after it, the new one, synced.
// An entry integrated but not yet covered was never acknowledged; the next
// Open publishes a checkpoint covering it (see below). An acknowledged entry
// is covered by a synced checkpoint, so the file never goes back past it.
//
// # Exactly-once appends
//
// Append of a byte-identical entry returns the original index and adds no leaf,
// and concurrent identical Appends produce one leaf. keytrail enforces this
// itself (Tessera's antispam is best-effort by design) with two parts:
//
//   - a map from the RFC 6962 leaf hash of every entry in the log to the first
//     index holding it, kept in memory and on disk in .keytrail/leafhashes (the
//     i-th 32-byte record is the leaf hash of entry i; the file is a cache,
//     derived from the log alone, like the key index);
//   - in-process coalescing: while one Append of an entry is being sequenced,
//     identical Appends wait for it and return its index.
//
// Open, before it accepts any Append, takes the writer lock, publishes a
// checkpoint of the whole integrated tree (unless one covers it already), and
// brings the map up to that checkpoint, reading any entries the file lacks
// from the log. The hashes, file and log together, must reproduce the
// checkpoint's root, or the file is discarded and the map rebuilt from the log
// alone; a log whose entries miss its checkpoint's root fails with ErrCorrupt.
// Each Append records its entry's hash in memory as soon as Tessera sequences it,
// and the file is extended, in index order, as checkpoints cover entries.
//
// The crash windows, and why none breaks exactly-once:
//
//   - Entry integrated and published, but its hash not yet in the file (a crash
//     after Tessera's write, before the map's): the next Open reads the entry
//     from the log while catching up, before accepting appends.
//   - Entry sequenced and integrated by Tessera, but no published checkpoint
//     covers it and its Append was never acknowledged (a crash in between): it is
//     in the tree, so the next Open publishes a checkpoint of the whole tree
//     and maps it. A retried Append of it returns its index.
//   - Entry queued but not sequenced (a crash before Tessera's batch was
//     written): it is not in the log; a retried Append adds it once.
//   - The file torn or corrupt after a crash (it is written without fsync, being
//     a cache): a trailing partial record is dropped, and any other damage makes
//     the root check fail and the map be rebuilt from the log.
//   - A Tessera Add that fails after all having sequenced its entry: the entry's
//     hash is read from the log when the file is extended past it; until a
//     checkpoint covers it, an identical Append may add a second copy. Tessera's
//     POSIX driver does not fail a batch after writing its tree state.
//
// The map costs memory for every entry (a 32-byte hash and an index, plus Go's
// map overhead), and Open reads the file and recomputes the root from it once.
// Entries that were already duplicated in a log written before this rule keep
// their copies; Append returns the first.
//
// # Witnessing
//
// With Config.Witnesses, the writer has its checkpoints cosigned by witnesses
// (https://c2sp.org/tlog-witness), in the background: an Append is still
// acknowledged once its checkpoint is durable, not once it is witnessed. Each
// publication tells a witnessing loop (a non-blocking send, all the append
// path does); the loop submits the latest checkpoint, as the log signed it,
// to the witnesses with a consistency proof built from the tiles, at most once
// per Config.WitnessInterval, and retries a failed round with a growing delay.
// When the cosignatures meet the policy, the cosigned checkpoint is written
// over checkpoint if it is still the latest (same size and root: the file
// keeps its body and gains signature lines, so readers see no change of
// tree), then to checkpoint.witnessed, each synced. Under load the checkpoint
// file moves on between rounds and mostly carries only the log's signature;
// checkpoint.witnessed always holds the latest one that met the policy
// (WitnessedCheckpoint). When appends stop, the next round cosigns the last
// checkpoint, and Close witnesses it before it returns, so a log at rest has
// a cosigned checkpoint. A witness's refusal (a fork it detected, say) is
// logged at ERROR and returned by Close.
//
// # Trust
//
// With Config.Verifier set, every checkpoint read from Dir is verified before its
// size or root is used. The key index is only updated from entries whose leaf
// hashes, together with the indexed prefix, reproduce the root of the latest
// checkpoint.
package posix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/internal/backend"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	tposix "github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/semaphore"
)

// Defaults for the Config fields left zero. They are tuned for a log that must
// answer a lone Append quickly (in about BatchMaxAge plus a few fsyncs) and
// still batch tens of thousands of concurrent Appends per second; see
// docs/benchmarks.md for the measurements behind them.
const (
	// DefaultBatchMaxSize caps the entries Tessera sequences and integrates in one
	// batch (one write of each touched entry bundle and tile, each fsynced).
	DefaultBatchMaxSize = 4096
	// DefaultBatchMaxAge is how long the first entry of a batch waits for others.
	DefaultBatchMaxAge = 5 * time.Millisecond
	// DefaultMaxOutstanding bounds the entries queued but not yet sequenced.
	DefaultMaxOutstanding = tessera.DefaultPushbackMaxOutstanding
	// DefaultRetryInterval is how soon a failed checkpoint publication is
	// retried while Appends wait for it.
	DefaultRetryInterval = 10 * time.Millisecond
	// DefaultWitnessInterval is the shortest time between two witnessing
	// rounds under load.
	DefaultWitnessInterval = backend.DefaultWitnessInterval
)

// MaxEntrySize is the largest entry tlog-tiles allows (its length is a uint16).
const MaxEntrySize = tessera.DefaultEntrySizeLimit

// ErrCorrupt reports a log directory whose files contradict each other or the
// tlog-tiles format: a checkpoint that went backwards, entries that do not
// hash to the checkpoint's root, a truncated or oversized file.
var ErrCorrupt = errors.New("posix: log directory is corrupt")

// Config configures Open. Only Dir and KeyIDs are required.
type Config struct {
	// Dir is the tlog-tiles directory. A writer creates it if absent; a reader
	// requires it to exist.
	Dir string

	// Signer signs checkpoints; its name is the log's origin. If nil, the log is
	// opened read-only and Append returns ledger.ErrReadOnly.
	Signer note.Signer

	// Verifier, if set, authenticates every checkpoint read from Dir: the note
	// must carry its valid signature and the origin must be its name. With a
	// Signer it must be the signer's verifier. If nil, a writer checks only that
	// the checkpoint names its signer (origin and key hash), and a reader parses
	// checkpoints without authenticating them: callers must verify what they get.
	Verifier note.Verifier

	// KeyIDs extracts the key IDs an entry names, to build the key index. It is
	// called on every entry once per index build; an entry for which it returns
	// an error names no key, and empty key IDs are ignored. Required.
	KeyIDs ledger.KeyIDsFunc

	// Logger receives the ledger's logs. Default: slog.Default().
	Logger *slog.Logger

	// BatchMaxSize is the most entries sequenced and integrated together
	// (tessera.WithBatching). A batch costs a fixed number of fsynced files (the
	// entry bundles and tiles it touches, Tessera's tree state), so larger
	// batches carry heavy load further. Default: DefaultBatchMaxSize (4096).
	BatchMaxSize uint

	// BatchMaxAge is the longest an entry waits for a batch to fill before the
	// batch is sequenced anyway (tessera.WithBatching). It adds directly to the
	// latency of a lone Append; too short, and a steady stream of Appends is cut
	// into many small batches. Default: DefaultBatchMaxAge (5ms).
	BatchMaxAge time.Duration

	// MaxOutstanding is the most entries queued in Tessera but not yet sequenced;
	// further Appends wait (or fail when their context ends) for room. It bounds
	// the memory held by queued entries. It is also passed to
	// tessera.WithPushback, which the POSIX driver of Tessera v1.0.4 ignores.
	// Default: DefaultMaxOutstanding (4096).
	MaxOutstanding uint

	// RetryInterval is how soon a failed checkpoint publication (a file that
	// could not be written, say) is retried while some Append waits for it.
	// Default: DefaultRetryInterval (10ms).
	RetryInterval time.Duration

	// Witnesses, if set, cosign the writer's checkpoints (a *witness.Cosigner):
	// see the package doc, "Witnessing". Ignored by a reader.
	Witnesses ledger.Cosigner

	// WitnessInterval is the shortest time between two witnessing rounds
	// under load. Default: DefaultWitnessInterval (1s).
	WitnessInterval time.Duration
}

// Log is a ledger.Log on a tlog-tiles directory. It is safe for concurrent use.
type Log struct {
	dir    string
	cfg    Config
	logger *slog.Logger
	files  files
	cps    checkpoints
	index  *keyIndex

	// Writer state; add is nil for a read-only Log.
	add       tessera.AddFn
	shutdown  func(context.Context) error
	cancel    context.CancelFunc
	publisher *publisher
	awaiter   *awaiter
	gate      *gate
	slots     *semaphore.Weighted // room among the entries queued in Tessera (MaxOutstanding)
	release   func()
	dedup     *dedup
	lock      *os.File            // the writer lock (see lockWriter)
	witnesses *backend.Witnessing // nil without Config.Witnesses

	mu       sync.RWMutex // guards closed and inflight.Add
	closed   bool
	inflight sync.WaitGroup
}

var _ ledger.Log = (*Log)(nil)

// Open opens the log in cfg.Dir: for appending if cfg.Signer is set, read-only
// otherwise. ctx bounds only the opening; the writer's background work runs
// until Close.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Dir == "" {
		return nil, errors.New("posix: open: Config.Dir is empty")
	}
	if cfg.KeyIDs == nil {
		return nil, fmt.Errorf("posix: open %s: Config.KeyIDs is nil", cfg.Dir)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BatchMaxSize == 0 {
		cfg.BatchMaxSize = DefaultBatchMaxSize
	}
	if cfg.BatchMaxAge <= 0 {
		cfg.BatchMaxAge = DefaultBatchMaxAge
	}
	if cfg.MaxOutstanding == 0 {
		cfg.MaxOutstanding = DefaultMaxOutstanding
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.Signer != nil && cfg.Verifier != nil &&
		(cfg.Signer.Name() != cfg.Verifier.Name() || cfg.Signer.KeyHash() != cfg.Verifier.KeyHash()) {
		return nil, fmt.Errorf("posix: open %s: verifier %q (key hash %08x) does not match signer %q (key hash %08x)",
			cfg.Dir, cfg.Verifier.Name(), cfg.Verifier.KeyHash(), cfg.Signer.Name(), cfg.Signer.KeyHash())
	}

	l := &Log{
		dir:    cfg.Dir,
		cfg:    cfg,
		logger: cfg.Logger.With(slog.String("ledger", "posix"), slog.String("dir", cfg.Dir)),
		files:  files{dir: cfg.Dir},
	}
	l.cps = checkpoints{path: l.files.checkpointPath(), parse: l.parseCheckpoint, read: l.files.readCheckpoint}
	l.index = newKeyIndex(cfg.Dir, cfg.KeyIDs, l.logger)

	if cfg.Signer == nil {
		fi, err := os.Stat(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("posix: open %s read-only: %w", cfg.Dir, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("posix: open %s read-only: not a directory", cfg.Dir)
		}
		return l, nil
	}
	if err := l.openWriter(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// openWriter starts Tessera's appender on l.dir.
func (l *Log) openWriter(ctx context.Context) (err error) {
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return fmt.Errorf("posix: open %s: %w", l.dir, err)
	}
	release, err := claimWriter(l.dir)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			release()
		}
	}()

	// An existing log must belong to this signer: Tessera would otherwise publish
	// checkpoints under a new origin for the old tree.
	if _, err := l.cps.latest(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("posix: open %s: %w", l.dir, err)
	}

	lock, err := lockWriter(ctx, l.dir, l.logger)
	if err != nil {
		return fmt.Errorf("posix: open %s: %w", l.dir, err)
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()

	driver, err := tposix.New(ctx, tposix.Config{Path: l.dir})
	if err != nil {
		return fmt.Errorf("posix: open %s: tessera storage: %w", l.dir, err)
	}
	// Tessera gets a signer it needs to open the log (and to sign the empty
	// tree of a new one), and a checkpoint interval so long that it never
	// publishes: keytrail publishes every checkpoint (see the package doc).
	guard := &guardedSigner{Signer: l.cfg.Signer}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(guard).
		WithBatching(l.cfg.BatchMaxSize, l.cfg.BatchMaxAge).
		WithCheckpointInterval(tesseraHold).
		WithCheckpointRepublishInterval(tesseraHold).
		WithPushback(l.cfg.MaxOutstanding)

	// Tessera's background jobs live until Close, not until ctx ends.
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	appender, shutdown, reader, err := tessera.NewAppender(bg, driver, opts)
	if err != nil {
		cancel()
		return fmt.Errorf("posix: open %s: tessera appender: %w", l.dir, err)
	}
	guard.off.Store(true)
	pub := &publisher{signer: l.cfg.Signer, integrated: reader.IntegratedSize, files: l.files, cps: &l.cps}
	stop := func() {
		_ = shutdown(context.WithoutCancel(ctx))
		cancel()
	}

	// Exactly-once: before accepting an append, the leaf-hash map must cover
	// every entry in the tree, including any a crashed writer integrated but
	// no checkpoint covers yet. Publish a checkpoint of the whole tree.
	if cp, err := l.cps.latest(); err == nil {
		pub.have, pub.size, pub.root = true, cp.Size, cp.Hash
	} else if !errors.Is(err, fs.ErrNotExist) {
		stop()
		return fmt.Errorf("posix: open %s: %w", l.dir, err)
	}
	if _, err := pub.publish(ctx); err != nil {
		stop()
		return fmt.Errorf("posix: open %s: publishing a checkpoint of the whole tree: %w", l.dir, err)
	}
	cp, err := l.cps.latest()
	if err != nil {
		stop()
		return fmt.Errorf("posix: open %s: %w", l.dir, err)
	}
	dd := newDedup(l.dir, l.logger)
	if err := dd.load(ctx, cp, l.files); err != nil {
		stop()
		dd.close()
		return fmt.Errorf("posix: open %s: %w", l.dir, err)
	}
	l.cps.own()

	l.add = appender.Add
	l.shutdown = shutdown
	l.cancel = cancel
	l.release = release
	l.lock = lock
	l.dedup = dd
	l.slots = semaphore.NewWeighted(int64(l.cfg.MaxOutstanding))
	l.publisher = pub
	l.gate = newGate(l.cfg.BatchMaxAge)
	l.awaiter = newAwaiter(pub.publish, cp.Size, l.cfg.RetryInterval, l.logger)
	if l.cfg.Witnesses != nil {
		l.startWitnessing()
	}
	l.logger.InfoContext(ctx, "opened ledger for appending", slog.String("origin", l.cfg.Signer.Name()))
	return nil
}

// writers holds the directories open for appending in this process. Tessera's
// POSIX locks are per process, so two writers in one process would not exclude
// each other.
var writers struct {
	sync.Mutex
	dirs map[string]bool
}

func claimWriter(dir string) (release func(), err error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("posix: open %s: %w", dir, err)
	}
	writers.Lock()
	defer writers.Unlock()
	if writers.dirs[abs] {
		return nil, fmt.Errorf("posix: open %s: already open for appending in this process", dir)
	}
	if writers.dirs == nil {
		writers.dirs = make(map[string]bool)
	}
	writers.dirs[abs] = true
	return func() {
		writers.Lock()
		defer writers.Unlock()
		delete(writers.dirs, abs)
	}, nil
}

// enter registers an operation, failing if l is closed.
func (l *Log) enter() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return fmt.Errorf("posix: %s: %w", l.dir, ledger.ErrClosed)
	}
	l.inflight.Add(1)
	return nil
}

// Append adds entry as a leaf and returns its index once a published checkpoint
// covers it. Entries longer than MaxEntrySize are rejected. Append does not
// retain entry, but the caller must not modify it until Append returns.
//
// Appends are exactly-once: if the log already holds a byte-identical entry,
// Append returns the index of its first copy and adds nothing; concurrent
// identical Appends add one leaf and all return its index. See the package doc.
//
// If ctx is done before Append starts, nothing is appended. If it ends while
// Append waits, Append returns ctx's error, but the entry may still be appended.
// ctx is not consulted while Tessera writes the entry's batch, which takes
// milliseconds.
func (l *Log) Append(ctx context.Context, entry []byte) (uint64, error) {
	idx, err := l.AppendBatch(ctx, [][]byte{entry})
	if err != nil {
		return 0, err
	}
	return idx[0], nil
}

func (l *Log) isClosed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}

// Checkpoint returns the bytes of the latest published checkpoint.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.inflight.Done()
	cp, err := l.cps.latest()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(cp.raw), nil
}

// InclusionProof returns the RFC 6962 inclusion proof of leaf index in the tree
// of size treeSize, which must not exceed the latest checkpoint's size.
func (l *Log) InclusionProof(ctx context.Context, index, treeSize uint64) ([][]byte, error) {
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.inflight.Done()
	what := fmt.Sprintf("inclusion proof of leaf %d in tree size %d", index, treeSize)
	if err := l.checkSize(what, treeSize); err != nil {
		return nil, err
	}
	if index >= treeSize {
		return nil, fmt.Errorf("posix: %s of %s: leaf beyond the tree: %w", what, l.dir, ledger.ErrOutOfRange)
	}
	pb, err := client.NewProofBuilder(ctx, treeSize, l.files.readTile)
	if err != nil {
		return nil, fmt.Errorf("posix: %s of %s: %w", what, l.dir, err)
	}
	p, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("posix: %s of %s: %w", what, l.dir, err)
	}
	return p, nil
}

// ConsistencyProof returns the RFC 6962 consistency proof between tree sizes
// size1 and size2, 0 < size1 <= size2 <= the latest checkpoint's size.
func (l *Log) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.inflight.Done()
	what := fmt.Sprintf("consistency proof from tree size %d to %d", size1, size2)
	if size1 == 0 || size1 > size2 {
		return nil, fmt.Errorf("posix: %s of %s: want 0 < size1 <= size2", what, l.dir)
	}
	if err := l.checkSize(what, size2); err != nil {
		return nil, err
	}
	pb, err := client.NewProofBuilder(ctx, size2, l.files.readTile)
	if err != nil {
		return nil, fmt.Errorf("posix: %s of %s: %w", what, l.dir, err)
	}
	p, err := pb.ConsistencyProof(ctx, size1, size2)
	if err != nil {
		return nil, fmt.Errorf("posix: %s of %s: %w", what, l.dir, err)
	}
	return p, nil
}

// Entry returns the exact bytes of leaf index, which must be below the latest
// checkpoint's size.
func (l *Log) Entry(ctx context.Context, index uint64) ([]byte, error) {
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.inflight.Done()
	what := fmt.Sprintf("entry %d", index)
	cp, err := l.cps.latest()
	if err != nil {
		return nil, fmt.Errorf("posix: %s of %s: %w", what, l.dir, err)
	}
	if index >= cp.Size {
		return nil, fmt.Errorf("posix: %s of %s: checkpoint has size %d: %w", what, l.dir, cp.Size, ledger.ErrOutOfRange)
	}
	bundle, err := l.files.entryBundle(ctx, index/layout.EntryBundleWidth, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("posix: %s: %w", what, err)
	}
	return bytes.Clone(bundle.Entries[index%layout.EntryBundleWidth]), nil
}

// Entries returns the exact bytes of leaves [start, start+n), all below the
// latest checkpoint's size, reading each entry bundle once.
func (l *Log) Entries(ctx context.Context, start, n uint64) ([][]byte, error) {
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.inflight.Done()
	what := fmt.Sprintf("entries [%d, %d)", start, start+n)
	cp, err := l.cps.latest()
	if err != nil {
		return nil, fmt.Errorf("posix: %s of %s: %w", what, l.dir, err)
	}
	if start+n < start || start+n > cp.Size {
		return nil, fmt.Errorf("posix: %s of %s: checkpoint has size %d: %w", what, l.dir, cp.Size, ledger.ErrOutOfRange)
	}
	out := make([][]byte, 0, n)
	for ri := range layout.Range(start, n, cp.Size) {
		b, err := l.files.entryBundle(ctx, ri.Index, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("posix: %s: %w", what, err)
		}
		for _, e := range b.Entries[ri.First : ri.First+ri.N] {
			out = append(out, bytes.Clone(e))
		}
	}
	return out, nil
}

// checkSize fails with ledger.ErrOutOfRange if size exceeds the latest checkpoint.
func (l *Log) checkSize(what string, size uint64) error {
	cp, err := l.cps.latest()
	if err != nil {
		return fmt.Errorf("posix: %s of %s: %w", what, l.dir, err)
	}
	if size > cp.Size {
		return fmt.Errorf("posix: %s of %s: checkpoint has size %d: %w", what, l.dir, cp.Size, ledger.ErrOutOfRange)
	}
	return nil
}

// KeyIndex returns, in ascending order, the indices of the leaves whose entries
// name keyID (as Config.KeyIDs reports), up to the latest checkpoint; nil if
// none does. It first brings the key index up to date: see the package doc.
func (l *Log) KeyIndex(ctx context.Context, keyID string) ([]uint64, error) {
	if err := l.enter(); err != nil {
		return nil, err
	}
	defer l.inflight.Done()
	return l.index.lookup(ctx, &l.cps, l.files, keyID)
}

// Close stops the log. For a writer it first waits, within ctx, until a
// published checkpoint covers every entry Tessera has sequenced and every
// pending Append has returned. Afterwards every method returns ledger.ErrClosed.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("posix: close %s: %w", l.dir, ledger.ErrClosed)
	}
	l.closed = true
	l.mu.Unlock()

	var errs []error
	// Pending Appends complete first (the publisher still runs), then a last
	// checkpoint covers everything Tessera integrated, which is what Tessera's
	// shutdown waits for.
	done := make(chan struct{})
	go func() {
		l.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("posix: close %s: waiting for pending operations: %w", l.dir, ctx.Err()))
	}
	if l.publisher != nil {
		if size, err := l.publisher.publish(ctx); err != nil {
			errs = append(errs, fmt.Errorf("posix: close %s: publishing the last checkpoint: %w", l.dir, err))
		} else {
			l.awaiter.advance(size)
		}
	}
	if l.witnesses != nil {
		if err := l.witnesses.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("posix: close %s: %w", l.dir, err))
		}
		l.witnesses.Stop()
	}
	if l.shutdown != nil {
		if err := l.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("posix: close %s: tessera shutdown: %w", l.dir, err))
		}
	}
	if l.cancel != nil {
		l.cancel()
		l.awaiter.stop()
		if err := l.dedup.close(); err != nil {
			errs = append(errs, fmt.Errorf("posix: close %s: leaf-hash map: %w", l.dir, err))
		}
		l.lock.Close()
		l.release()
		l.logger.InfoContext(ctx, "closed ledger")
	}
	return errors.Join(errs...)
}
