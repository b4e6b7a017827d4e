package posix_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keytrail/keytrail/ledger"
	"github.com/keytrail/keytrail/ledger/posix"
)

// keyedEntries makes n entries naming keys by a fixed pattern: entry i names
// "k<i%5>", every third also "even"/"odd", every seventh none, and one names a
// key twice.
func keyedEntries(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		switch {
		case i%7 == 6:
			out[i] = fmt.Appendf(nil, "%s-%d;no key here", prefix, i)
		case i%3 == 0:
			out[i] = fmt.Appendf(nil, "%s-%d;key=k%d;key=%s", prefix, i, i%5, []string{"even", "odd"}[i%2])
		case i == 10:
			out[i] = fmt.Appendf(nil, "%s-%d;key=k%d;key=k%d", prefix, i, i%5, i%5)
		default:
			out[i] = fmt.Appendf(nil, "%s-%d;key=k%d", prefix, i, i%5)
		}
	}
	return out
}

// wantKeyIndex computes the key index of a log's entries directly.
func wantKeyIndex(t *testing.T, l ledger.Log) map[string][]uint64 {
	t.Helper()
	want := map[string][]uint64{}
	for i := uint64(0); ; i++ {
		e, err := l.Entry(t.Context(), i)
		if err != nil {
			break
		}
		ids, err := testKeyIDs(e)
		if err != nil {
			continue
		}
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			want[id] = append(want[id], i)
		}
	}
	return want
}

var testKeys = []string{"k0", "k1", "k2", "k3", "k4", "even", "odd", "absent"}

func checkKeyIndex(t *testing.T, l ledger.Log, want map[string][]uint64) {
	t.Helper()
	for _, id := range testKeys {
		got, err := l.KeyIndex(t.Context(), id)
		if err != nil {
			t.Fatalf("KeyIndex(%q): %v", id, err)
		}
		if diff := cmp.Diff(want[id], got); diff != "" {
			t.Fatalf("KeyIndex(%q) mismatch (-want +got):\n%s", id, diff)
		}
	}
}

func TestKeyIndex(t *testing.T) {
	dir := t.TempDir()
	s, v := newKey(t)
	cfg := posix.Config{Dir: dir, Signer: s, Verifier: v, KeyIDs: testKeyIDs, Logger: quietLogger()}
	indexFile := filepath.Join(dir, ".keytrail", "keyindex")
	ctx := t.Context()

	l, err := posix.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Empty log: nothing indexed.
	if got, err := l.KeyIndex(ctx, "k0"); err != nil || got != nil {
		t.Fatalf("KeyIndex on an empty log = %v, %v", got, err)
	}
	appendAll(t, l, keyedEntries("a", 600))
	want := wantKeyIndex(t, l)
	if len(want["k0"]) == 0 || len(want["even"]) == 0 {
		t.Fatalf("test entries name too few keys: %v", want)
	}
	checkKeyIndex(t, l, want)
	if _, err := os.Stat(indexFile); err != nil {
		t.Fatalf("key index not saved: %v", err)
	}

	// Catches up after new appends, in the same process.
	appendAll(t, l, keyedEntries("b", 100))
	want = wantKeyIndex(t, l)
	checkKeyIndex(t, l, want)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(indexFile)
	if err != nil {
		t.Fatal(err)
	}

	reopen := func(t *testing.T) {
		t.Helper()
		l := openLog(t, cfg)
		checkKeyIndex(t, l, want)
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		damage func() error
	}{
		{"intact", func() error { return nil }},
		{"deleted", func() error { return os.Remove(indexFile) }},
		{"directory deleted", func() error { return os.RemoveAll(filepath.Dir(indexFile)) }},
		{"empty", func() error { return os.WriteFile(indexFile, nil, 0o644) }},
		{"truncated", func() error { return os.WriteFile(indexFile, good[:len(good)/2], 0o644) }},
		{"bit flipped", func() error {
			b := slices.Clone(good)
			b[len(b)/2] ^= 1
			return os.WriteFile(indexFile, b, 0o644)
		}},
		{"garbage", func() error { return os.WriteFile(indexFile, []byte("not an index"), 0o644) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.damage(); err != nil {
				t.Fatal(err)
			}
			reopen(t)
			got, err := os.ReadFile(indexFile)
			if err != nil {
				t.Fatalf("key index not rewritten: %v", err)
			}
			if !slices.Equal(got, good) {
				t.Errorf("rebuilt key index differs from the original")
			}
		})
	}

	// Catches up from the saved index across processes.
	l = openLog(t, cfg)
	appendAll(t, l, keyedEntries("c", 50))
	want = wantKeyIndex(t, l)
	checkKeyIndex(t, l, want)
}

