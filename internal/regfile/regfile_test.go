package regfile

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"
)

// within runs f and fails the test if it has not returned after d: a read
// that blocks on a FIFO would otherwise hang the test.
func within[T any](t *testing.T, d time.Duration, f func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(d):
		t.Fatalf("still blocked after %v", d)
		panic("unreachable")
	}
}

// mkfifo makes a FIFO at path. Cleanup opens it for writing (O_RDWR never
// blocks on Linux) and closes it, which releases any reader a failing test
// left blocked in open.
func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
			f.Close()
		}
	})
}

// special makes, in dir, a FIFO, a Unix socket and a directory, and returns
// their names.
func special(t *testing.T, dir string) []string {
	t.Helper()
	mkfifo(t, filepath.Join(dir, "fifo"))
	ln, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if err := os.Mkdir(filepath.Join(dir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{"fifo", "sock", "dir"}
}

// TestOpenRefusesNonRegular: a FIFO, a socket, a directory and a device are
// refused at once by Open and ReadFile, naming what they are; regular files
// and symbolic links to them are read.
func TestOpenRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	names := special(t, dir)
	kinds := map[string]string{"fifo": "named pipe", "sock": "socket", "dir": "directory"}
	paths := []string{"/dev/null"}
	kinds["/dev/null"] = "character device"
	for _, n := range names {
		paths = append(paths, filepath.Join(dir, n))
	}
	for _, p := range paths {
		kind := kinds[p]
		if kind == "" {
			kind = kinds[filepath.Base(p)]
		}
		_, err := within(t, time.Second, func() (*os.File, error) { return Open(p) })
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), kind) || !strings.Contains(err.Error(), p) {
			t.Errorf("Open(%s): %v, want ErrNotRegular naming the path and %q", p, err, kind)
		}
		_, err = within(t, time.Second, func() ([]byte, error) { return ReadFile(p, 1<<20) })
		if !errors.Is(err, ErrNotRegular) {
			t.Errorf("ReadFile(%s): %v, want ErrNotRegular", p, err)
		}
	}
	reg := filepath.Join(dir, "reg")
	if err := os.WriteFile(reg, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("reg", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{reg, filepath.Join(dir, "link")} {
		if b, err := ReadFile(p, 5); err != nil || string(b) != "hello" {
			t.Errorf("ReadFile(%s) = %q, %v", p, b, err)
		}
	}
	if _, err := ReadFile(reg, 4); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v, want ErrTooLarge", err)
	}
}

// TestOpenSwappedForFIFO: a path that was a regular file when it was
// checked and is a FIFO when it is opened (the window between stat and open)
// is refused without blocking: the open itself cannot block and the opened
// descriptor is checked again.
func TestOpenSwappedForFIFO(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fifo")
	mkfifo(t, p)
	_, err := within(t, time.Second, func() (*os.File, error) { return openNonblock(p, os.OpenFile, false) })
	if !errors.Is(err, ErrNotRegular) {
		t.Errorf("open after the check: %v, want ErrNotRegular", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	_, err = within(t, time.Second, func() (*os.File, error) { return openNonblock("fifo", root.OpenFile, true) })
	if !errors.Is(err, ErrNotRegular) {
		t.Errorf("open in a root after the check: %v, want ErrNotRegular", err)
	}
}

// TestFSRefusesNonRegular: FS.Open and fs.ReadFile of a FIFO or a socket
// return at once with ErrNotRegular; regular files and directories are read,
// and the FS is a conforming fs.FS (testing/fstest).
func TestFSRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	special(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "dir", "reg"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys, err := DirFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	for _, n := range []string{"fifo", "sock"} {
		_, err := within(t, time.Second, func() (fs.File, error) { return fsys.Open(n) })
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), n) {
			t.Errorf("Open(%s): %v, want ErrNotRegular naming it", n, err)
		}
		_, err = within(t, time.Second, func() ([]byte, error) { return fs.ReadFile(fsys, n) })
		if !errors.Is(err, ErrNotRegular) {
			t.Errorf("fs.ReadFile(%s): %v, want ErrNotRegular", n, err)
		}
	}
	if b, err := fs.ReadFile(fsys, "dir/reg"); err != nil || string(b) != "x" {
		t.Errorf("dir/reg: %q, %v", b, err)
	}
	if _, err := fsys.Open("../x"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("../x: %v, want fs.ErrInvalid", err)
	}
	sub, err := DirFS(filepath.Join(dir, "dir"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := fstest.TestFS(sub, "reg"); err != nil {
		t.Error(err)
	}
}
