package witnesstest

import (
	"bytes"
	"crypto/rand"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/witness"
)

// Expectation is one rule of c2sp.org/tlog-witness that a witness must keep,
// checked on a witness of a fresh log.
type Expectation struct {
	Name string
	Run  func(t *testing.T, w *Target, l *Log)
}

// Expectations are the rules every witness keytrail works with must keep;
// keytrail's witness.Server and torchwood's litewitness both run them.
var Expectations = []Expectation{
	{"CosignsAGrowingLog", CosignsAGrowingLog},
	{"ConflictNamesItsSize", ConflictNamesItsSize},
	{"RefusesSameSizeFork", RefusesSameSizeFork},
	{"RefusesRollback", RefusesRollback},
	{"RefusesMissingProof", RefusesMissingProof},
	{"RefusesInvalidProof", RefusesInvalidProof},
	{"KeepsStateAcrossRestart", KeepsStateAcrossRestart},
	{"UnknownLog", UnknownLog},
	{"CheckpointNotSignedByTheLogKey", CheckpointNotSignedByTheLogKey},
}

// Run checks every expectation on witnesses that start starts, one fresh
// witness and log each.
func Run(t *testing.T, start StartFunc) {
	for _, e := range Expectations {
		t.Run(e.Name, func(t *testing.T) {
			l := NewLog(t, "keytrail.test/log")
			e.Run(t, start(t, l.VKey), l)
		})
	}
}

// MustCosign submits the log's checkpoint of size with a proof from old and
// fails the test unless the witness answers 200 with a cosignature that
// verifies under its key.
func MustCosign(t *testing.T, w *Target, l *Log, old, size uint64) {
	t.Helper()
	cp := l.Checkpoint(t, size)
	var p [][]byte
	if old != 0 && old != size {
		p = l.Proof(t, old, size)
	}
	status, _, body := w.Post(t, witness.Request{OldSize: old, Proof: p, Checkpoint: cp})
	if status != http.StatusOK {
		t.Fatalf("%s: old %d, checkpoint of size %d: HTTP %d %q, want 200", w.Name, old, size, status, body)
	}
	n, err := note.Open(append(bytes.Clone(cp), body...), note.VerifierList(w.Verifier))
	if err != nil {
		t.Fatalf("%s: the cosignature of size %d does not verify: %v\n%s", w.Name, size, err, body)
	}
	if len(n.Sigs) != 1 {
		t.Fatalf("%s: %d cosignatures by the witness's key, want 1", w.Name, len(n.Sigs))
	}
}

// mustRefuse submits a request and fails the test unless the witness answers
// with one of the statuses (never 200).
func mustRefuse(t *testing.T, w *Target, what string, req witness.Request, statuses ...int) (int, string, []byte) {
	t.Helper()
	status, ct, body := w.Post(t, req)
	if !slices.Contains(statuses, status) {
		t.Fatalf("%s: %s: HTTP %d %q, want one of %v", w.Name, what, status, body, statuses)
	}
	return status, ct, body
}

