package vfs

import (
	"bytes"
	"errors"
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
