package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrCrashed is returned by every call on a MemFS (and its open files) after
// CrashClone: the machine it stood for has lost power, and the process that
// used it must not write anything more.
var ErrCrashed = errors.New("vfs: filesystem crashed")

// MemFS is an in-memory filesystem that tracks what is durable. See the
// package comment.
type MemFS struct {
	mu      sync.Mutex
	root    *memDir
	locks   map[string]bool
	crashed atomic.Bool
}

type memDir struct {
	entries map[string]any // *memDir or *memFile
	synced  map[string]any // entries as of the last SyncDir
}

type memFile struct {
	mu     sync.RWMutex
	data   []byte
	synced []byte // content as of the last Sync/Datasync
	// dirty is the range of data changed since the last sync: only it is
	// copied at the next one, so syncing a large file after a small
	// append costs the append.
	dirtyLo, dirtyHi int64
}

// NewMemFS returns an empty in-memory filesystem.
func NewMemFS() *MemFS {
	return &MemFS{root: newMemDir(), locks: map[string]bool{}}
}

func newMemDir() *memDir { return &memDir{entries: map[string]any{}, synced: map[string]any{}} }

// CrashClone returns what a power loss would leave of fs: every file's
// content as of its last sync, reachable only through directory entries as
// of their directory's last sync. fs itself fails every later call with
// ErrCrashed, so the process that used it stops changing anything.
func (fs *MemFS) CrashClone() *MemFS { return fs.CrashCloneTorn(nil) }

// TornPage is the unit of CrashCloneTorn's choices: a page of the page
// cache, which the kernel writes back whole, in no particular order.
const TornPage = 4096

// CrashCloneTorn is CrashClone for a power loss that happened while the
// kernel was writing back: of each file's pages changed since its last
// sync, keep(path, off) decides which reached the disk anyway (the page
// at off, TornPage bytes; a page is kept with the file's current bytes,
// a page past the synced size that is not kept reads as zeros), and
// whether a file cut shorter since its last sync keeps its new size (off
// -1). A nil keep keeps nothing: CrashClone. Directory entries are as of
// their last SyncDir, as in CrashClone.
func (fs *MemFS) CrashCloneTorn(keep func(path string, off int64) bool) *MemFS {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.crashed.Store(true)
	files := map[*memFile]*memFile{}
	var clone func(dir string, d *memDir) *memDir
	clone = func(dir string, d *memDir) *memDir {
		out := newMemDir()
		for name, n := range d.synced {
			switch n := n.(type) {
			case *memDir:
				out.entries[name] = clone(filepath.Join(dir, name), n)
			case *memFile:
				c := files[n]
				if c == nil {
					n.mu.RLock()
					c = &memFile{data: n.tornLocked(filepath.Join(dir, name), keep)}
					n.mu.RUnlock()
					c.synced = append([]byte(nil), c.data...)
					files[n] = c
				}
				out.entries[name] = c
			}
		}
		for k, v := range out.entries {
			out.synced[k] = v
		}
		return out
	}
	return &MemFS{root: clone("/", fs.root), locks: map[string]bool{}}
}

// tornLocked returns what a power loss leaves of f (read lock held): its
// synced content, with the changed pages keep picks (see CrashCloneTorn).
func (f *memFile) tornLocked(path string, keep func(string, int64) bool) []byte {
	out := append([]byte(nil), f.synced...)
	if keep == nil {
		return out
	}
	if n := int64(len(f.data)); n < int64(len(out)) && keep(path, -1) {
		out = out[:n]
	}
	lo, hi := f.dirtyLo/TornPage*TornPage, min(f.dirtyHi, int64(len(f.data)))
	for off := lo; off < hi; off += TornPage {
		if !keep(path, off) {
			continue
		}
		end := min(off+TornPage, int64(len(f.data)))
		if int64(len(out)) < end {
			out = append(out, make([]byte, end-int64(len(out)))...)
		}
		copy(out[off:end], f.data[off:end])
	}
	return out
}

func (fs *MemFS) check() error {
	if fs.crashed.Load() {
		return ErrCrashed
	}
	return nil
}

func split(name string) []string {
	name = filepath.Clean("/" + name)
	if name == "/" {
		return nil
	}
	return strings.Split(name[1:], "/")
}

