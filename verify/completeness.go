package verify

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/tiles"
)

func tilesConsistencyProof(fsys fs.FS, size1, size2 uint64) ([][]byte, error) {
	return tiles.NewReader(fsys).ConsistencyProof(size1, size2)
}

// logScan is what a tlog-tiles copy of the log holds about a rotation: read
// up to the copy's own checkpoint, which is proven consistent with the
// bundle's.
type logScan struct {
	// cp is the copy's checkpoint.
	cp checkpoint.Checkpoint
	// records are the authenticated records that relate to the rotation
	// (evidence.Rotation.Relate) or are residency claims, in index order.
	records []verifiedEntry
	// conflicts name the records that name one of the rotation's keys
	// inconsistently (its ID with another digest, or its digest under
	// another ID).
	conflicts []string
}

// scanLog reads every entry of the log copy's tree, checks the entries
// against the tiles and the copy's root, and keeps every record that relates
// to the rotation and that a trusted signer signed and may sign. It returns
// an error (wrapping ErrIncomplete or ErrConsistency) if the copy cannot be
// read or is not consistent with the bundle's checkpoint.
//
// Only authenticated records count: a record is kept only if its DSSE
// signature verifies under a trusted key allowed its predicate type, and it
// is judged by the same code as a bundle entry (checkEntry).
//
// Which records relate to the rotation is decided by the one statement
// parser (evidence.ParseStatement) and evidence.Rotation.Relate, as bundle
// build decides it. To keep a scan of a large log fast, an entry is skipped
// unparsed only when that is provably what the parser would conclude (see
// mayRelate).
func (v *Verifier) scanLog(m *evidence.Manifest, cp checkpoint.Checkpoint, sinceSigned []byte, since *checkpoint.Checkpoint, log logKey, fsys fs.FS) (*logScan, error) {
	r := tiles.NewReader(fsys)
	raw, err := r.Checkpoint()
	if err != nil {
		return nil, fmt.Errorf("%w: read log checkpoint: %w", ErrIncomplete, err)
	}
	logCP, err := log.open(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: log checkpoint: %w", ErrIncomplete, err)
	}
	if logCP.Size < cp.Size {
		return nil, fmt.Errorf("%w: the log copy has %d entries, older than the bundle's checkpoint at %d", ErrIncomplete, logCP.Size, cp.Size)
	}
	if logCP.Size > cp.Size {
		p, err := r.ConsistencyProof(cp.Size, logCP.Size)
		if err == nil {
			err = checkConsistent([]byte(m.Checkpoint), raw, cp, logCP, p)
		}
		if err != nil {
			return nil, fmt.Errorf("log copy's checkpoint %s vs the bundle's: %w", logCP, err)
		}
	} else if !bytes.Equal(logCP.Root, cp.Root) {
		return nil, &InconsistencyError{Older: []byte(m.Checkpoint), Newer: raw, Err: fmt.Errorf("%w: split view: log copy %s, bundle %s", ErrConsistency, logCP, cp)}
	}
	// The copy must also extend the checkpoint the auditor already trusts:
	// a copy forked after it could hide what was logged since.
	if since != nil {
		if since.Size > logCP.Size {
			return nil, fmt.Errorf("%w: the log copy's checkpoint %s is older than the trusted --since checkpoint %s", ErrIncomplete, logCP, *since)
		}
		var p [][]byte
		if since.Size < logCP.Size {
			if p, err = r.ConsistencyProof(since.Size, logCP.Size); err != nil {
				return nil, fmt.Errorf("%w: proof from the --since checkpoint to the log copy's: %w", ErrConsistency, err)
			}
		}
		if err := checkConsistent(sinceSigned, raw, *since, logCP, p); err != nil {
			return nil, fmt.Errorf("log copy's checkpoint vs the trusted --since checkpoint: %w", err)
		}
	}

	rot := m.Rotation
	needles := relationNeedles(rot)
	s := &logScan{cp: logCP}
	// The reader hashes and checks the entries in order on this goroutine;
	// workers on the other cores parse them, in batches. What they found
	// counts only if the whole copy verified (err == nil below).
	type item struct {
		i    uint64
		data []byte
	}
	const batchSize = 256
	batches := make(chan []item, runtime.GOMAXPROCS(0))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		panicked any
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					panicked = p
					mu.Unlock()
					for range batches { // let the reader finish
					}
				}
			}()
			var found []verifiedEntry
			var conflicts []string
			for batch := range batches {
				for _, it := range batch {
					ve, ok := v.scanEntry(it.i, it.data, rot, needles)
					if !ok {
						continue
					}
					if ve.rel.Conflict != "" {
						conflicts = append(conflicts, fmt.Sprintf("entry %d: %s", it.i, ve.rel.Conflict))
					}
					found = append(found, ve)
				}
			}
			mu.Lock()
			s.records = append(s.records, found...)
			s.conflicts = append(s.conflicts, conflicts...)
			mu.Unlock()
		})
	}
	var batch []item
	err = r.VerifyEntries(logCP.Size, logCP.Root, func(i uint64, data []byte) error {
		// The entry's bytes are copied, as the reader reuses them.
		batch = append(batch, item{i, bytes.Clone(data)})
		if len(batch) == batchSize {
			batches <- batch
			batch = nil
		}
		return nil
	})
	if len(batch) > 0 {
		batches <- batch
	}
	close(batches)
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
	slices.SortFunc(s.records, func(a, b verifiedEntry) int { return cmp.Compare(a.index, b.index) })
	slices.Sort(s.conflicts)
	if err != nil {
		return nil, fmt.Errorf("%w: the log copy does not match its checkpoint: %w", ErrIncomplete, err)
	}
	return s, nil
}