// mustConflict submits a request and fails the test unless the witness
// answers 409 with its cosigned size, want.
func mustConflict(t *testing.T, w *Target, what string, req witness.Request, want uint64) {
	t.Helper()
	_, ct, body := mustRefuse(t, w, what, req, http.StatusConflict)
	if mt, _, _ := mime.ParseMediaType(ct); mt != "text/x.tlog.size" {
		t.Fatalf("%s: %s: 409 with Content-Type %q, want text/x.tlog.size", w.Name, what, ct)
	}
	if got := string(body); got != itoa(want)+"\n" {
		t.Fatalf("%s: %s: 409 body %q, want %q", w.Name, what, got, itoa(want)+"\n")
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// CosignsAGrowingLog: the first checkpoint (old size 0), a larger one with
// the consistency proof from the first, and the same one again are cosigned.
func CosignsAGrowingLog(t *testing.T, w *Target, l *Log) {
	l.Grow(5)
	MustCosign(t, w, l, 0, 5)
	l.Grow(7)
	MustCosign(t, w, l, 5, 12)
	MustCosign(t, w, l, 12, 12)
}

// ConflictNamesItsSize: a request whose old size is not the size the witness
// cosigned is answered 409 with that size.
func ConflictNamesItsSize(t *testing.T, w *Target, l *Log) {
	l.Grow(5)
	MustCosign(t, w, l, 0, 5)
	l.Grow(7)
	mustConflict(t, w, "old size 0 after size 5", witness.Request{OldSize: 0, Checkpoint: l.Checkpoint(t, 12)}, 5)
	mustConflict(t, w, "old size 3 after size 5", witness.Request{OldSize: 3, Proof: l.Proof(t, 3, 12), Checkpoint: l.Checkpoint(t, 12)}, 5)
	MustCosign(t, w, l, 5, 12)
}

// RefusesSameSizeFork: a checkpoint signed by the log's key, of a size the
// witness cosigned, with another root is refused (the specification says
// 409; litewitness answers 422), and the witness still cosigns the real one.
func RefusesSameSizeFork(t *testing.T, w *Target, l *Log) {
	l.Grow(5)
	MustCosign(t, w, l, 0, 5)
	mustRefuse(t, w, "a fork of size 5", witness.Request{OldSize: 5, Checkpoint: l.Fork(t, 5)}, http.StatusConflict, http.StatusUnprocessableEntity)
	mustConflict(t, w, "a fork of size 5 from old size 0", witness.Request{OldSize: 0, Checkpoint: l.Fork(t, 5)}, 5)
	MustCosign(t, w, l, 5, 5)
}

// RefusesRollback: once it cosigned size 12, the witness cosigns no smaller
// checkpoint: 400 when the old size is larger than the checkpoint's, 409 with
// its size otherwise.
func RefusesRollback(t *testing.T, w *Target, l *Log) {
	l.Grow(12)
	MustCosign(t, w, l, 0, 5)
	MustCosign(t, w, l, 5, 12)
	mustRefuse(t, w, "size 5 after 12, old size 12", witness.Request{OldSize: 12, Checkpoint: l.Checkpoint(t, 5)}, http.StatusBadRequest)
	mustConflict(t, w, "size 5 after 12, old size 5", witness.Request{OldSize: 5, Checkpoint: l.Checkpoint(t, 5)}, 12)
	mustConflict(t, w, "size 5 after 12, old size 0", witness.Request{OldSize: 0, Checkpoint: l.Checkpoint(t, 5)}, 12)
}

// RefusesMissingProof: growing from the size it cosigned without a
// consistency proof is refused with 422.
func RefusesMissingProof(t *testing.T, w *Target, l *Log) {
	l.Grow(12)
	MustCosign(t, w, l, 0, 5)
	mustRefuse(t, w, "size 12 from 5 without a proof", witness.Request{OldSize: 5, Checkpoint: l.Checkpoint(t, 12)}, http.StatusUnprocessableEntity)
	MustCosign(t, w, l, 5, 12)
}

// RefusesInvalidProof: a consistency proof that does not verify (a changed
// hash, a proof between other sizes, a proof towards a fork) is refused with
// 422.
func RefusesInvalidProof(t *testing.T, w *Target, l *Log) {
	l.Grow(12)
	MustCosign(t, w, l, 0, 5)
	bad := l.Proof(t, 5, 12)
	bad[0] = bytes.Clone(bad[0])
	bad[0][0] ^= 1
	mustRefuse(t, w, "a proof with a changed hash", witness.Request{OldSize: 5, Proof: bad, Checkpoint: l.Checkpoint(t, 12)}, http.StatusUnprocessableEntity)
	mustRefuse(t, w, "a proof from size 4", witness.Request{OldSize: 5, Proof: l.Proof(t, 4, 12), Checkpoint: l.Checkpoint(t, 12)}, http.StatusUnprocessableEntity)
	mustRefuse(t, w, "the real proof towards a fork of size 12", witness.Request{OldSize: 5, Proof: l.Proof(t, 5, 12), Checkpoint: l.Fork(t, 12)}, http.StatusUnprocessableEntity)
	MustCosign(t, w, l, 5, 12)
}

// KeepsStateAcrossRestart: after a restart the witness still knows the size
// and root it cosigned: it names the size, refuses a fork of it, and
// cosigns the log's growth from it.
func KeepsStateAcrossRestart(t *testing.T, w *Target, l *Log) {
	l.Grow(12)
	MustCosign(t, w, l, 0, 5)
	w.Restart(t)
	mustConflict(t, w, "old size 0 after a restart", witness.Request{OldSize: 0, Checkpoint: l.Checkpoint(t, 12)}, 5)
	mustRefuse(t, w, "a fork of size 5 after a restart", witness.Request{OldSize: 5, Checkpoint: l.Fork(t, 5)}, http.StatusConflict, http.StatusUnprocessableEntity)
	MustCosign(t, w, l, 5, 12)
}

// UnknownLog: a checkpoint of a log the witness does not witness is 404.
func UnknownLog(t *testing.T, w *Target, l *Log) {
	other := NewLog(t, "keytrail.test/other-log")
	other.Grow(3)
	mustRefuse(t, w, "another log's checkpoint", witness.Request{OldSize: 0, Checkpoint: other.Checkpoint(t, 3)}, http.StatusNotFound)
}

// CheckpointNotSignedByTheLogKey: a checkpoint of the log's origin signed by
// another key (of the same name) is 403.
func CheckpointNotSignedByTheLogKey(t *testing.T, w *Target, l *Log) {
	l.Grow(3)
	skey, _, err := note.GenerateKey(rand.Reader, l.Origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, w, "a checkpoint signed by another key", witness.Request{OldSize: 0, Checkpoint: l.SignedBy(t, 3, s)}, http.StatusForbidden)
	MustCosign(t, w, l, 0, 3)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
