package luna_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/luna"
)

var dir = filepath.Join("..", "..", "testdata", "attest", "luna")

// loggedAt is a time at which every certificate of both samples is valid.
var loggedAt = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

func read(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func root(tb testing.TB, name string) attest.Root {
	tb.Helper()
	r, err := attest.ParseRootPEM(read(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func verifier(tb testing.TB) *luna.Verifier {
	tb.Helper()
	v, err := luna.NewVerifier(luna.Config{Roots: []attest.Root{
		root(tb, "luna-ecc-root-certificate.pem"), root(tb, "luna-rsa-root-certificate.pem")}})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
