package witness_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	fwitness "github.com/transparency-dev/formats/witness"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/witness"
	"github.com/keytrail/keytrail/witness/witnesstest"
)

func newCosigner(t *testing.T, quorum int, ws ...fwitness.Witness) *witness.Cosigner {
	t.Helper()
	g := fwitness.Group{N: quorum}
	for _, w := range ws {
		g.Components = append(g.Components, w)
	}
	c, err := witness.NewCosigner(witness.Config{Policy: g, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newVKey returns a fresh cosignature/v1 key pair named name.
func newVKey(t *testing.T, name string) (skey, cvkey string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	cvkey, err = fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return skey, cvkey
}

// mustMeet checks that cosigned is the log's checkpoint with the quorum of
// the witnesses' cosignatures, as the verifier checks it.
func mustMeet(t *testing.T, cosigned []byte, l *witnesstest.Log, quorum int, ws ...*witnesstest.Target) checkpoint.Checkpoint {
	t.Helper()
	var vs []note.Verifier
	for _, w := range ws {
		vs = append(vs, w.Verifier)
	}
	cp, _, err := checkpoint.OpenWitnessed(cosigned, l.Origin, l.Verifier, vs, quorum)
	if err != nil {
		t.Fatalf("cosigned checkpoint: %v\n%s", err, cosigned)
	}
	return cp
}

// TestCosigner drives each witness through the client: a growing log, a
// client that starts without knowing the witness's size (after a restart of
// the log, say), and a fork, reported as ErrInconsistent.
func TestCosigner(t *testing.T) {
	for _, tg := range witnesstest.Targets {
		t.Run(tg.Name, func(t *testing.T) {
			ctx := context.Background()
			l := witnesstest.NewLog(t, "keytrail.test/log")
			w := tg.Start(t, l.VKey)
			c := newCosigner(t, 1, w.Witness(t))
			l.Grow(5)
			out, err := c.Cosign(ctx, l.Checkpoint(t, 5), l.ProofFunc)
			if err != nil {
				t.Fatal(err)
			}
			mustMeet(t, out, l, 1, w)
			l.Grow(15)
			out, err = c.Cosign(ctx, l.Checkpoint(t, 20), l.ProofFunc)
			if err != nil {
				t.Fatal(err)
			}
			if cp := mustMeet(t, out, l, 1, w); cp.Size != 20 {
				t.Fatalf("cosigned size %d, want 20", cp.Size)
			}
			ts, err := fnote.CoSigV1Timestamp(lastSig(t, out, w.Verifier))
			if err != nil || time.Since(ts) > time.Minute || time.Until(ts) > time.Minute {
				t.Errorf("cosignature time %v (%v), want about now", ts, err)
			}

			// A new client knows nothing: the witness's 409 tells it the size.
			fresh := newCosigner(t, 1, w.Witness(t))
			l.Grow(3)
			if out, err = fresh.Cosign(ctx, l.Checkpoint(t, 23), l.ProofFunc); err != nil {
				t.Fatal(err)
			}
			mustMeet(t, out, l, 1, w)

			// A fork of the size the witness cosigned, and one past it (the
			// proof from 23 is the log's, the root the fork's).
			l.Grow(7)
			for _, fork := range [][]byte{l.Fork(t, 23), l.Fork(t, 30)} {
				_, err = c.Cosign(ctx, fork, l.ProofFunc)
				if !errors.Is(err, witness.ErrInconsistent) || !errors.Is(err, witness.ErrQuorum) {
					t.Fatalf("fork: %v, want ErrInconsistent and ErrQuorum", err)
				}
				var we *witness.Error
				if !errors.As(err, &we) || (we.Status != http.StatusConflict && we.Status != http.StatusUnprocessableEntity) {
					t.Fatalf("fork: %#v, want a *witness.Error with status 409 or 422", we)
				}
				if !strings.Contains(err.Error(), w.Verifier.Name()) {
					t.Errorf("the error does not name the witness: %v", err)
				}
			}
		})
	}
}

func lastSig(t *testing.T, cosigned []byte, v note.Verifier) note.Signature {
	t.Helper()
	n, err := note.Open(cosigned, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	return n.Sigs[0]
}

// TestCosignerTwoImplementations: a policy of two witnesses, keytrail's and
// litewitness, both required; then one of two with the other down.
func TestCosignerTwoImplementations(t *testing.T) {
	ctx := context.Background()
	l := witnesstest.NewLog(t, "keytrail.test/log")
	kt := witnesstest.StartKeytrail(t, l.VKey)
	lw := witnesstest.StartLitewitness(t, l.VKey)
	c := newCosigner(t, 2, kt.Witness(t), lw.Witness(t))
	l.Grow(9)
	out, err := c.Cosign(ctx, l.Checkpoint(t, 9), l.ProofFunc)
	if err != nil {
		t.Fatal(err)
	}
	mustMeet(t, out, l, 2, kt, lw)

	down := downWitness(t)
	c = newCosigner(t, 1, kt.Witness(t), down)
	l.Grow(1)
	if out, err = c.Cosign(ctx, l.Checkpoint(t, 10), l.ProofFunc); err != nil {
		t.Fatal(err)
	}
	mustMeet(t, out, l, 1, kt)
}

// downWitness is a witness whose address nothing listens on.
func downWitness(t *testing.T) fwitness.Witness {
	t.Helper()
	hs := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(hs.URL)
	hs.Close()
	_, cvkey := newVKey(t, "down.test/witness")
	w, err := fwitness.New(cvkey, u)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestCosignerErrors: each refusal the protocol defines comes back as its
// sentinel inside a *QuorumError.
func TestCosignerErrors(t *testing.T) {
	ctx := context.Background()
	l := witnesstest.NewLog(t, "keytrail.test/log")
	other := witnesstest.NewLog(t, "keytrail.test/other")
	w := witnesstest.StartKeytrail(t, l.VKey)
	l.Grow(12)
	other.Grow(3)

	c := newCosigner(t, 1, w.Witness(t))
	if _, err := c.Cosign(ctx, other.Checkpoint(t, 3), other.ProofFunc); !errors.Is(err, witness.ErrUnknownLog) {
		t.Errorf("unknown log: %v, want ErrUnknownLog", err)
	}
	impostor := witnesstest.NewLog(t, l.Origin)
	if _, err := c.Cosign(ctx, l.SignedBy(t, 3, impostor.Signer), l.ProofFunc); !errors.Is(err, witness.ErrForbidden) {
		t.Errorf("another key: %v, want ErrForbidden", err)
	}
	if _, err := c.Cosign(ctx, l.Checkpoint(t, 12), l.ProofFunc); err != nil {
		t.Fatal(err)
	}
	// Another client sees the witness ahead of an older checkpoint.
	if _, err := newCosigner(t, 1, w.Witness(t)).Cosign(ctx, l.Checkpoint(t, 5), l.ProofFunc); !errors.Is(err, witness.ErrWitnessAhead) {
		t.Errorf("older checkpoint: %v, want ErrWitnessAhead", err)
	}
	if _, err := newCosigner(t, 1, downWitness(t)).Cosign(ctx, l.Checkpoint(t, 12), l.ProofFunc); !errors.Is(err, witness.ErrUnavailable) {
		t.Errorf("nothing listening: %v, want ErrUnavailable", err)
	}
	// A proof the log serves wrong is a 422: inconsistent, as the witness sees it.
	l.Grow(1)
	badProof := func(ctx context.Context, a, b uint64) ([][]byte, error) { return l.Proof(t, a-1, b), nil }
	if _, err := c.Cosign(ctx, l.Checkpoint(t, 13), badProof); !errors.Is(err, witness.ErrInconsistent) {
		t.Errorf("wrong proof: %v, want ErrInconsistent", err)
	}

	// A witness that answers 200 with a cosignature by another key of the
	// same name.
	skey, _ := newVKey(t, w.Verifier.Name())
	wrong, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	cp := l.Checkpoint(t, 13)
	text, _, _ := strings.Cut(string(cp), "\n\n")
	liar := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n, err := note.Sign(&note.Note{Text: text + "\n"}, wrong)
		if err != nil {
			t.Error(err)
		}
		rw.Write(n[len(text)+2:])
	}))
	defer liar.Close()
	u, _ := url.Parse(liar.URL)
	lw, err := fwitness.New(w.VKey, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newCosigner(t, 1, lw).Cosign(ctx, cp, l.ProofFunc); !errors.Is(err, witness.ErrBadCosignature) {
		t.Errorf("a cosignature by another key: %v, want ErrBadCosignature", err)
	}
}
