//go:build cgo

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/collectors/pkcs11"
	"github.com/keytrail/keytrail/evidence"
)

// pkcs11Key makes a P-256 key in the token --hsm names; the demo signs its
// receipts with it in the token and records it as the token reports it.
func (h demoHardware) pkcs11Key(ctx context.Context, now time.Time, step func(string, ...any)) (*demoKey, error) {
	u, err := pkcs11.ParseURI(h.uri)
	if err != nil {
		return nil, cli.Usage("--hsm: %v", err)
	}
	label := u.Path["object"]
	if label == "" {
		return nil, cli.Usage("--hsm %q: name the new key's label with object=", h.uri)
	}
	label += "-" + now.Format("20060102T150405Z")
	u.Path["object"] = label
	u.Path["id"] = label
	step("creating the new key %q in PKCS #11 token %q (%s)", label, u.Path["token"], h.module)
	tok, err := pkcs11.Open(ctx, u, pkcs11.Options{Module: h.module, PIN: os.Getenv(h.pinEnv)})
	if err != nil {
		return nil, &cli.Error{Code: cli.ExitUsage, Err: err, Hint: "set the PIN in $" + h.pinEnv + "; check --module and token="}
	}
	fail := func(err error) (*demoKey, error) {
		tok.Close()
		return nil, err
	}
	if _, err := tok.GenerateKey(ctx, pkcs11.KindP256, label, []byte(label)); err != nil {
		return fail(err)
	}
	s, err := tok.Signer(ctx, u)
	if err != nil {
		return fail(err)
	}
	d, err := evidence.KeyDigest(s.Public())
	if err != nil {
		return fail(err)
	}
	serial := tok.Info().Serial
	ref := evidence.KeyRef{ID: pkcs11.KeyID(serial, label), SPKISHA256: d}
	return &demoKey{
		ref:    ref,
		signer: s,
		serial: serial,
		records: func(ctx context.Context, at time.Time) ([]record, error) {
			col, err := tok.Collect(ctx, u, at)
			if err != nil {
				return nil, err
			}
			if col.Key != ref {
				return nil, fmt.Errorf("demo: the token reports key %s (%s), the demo made %s (%s)", col.Key.ID, col.Key.SPKISHA256, ref.ID, ref.SPKISHA256)
			}
			return []record{{"pkcs11", ref, col.Record}}, nil
		},
		min:   attest.SelfReported,
		close: tok.Close,
	}, nil
}