// TestKeyIndexOfAnotherLog gives a log the key index of another: one larger
// (it claims more leaves than the log has) and one of the same size (its tree
// root differs). Both must be rebuilt.
func TestKeyIndexOfAnotherLog(t *testing.T) {
	s, v := newKey(t)
	ctx := t.Context()
	mk := func(prefix string, n int) (posix.Config, map[string][]uint64) {
		cfg := posix.Config{Dir: t.TempDir(), Signer: s, Verifier: v, KeyIDs: testKeyIDs, Logger: quietLogger()}
		l := openLog(t, cfg)
		appendAll(t, l, keyedEntries(prefix, n))
		want := wantKeyIndex(t, l)
		checkKeyIndex(t, l, want)
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
		return cfg, want
	}
	small, wantSmall := mk("small", 40)
	same, _ := mk("same", 40)
	big, _ := mk("big", 80)

	for name, from := range map[string]posix.Config{"larger": big, "same size": same} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(from.Dir, ".keytrail", "keyindex"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(small.Dir, ".keytrail", "keyindex"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			l := openLog(t, small)
			checkKeyIndex(t, l, wantSmall)
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}

	// A shorter index of another log is extended, then fails the root check and is rebuilt.
	t.Run("smaller", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(small.Dir, ".keytrail", "keyindex"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(big.Dir, ".keytrail", "keyindex"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		l := openLog(t, big)
		checkKeyIndex(t, l, wantKeyIndex(t, l))
	})
}

func TestKeyIndexConcurrent(t *testing.T) {
	s, v := newKey(t)
	l := openLog(t, posix.Config{Dir: t.TempDir(), Signer: s, Verifier: v})
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { appendAll(t, l, keyedEntries(fmt.Sprint("w", i), 100)) })
	}
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, err := l.KeyIndex(ctx, "k1")
				if err != nil {
					t.Errorf("KeyIndex: %v", err)
					return
				}
				if !slices.IsSorted(got) {
					t.Errorf("KeyIndex not ascending: %v", got)
				}
				for _, i := range got {
					e, err := l.Entry(ctx, i)
					if err != nil {
						t.Errorf("Entry(%d): %v", i, err)
						return
					}
					if ids, _ := testKeyIDs(e); !slices.Contains(ids, "k1") {
						t.Errorf("KeyIndex(k1) lists %d, which names %v", i, ids)
					}
				}
			}
		})
	}
	wg.Wait()
	checkKeyIndex(t, l, wantKeyIndex(t, l))
}

func TestKeyIndexCorruptLog(t *testing.T) {
	dir := t.TempDir()
	s, v := newKey(t)
	l := openLog(t, posix.Config{Dir: dir, Signer: s, Verifier: v})
	appendAll(t, l, keyedEntries("x", 5))
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Rewrite one entry in its bundle: the log no longer matches its checkpoint.
	bundle := filepath.Join(dir, "tile", "entries", "000.p", "5")
	b, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	b[3] ^= 1
	if err := os.WriteFile(bundle, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := openLog(t, posix.Config{Dir: dir, Verifier: v})
	if got, err := r.KeyIndex(t.Context(), "k1"); !errors.Is(err, posix.ErrCorrupt) {
		t.Errorf("KeyIndex on a tampered log = %v, %v; want ErrCorrupt", got, err)
	}
}
