package ingest_test

import (
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func mustVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func fmtSpool(n uint64) string { return fmt.Sprintf("%020d.dsse", n) }
