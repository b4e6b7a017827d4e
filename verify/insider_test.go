package verify_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/evidence"
	"github.com/keytrail/keytrail/internal/scenario"
	"github.com/keytrail/keytrail/ledger/export"
)

// relog logs b's rotation records and then extra in a new log, and builds
// and signs the rotation's bundle from it. The log is returned so that a
// test can log more after the bundle was built.
func relog(t testing.TB, b *scenario.Built, extra ...[]byte) ([]byte, *scenario.MemLog) {
	t.Helper()
	ctx := context.Background()
	l := scenario.NewMemLog(b.Origin, b.LogSigner)
	for _, env := range append(slices.Clone(b.Records), extra...) {
		if _, err := l.Append(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	return bundleOf(t, b, l, b.Rotation), l
}

// bundleOf builds and signs the bundle of rotation r from log l.
func bundleOf(t testing.TB, b *scenario.Built, l *scenario.MemLog, r evidence.Rotation) []byte {
	t.Helper()
	ctx := context.Background()
	v, err := note.NewVerifier(b.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	bun, err := evidence.BuildBundle(ctx, l, r, evidence.BuildOptions{Origin: b.Origin, LogVerifier: v})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Resign(ctx, bun)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// logCopy writes l as a tlog-tiles directory, as an auditor receives it
// ('keytrail log export'), and returns it.
func logCopy(t testing.TB, b *scenario.Built, l *scenario.MemLog) fs.FS {
	t.Helper()
	v, err := note.NewVerifier(b.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "log")
	if _, err := export.Tiles(context.Background(), l, dir, v); err != nil {
		t.Fatal(err)
	}
	return os.DirFS(dir)
}