// scanEntry judges one entry of the log copy: it is kept (ok) if it
// relates to the rotation, or is a residency claim, and a trusted signer
// allowed its kind signed it.
func (v *Verifier) scanEntry(i uint64, data []byte, rot evidence.Rotation, needles [][]byte) (verifiedEntry, bool) {
	env, err := evidence.ParseEnvelope(data, evidence.MaxRecordBytes)
	if err != nil || env.PayloadType != evidence.PayloadType || !mayRelate(env.Payload, needles) {
		return verifiedEntry{}, false
	}
	st, pred, err := evidence.ParseStatement(env.Payload)
	if err != nil {
		return verifiedEntry{}, false
	}
	_, isClaim := pred.(*evidence.ResidencyClaim)
	if !isClaim && !rot.Relate(st.Keys(), pred).About() {
		return verifiedEntry{}, false
	}
	// Only now is the signature checked, by the code that checks bundle
	// entries.
	e := evidence.Entry{Index: i, Envelope: data}
	ve, sigErr, _ := v.checkEntry(&e, rot)
	if sigErr != nil || ve.keys == nil {
		return verifiedEntry{}, false
	}
	if ve.rel.Carried() {
		ve.receiptErr = verifyReceipt(&ve, nil)
		snapshotDuties(&ve)
	}
	return ve, true
}

// relationNeedles are the JSON strings, quotes included, of which a statement
// that relates to the rotation, or a residency claim, contains at least one
// (see mayRelate).
func relationNeedles(r evidence.Rotation) [][]byte {
	var out [][]byte
	for _, s := range []string{r.OldKey.ID, r.NewKey.ID, r.OldKey.SPKISHA256, r.NewKey.SPKISHA256, r.ID, evidence.PredicateResidencyClaim} {
		n := []byte(`"` + s + `"`)
		// A needle's prefix is found wherever the needle is (so the test
		// stays sound), and bytes.Index is several times faster for
		// needles it can search with vector instructions (at most 63 bytes
		// on amd64) than for longer ones, such as a quoted digest.
		out = append(out, n[:min(len(n), maxNeedle)])
	}
	return out
}

// maxNeedle bounds the needles' length (see relationNeedles).
const maxNeedle = 63

