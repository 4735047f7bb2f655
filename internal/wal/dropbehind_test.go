package wal

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/braidtest/pagecache"
)

// cachedIn returns how many of the whole pages the log's bytes in
// [from, to) lie in are in the page cache, segment by segment.
func cachedIn(t *testing.T, w *WAL, from, to Position) (in, pages int) {
	t.Helper()
	const page = 4096
	segs := w.SegmentStarts()
	for i, s := range segs {
		end := to
		if i+1 < len(segs) {
			end = min(end, segs[i+1])
		}
		a := (int64(max(from, s)-s) + page - 1) &^ (page - 1)
		b := int64(end-s) &^ (page - 1)
		if a >= b {
			continue
		}
		n, p := pagecache.Resident(t, filepath.Join(w.opts.Dir, SegmentName(s)), a, b-a)
		in, pages = in+n, pages+p
	}
	return in, pages
}

// TestDropBehind writes 24 MiB through a log that keeps 4 MiB in the page
// cache: the pages of older segments leave the cache once durable, the
// most recent ones stay, and everything reads back (from the device).
func TestDropBehind(t *testing.T) {
	dir := t.TempDir()
	pagecache.SkipOnTmpfs(t, dir)
	const window, seg = 4 << 20, 2 << 20
	w, _ := replayAll(t, dir, 0, Options{SegmentBytes: seg, PageCacheBytes: window})
	defer w.Close()
	w.Start()
	body := bytes.Repeat([]byte("braid drop-behind "), 64<<10/18)
	var (
		end    Position
		starts []Position
	)
	for range 24 << 20 / len(body) {
		start, e, err := w.Append(1, body)
		if err != nil {
			t.Fatal(err)
		}
		starts, end = append(starts, start), e
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.WaitDurable(ctx, end); err != nil {
		t.Fatal(err)
	}
	// The log older than the window, a step (a quarter of it) and a
	// folio across the last step's end must leave the cache; the dropper
	// runs behind the flusher.
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, pages := cachedIn(t, w, 0, end-window-window/4-dropAlign)
		if pages < 4096 {
			t.Fatalf("only %d pages older than the window: the test wrote too little", pages)
		}
		if in == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d pages older than the window are still in the page cache 10s after they were durable", in, pages)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The dropper leaves the window alone: the most recent pages written
	// stay (this machine is not short of memory for a few MiB).
	if in, pages := cachedIn(t, w, end-window/2, end); in < pages/2 {
		t.Fatalf("only %d of the window's %d most recent pages are in the page cache: the dropper dropped inside the window", in, pages)
	}
	// Dropped pages read back (from the device): every frame replays.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, got := replayAll(t, dir, 0, Options{SegmentBytes: seg})
	defer w2.Close()
	if len(got) != len(starts) {
		t.Fatalf("replayed %d frames, want %d", len(got), len(starts))
	}
	for i, f := range got {
		if f.pos != starts[i] || !bytes.Equal(f.body, body) {
			t.Fatalf("frame %d at %d differs (want at %d)", i, f.pos, starts[i])
		}
	}
}

// TestSegmentsInMatchesEverySegment: segmentsIn, which starts at the
// segment holding from, hands out each segment's part of a range exactly
// as a walk over every segment would, for ranges before, across, inside
// and past the segments.
func TestSegmentsInMatchesEverySegment(t *testing.T) {
	w, _ := replayAll(t, t.TempDir(), 0, Options{SegmentBytes: 64 << 10})
	defer w.Close()
	w.Start()
	body := bytes.Repeat([]byte("s"), 10_000)
	var end Position
	for range 100 {
		_, e, err := w.Append(1, body)
		if err != nil {
			t.Fatal(err)
		}
		end = e
		// Durable one by one: segments roll between writes.
		if err := w.WaitDurable(context.Background(), end); err != nil {
			t.Fatal(err)
		}
	}
	starts := w.SegmentStarts()
	if len(starts) < 10 {
		t.Fatalf("%d segments, want 10 or more", len(starts))
	}
	type part struct{ seg, start, end Position }
	for from := Position(0); from <= end+100; from += 7919 {
		for _, to := range []Position{from, from + 1, from + 50_000, from + 300_000, end + 10} {
			var got, want []part
			w.segmentsIn(from, to, func(seg *segment, s, e Position) { got = append(got, part{seg.start, s, e}) })
			for i, s := range starts {
				e := to
				if i+1 < len(starts) {
					e = min(e, starts[i+1])
				}
				if a := max(from, s); a < e {
					want = append(want, part{s, a, e})
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("segmentsIn(%d, %d) = %v, want %v", from, to, got, want)
			}
		}
	}
}
