// Package regfile opens input files that must be regular files, without ever
// blocking on one that is not: a FIFO, a device or a socket put where a file is
// expected is refused at once (ATTACKS.md 44).
//
// # Why
//
// Opening a FIFO for reading blocks until a writer opens it, and reading a
// device such as /dev/zero never ends. os.Open, os.ReadFile, os.DirFS and the
// FS of an os.Root all open that way, so anyone who can put a FIFO in a log
// copy, a claims directory or the path of a bundle could hang keytrail with
// no key at all. Checking the mode with stat before opening is not enough: a
// regular file can be swapped for a FIFO between the stat and the open.
//
// # How
//
// Every open here stats the path first (so a FIFO, device or socket is
// refused without being opened), opens it with O_NONBLOCK (opening a FIFO
// then returns at once, with or without a writer) and O_NOCTTY, and checks the
// opened descriptor again with fstat: whatever the path names at the moment
// of the open, only a regular file is returned. On a regular file O_NONBLOCK
// changes nothing: reads of regular files do not block in the sense it
// controls.
//
// Directories are refused by Open and ReadFile; FS opens them (fs.ReadDir and
// fs.WalkDir need them) and refuses every other file that is not regular.
package regfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
)

// ErrNotRegular: the path names something other than a regular file (a FIFO,
// a device, a socket, a directory). The error names what it is.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge: the file holds more bytes than the caller's limit.
var ErrTooLarge = errors.New("file too large")

// ErrChanged: the file grew while it was being read.
var ErrChanged = errors.New("file changed while being read")

// openFlags open without blocking on a FIFO and without making a terminal
// the controlling terminal.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY

// Open opens the regular file path for reading. It never blocks on a FIFO or
// a device: anything but a regular file (after following symbolic links) is
// refused with an *fs.PathError wrapping ErrNotRegular.
func Open(path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := check("open", path, st, false); err != nil {
		return nil, err
	}
	return openNonblock(path, os.OpenFile, false)
}

// openNonblock opens name with open, without blocking, and refuses it, by
// fstat on the opened descriptor, unless it is a regular file (or, with
// dirOK, a directory): whatever name is at the moment of the open.
func openNonblock(name string, open func(string, int, os.FileMode) (*os.File, error), dirOK bool) (*os.File, error) {
	f, err := open(name, openFlags, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil {
		err = check("open", name, st, dirOK)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile reads the regular file path (see Open), which may hold at most
// limit bytes: a larger file is refused with ErrTooLarge before it is read,
// and one that grows while it is read with ErrChanged. The file's size is
// allocated once.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, path, limit)
}

func readAll(f fs.File, path string, limit int64) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, st.Size(), limit)}
	}
	buf := make([]byte, st.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = ErrChanged // it shrank
		}
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if n, _ := f.Read(make([]byte, 1)); n != 0 {
		return nil, &fs.PathError{Op: "read", Path: path, Err: ErrChanged}
	}
	return buf, nil
}

// check refuses fi unless it is a regular file (or, with dirOK, a directory).
func check(op, path string, fi fs.FileInfo, dirOK bool) error {
	m := fi.Mode()
	if m.IsRegular() || dirOK && m.IsDir() {
		return nil
	}
	return &fs.PathError{Op: op, Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, Kind(m))}
}

// Kind names the type of a file mode in words: "a directory", "a named pipe
// (FIFO)", and so on.
func Kind(m fs.FileMode) string {
	switch t := m.Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a block device"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	default:
		return "an irregular file"
	}
}

// FS is a read-only fs.FS of a directory tree, opened with os.OpenRoot so
// that no path, even through a symbolic link, leads out of it, whose Open
// never blocks: it opens with O_NONBLOCK and returns only regular files and
// directories (anything else is an *fs.PathError wrapping ErrNotRegular). Use
// it instead of os.DirFS or os.Root.FS for any directory whose files are
// input. It implements fs.StatFS and fs.ReadDirFS. Close it when done.
type FS struct {
	root *os.Root
}

// DirFS opens dir as an FS.
func DirFS(dir string) (*FS, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &FS{root: root}, nil
}

// Close closes the directory.
func (f *FS) Close() error { return f.root.Close() }

// Open opens name (a slash-separated path, fs.ValidPath) for reading if it is
// a regular file or a directory, without blocking.
func (f *FS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	st, err := f.root.Stat(name)
	if err != nil {
		return nil, err
	}
	if err := check("open", name, st, true); err != nil {
		return nil, err
	}
	file, err := openNonblock(name, f.root.OpenFile, true)
	if err != nil {
		return nil, err // not a nil *os.File in a non-nil fs.File
	}
	return file, nil
}

// Stat returns the FileInfo of name (following symbolic links inside the
// directory) without opening it.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	return f.root.Stat(name)
}

// ReadDir reads the directory name, sorted by file name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	file, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	d, ok := file.(fs.ReadDirFile)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	ents, err := d.ReadDir(-1)
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, err
}