// lookup returns the node at name and its parent directory (mu held).
func (fs *MemFS) lookup(name string) (parent *memDir, base string, node any, err error) {
	parts := split(name)
	if len(parts) == 0 {
		return nil, "", fs.root, nil
	}
	d := fs.root
	for _, p := range parts[:len(parts)-1] {
		next, ok := d.entries[p].(*memDir)
		if !ok {
			return nil, "", nil, &os.PathError{Op: "lookup", Path: name, Err: os.ErrNotExist}
		}
		d = next
	}
	base = parts[len(parts)-1]
	return d, base, d.entries[base], nil
}

func notExist(op, name string) error { return &os.PathError{Op: op, Path: name, Err: os.ErrNotExist} }

// OpenFile implements FS.
func (fs *MemFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if err := fs.check(); err != nil {
		return nil, err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	parent, base, node, err := fs.lookup(name)
	if err != nil {
		return nil, err
	}
	if parent == nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
	}
	var f *memFile
	switch n := node.(type) {
	case nil:
		if flag&os.O_CREATE == 0 {
			return nil, notExist("open", name)
		}
		f = &memFile{}
		parent.entries[base] = f
	case *memDir:
		return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
	case *memFile:
		if flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0 {
			return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrExist}
		}
		f = n
	}
	if flag&os.O_TRUNC != 0 {
		f.mu.Lock()
		f.truncateLocked(0)
		f.mu.Unlock()
	}
	return &memHandle{fs: fs, f: f, name: name}, nil
}

