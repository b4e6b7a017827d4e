package marvell_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keytrail/keytrail/attest"
	"github.com/keytrail/keytrail/attest/marvell"
)

var dir = filepath.Join("..", "..", "testdata", "attest", "marvell")

// loggedAt is a time at which every certificate of the sample is valid.
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

func chains(tb testing.TB) [][]byte {
	tb.Helper()
	ders, err := attest.CertificatesPEM(read(tb, "cert-chains.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	return ders
}

func verifier(tb testing.TB) *marvell.Verifier {
	tb.Helper()
	owner := root(tb, "google-hawksbill-root-v1-prod.pem")
	v, err := marvell.NewVerifier(marvell.Config{Manufacturer: root(tb, "marvell-cavium-root-2015.pem"), Owner: &owner})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func ecEvidence(tb testing.TB) marvell.Evidence {
	return marvell.Evidence{Attestation: read(tb, "ec-key-attestation.dat.gz"), Certificates: chains(tb), LoggedAt: loggedAt}
}
