// Package pagecache lets tests see which pages of a file are in the page
// cache (mincore), to check that Braid drops what it says it drops. It
// imports nothing of Braid, so storage packages' own tests can use it.
package pagecache

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SkipOnTmpfs skips the test when dir is on tmpfs, whose pages are its
// storage and are never dropped.
func SkipOnTmpfs(t testing.TB, dir string) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		t.Skipf("%s is on tmpfs, whose pages are its storage and cannot be dropped", dir)
	}
}

// Resident returns how many of the pages of path in [off, off+n) are in
// the page cache, and how many pages the range has; off must be a
// multiple of the page size. n < 0 means up to the end of the file.
func Resident(t testing.TB, path string, off, n int64) (in, pages int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n < 0 {
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		n = st.Size() - off
	}
	if n <= 0 {
		return 0, 0
	}
	m, err := unix.Mmap(int(f.Fd()), off, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("pagecache: mmap %s: %v", path, err)
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (n+page-1)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("pagecache: mincore %s: %v", path, e)
	}
	for _, v := range vec {
		in += int(v & 1)
	}
	return in, len(vec)
}

// Drop asks the kernel to drop path's clean pages from the page cache
// (posix_fadvise DONTNEED), as a restart after memory filled would find
// them; it returns how many pages stayed.
func Drop(t testing.TB, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatalf("pagecache: fadvise %s: %v", path, err)
	}
	in, _ := Resident(t, path, 0, -1)
	return in
}
