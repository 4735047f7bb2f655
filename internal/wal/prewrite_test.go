package wal

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitSpare waits until the log holds a pre-written spare and returns its
// path.
func waitSpare(t *testing.T, w *WAL) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		w.segMu.RLock()
		var spare string
		if len(w.spares) > 0 {
			spare = w.spares[len(w.spares)-1]
		}
		w.segMu.RUnlock()
		if spare != "" {
			return spare
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no spare segment was pre-written within 10s")
	return ""
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// TestPrewrite: with Prewrite, a spare segment of durable zeros is ready
// before the log rolls; the roll takes it (the new segment is that file),
// a new spare follows, every frame replays after a reopen, and a spare
// whose writing a crash cut short is removed on open.
func TestPrewrite(t *testing.T) {
	dir := t.TempDir()
	const seg = 1 << 20
	opts := Options{SegmentBytes: seg, Prewrite: true}
	w, _ := replayAll(t, dir, 0, opts)
	w.Start()
	spare := waitSpare(t, w)
	if !strings.HasSuffix(spare, spareSuffix) {
		t.Fatalf("spare %q", spare)
	}
	data, err := os.ReadFile(spare)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != seg || !allZero(data) {
		t.Fatalf("spare holds %d bytes, all zero %v; want %d zero bytes", len(data), allZero(data), seg)
	}
	ino := inode(t, spare)

	// Fill more than one segment: the roll takes the spare.
	var want []frame
	var end Position
	body := bytes.Repeat([]byte{'x'}, 4000)
	for i := 0; end < seg+seg/2; i++ {
		b := append([]byte(fmt.Sprintf("%06d", i)), body...)
		start, e, err := w.Append(Kind(1), b)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, frame{start, 1, b})
		end = e
		if err := w.WaitDurable(context.Background(), end); err != nil {
			t.Fatal(err)
		}
	}
	starts := w.SegmentStarts()
	if len(starts) < 2 {
		t.Fatalf("no roll: segments %v", starts)
	}
	if got := inode(t, filepath.Join(dir, SegmentName(starts[1]))); got != ino {
		t.Fatalf("the rolled-to segment is inode %d, not the pre-written spare %d", got, ino)
	}
	if next := waitSpare(t, w); next == spare {
		t.Fatalf("the used spare %q is still listed", spare)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// A crash while a spare was being written leaves a .prewrite file.
	leftover := filepath.Join(dir, "123"+prewriteSuffix)
	if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, got := replayAll(t, dir, 0, opts)
	defer w.Close()
	if _, err := os.Stat(leftover); err != nil {
		t.Fatalf("Open removed the unfinished spare before Start (a refused start must change nothing): %v", err)
	}
	w.Start()
	if len(got) != len(want) {
		t.Fatalf("replayed %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].pos != want[i].pos || !bytes.Equal(got[i].body, want[i].body) {
			t.Fatalf("frame %d: got pos %d, want %d (or body differs)", i, got[i].pos, want[i].pos)
		}
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("unfinished spare %s not removed on open: %v", leftover, err)
	}
}

// TestPrewriteStopsOnClose: Close stops a spare being written (slowly,
// here) and removes its file; nothing keeps running.
func TestPrewriteStopsOnClose(t *testing.T) {
	dir := t.TempDir()
	// 1 GiB segments at the first spare's pace take seconds to pre-write.
	w, _ := replayAll(t, dir, 0, Options{SegmentBytes: 1 << 30, Prewrite: true})
	w.Start()
	time.Sleep(50 * time.Millisecond)
	began := time.Now()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("Close took %v while a spare was being written", took)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"+prewriteSuffix))
	if len(names) != 0 {
		t.Fatalf("unfinished spares left after Close: %v", names)
	}
	select {
	case <-w.prewrite.done:
	default:
		t.Fatal("the pre-writer still runs after Close")
	}
}
