package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
)

// FS is the filesystem the storage engine runs on.
type FS interface {
	// OpenFile opens a file; flag takes os.O_RDONLY, O_RDWR, O_WRONLY,
	// O_CREATE, O_EXCL and O_TRUNC.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// List returns the names in a directory, sorted.
	List(dir string) ([]string, error)
	MkdirAll(dir string, perm os.FileMode) error
	Remove(name string) error
	RemoveAll(name string) error
	Rename(oldname, newname string) error
	// Stat reports whether name exists, its size and whether it is a
	// directory; a missing name is an error satisfying os.IsNotExist.
	Stat(name string) (Info, error)
	// SyncDir makes the directory's entries (creations, renames, removals
	// in it) durable.
	SyncDir(dir string) error
	// Lock takes an exclusive, non-blocking lock on name (created if
	// missing) for as long as the returned closer is open.
	Lock(name string) (io.Closer, error)
}

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Writer // appends at the file's write offset (used for whole-file writes)
	io.Closer
	// Sync makes the content and size durable (fsync).
	Sync() error
	// Datasync makes the content durable (fdatasync).
	Datasync() error
	Truncate(size int64) error
	Size() (int64, error)
	// Preallocate reserves [off, off+n), growing the file with zeros
	// where it is shorter. It may be unsupported; callers treat an error
	// as "the file just grows".
	Preallocate(off, n int64) error
	Name() string
}

// Info is what Stat reports.
type Info struct {
	Size  int64
	IsDir bool
}

// Default is the operating system's filesystem.
var Default FS = osFS{}

// ReadFile reads a whole file.
func ReadFile(fs FS, name string) ([]byte, error) {
	f, err := fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

// WriteFileAtomic replaces name with data so that a crash leaves either the
// old or the new content, never a mix or nothing: write a temporary file,
// fsync it, rename it over name, fsync the directory.
func WriteFileAtomic(fs FS, name string, data []byte) error {
	return WriteFileAtomicFunc(fs, name, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFileAtomicFunc is WriteFileAtomic for content that write produces
// piece by piece into the temporary file, so that a large file need not
// be held in memory whole (write buffers as it needs). An error from
// write leaves name as it was.
func WriteFileAtomicFunc(fs FS, name string, write func(io.Writer) error) error {
	tmp := name + ".tmp"
	fh, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := write(fh); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	if err := fs.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename %s: %w", name, err)
	}
	if err := fs.SyncDir(filepath.Dir(name)); err != nil {
		return fmt.Errorf("sync dir of %s: %w", name, err)
	}
	return nil
}

// MkdirAllDurable creates dir and its missing parents, and syncs the
// directory holding each one it created, so the new entries survive a power
// loss.
func MkdirAllDurable(fs FS, dir string) error {
	var created []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		} else if !os.IsNotExist(err) {
			return err
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(created) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range created {
		if err := fs.SyncDir(filepath.Dir(d)); err != nil {
			// A retry would find the directories and take them for
			// durable: remove them (deepest first, those still empty),
			// so that it creates and syncs them again.
			for _, c := range created {
				fs.Remove(c)
			}
			return err
		}
	}
	return nil
}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) List(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) RemoveAll(name string) error                 { return os.RemoveAll(name) }
func (osFS) Rename(o, n string) error                    { return os.Rename(o, n) }

func (osFS) Stat(name string) (Info, error) {
	st, err := os.Stat(name)
	if err != nil {
		return Info{}, err
	}
	return Info{Size: st.Size(), IsDir: st.IsDir()}, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (osFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

type osFile struct{ *os.File }

func (f osFile) Datasync() error { return syscall.Fdatasync(int(f.Fd())) }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (f osFile) Preallocate(off, n int64) error {
	return syscall.Fallocate(int(f.Fd()), 0, off, n)
}

// WillNeed tells the kernel that [off, off+n) of the file will be read
// soon, so that it starts reading it into the page cache without waiting
// for the read (posix_fadvise WILLNEED). It is a hint: files that cannot
// take it (other filesystems, tests) ignore it, and so do errors.
func WillNeed(f File, off, n int64) {
	if w, ok := f.(interface{ willNeed(off, n int64) }); ok {
		w.willNeed(off, n)
	}
}

func (f osFile) willNeed(off, n int64) {
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
}

// Cached returns how many of the pages of [off, off+n) of the file are in
// the page cache, and how many pages the range has (cachestat(2), Linux
// 6.5 and later); ok is false where that cannot be known (other files,
// older kernels).
func Cached(f File, off, n int64) (cached, pages int64, ok bool) {
	if c, is := f.(interface {
		cached(off, n int64) (int64, int64, bool)
	}); is {
		return c.cached(off, n)
	}
	return 0, 0, false
}

func (f osFile) cached(off, n int64) (int64, int64, bool) {
	if n <= 0 {
		return 0, 0, true
	}
	var st unix.Cachestat_t
	r := unix.CachestatRange{Off: uint64(off), Len: uint64(n)}
	if err := unix.Cachestat(uint(f.Fd()), &r, &st, 0); err != nil {
		return 0, 0, false
	}
	page := int64(os.Getpagesize())
	first, last := off/page, (off+n-1)/page
	return int64(st.Cache), last - first + 1, true
}

// DontNeed tells the kernel that [off, off+n) of the file will not be
// read again soon, so that it drops the range's clean pages from the page
// cache (posix_fadvise DONTNEED; dirty pages stay until written back). It
// is a hint: files that cannot take it ignore it, and so do errors.
func DontNeed(f File, off, n int64) {
	if d, ok := f.(interface{ dontNeed(off, n int64) }); ok {
		d.dontNeed(off, n)
	}
}

func (f osFile) dontNeed(off, n int64) {
	_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
