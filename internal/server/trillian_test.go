package server_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/ingest"
	"github.com/keytrail/keytrail/internal/checkpoint"
	"github.com/keytrail/keytrail/internal/ingesttest"
	"github.com/keytrail/keytrail/internal/trilliantest"
	"github.com/keytrail/keytrail/ledger/trillian"
)

// TestServeOnTrillian runs the server on the Trillian backend: a real
// Trillian log server and log signer on PostgreSQL and on MariaDB (skipped
// with a how-to without the database, failed under CI=true). Collectors push
// single and batched submissions through ingest.Client; every answer's
// checkpoint verifies and covers its indices; entries read back byte for
// byte; inclusion and consistency proofs from the API verify; resubmissions
// and concurrent identical submissions get one index; /tile/ paths answer
// 404 (a Trillian log has no tile directory).
func TestServeOnTrillian(t *testing.T) {
	for _, db := range trilliantest.DBs {
		t.Run(db, func(t *testing.T) {
			tenv := trilliantest.Start(t, db, trilliantest.Options{})
			tree := tenv.CreateTree(t)
			fx, err := ingesttest.New()
			if err != nil {
				t.Fatal(err)
			}
			v := mustVerifier(t, fx.LogVKey)
			l, err := trillian.Open(t.Context(), trillian.Config{
				Addr: tenv.Addr, TreeID: tree, StateDir: t.TempDir(),
				Signer: fx.LogSigner, Verifier: v, KeyIDs: evidence.SubjectKeyIDs, Logger: quietLogger(),
			})
			if err != nil {
				t.Fatalf("trillian.Open: %v", err)
			}
			e := startOn(t, fx, l, "", nil)
			client, err := ingest.NewClient(e.url, &ingest.ClientOptions{Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			// covered checks an answer: its checkpoint verifies with the log's
			// key and covers every index.
			covered := func(res *ingest.SubmitResponse) checkpoint.Checkpoint {
				t.Helper()
				cp, _, err := checkpoint.Open([]byte(res.Checkpoint), ingesttest.Origin, v)
				if err != nil {
					t.Fatalf("checkpoint %q: %v", res.Checkpoint, err)
				}
				for _, s := range res.Entries {
					if s.Index >= cp.Size {
						t.Fatalf("index %d not covered by the checkpoint of size %d", s.Index, cp.Size)
					}
				}
				return cp
			}

			one := e.receipt(nil, "t", 0)
			res, err := client.Submit(ctx, [][]byte{one})
			if err != nil {
				t.Fatalf("single: %v", err)
			}
			covered(res)
			if res.Entries[0].Index != 0 {
				t.Fatalf("first entry at index %d", res.Entries[0].Index)
			}

			batch := [][]byte{one} // logged already: keeps index 0
			for i := range 10 {
				batch = append(batch, e.receipt(nil, "t", i+1))
			}
			res, err = client.Submit(ctx, batch)
			if err != nil {
				t.Fatalf("batch: %v", err)
			}
			cp := covered(res)
			if cp.Size != 11 {
				t.Errorf("log of %d entries after 11 distinct envelopes", cp.Size)
			}
			if res.Entries[0].Index != 0 {
				t.Errorf("resubmitted envelope got index %d, was 0", res.Entries[0].Index)
			}
			e.checkLogged(batch, res, cp, one)

			// 16 concurrent submissions of one new envelope: one entry.
			fresh := e.receipt(nil, "t", 99)
			idx := make([]uint64, 16)
			errs := make([]error, len(idx))
			var wg sync.WaitGroup
			for i := range idx {
				wg.Go(func() {
					r, err := client.Submit(ctx, [][]byte{fresh})
					if err != nil {
						errs[i] = err
						return
					}
					idx[i] = r.Entries[0].Index
				})
			}
			wg.Wait()
			for i := range idx {
				if errs[i] != nil {
					t.Fatalf("concurrent submission: %v", errs[i])
				}
				if idx[i] != idx[0] {
					t.Fatalf("concurrent identical submissions got indices %v", idx)
				}
			}
			raw, err := l.Checkpoint(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if c, _ := checkpoint.ParseUnverified(raw); c.Size != 12 {
				t.Errorf("log of %d entries after 12 distinct envelopes", c.Size)
			}
			if a := e.do(http.MethodGet, "/tile/0/000", nil); a.status != http.StatusNotFound {
				t.Errorf("GET /tile/0/000 on Trillian: %d, want 404", a.status)
			}
		})
	}
}
