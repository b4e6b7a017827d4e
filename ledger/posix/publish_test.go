package posix_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keytrail/keytrail/ledger/posix"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/client"
	tposix "github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// TestCheckpointAtIntegration: a lone Append is answered as soon as its entry
// is integrated, not at Tessera's checkpoint interval (at least 100 ms between
// two checkpoints, so 20 sequential Appends took at least 2 s), and every
// checkpoint handed out is authentic, extends the one before it, and agrees
// with the tiles readers prove from.
func TestCheckpointAtIntegration(t *testing.T) {
	s, v := newKey(t)
	dir := t.TempDir()
	l := openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
	const n = 20
	start := time.Now()
	var raws [][]byte
	for i, e := range entries("lone", n) {
		idx, err := l.Append(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		if idx != uint64(i) {
			t.Fatalf("Append %d = index %d", i, idx)
		}
		raw, err := l.Checkpoint(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		// Sequential Appends: the checkpoint is of exactly the tree so far.
		if cp := parseCheckpoint(t, raw, v); cp.Size != idx+1 {
			t.Fatalf("after Append %d, checkpoint of size %d", i, cp.Size)
		}
		raws = append(raws, raw)
	}
	if d := time.Since(start); d >= n*100*time.Millisecond {
		t.Errorf("%d sequential Appends took %v, as long as waiting for Tessera's checkpoint interval", n, d)
	} else {
		t.Logf("%d sequential Appends took %v", n, d)
	}

	// Every checkpoint, read by a reader of the directory alone.
	fetch := client.FileFetcher{Root: dir}
	for i, raw := range raws {
		cp := parseCheckpoint(t, raw, v)
		leaf := rfc6962.DefaultHasher.HashLeaf(entries("lone", n)[i])
		pb, err := client.NewProofBuilder(t.Context(), cp.Size, fetch.ReadTile)
		if err != nil {
			t.Fatal(err)
		}
		ip, err := pb.InclusionProof(t.Context(), uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), cp.Size, leaf, ip, cp.Hash); err != nil {
			t.Errorf("checkpoint %d: inclusion of its last entry: %v", cp.Size, err)
		}
		if i == 0 {
			continue
		}
		prev := parseCheckpoint(t, raws[i-1], v)
		cpf, err := l.ConsistencyProof(t.Context(), prev.Size, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, prev.Size, cp.Size, cpf, prev.Hash, cp.Hash); err != nil {
			t.Errorf("checkpoint %d does not extend checkpoint %d: %v", cp.Size, prev.Size, err)
		}
	}

	// Close publishes nothing new (all is covered) and leaves the last one.
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	last, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(last, raws[n-1]) {
		t.Errorf("checkpoint after Close:\n%s\nwant the last one handed out:\n%s", last, raws[n-1])
	}
}

// TestPublishOnlyOnGrowth: the checkpoint file is rewritten when an Append
// needs a bigger tree, and not otherwise: neither keytrail's publisher nor
// Tessera's (woken by every integration) rewrites it while the log is idle.
func TestPublishOnlyOnGrowth(t *testing.T) {
	s, v := newKey(t)
	dir := t.TempDir()
	l := openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
	appendAll(t, l, entries("quiet", 5))
	path := filepath.Join(dir, "checkpoint")
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Tessera's interval was 100 ms; two of them, with a batch integrated
	// (which wakes its publisher) in between.
	time.Sleep(150 * time.Millisecond)
	appendAll(t, l, entries("quiet-2", 1))
	mid, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(250 * time.Millisecond)
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(mid.ModTime()) {
		t.Errorf("checkpoint rewritten %v after the last Append, with nothing new to cover", after.ModTime().Sub(mid.ModTime()))
	}
	if !mid.ModTime().After(before.ModTime()) {
		t.Errorf("checkpoint not rewritten for the sixth entry")
	}
	if cp := checkpointOf(t, l, v); cp.Size != 6 {
		t.Errorf("checkpoint of size %d, want 6", cp.Size)
	}
}

// TestPublishRefusesFork: a checkpoint in the directory that the integrated
// tree does not extend (here, correctly signed for another root: a forked or
// rolled-back log) makes the writer refuse to publish, so Open fails with
// ErrCorrupt instead of handing out a checkpoint inconsistent with an earlier
// one (ATTACKS.md case 10).
func TestPublishRefusesFork(t *testing.T) {
	s, v := newKey(t)
	dir := t.TempDir()
	l := openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
	appendAll(t, l, entries("fork", 3))
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Tessera alone integrates a fourth entry and publishes nothing.
	ctx, cancel := context.WithCancel(t.Context())
	driver, err := tposix.New(ctx, tposix.Config{Path: dir})
	if err != nil {
		t.Fatal(err)
	}
	appender, _, _, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(s).WithCheckpointInterval(time.Hour).WithCheckpointRepublishInterval(time.Hour).WithBatching(1, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := appender.Add(ctx, tessera.NewEntry([]byte("fourth")))(); err != nil {
		t.Fatal(err)
	}
	cancel()
	// The published checkpoint, validly signed, claims another tree of size 3.
	other := sha256.Sum256([]byte("another tree"))
	forged, err := note.Sign(&note.Note{Text: string(flog.Checkpoint{Origin: s.Name(), Size: 3, Hash: other[:]}.Marshal())}, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "checkpoint"), forged, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = posix.Open(t.Context(), posix.Config{Dir: dir, Signer: s, Verifier: v, KeyIDs: testKeyIDs, Logger: quietLogger()})
	if !errors.Is(err, posix.ErrCorrupt) {
		t.Fatalf("Open over a forked checkpoint = %v, want ErrCorrupt", err)
	}
	t.Log(err)
	after, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, forged) {
		t.Errorf("the checkpoint was replaced:\n%s", after)
	}
}
