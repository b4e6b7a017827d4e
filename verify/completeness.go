package verify

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io/fs"
	"slices"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/tiles"
)

func tilesConsistencyProof(fsys fs.FS, size1, size2 uint64) ([][]byte, error) {
	return tiles.NewReader(fsys).ConsistencyProof(size1, size2)
}

// checkCompleteness rebuilds the rotation's records from a tlog-tiles copy of
// the log. It reads every entry of the bundle checkpoint's tree, checks the
// entries against the tiles and the checkpoint's root, and lists every entry
// about the rotation's keys in its window, or naming the rotation at any time,
// signed by a trusted key, that the bundle omits.
//
// Only authenticated records count: an entry is considered only if its DSSE
// signature verifies under a trusted key, and only then is its statement parsed.
// To keep a scan of a large log fast, an envelope whose payload contains neither
// key's ID nor its key digest is skipped before its signature is checked: such a
// payload cannot name the keys.
func (v *Verifier) checkCompleteness(b *evidence.Manifest, cp checkpoint.Checkpoint, log logKey, fsys fs.FS, res *Result) {
	r := tiles.NewReader(fsys)
	raw, err := r.Checkpoint()
	if err != nil {
		res.fail(CheckLogCompleteness, fmt.Errorf("%w: read log checkpoint: %w", ErrIncomplete, err))
		return
	}
	logCP, err := log.open(raw)
	if err != nil {
		res.fail(CheckLogCompleteness, fmt.Errorf("%w: log checkpoint: %w", ErrIncomplete, err))
		return
	}
	if logCP.Size < cp.Size {
		res.fail(CheckLogCompleteness, fmt.Errorf("%w: the log copy has %d entries, older than the bundle's checkpoint at %d", ErrIncomplete, logCP.Size, cp.Size))
		return
	}
	if logCP.Size > cp.Size {
		p, err := r.ConsistencyProof(cp.Size, logCP.Size)
		if err == nil {
			err = verifyConsistency(cp, logCP, p)
		}
		if err != nil {
			res.fail(CheckLogCompleteness, fmt.Errorf("log copy's checkpoint %s vs the bundle's: %w", logCP, err))
			return
		}
	} else if !bytes.Equal(logCP.Root, cp.Root) {
		res.fail(CheckLogCompleteness, fmt.Errorf("%w: split view: log copy %s, bundle %s", ErrConsistency, logCP, cp))
		return
	}

	rot := b.Rotation
	needles := [][]byte{[]byte(rot.OldKey.SPKISHA256), []byte(rot.NewKey.SPKISHA256), []byte(`"` + rot.OldKey.ID + `"`), []byte(`"` + rot.NewKey.ID + `"`), []byte(`"` + rot.ID + `"`)}
	var want []uint64
	err = r.VerifyEntries(cp.Size, cp.Root, func(i uint64, data []byte) error {
		env, err := evidence.ParseEnvelope(data, evidence.MaxRecordBytes)
		if err != nil || env.PayloadType != evidence.PayloadType {
			return nil
		}
		if !slices.ContainsFunc(needles, func(n []byte) bool { return bytes.Contains(env.Payload, n) }) {
			return nil
		}
		e := evidence.Entry{Index: i, Envelope: data}
		if ve, sigErr, _ := v.checkEntry(&e, rot); sigErr == nil && ve.keys != nil && about(ve, rot) {
			want = append(want, i)
		}
		return nil
	})
	if err != nil {
		res.fail(CheckLogCompleteness, fmt.Errorf("%w: the log copy does not match the bundle's checkpoint: %w", ErrIncomplete, err))
		return
	}
	have := make(map[uint64]bool, len(b.Entries))
	for _, e := range b.Entries {
		have[e.Index] = true
	}
	var missing []string
	for _, i := range want {
		if !have[i] {
			missing = append(missing, fmt.Sprintf("entry %d", i))
		}
	}
	if len(missing) > 0 {
		res.fail(CheckLogCompleteness, fmt.Errorf("%w: the log has %d records of rotation %s (about %s or %s in the window, or naming the rotation) that the bundle omits: %v", ErrIncomplete, len(missing), rot.ID, rot.OldKey.ID, rot.NewKey.ID, missing), missing...)
		return
	}
	res.pass(CheckLogCompleteness, fmt.Sprintf("rebuilt from %d log entries (root %s): all %d records about the rotation's keys are in the bundle", cp.Size, base64.StdEncoding.EncodeToString(cp.Root), len(want)))
}

// about reports whether a verified record belongs in the rotation's bundle: it
// names one of the rotation's keys (by ID or digest) at a time inside the
// window, or it is a lifecycle event of this rotation at any time. The second
// rule keeps an operator from narrowing the window to leave out, say, a
// rollback: such an event outside the window makes the bundle incomplete.
func about(ve verifiedEntry, r evidence.Rotation) bool {
	if ev, ok := ve.pred.(*evidence.LifecycleEvent); ok && ev.RotationID == r.ID {
		return true
	}
	named := false
	for _, k := range ve.keys {
		for _, rk := range []evidence.KeyRef{r.OldKey, r.NewKey} {
			named = named || k.ID == rk.ID || k.SPKISHA256 == rk.SPKISHA256
		}
	}
	return named && r.Window.Contains(ve.pred.RecordTime())
}
