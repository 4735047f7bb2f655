package wal

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/braidstream/braid/internal/braidtest/pagecache"
	"github.com/braidstream/braid/internal/vfs"
)

// directLog writes about 300 KiB of frames of random sizes and bytes into
// 64 KiB segments and returns the log, durable, and the log's bytes as
// ReadAt gives them, segment by segment.
func directLog(t *testing.T, opts Options) (*WAL, []byte) {
	t.Helper()
	opts.SegmentBytes = 64 << 10
	w, err := Open(opts, 0, func(Position, Kind, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	var end Position
	for end < 300<<10 {
		body := make([]byte, 1+rng.IntN(9000))
		for i := range body {
			body[i] = byte(rng.Uint32())
		}
		if _, end, err = w.Append(Kind(1), body); err != nil {
			t.Fatal(err)
		}
		// One frame per write: the log rolls segments between writes.
		if err := w.WaitDurable(context.Background(), end); err != nil {
			t.Fatal(err)
		}
	}
	starts := w.SegmentStarts()
	if len(starts) < 4 {
		t.Fatalf("want the log in several segments, have %v", starts)
	}
	all := make([]byte, w.Written())
	for i, s := range starts {
		e := w.Written()
		if i+1 < len(starts) {
			e = starts[i+1]
		}
		if err := w.ReadAt(all[s:e], s); err != nil {
			t.Fatal(err)
		}
	}
	return w, all
}

// TestReadDirect: direct reads return the log's bytes, from any position,
// across segment boundaries, and leave them out of the page cache.
func TestReadDirect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   func(t *testing.T) Options
		direct bool
	}{
		{"os", func(t *testing.T) Options {
			dir := t.TempDir()
			pagecache.SkipOnTmpfs(t, dir)
			return Options{Dir: dir}
		}, true},
		{"memfs", func(t *testing.T) Options { return Options{Dir: "/log", FS: vfs.NewMemFS()} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, all := directLog(t, tc.opts(t))
			starts := w.SegmentStarts()
			var before int64
			if tc.direct {
				w.DontNeed(0, int64(len(all)))
				before, _, _ = w.Cached(0, int64(len(all))) // a page being written may stay
			}
			scratch := vfs.AlignedBuffer(96<<10 + DirectReadPad)
			for _, r := range []struct{ pos, n int }{
				{0, 1},
				{1, 4095},
				{4095, 2},
				{int(starts[1]) - 10, 20},              // across one boundary
				{int(starts[1]) - 5000, 64<<10 + 9000}, // across two
				{int(starts[2]) + 1, 96 << 10},
				{len(all) - 3000, 3000}, // to the written end
			} {
				got, err := w.ReadDirect(scratch, Position(r.pos), r.n)
				if err != nil {
					t.Fatalf("ReadDirect(%d, %d): %v", r.pos, r.n, err)
				}
				if want := all[r.pos : r.pos+r.n]; !bytes.Equal(got, want) {
					t.Fatalf("ReadDirect(%d, %d) differs from the log's bytes", r.pos, r.n)
				}
			}
			if tc.direct {
				if c, pages, ok := w.Cached(0, int64(len(all))); ok && c > before {
					t.Fatalf("direct reads left %d of %d pages in the page cache (%d before)", c, pages, before)
				}
			}

			if _, err := w.ReadDirect(scratch, Position(len(all)-10), 11); err == nil {
				t.Fatal("a read past the written end succeeded")
			}
			if _, err := w.ReadDirect(scratch[:100], 0, 100); err == nil {
				t.Fatal("a read into a buffer without room succeeded")
			}
			if _, err := w.RemoveBefore(starts[2]); err != nil {
				t.Fatal(err)
			}
			if _, err := w.ReadDirect(scratch, starts[1], 10); err == nil {
				t.Fatal("a read of a removed segment succeeded")
			}
		})
	}
}

// TestReadRange: reads through the page cache return the log's bytes from
// any position, across segment boundaries, and refuse what is not there.
func TestReadRange(t *testing.T) {
	w, all := directLog(t, Options{Dir: "/log", FS: vfs.NewMemFS()})
	starts := w.SegmentStarts()
	for _, r := range []struct{ pos, n int }{
		{0, 1},
		{4095, 2},
		{int(starts[1]) - 10, 20},              // across one boundary
		{int(starts[1]) - 5000, 64<<10 + 9000}, // across two
		{0, len(all)},                          // all of it
	} {
		got := make([]byte, r.n)
		if err := w.ReadRange(got, Position(r.pos)); err != nil {
			t.Fatalf("ReadRange(%d, %d): %v", r.pos, r.n, err)
		}
		if !bytes.Equal(got, all[r.pos:r.pos+r.n]) {
			t.Fatalf("ReadRange(%d, %d) differs from the log's bytes", r.pos, r.n)
		}
	}
	if err := w.ReadRange(make([]byte, 11), Position(len(all)-10)); err == nil {
		t.Fatal("a read past the written end succeeded")
	}
	if _, err := w.RemoveBefore(starts[2]); err != nil {
		t.Fatal(err)
	}
	if err := w.ReadRange(make([]byte, 10), starts[1]); err == nil {
		t.Fatal("a read of a removed segment succeeded")
	}
}
