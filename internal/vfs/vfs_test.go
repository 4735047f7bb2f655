package vfs_test

import (
	"errors"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/vfs/vfstest"
)

func TestAcceptanceOS(t *testing.T) { vfstest.Acceptance(t, vfs.Default, t.TempDir()) }

func TestAcceptanceMem(t *testing.T) { vfstest.Acceptance(t, vfs.NewMemFS(), "/data") }

func TestAcceptanceInjectNoFaults(t *testing.T) {
	vfstest.Acceptance(t, vfs.Inject(vfs.NewMemFS(), func(vfs.Op, string) error { return nil }), "/data")
}

func read(t *testing.T, fs vfs.FS, name string) string {
	t.Helper()
	b, err := vfs.ReadFile(fs, name)
	if os.IsNotExist(err) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func write(t *testing.T, fs vfs.FS, name, data string, sync bool) {
	t.Helper()
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := f.Size()
	if _, err := f.WriteAt([]byte(data), n); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashForgetsWhatWasNotSynced checks the strict power-loss model: file
// content survives only up to its last sync, directory entries only up to
// their directory's last sync.
func TestCrashForgetsWhatWasNotSynced(t *testing.T) {
	fs := vfs.NewMemFS()
	if err := vfs.MkdirAllDurable(fs, "/d"); err != nil {
		t.Fatal(err)
	}
	write(t, fs, "/d/synced", "A", true)
	write(t, fs, "/d/nodirsync", "B", true)
	if err := fs.SyncDir("/d"); err != nil {
		t.Fatal(err)
	}
	// After the directory sync: more data, synced or not, a new file whose
	// entry is never synced, a rename and a removal never synced.
	write(t, fs, "/d/synced", "a", false)
	write(t, fs, "/d/nodirsync", "b", true)
	write(t, fs, "/d/new", "N", true)
	if err := fs.Rename("/d/nodirsync", "/d/renamed"); err != nil {
		t.Fatal(err)
	}
	c := fs.CrashClone()
	for name, want := range map[string]string{
		"/d/synced":    "A",
		"/d/nodirsync": "Bb", // rename forgotten, synced data kept
		"/d/renamed":   "<missing>",
		"/d/new":       "<missing>",
	} {
		if got := read(t, c, name); got != want {
			t.Errorf("after crash %s = %q, want %q", name, got, want)
		}
	}
	if _, err := fs.OpenFile("/d/synced", os.O_RDONLY, 0); !errors.Is(err, vfs.ErrCrashed) {
		t.Errorf("the crashed fs still works: %v", err)
	}
	// The clone's state is durable as it stands.
	if got := read(t, c.CrashClone(), "/d/nodirsync"); got != "Bb" {
		t.Errorf("second crash = %q", got)
	}
}

func TestCrashTruncateAndRegrow(t *testing.T) {
	fs := vfs.NewMemFS()
	f, err := fs.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fs.SyncDir("/")
	f.WriteAt([]byte("0123456789"), 0)
	f.Sync()
	f.Truncate(4)
	f.Preallocate(0, 8)
	f.Sync()
	if got := read(t, fs.CrashClone(), "/f"); got != "0123\x00\x00\x00\x00" {
		t.Fatalf("after crash = %q", got)
	}
}

// TestCrashTornKeepsChosenPages: a torn power loss keeps, of the pages
// written since the last sync, those the caller picks, whole, over the
// synced content; a kept page past the synced size brings the pages
// between as zeros; the same crash keeping nothing is CrashClone.
func TestCrashTornKeepsChosenPages(t *testing.T) {
	const page = vfs.TornPage
	build := func() *vfs.MemFS {
		fs := vfs.NewMemFS()
		f, err := fs.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fs.SyncDir("/")
		f.WriteAt([]byte(strings.Repeat("s", page+10)), 0)
		f.Sync()
		// Unsynced: the end of page 0, all of page 1, and page 3.
		f.WriteAt([]byte(strings.Repeat("u", 2*page-20)), 20)
		f.WriteAt([]byte(strings.Repeat("v", page)), 3*page)
		return fs
	}
	var asked []int64
	torn := build().CrashCloneTorn(func(path string, off int64) bool {
		asked = append(asked, off)
		return path == "/f" && (off == 0 || off == 3*page)
	})
	want := strings.Repeat("s", 20) + strings.Repeat("u", page-20) + // page 0 kept
		strings.Repeat("s", 10) + strings.Repeat("\x00", page-10) + // page 1 not: synced bytes, then zeros
		strings.Repeat("\x00", page) + // page 2 never written
		strings.Repeat("v", page) // page 3 kept
	if got := read(t, torn, "/f"); got != want {
		t.Fatalf("torn crash kept %d bytes %q..., want %d bytes", len(got), got[:min(len(got), 40)], len(want))
	}
	if len(asked) != 4 || asked[0] != 0 || asked[3] != 3*page {
		t.Fatalf("asked about pages %v, want the four from 0 to %d", asked, 3*page)
	}
	if got := read(t, build().CrashCloneTorn(func(string, int64) bool { return false }), "/f"); got != strings.Repeat("s", page+10) {
		t.Fatalf("torn crash keeping nothing kept %d bytes", len(got))
	}
}

func TestInjectFailsChosenOps(t *testing.T) {
	fs := vfs.Inject(vfs.NewMemFS(), func(op vfs.Op, path string) error {
		if op == vfs.OpWrite && path == "/full" {
			return syscall.ENOSPC
		}
		return nil
	})
	f, err := fs.OpenFile("/full", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write = %v, want ENOSPC", err)
	}
	if n, _ := f.Size(); n != 0 {
		t.Fatalf("a failed write changed the file: size %d", n)
	}
	g, _ := fs.OpenFile("/ok", os.O_RDWR|os.O_CREATE, 0o644)
	if _, err := g.WriteAt([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFileAtomicFunc: content written in pieces replaces the file
// whole and survives a crash; a failing write function or a failing write
// to the file leaves the old content.
func TestWriteFileAtomicFunc(t *testing.T) {
	full := false
	// fresh returns a filesystem holding /d/f = "old", whose writes fail
	// with ENOSPC while full is set.
	fresh := func() (*vfs.MemFS, vfs.FS) {
		mem := vfs.NewMemFS()
		fs := vfs.Inject(mem, func(op vfs.Op, path string) error {
			if full && op == vfs.OpWrite {
				return syscall.ENOSPC
			}
			return nil
		})
		if err := vfs.MkdirAllDurable(fs, "/d"); err != nil {
			t.Fatal(err)
		}
		if err := vfs.WriteFileAtomic(fs, "/d/f", []byte("old")); err != nil {
			t.Fatal(err)
		}
		return mem, fs
	}
	mem, fs := fresh()
	piece := strings.Repeat("x", 300<<10)
	err := vfs.WriteFileAtomicFunc(fs, "/d/f", func(w io.Writer) error {
		for range 5 {
			if _, err := io.WriteString(w, piece); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, mem.CrashClone(), "/d/f"); got != strings.Repeat(piece, 5) {
		t.Fatalf("after a crash: %d bytes, want %d", len(got), 5*len(piece))
	}

	mem, fs = fresh() // the crash stopped the other
	boom := errors.New("boom")
	err = vfs.WriteFileAtomicFunc(fs, "/d/f", func(w io.Writer) error {
		io.WriteString(w, "new")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("write func failing: %v, want %v", err, boom)
	}
	full = true
	err = vfs.WriteFileAtomicFunc(fs, "/d/f", func(w io.Writer) error {
		_, err := io.WriteString(w, "new")
		return err
	})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("flush on a full disk: %v, want ENOSPC", err)
	}
	if got := read(t, mem, "/d/f"); got != "old" {
		t.Fatalf("after failed writes: %q, want the old content", got)
	}
}
