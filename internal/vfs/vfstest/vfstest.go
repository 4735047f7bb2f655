// Package vfstest holds the acceptance test every vfs.FS implementation must
// pass.
package vfstest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/braidstream/braid/internal/vfs"
)

// Acceptance checks the behaviour the storage engine relies on, in an empty
// directory dir of fs.
func Acceptance(t *testing.T, fs vfs.FS, dir string) {
	t.Helper()
	sub := filepath.Join(dir, "a", "b")
	if err := vfs.MkdirAllDurable(fs, sub); err != nil {
		t.Fatalf("MkdirAllDurable: %v", err)
	}
	if info, err := fs.Stat(sub); err != nil || !info.IsDir {
		t.Fatalf("Stat(dir) = %+v, %v", info, err)
	}
	name := filepath.Join(sub, "f")
	if _, err := fs.OpenFile(name, os.O_RDWR, 0); !os.IsNotExist(err) {
		t.Fatalf("open of a missing file: %v, want not-exist", err)
	}
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); !errors.Is(err, os.ErrExist) {
		t.Fatalf("O_EXCL on an existing file: %v, want exists", err)
	}
	if _, err := f.WriteAt([]byte("hello world"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("W"), 6); err != nil {
		t.Fatal(err)
	}
	if err := f.Datasync(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	if _, err := f.ReadAt(buf, 0); err != nil || string(buf) != "hello World" {
		t.Fatalf("ReadAt = %q, %v", buf, err)
	}
	if n, err := f.ReadAt(buf, 5); !errors.Is(err, io.EOF) || n != 6 {
		t.Fatalf("short ReadAt = %d, %v; want 6, EOF", n, err)
	}
	if err := f.Preallocate(0, 100); err == nil {
		if n, _ := f.Size(); n != 100 {
			t.Fatalf("size after Preallocate = %d, want 100", n)
		}
		if _, err := f.ReadAt(buf[:4], 50); err != nil || string(buf[:4]) != "\x00\x00\x00\x00" {
			t.Fatalf("preallocated bytes = %q, %v", buf[:4], err)
		}
	}
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Size(); err != nil || n != 5 {
		t.Fatalf("Size after Truncate = %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := vfs.WriteFileAtomic(fs, filepath.Join(sub, "g"), []byte("data")); err != nil {
		t.Fatal(err)
	}
	if got, err := vfs.ReadFile(fs, filepath.Join(sub, "g")); err != nil || string(got) != "data" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
	if err := fs.Rename(filepath.Join(sub, "g"), filepath.Join(sub, "h")); err != nil {
		t.Fatal(err)
	}
	names, err := fs.List(sub)
	if err != nil || !slices.Equal(names, []string{"f", "h"}) {
		t.Fatalf("List = %v, %v; want [f h]", names, err)
	}
	if err := fs.Remove(filepath.Join(sub, "h")); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(filepath.Join(sub, "h")); !os.IsNotExist(err) {
		t.Fatalf("Stat after Remove: %v", err)
	}
	if err := fs.SyncDir(sub); err != nil {
		t.Fatal(err)
	}
	l, err := fs.Lock(filepath.Join(dir, "LOCK"))
	if err != nil {
		t.Fatal(err)
	}
	if l2, err := fs.Lock(filepath.Join(dir, "LOCK")); err == nil {
		l2.Close()
		t.Fatal("a second Lock succeeded")
	}
	l.Close()
	if err := fs.RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(sub); !os.IsNotExist(err) {
		t.Fatalf("Stat after RemoveAll: %v", err)
	}
}
