package vfs

import (
	"io"
	"os"
)

// Op names an operation that an Injector may fail.
type Op uint8

const (
	OpOpen Op = iota
	OpRead
	OpWrite
	OpSync
	OpTruncate
	OpPreallocate
	OpList
	OpMkdir
	OpRemove
	OpRename
	OpStat
	OpSyncDir
	OpLock
)

var opNames = [...]string{"open", "read", "write", "sync", "truncate", "preallocate", "list", "mkdir",
	"remove", "rename", "stat", "syncdir", "lock"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "op?"
}

// Injector decides whether an operation on path fails, and with what error
// (nil: it goes through). It is called concurrently.
type Injector func(op Op, path string) error

// Inject returns fs with inj consulted before every operation. A failed
// operation changes nothing.
func Inject(fs FS, inj Injector) FS { return &injectFS{fs: fs, inj: inj} }

type injectFS struct {
	fs  FS
	inj Injector
}

func (i *injectFS) fail(op Op, path string) error {
	if err := i.inj(op, path); err != nil {
		return &os.PathError{Op: op.String(), Path: path, Err: err}
	}
	return nil
}

func (i *injectFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if err := i.fail(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := i.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &injectFile{File: f, fs: i}, nil
}

func (i *injectFS) List(dir string) ([]string, error) {
	if err := i.fail(OpList, dir); err != nil {
		return nil, err
	}
	return i.fs.List(dir)
}

func (i *injectFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := i.fail(OpMkdir, dir); err != nil {
		return err
	}
	return i.fs.MkdirAll(dir, perm)
}

func (i *injectFS) Remove(name string) error {
	if err := i.fail(OpRemove, name); err != nil {
		return err
	}
	return i.fs.Remove(name)
}

func (i *injectFS) RemoveAll(name string) error {
	if err := i.fail(OpRemove, name); err != nil {
		return err
	}
	return i.fs.RemoveAll(name)
}

func (i *injectFS) Rename(o, n string) error {
	if err := i.fail(OpRename, n); err != nil {
		return err
	}
	return i.fs.Rename(o, n)
}

func (i *injectFS) Stat(name string) (Info, error) {
	if err := i.fail(OpStat, name); err != nil {
		return Info{}, err
	}
	return i.fs.Stat(name)
}

func (i *injectFS) SyncDir(dir string) error {
	if err := i.fail(OpSyncDir, dir); err != nil {
		return err
	}
	return i.fs.SyncDir(dir)
}

func (i *injectFS) Lock(name string) (io.Closer, error) {
	if err := i.fail(OpLock, name); err != nil {
		return nil, err
	}
	return i.fs.Lock(name)
}

type injectFile struct {
	File
	fs *injectFS
}

func (f *injectFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.fs.fail(OpRead, f.Name()); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *injectFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.fail(OpWrite, f.Name()); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *injectFile) Write(p []byte) (int, error) {
	if err := f.fs.fail(OpWrite, f.Name()); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *injectFile) Sync() error {
	if err := f.fs.fail(OpSync, f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *injectFile) Datasync() error {
	if err := f.fs.fail(OpSync, f.Name()); err != nil {
		return err
	}
	return f.File.Datasync()
}

func (f *injectFile) Truncate(size int64) error {
	if err := f.fs.fail(OpTruncate, f.Name()); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *injectFile) Preallocate(off, n int64) error {
	if err := f.fs.fail(OpPreallocate, f.Name()); err != nil {
		return err
	}
	return f.File.Preallocate(off, n)
}
