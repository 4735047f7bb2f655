package bench

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/vfs"
)

func TestDisk(t *testing.T) {
	dir := t.TempDir()
	var progress strings.Builder
	res, err := Disk(context.Background(), vfs.Default, dir, 4*DiskChunk, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != 4*DiskChunk || res.Dir != dir {
		t.Fatalf("result %+v: want %d bytes in %s", res, 4*DiskChunk, dir)
	}
	for name, pass := range map[string][2]float64{
		"fresh":     {res.FreshSeconds, res.FreshMBPerSec},
		"overwrite": {res.OverwriteSeconds, res.OverwriteMBPerSec},
		"read":      {res.ColdReadSeconds, res.ColdReadMBPerSec},
	} {
		if pass[0] <= 0 || pass[1] <= 0 {
			t.Errorf("%s pass: %.6fs, %.1f MB/s; want both positive", name, pass[0], pass[1])
		}
		// MB/s is 10^6 bytes per second of the timed pass.
		if want := float64(res.Bytes) / 1e6 / pass[0]; pass[1] < want*0.999 || pass[1] > want*1.001 {
			t.Errorf("%s pass: %.3f MB/s, want %.3f", name, pass[1], want)
		}
	}
	if !strings.Contains(progress.String(), "overwrite") || !strings.Contains(progress.String(), "read back") {
		t.Errorf("progress %q: want a line per pass", progress.String())
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("files left behind: %v", left)
	}
}

func TestDiskFsyncsEveryWrite(t *testing.T) {
	// The figure means "durable": every 1 MiB write is followed by a
	// datasync. Count them on a filesystem that records operations.
	fs := &countingFS{FS: vfs.Default}
	if _, err := Disk(context.Background(), fs, t.TempDir(), 3*DiskChunk, nil); err != nil {
		t.Fatal(err)
	}
	if fs.writes != 6 || fs.datasyncs != 6 || fs.preallocs != 1 {
		t.Fatalf("%d writes, %d datasyncs, %d preallocations; want 6, 6, 1 (two passes of 3 MiB)", fs.writes, fs.datasyncs, fs.preallocs)
	}
	if fs.read != 3*DiskChunk {
		t.Fatalf("the read pass read %d bytes, want the whole file, %d", fs.read, 3*DiskChunk)
	}
}

func TestDiskRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/f"
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir string
		size      int64
		want      string
	}{
		{"zero", dir, 0, "multiple of 1 MiB"},
		{"not whole MiB", dir, DiskChunk + 1, "multiple of 1 MiB"},
		{"missing dir", dir + "/nope", DiskChunk, "no such file"},
		{"file not dir", file, DiskChunk, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Disk(context.Background(), vfs.Default, tc.dir, tc.size, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Fatalf("bad input changed the directory: %v", left)
	}
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"1048576", 1 << 20, false},
		{"1GiB", 1 << 30, false},
		{"256MiB", 256 << 20, false},
		{"4KiB", 4096, false},
		{"10GB", 10_000_000_000, false},
		{"1.5GB", 1_500_000_000, false},
		{"2 MB", 2_000_000, false},
		{"100B", 100, false},
		{"", 0, true},
		{"GiB", 0, true},
		{"-1MiB", 0, true},
		{"1XB", 0, true},
		{"1e30TB", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseByteSize(tc.in)
			switch {
			case tc.bad && err == nil:
				t.Fatalf("parsed as %d, want an error", got)
			case !tc.bad && err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

type countingFS struct {
	vfs.FS
	writes, datasyncs, preallocs int
	read                         int64
}

func (c *countingFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, fs: c}, nil
}

type countingFile struct {
	vfs.File
	fs *countingFS
}

func (f *countingFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.writes++
	return f.File.WriteAt(p, off)
}

func (f *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.read += int64(n)
	return n, err
}

func (f *countingFile) Datasync() error {
	f.fs.datasyncs++
	return f.File.Datasync()
}

func (f *countingFile) Preallocate(off, n int64) error {
	f.fs.preallocs++
	return f.File.Preallocate(off, n)
}

// TestGroupCommitCountsStallsPerRecord: the group-commit pass keeps its
// schedule through a stall of the device, so every record that arrived
// during it counts the wait, and none is left out.
func TestGroupCommitCountsStallsPerRecord(t *testing.T) {
	const stall = 200 * time.Millisecond
	var syncs atomic.Int32
	fs := vfs.Inject(vfs.NewMemFS(), func(op vfs.Op, _ string) error {
		// The tenth sync is a commit a few hundred ms into the run (the
		// first is the scratch file's, written beforehand).
		if op == vfs.OpSync && syncs.Add(1) == 10 {
			time.Sleep(stall)
		}
		return nil
	})
	if err := fs.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	// 1 KiB records at 1,000 per second for a second.
	s, err := groupCommitPass(context.Background(), fs, "/d", 16<<20, 1024, 1024e3, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s.Count != 1000 {
		t.Fatalf("%d records committed, want the 1000 that arrived", s.Count)
	}
	// About 200 records arrived during the stall, 50 of them in its first
	// quarter: they waited at least 150 ms.
	if s.P99 < stall*3/4 || s.Max < stall*9/10 {
		t.Fatalf("p99 %s, max %s: a %s stall must count for every record behind it", s.P99, s.Max, stall)
	}
	if s.P50 > stall/4 {
		t.Fatalf("p50 %s: most records never met the stall", s.P50)
	}
}