// mayRelate reports whether a statement payload may relate to the rotation.
// It is false only when the parser provably agrees: a statement relates to
// the rotation if a subject's name or sha256 digest is one of the rotation's
// keys' IDs or digests, or it is a lifecycle event whose rotationId is the
// rotation's; or it is a residency claim (predicateType). Each of those is a
// JSON string value. A JSON string without a backslash decodes to exactly
// the bytes between its quotes (the strict decoder rejects invalid UTF-8 and
// raw control characters), so in a payload without any backslash each of
// those values appears literally, quotes included, among the needles. A
// payload with a backslash anywhere may spell a value with escapes
// (ATTACKS.md 39), so it is always parsed.
func mayRelate(payload []byte, needles [][]byte) bool {
	if bytes.IndexByte(payload, '\\') >= 0 {
		return true
	}
	return slices.ContainsFunc(needles, func(n []byte) bool { return bytes.Contains(payload, n) })
}

// checkCompleteness is log.completeness: the bundle carries every record the
// log (up to the bundle's checkpoint) holds that a bundle of the rotation must
// carry (evidence.Relation.Carried: the records about its keys in its window,
// its lifecycle events at any time, and the residency claims about the places
// those records name), the log holds no record naming one of the rotation's
// keys inconsistently, and no record the bundle lacks (outside its window, or
// logged after its checkpoint) changes any rule's outcome: changed lists the
// checks whose status the log's records change (see VerifyBundle).
func (v *Verifier) checkCompleteness(m *evidence.Manifest, cp checkpoint.Checkpoint, scan *logScan, claimPlaces map[string]bool, changed []string, res *Result) {
	have := make(map[uint64]bool, len(m.Entries))
	for _, e := range m.Entries {
		have[e.Index] = true
	}
	rot := m.Rotation
	var missing, later []string
	var required int
	for _, e := range scan.records {
		_, isClaim := e.pred.(*evidence.ResidencyClaim)
		must := e.rel.Carried() || isClaim && evidence.IsResidencyClaimAbout(e.pred, claimPlaces)
		switch {
		case have[e.index]:
		case e.index >= cp.Size:
			if must || !isClaim {
				later = append(later, describe(e))
			}
		case must:
			missing = append(missing, describe(e))
		case !isClaim:
			later = append(later, describe(e))
		}
		if must && e.index < cp.Size {
			required++
		}
	}
	var f failures
	for _, c := range scan.conflicts {
		f.add(fmt.Errorf("%w: the log names a key of rotation %s inconsistently: %s", ErrIncomplete, rot.ID, c))
	}
	for _, d := range missing {
		f.add(fmt.Errorf("%s: %w: the bundle omits this record of rotation %s, which the log holds", d, ErrIncomplete, rot.ID))
	}
	if len(changed) > 0 && len(later) > 0 {
		f.add(fmt.Errorf("%w: records of the log the bundle need not carry (outside its window, or logged after its checkpoint) change %s: %s", ErrIncomplete, strings.Join(changed, ", "), strings.Join(later, "; ")))
	}
	f.report(res, CheckLogCompleteness, fmt.Sprintf("read the log copy to its checkpoint at size %d (root %s), consistent with the bundle's at %d: all %d records the bundle must carry are in it; the %d other records about the rotation's keys change no check",
		scan.cp.Size, base64.StdEncoding.EncodeToString(scan.cp.Root), cp.Size, required, len(later)))
}

// describe names a verified record for messages: its entry, what it is and
// its time.
func describe(e verifiedEntry) string {
	return fmt.Sprintf("entry %d (%s at %s)", e.index, kindOf(e), evidence.FormatTime(e.pred.RecordTime()))
}

// kindOf says what a verified record is: "key-policy-snapshot of KEY",
// "rollback by ACTOR of KEY".
func kindOf(e verifiedEntry) string {
	what := strings.TrimSuffix(e.pred.PredicateType(), "/v1")
	what = what[strings.LastIndex(what, "/")+1:]
	if ev, ok := e.pred.(*evidence.LifecycleEvent); ok {
		what = ev.Event + " by " + ev.Actor.ID
	}
	if len(e.keys) > 0 {
		what += " of " + e.keys[0].ID
	}
	return what
}
