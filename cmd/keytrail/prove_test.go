package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	tposix "github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/keytrail/keytrail/cmd/internal/cli"
)

// TestProveForeignLog: log prove works on a tlog-tiles log keytrail did not
// write (raw Tessera, another origin, entries that are no DSSE envelopes),
// at indices in full and partial tiles.
func TestProveForeignLog(t *testing.T) {
	dir := t.TempDir()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.org/foreign-log")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	driver, err := tposix.New(ctx, tposix.Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	app, shutdown, reader, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(s).WithBatching(64, 5*time.Millisecond).WithCheckpointInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	aw := tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 10*time.Millisecond)
	const n = 700
	entry := func(i int) []byte {
		return fmt.Appendf(nil, "foreign leaf %d %s", i, bytes.Repeat([]byte{byte(i)}, i%50))
	}
	idx := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			x, _, err := aw.Await(ctx, app.Add(ctx, tessera.NewEntry(entry(i))))
			if err != nil {
				t.Error(err)
			}
			idx[i] = x.Index
		})
	}
	wg.Wait()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	leafDir := t.TempDir()
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := cli.Execute(newRoot(), args, &out, &errb)
		return code, out.String() + errb.String()
	}
	for _, i := range []int{0, 255, 256, 511, 512, 650, n - 1} {
		leaf := filepath.Join(leafDir, fmt.Sprint(i))
		if err := os.WriteFile(leaf, entry(i), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out := run("log", "prove", "--tiles", dir, "--vkey", vkey, "--index", fmt.Sprint(idx[i]), "--leaf", leaf); code != 0 {
			t.Errorf("prove leaf %d at %d: exit %d: %s", i, idx[i], code, out)
		}
		if code, out := run("log", "prove", "--tiles", dir, "--vkey", vkey, "--index", fmt.Sprint((idx[i]+1)%n), "--leaf", leaf); code != 1 {
			t.Errorf("prove leaf %d at the wrong index: exit %d, want 1: %s", i, code, out)
		}
	}
}
