package ingest_test

import (
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
