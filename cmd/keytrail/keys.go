package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/durable"
)

// Key files: a signing key is a PEM "PRIVATE KEY" (PKCS #8) file; a log key is
// a signed-note private key ("PRIVATE+KEY+origin+hash+data") on one line, and
// its verifier key is the matching public line in a .pub file.

func writePrivateKey(path string, k crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	return durable.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func readSigner(path string) (*evidence.Signer, error) {
	b, err := cli.ReadFile(path, 64<<10, "private key")
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, cli.Input(path, errors.New("not a PEM \"PRIVATE KEY\" (PKCS #8) file"), "")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, cli.Input(path, err, "")
	}
	cs, ok := k.(crypto.Signer)
	if !ok {
		return nil, cli.Input(path, fmt.Errorf("key type %T cannot sign", k), "")
	}
	s, err := evidence.NewSigner(cs)
	if err != nil {
		return nil, cli.Input(path, err, "")
	}
	return s, nil
}

func readNoteSigner(path string) (note.Signer, error) {
	b, err := cli.ReadFile(path, 4<<10, "log key")
	if err != nil {
		return nil, err
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, cli.Input(path, fmt.Errorf("not a signed-note private key: %w", err), "create one with 'keytrail log init'")
	}
	return s, nil
}

func readNoteVerifier(path string) (note.Verifier, error) {
	b, err := cli.ReadFile(path, 4<<10, "log verifier key")
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, cli.Input(path, fmt.Errorf("not a signed-note verifier key: %w", err), "")
	}
	return v, nil
}

func notesVerifier(vkey string) (note.Verifier, error) { return note.NewVerifier(vkey) }