// List implements FS.
func (fs *MemFS) List(dir string) ([]string, error) {
	if err := fs.check(); err != nil {
		return nil, err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	_, _, node, err := fs.lookup(dir)
	if err != nil {
		return nil, err
	}
	d, ok := node.(*memDir)
	if !ok {
		return nil, notExist("readdir", dir)
	}
	names := make([]string, 0, len(d.entries))
	for n := range d.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll implements FS.
func (fs *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := fs.check(); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	d := fs.root
	for _, p := range split(dir) {
		switch n := d.entries[p].(type) {
		case nil:
			nd := newMemDir()
			d.entries[p] = nd
			d = nd
		case *memDir:
			d = n
		default:
			return &os.PathError{Op: "mkdir", Path: dir, Err: errors.New("not a directory")}
		}
	}
	return nil
}

// Remove implements FS.
func (fs *MemFS) Remove(name string) error {
	if err := fs.check(); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	parent, base, node, err := fs.lookup(name)
	if err != nil {
		return err
	}
	if node == nil || parent == nil {
		return notExist("remove", name)
	}
	if d, ok := node.(*memDir); ok && len(d.entries) > 0 {
		return &os.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
	}
	delete(parent.entries, base)
	return nil
}

// RemoveAll implements FS.
func (fs *MemFS) RemoveAll(name string) error {
	if err := fs.check(); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	parent, base, _, err := fs.lookup(name)
	if err != nil || parent == nil {
		return nil
	}
	delete(parent.entries, base)
	return nil
}

// Rename implements FS.
func (fs *MemFS) Rename(oldname, newname string) error {
	if err := fs.check(); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	op, ob, node, err := fs.lookup(oldname)
	if err != nil {
		return err
	}
	if node == nil || op == nil {
		return notExist("rename", oldname)
	}
	np, nb, target, err := fs.lookup(newname)
	if err != nil {
		return err
	}
	if np == nil {
		return &os.PathError{Op: "rename", Path: newname, Err: errors.New("is the root")}
	}
	if d, ok := target.(*memDir); ok && len(d.entries) > 0 {
		return &os.PathError{Op: "rename", Path: newname, Err: errors.New("directory not empty")}
	}
	delete(op.entries, ob)
	np.entries[nb] = node
	return nil
}

// Stat implements FS.
func (fs *MemFS) Stat(name string) (Info, error) {
	if err := fs.check(); err != nil {
		return Info{}, err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	_, _, node, err := fs.lookup(name)
	if err != nil {
		return Info{}, err
	}
	switch n := node.(type) {
	case *memDir:
		return Info{IsDir: true}, nil
	case *memFile:
		n.mu.RLock()
		defer n.mu.RUnlock()
		return Info{Size: int64(len(n.data))}, nil
	}
	return Info{}, notExist("stat", name)
}

// SyncDir implements FS.
func (fs *MemFS) SyncDir(dir string) error {
	if err := fs.check(); err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	_, _, node, err := fs.lookup(dir)
	if err != nil {
		return err
	}
	d, ok := node.(*memDir)
	if !ok {
		return notExist("sync", dir)
	}
	d.synced = make(map[string]any, len(d.entries))
	for k, v := range d.entries {
		d.synced[k] = v
	}
	return nil
}

// Lock implements FS.
func (fs *MemFS) Lock(name string) (io.Closer, error) {
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	f.Close()
	key := filepath.Clean("/" + name)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.locks[key] {
		return nil, fmt.Errorf("lock %s: %w", name, errLocked)
	}
	fs.locks[key] = true
	return lockCloser(func() error {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		delete(fs.locks, key)
		return nil
	}), nil
}

var errLocked = errors.New("resource temporarily unavailable")

type lockCloser func() error

func (c lockCloser) Close() error { return c() }

type memHandle struct {
	fs   *MemFS
	f    *memFile
	name string
	off  int64 // for Write
}

func (h *memHandle) Name() string { return h.name }

func (h *memHandle) ReadAt(p []byte, off int64) (int, error) {
	if err := h.fs.check(); err != nil {
		return 0, err
	}
	h.f.mu.RLock()
	defer h.f.mu.RUnlock()
	if off >= int64(len(h.f.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *memHandle) WriteAt(p []byte, off int64) (int, error) {
	if err := h.fs.check(); err != nil {
		return 0, err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	h.f.growLocked(off + int64(len(p)))
	copy(h.f.data[off:], p)
	h.f.markLocked(off, off+int64(len(p)))
	return len(p), nil
}

func (h *memHandle) Write(p []byte) (int, error) {
	n, err := h.WriteAt(p, h.off)
	h.off += int64(n)
	return n, err
}

func (h *memHandle) Close() error { return nil }

func (h *memHandle) Sync() error {
	if err := h.fs.check(); err != nil {
		return err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	f := h.f
	n := int64(len(f.data))
	if int64(cap(f.synced)) < n {
		grown := make([]byte, n, n+n/4)
		copy(grown, f.synced)
		f.synced = grown
	}
	f.synced = f.synced[:n]
	if lo, hi := f.dirtyLo, min(f.dirtyHi, n); lo < hi {
		copy(f.synced[lo:hi], f.data[lo:hi])
	}
	f.dirtyLo, f.dirtyHi = 0, 0
	return nil
}

func (h *memHandle) Datasync() error { return h.Sync() }

func (h *memHandle) Truncate(size int64) error {
	if err := h.fs.check(); err != nil {
		return err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	h.f.truncateLocked(size)
	return nil
}

func (h *memHandle) Size() (int64, error) {
	if err := h.fs.check(); err != nil {
		return 0, err
	}
	h.f.mu.RLock()
	defer h.f.mu.RUnlock()
	return int64(len(h.f.data)), nil
}

func (h *memHandle) Preallocate(off, n int64) error {
	if err := h.fs.check(); err != nil {
		return err
	}
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	h.f.growLocked(off + n)
	return nil
}

// growLocked extends data with zeros to at least n bytes; the new range is
// dirty.
func (f *memFile) growLocked(n int64) {
	old := int64(len(f.data))
	if n <= old {
		return
	}
	if int64(cap(f.data)) >= n {
		f.data = f.data[:n]
		clear(f.data[old:])
	} else {
		grown := make([]byte, n, n+n/4)
		copy(grown, f.data)
		f.data = grown
	}
	f.markLocked(old, n)
}

func (f *memFile) truncateLocked(size int64) {
	if size >= int64(len(f.data)) {
		f.growLocked(size)
		return
	}
	f.data = f.data[:size]
}

func (f *memFile) markLocked(lo, hi int64) {
	if f.dirtyLo == f.dirtyHi {
		f.dirtyLo, f.dirtyHi = lo, hi
		return
	}
	f.dirtyLo, f.dirtyHi = min(f.dirtyLo, lo), max(f.dirtyHi, hi)
}
