package posix

import (
	"crypto/rand"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestGuardedSigner: the signer Tessera holds signs until keytrail takes over
// publishing, then refuses, so Tessera cannot write a checkpoint of its own.
func TestGuardedSigner(t *testing.T) {
	skey, _, err := note.GenerateKey(rand.Reader, "example.com/guard")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	g := &guardedSigner{Signer: s}
	if _, err := note.Sign(&note.Note{Text: "example.com/guard\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"}, g); err != nil {
		t.Fatalf("before the takeover: %v", err)
	}
	g.off.Store(true)
	if _, err := note.Sign(&note.Note{Text: "example.com/guard\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"}, g); !errors.Is(err, errNotTessera) {
		t.Fatalf("after the takeover: err = %v, want errNotTessera", err)
	}
}
