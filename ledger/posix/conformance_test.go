package posix_test

import (
	"testing"
	"time"

	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/ledgertest"
	"github.com/keytrail/keytrail/ledger/posix"
)

// TestConformance runs the ledger contract's suite on the embedded backend.
func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledgertest.Opener {
		dir := t.TempDir()
		return func(t *testing.T, c ledgertest.Config) ledger.Log {
			return openLog(t, posix.Config{Dir: dir, Signer: c.Signer, Verifier: c.Verifier, KeyIDs: c.KeyIDs})
		}
	})
}

// TestWitnessing runs the suite's witnessing cases on the embedded backend.
func TestWitnessing(t *testing.T) {
	ledgertest.RunWitnessing(t, func(t *testing.T) ledgertest.Opener {
		dir := t.TempDir()
		return func(t *testing.T, c ledgertest.Config) ledger.Log {
			return openLog(t, posix.Config{Dir: dir, Signer: c.Signer, Verifier: c.Verifier, KeyIDs: c.KeyIDs,
				Witnesses: c.Witnesses, WitnessInterval: 10 * time.Millisecond})
		}
	})
}
