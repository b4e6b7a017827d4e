//go:build cgo

package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/keytrail/keytrail/cmd/internal/cli"
	"github.com/keytrail/keytrail/collectors/pkcs11"
)

func collectPKCS11Command() *cobra.Command {
	var rf recordFlags
	var module, uri, pinEnv, generate, keyID string
	c := &cobra.Command{
		Use:   "pkcs11 --module PATH --uri URI --signer FILE [flags]",
		Short: "Record a PKCS #11 key's attributes and a proof that the token holds it",
		Long: `Find the private key a PKCS #11 URI (RFC 7512) names, record the token's CK_INFO
and CK_TOKEN_INFO and the key's attributes (class, key type, curve, public key,
SENSITIVE, EXTRACTABLE, NEVER_EXTRACTABLE, ALWAYS_SENSITIVE, LOCAL,
KEY_GEN_MECHANISM, TOKEN, PRIVATE, MODIFIABLE, WRAP_WITH_TRUSTED), and have the
key sign a fresh nonce, checked against the recorded public key. The record is
an hsm-attestation of format pkcs11-attributes: self-reported by the token
(docs/hardware.md), about the key pkcs11:SERIAL/LABEL (the record keeps the full URI)

Tokens are found by label (token=), serial, model or manufacturer, never by
slot number. The PIN comes from the URI's pin-value or, better, from the
environment variable --pin-env names. --generate first makes a key of that
kind (P-256, P-384, secp256k1, Ed25519, RSA) that never leaves the token.`,
		Example: `  export PIN=1234
  keytrail collect pkcs11 --module /usr/lib/softhsm/libsofthsm2.so --uri 'pkcs11:token=custody;object=hot-1' --pin-env PIN --signer collector.pem -o rec.json
  keytrail collect pkcs11 --module /usr/lib/softhsm/libsofthsm2.so --uri 'pkcs11:token=custody;object=hot-2;id=%02' --generate secp256k1 --pin-env PIN --signer collector.pem --ledger ./keytrail-log --log-key log.key`,
		Args: cli.ExactArgs(0, "none"),
		RunE: func(c *cobra.Command, _ []string) error {
			if uri == "" {
				return cli.Usage("--uri is required, e.g. 'pkcs11:token=custody;object=hot-1'")
			}
			u, err := pkcs11.ParseURI(uri)
			if err != nil {
				return cli.Usage("--uri: %v", err)
			}
			at, err := rf.time()
			if err != nil {
				return err
			}
			pin := ""
			if pinEnv != "" {
				v, ok := os.LookupEnv(pinEnv)
				if !ok {
					return cli.Usage("--pin-env %s: the variable is not set", pinEnv)
				}
				pin = v
			}
			tok, err := pkcs11.Open(c.Context(), u, pkcs11.Options{Module: module, PIN: pin})
			if err != nil {
				return &cli.Error{Code: cli.ExitUsage, Err: err, Hint: "check --module, the token label and the PIN"}
			}
			defer tok.Close()
			if generate != "" {
				id := []byte(u.Path["id"])
				if len(id) == 0 {
					id = []byte(u.Path["object"])
				}
				if _, err := tok.GenerateKey(c.Context(), generate, u.Path["object"], id); err != nil {
					return err
				}
			}
			col, err := tok.Collect(c.Context(), u, at)
			if err != nil {
				return err
			}
			if keyID != "" {
				col.Key.ID = keyID
			}
			a := col.Record.Attributes
			fmt.Fprintf(c.ErrOrStderr(), "key %s (%s %s): LOCAL=%d NEVER_EXTRACTABLE=%d ALWAYS_SENSITIVE=%d EXTRACTABLE=%d SENSITIVE=%d, possession proven\n",
				col.Key.ID, a.KeyType, a.Curve, b2i(a.Local), b2i(a.NeverExtractable), b2i(a.AlwaysSensitive), b2i(a.Extractable), b2i(a.Sensitive))
			return rf.emit(c, []record{{"pkcs11", col.Key, col.Record}})
		},
	}
	c.Flags().StringVar(&module, "module", "", "the PKCS #11 module (e.g. /usr/lib/softhsm/libsofthsm2.so), unless the URI has module-path")
	c.Flags().StringVar(&uri, "uri", "", "the key's PKCS #11 URI, RFC 7512 (required)")
	c.Flags().StringVar(&pinEnv, "pin-env", "", "the environment variable holding the user PIN")
	c.Flags().StringVar(&generate, "generate", "", "first generate a key of this kind in the token: P-256, P-384, secp256k1, Ed25519 or RSA")
	c.Flags().StringVar(&keyID, "key-id", "", "the key's ID in records (default: its PKCS #11 URI)")
	rf.register(c)
	return c
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
