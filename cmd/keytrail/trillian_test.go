package main

import (
	"bufio"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keytrail/keytrail/internal/trilliantest"
)

// TestTrillianScripts runs testdata/trillian against a real Trillian log
// server and signer on each database.
func TestTrillianScripts(t *testing.T) {
	for _, db := range trilliantest.DBs {
		t.Run(db, func(t *testing.T) {
			env := trilliantest.Start(t, db, trilliantest.Options{})
			tlsAddr, ca := env.ServeTLS(t)
			testscript.Run(t, testscript.Params{
				Dir: "testdata/trillian",
				Setup: func(e *testscript.Env) error {
					e.Setenv("TRILLIAN_ADDR", env.Addr)
					e.Setenv("TRILLIAN_TLS_ADDR", tlsAddr)
					e.Setenv("TRILLIAN_CA", ca)
					e.Setenv("XDG_STATE_HOME", filepath.Join(e.WorkDir, ".state"))
					return nil
				},
				Condition: scriptCondition,
				Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
					"exits":     cmdExits,
					"unpack":    cmdUnpack,
					"ledgerurl": cmdLedgerURL,
				},
			})
		})
	}
}

// ledgerurl VAR sets VAR to the URL in the last command's "ledger: URL" line.
func cmdLedgerURL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: ledgerurl VAR")
	}
	sc := bufio.NewScanner(strings.NewReader(ts.ReadFile("stdout")))
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "ledger: "); ok {
			ts.Setenv(args[0], u)
			return
		}
	}
	ts.Fatalf("ledgerurl: no 'ledger: ' line in stdout")
}
