package trillian_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/keytrail/keytrail/internal/trilliantest"
	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/ledgertest"
	"github.com/keytrail/keytrail/ledger/trillian"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// opener returns an ledgertest.Opener for tree in env, with its state in stateDir.
func opener(env *trilliantest.Env, tree int64, stateDir string) ledgertest.Opener {
	return func(t *testing.T, c ledgertest.Config) ledger.Log {
		t.Helper()
		l, err := trillian.Open(t.Context(), trillian.Config{
			Addr: env.Addr, TreeID: tree, StateDir: stateDir,
			Signer: c.Signer, Verifier: c.Verifier, KeyIDs: c.KeyIDs, Logger: quietLogger(),
		})
		if err != nil {
			t.Fatalf("trillian.Open: %v", err)
		}
		t.Cleanup(func() {
			if err := l.Close(context.Background()); err != nil && !errors.Is(err, ledger.ErrClosed) {
				t.Errorf("Close: %v", err)
			}
		})
		return l
	}
}

// TestConformance runs the ledger contract's suite on Trillian with each
// database: one database per run, a fresh tree per case.
func TestConformance(t *testing.T) {
	for _, db := range trilliantest.DBs {
		t.Run(db, func(t *testing.T) {
			env := trilliantest.Start(t, db, trilliantest.Options{})
			ledgertest.Run(t, func(t *testing.T) ledgertest.Opener {
				return opener(env, env.CreateTree(t), t.TempDir())
			})
		})
	}
}

// TestWitnessing runs the suite's witnessing cases on Trillian (PostgreSQL).
func TestWitnessing(t *testing.T) {
	env := trilliantest.Start(t, trilliantest.PostgreSQL, trilliantest.Options{})
	ledgertest.RunWitnessing(t, func(t *testing.T) ledgertest.Opener {
		tree, state := env.CreateTree(t), t.TempDir()
		return func(t *testing.T, c ledgertest.Config) ledger.Log {
			t.Helper()
			l, err := trillian.Open(t.Context(), trillian.Config{
				Addr: env.Addr, TreeID: tree, StateDir: state,
				Signer: c.Signer, Verifier: c.Verifier, KeyIDs: c.KeyIDs, Logger: quietLogger(),
				Witnesses: c.Witnesses, WitnessInterval: 10 * time.Millisecond,
			})
			if err != nil {
				t.Fatalf("trillian.Open: %v", err)
			}
			t.Cleanup(func() { l.Close(context.Background()) })
			return l
		}
	})
}
