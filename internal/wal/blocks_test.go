package wal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/braidstream/braid/internal/vfs"
)

// TestBlockWritesSurviveCrashes: group commits end anywhere in a block,
// and each one writes whole blocks again from the last block boundary
// (blocks.go). After power losses at seeded points, every frame that was
// durable replays with its bytes, including after a restart, when the
// last block is read back from the file rather than kept in memory, and
// for group commits larger than the aligned buffer they are copied
// through.
func TestBlockWritesSurviveCrashes(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	fs := vfs.NewMemFS()
	opts := Options{FS: fs, SegmentBytes: 16 << 20, DirectIO: true}
	w, got := replayAll(t, "/wal", 0, opts)
	if len(got) != 0 {
		t.Fatalf("fresh log replayed %d frames", len(got))
	}
	var want []frame
	for round := range 60 {
		n := 1 + rng.IntN(20)
		var end Position
		for range n {
			size := 1 + rng.IntN(9000)
			if round%17 == 5 {
				size = 1 << 20 // five of these make one commit beyond stageBytes
				n = 5
			}
			body := make([]byte, size)
			for i := range body {
				body[i] = byte(rng.Uint32())
			}
			kind := Kind(1 + rng.IntN(3))
			start, e, err := w.Append(kind, body)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, frame{start, kind, body})
			end = e
		}
		if err := w.WaitDurable(context.Background(), end); err != nil {
			t.Fatal(err)
		}
		// The last block is padded with zeros, as unwritten space reads.
		seg := w.active()
		off := int64(end - seg.start)
		pad := make([]byte, (off+blockSize-1)&^(blockSize-1)-off)
		if _, err := seg.f.ReadAt(pad, off); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if !allZero(pad) {
			t.Fatalf("round %d: the %d bytes past the log's end in its last block are not zeros", round, len(pad))
		}
		if round%6 != 5 {
			continue
		}
		clone := fs.CrashClone()
		w.Close()
		fs = clone
		opts.FS = fs
		w, got = replayAll(t, "/wal", 0, opts)
		if len(got) != len(want) {
			t.Fatalf("round %d: replayed %d frames after a power loss, want %d", round, len(got), len(want))
		}
		for i := range want {
			if got[i].pos != want[i].pos || got[i].kind != want[i].kind || !bytes.Equal(got[i].body, want[i].body) {
				t.Fatalf("round %d: frame %d at %d differs after a power loss (%d bytes, want %d at %d)",
					round, i, got[i].pos, len(got[i].body), len(want[i].body), want[i].pos)
			}
		}
	}
	w.Close()
}

// directDir returns a test directory on a filesystem that takes O_DIRECT,
// or skips the test.
func directDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	probe, err := vfs.OpenDirect(vfs.Default, filepath.Join(dir, "probe"), os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, vfs.ErrDirectUnsupported) {
		t.Skipf("the test directory's filesystem refuses O_DIRECT: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	return dir
}

// TestDirectWritesSkipThePageCache: on a filesystem that takes O_DIRECT,
// the active segment is written through a direct handle and its bytes do
// not enter the page cache (mincore), while the same writes without
// DirectIO do; both replay the same frames.
func TestDirectWritesSkipThePageCache(t *testing.T) {
	dir := directDir(t)

	resident := func(direct bool) (pages, of int) {
		d := filepath.Join(dir, map[bool]string{true: "direct", false: "buffered"}[direct])
		w, _ := replayAll(t, d, 0, Options{SegmentBytes: 8 << 20, DirectIO: direct})
		body := bytes.Repeat([]byte{0xb5}, 64<<10-3)
		var end Position
		for i := range 32 {
			_, e, err := w.Append(1, body)
			if err != nil {
				t.Fatal(err)
			}
			end = e
			if i%4 == 3 {
				if err := w.WaitDurable(context.Background(), end); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := w.active().direct != nil; got != direct {
			t.Fatalf("DirectIO %v: the active segment has a direct handle: %v", direct, got)
		}
		path := w.active().f.Name()
		pages, of = residentPages(t, path, int64(end))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w, got := replayAll(t, d, 0, Options{SegmentBytes: 8 << 20})
		defer w.Close()
		if len(got) != 32 || !bytes.Equal(got[31].body, body) {
			t.Fatalf("DirectIO %v: replayed %d frames", direct, len(got))
		}
		return pages, of
	}
	if n, of := resident(true); n > 0 {
		t.Errorf("direct writes left %d of %d pages in the page cache", n, of)
	}
	if n, of := resident(false); n < of/2 {
		t.Logf("control: buffered writes left only %d of %d pages resident (memory pressure?)", n, of)
	}
}

// residentPages counts the pages of path's first size bytes that are in
// the page cache.
func residentPages(t *testing.T, path string, size int64) (resident, pages int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	pageSize := os.Getpagesize()
	vec := make([]byte, (len(m)+pageSize-1)/pageSize)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	for _, v := range vec {
		resident += int(v & 1)
	}
	return resident, len(vec)
}

// TestDirectPrewrite: with DirectIO, a spare's zeros are written past the
// page cache too.
func TestDirectPrewrite(t *testing.T) {
	dir := directDir(t)
	const seg = 1 << 20
	w, _ := replayAll(t, dir, 0, Options{SegmentBytes: seg, Prewrite: true, DirectIO: true})
	defer w.Close()
	w.Start()
	spare := waitSpare(t, w)
	if n, of := residentPages(t, spare, seg); n > 0 {
		t.Fatalf("pre-writing left %d of the spare's %d pages in the page cache", n, of)
	}
}
