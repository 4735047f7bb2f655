// Package tmpfs gives tests a real small filesystem to fill: a tmpfs
// mounted for the test, and a file that takes up its free space. It
// imports nothing of Braid, so storage packages' own tests can use it.
package tmpfs

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Mount mounts a tmpfs of size bytes on a fresh directory and returns it;
// it is unmounted when the test ends. Tests of a full disk use it so that
// the filesystem, not a fake, says "no space left". Mounting needs root: where
// it is refused the test is skipped, except under CI (CI=true), which runs
// as root and must run these tests.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tmpfs: mount tmpfs on %s: %v (CI runs as root and must run this test)", dir, err)
		}
		t.Skipf("tmpfs: cannot mount a tmpfs here (%v); CI runs this test", err)
	}
	// Registered after TempDir's cleanup, so it runs before it.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("tmpfs: unmount %s: %v", dir, err)
		}
	})
	return dir
}

// FreeBytes returns the bytes available to an unprivileged writer on the
// filesystem holding dir.
func FreeBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("tmpfs: statfs %s: %v", dir, err)
	}
	return int64(st.Bavail) * st.Bsize
}

// Fill allocates a file at path that leaves about leave bytes free on its
// filesystem (none if leave is 0), and returns a function that removes it.
func Fill(t testing.TB, path string, leave int64) (remove func()) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatalf("tmpfs: filler: %v", err)
	}
	defer f.Close()
	// A node writing meanwhile (its log, a spare segment being
	// pre-written) can take space between the measure and the
	// allocation: measure again and retry.
	for try := 1; ; try++ {
		n := FreeBytes(t, filepath.Dir(path)) - leave
		if n <= 0 {
			break
		}
		err := syscall.Fallocate(int(f.Fd()), 0, 0, n)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ENOSPC) || try == 20 {
			t.Fatalf("tmpfs: fill %d bytes: %v", n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Errorf("tmpfs: remove filler: %v", err)
		}
	}
}
