package vfs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

func TestAlignedBuffer(t *testing.T) {
	for _, n := range []int{DirectAlign, 3 * DirectAlign, 1 << 20} {
		b := AlignedBuffer(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("AlignedBuffer(%d): len %d cap %d", n, len(b), cap(b))
		}
		if a := uintptr(unsafe.Pointer(&b[0])) % DirectAlign; a != 0 {
			t.Fatalf("AlignedBuffer(%d) starts %d bytes past an aligned address", n, a)
		}
	}
}

// TestOpenDirect: only the operating system's filesystem opens files for
// direct I/O; there, an aligned write lands and reads back, and a
// misaligned one is refused with EINVAL (what the log's fallback keys on).
func TestOpenDirect(t *testing.T) {
	if _, err := OpenDirect(NewMemFS(), "/f", os.O_RDWR|os.O_CREATE, 0o644); !errors.Is(err, ErrDirectUnsupported) {
		t.Fatalf("MemFS: err %v, want ErrDirectUnsupported", err)
	}
	path := filepath.Join(t.TempDir(), "f")
	f, err := OpenDirect(Default, path, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, ErrDirectUnsupported) {
		t.Skipf("the test directory's filesystem refuses O_DIRECT: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := AlignedBuffer(2 * DirectAlign)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	if _, err := f.WriteAt(buf, DirectAlign); err != nil {
		t.Fatalf("aligned direct write: %v", err)
	}
	if _, err := f.WriteAt(buf[1:DirectAlign+1], 0); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("misaligned direct write: err %v, want EINVAL", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3*DirectAlign || !bytes.Equal(got[DirectAlign:], buf) {
		t.Fatalf("read back %d bytes, not what was written", len(got))
	}
}

// TestReadAligned: any range of a file opened for direct reads, through
// whole aligned blocks; a range past the file's end is an error.
func TestReadAligned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	want := make([]byte, 5*DirectAlign+123)
	for i := range want {
		want[i] = byte(i * 7 / 5)
	}
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OpenDirect(Default, path, os.O_RDONLY, 0)
	if errors.Is(err, ErrDirectUnsupported) {
		t.Skipf("the test directory's filesystem refuses O_DIRECT: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	scratch := AlignedBuffer(8 * DirectAlign)
	for _, r := range []struct{ off, n int }{{0, 1}, {1, DirectAlign}, {DirectAlign - 1, 2}, {3000, 4 * DirectAlign}, {len(want) - 200, 200}} {
		got, err := ReadAligned(f, scratch, int64(r.off), r.n)
		if err != nil {
			t.Fatalf("ReadAligned(%d, %d): %v", r.off, r.n, err)
		}
		if !bytes.Equal(got, want[r.off:r.off+r.n]) {
			t.Fatalf("ReadAligned(%d, %d) differs from the file", r.off, r.n)
		}
	}
	if _, err := ReadAligned(f, scratch, int64(len(want)-10), 11); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a read past the end: err %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := ReadAligned(f, scratch[:DirectAlign], 1, DirectAlign); err == nil {
		t.Fatal("a read into a buffer without room succeeded")
	}
}
