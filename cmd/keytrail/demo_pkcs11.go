//go:build cgo

package main

import (
	"context"
	"os"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/collectors/pkcs11"
)

// pkcs11Key makes a P-256 key in the token --hsm names and collects it.
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
	defer tok.Close()
	if _, err := tok.GenerateKey(ctx, pkcs11.KindP256, label, []byte(label)); err != nil {
		return nil, err
	}
	col, err := tok.Collect(ctx, u, now)
	if err != nil {
		return nil, err
	}
	return &demoKey{ref: col.Key, records: []record{{"pkcs11", col.Key, col.Record}}, policy: demoPolicy(attest.SelfReported)}, nil
}
