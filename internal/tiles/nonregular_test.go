package tiles

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keytrail/keytrail/internal/regfile"
)

// logCopyWithFIFO writes the fixture log to a directory and puts a FIFO in
// place of the file name. Cleanup releases any reader left blocked on it.
func logCopyWithFIFO(t *testing.T, name string) string {
	t.Helper()
	fx := getFixture(t)
	dir := t.TempDir()
	if err := os.CopyFS(dir, fx.files); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(p, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
	return dir
}

// returnsWithin runs f and fails the test if it has not returned within a
// second; a reader blocked on a FIFO would never return.
func returnsWithin(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Second):
		t.Fatal("the reader is still blocked after 1s")
		return nil
	}
}

// lyingStat is a file system whose Stat says every file is regular, as the
// file was when it was checked and before it was replaced by a FIFO.
type lyingStat struct {
	fs.FS
	regular fs.FileInfo
}

func (l lyingStat) Stat(string) (fs.FileInfo, error) { return l.regular, nil }

// nonblockingOpen opens with O_NONBLOCK (so a FIFO does not block) but checks
// nothing: the Reader must check what was opened before reading it.
type nonblockingOpen struct{ root *os.Root }

func (n nonblockingOpen) Open(name string) (fs.File, error) {
	return n.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// TestFIFOInLogCopy (ATTACKS.md 44): a FIFO in a log copy, in place of the
// checkpoint, a hash tile or an entry bundle, fails the read at once with
// ErrMalformed naming the file; it never blocks the reader, whether the
// FIFO was there when the file was checked or put there after.
func TestFIFOInLogCopy(t *testing.T) {
	fx := getFixture(t)
	size := checkpointSizes[len(checkpointSizes)-1]
	root := fx.cps[size].Hash
	for _, name := range []string{"checkpoint", "tile/0/000", "tile/entries/000"} {
		dir := logCopyWithFIFO(t, name)
		read := func(r *Reader) error {
			if name == "checkpoint" {
				_, err := r.Checkpoint()
				return err
			}
			return r.VerifyEntries(size, root, func(uint64, []byte) error { return nil })
		}
		want := func(how string, err error) {
			t.Helper()
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s, FIFO at %s: %v, want ErrMalformed naming the file as not regular", how, name, err)
			}
		}
		rfs, err := regfile.DirFS(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer rfs.Close()
		want("regfile.DirFS", returnsWithin(t, func() error { return read(NewReader(rfs)) }))
		want("os.DirFS", returnsWithin(t, func() error { return read(NewReader(os.DirFS(dir))) }))

		// Replaced after the check: Stat says regular.
		fi, err := os.Stat(filepath.Join(dir, "tile", "0", "001"))
		if err != nil {
			t.Fatal(err)
		}
		err = returnsWithin(t, func() error { return read(NewReader(lyingStat{rfs, fi})) })
		if !errors.Is(err, regfile.ErrNotRegular) || !strings.Contains(err.Error(), name) {
			t.Errorf("regfile.DirFS, FIFO after the check at %s: %v, want regfile.ErrNotRegular naming the file", name, err)
		}
		r, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		want("an FS that opens without blocking and checks nothing", returnsWithin(t, func() error {
			return read(NewReader(lyingStat{nonblockingOpen{r}, fi}))
		}))
	}
}
