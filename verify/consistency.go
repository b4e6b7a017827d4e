package verify

import (
	"bytes"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/checkpoint"
)

// verifyConsistency checks that newer extends older with p. Sizes come from the
// signed checkpoints, never from the proof, so a proof cannot be replayed for
// other sizes (certificate-transparency-rfcs PR 100). An older size of 0 is
// rejected whatever the proof (transparency-dev/merkle PR 140).
func verifyConsistency(older, newer checkpoint.Checkpoint, p [][]byte) error {
	switch {
	case older.Size == 0:
		return fmt.Errorf("%w: earlier checkpoint has size 0, which proves nothing", ErrConsistency)
	case older.Size > newer.Size:
		return fmt.Errorf("%w: rollback: trusted checkpoint %s is larger than %s", ErrConsistency, older, newer)
	case older.Size == newer.Size:
		if !bytes.Equal(older.Root, newer.Root) {
			return fmt.Errorf("%w: split view: %s and %s have the same size and different roots", ErrConsistency, older, newer)
		}
		if len(p) != 0 {
			return fmt.Errorf("%w: non-empty proof between equal trees", ErrConsistency)
		}
		return nil
	}
	if len(p) == 0 {
		return fmt.Errorf("%w: empty proof from size %d to %d", ErrConsistency, older.Size, newer.Size)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, older.Size, newer.Size, p, older.Root, newer.Root); err != nil {
		return fmt.Errorf("%w: split view: %s is not consistent with %s: %w", ErrConsistency, older, newer, err)
	}
	return nil
}

// InconsistencyError is a failed consistency check with its evidence, as
// tessera's client.ErrInconsistency keeps it: the two signed checkpoints as
// they were given and the proof that did not reconcile them. Two signed
// checkpoints of one size with different roots, or a trusted checkpoint
// larger than a newer one, are a log's split view or rollback in its own
// signatures; a proof that does not verify shows at least that the log (or
// whoever made the proof) cannot prove the two consistent. It wraps
// ErrConsistency; the result's check carries it (Check.Inconsistency).
type InconsistencyError struct {
	// Older and Newer are the signed checkpoints (C2SP signed notes).
	Older, Newer []byte
	// Proof is the consistency proof tried, if any.
	Proof [][]byte
	Err   error
}

func (e *InconsistencyError) Error() string { return e.Err.Error() }
func (e *InconsistencyError) Unwrap() error { return e.Err }

// checkConsistent is verifyConsistency keeping the evidence of a failure.
func checkConsistent(olderSigned, newerSigned []byte, older, newer checkpoint.Checkpoint, p [][]byte) error {
	if err := verifyConsistency(older, newer, p); err != nil {
		return &InconsistencyError{Older: olderSigned, Newer: newerSigned, Proof: p, Err: err}
	}
	return nil
}

func (v *Verifier) checkConsistency(b *evidence.Manifest, cp checkpoint.Checkpoint, log logKey, opts Options, res *Result) {
	var carried *checkpoint.Checkpoint
	if c := b.Consistency; c != nil {
		old, err := log.open([]byte(c.Checkpoint))
		if err != nil {
			res.fail(CheckConsistency, fmt.Errorf("%w: bundle's earlier checkpoint: %w", ErrConsistency, err))
			return
		}
		if err := checkConsistent([]byte(c.Checkpoint), []byte(b.Checkpoint), old, cp, c.Proof); err != nil {
			res.fail(CheckConsistency, fmt.Errorf("bundle's consistency proof: %w", err))
			return
		}
		carried = &old
	}
	if opts.Since == nil {
		if carried != nil {
			res.pass(CheckConsistency, fmt.Sprintf("consistent with the bundle's earlier checkpoint at size %d", carried.Size))
		} else {
			res.skip(CheckConsistency, "no earlier checkpoint given (--since FILE)")
		}
		return
	}
	since, err := log.open(opts.Since)
	if err != nil {
		res.fail(CheckConsistency, fmt.Errorf("%w: --since checkpoint: %w", ErrConsistency, err))
		return
	}
	var p [][]byte
	switch {
	case since.Size >= cp.Size:
		// Equal sizes need no proof; a larger trusted checkpoint is a rollback.
	case carried != nil && carried.Size == since.Size && bytes.Equal(carried.Root, since.Root):
		p = b.Consistency.Proof
	case opts.Log != nil:
		p, err = tilesConsistencyProof(opts.Log, since.Size, cp.Size)
		if err != nil {
			res.fail(CheckConsistency, fmt.Errorf("%w: proof from --log: %w", ErrConsistency, err))
			return
		}
	case carried != nil && carried.Size == since.Size:
		res.fail(CheckConsistency, &InconsistencyError{Older: opts.Since, Newer: []byte(b.Consistency.Checkpoint),
			Err: fmt.Errorf("%w: split view: --since checkpoint %s and the bundle's earlier checkpoint %s differ", ErrConsistency, since, *carried)})
		return
	default:
		res.fail(CheckConsistency, fmt.Errorf("%w: no proof from the --since checkpoint at size %d to size %d (rebuild the bundle with --since, or pass --log)", ErrConsistency, since.Size, cp.Size))
		return
	}
	if err := checkConsistent(opts.Since, []byte(b.Checkpoint), since, cp, p); err != nil {
		res.fail(CheckConsistency, err)
		return
	}
	res.pass(CheckConsistency, fmt.Sprintf("consistent with the trusted checkpoint at size %d", since.Size))
}
