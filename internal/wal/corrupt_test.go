package wal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// appendUnit appends bodies as one write unit (one flush) and waits for it
// to be durable; it returns each frame's start.
func appendUnit(t *testing.T, w *WAL, bodies ...string) []Position {
	t.Helper()
	return appendUnitWith(t, w, w.appendUnitLocked, bodies...)
}

// appendUnitWith is appendUnit with the unit's marker appended by marker
// (called with w.mu held).
func appendUnitWith(t *testing.T, w *WAL, marker func(), bodies ...string) []Position {
	t.Helper()
	w.mu.Lock()
	for len(w.buf) > 0 { // let the flusher take what is pending
		w.mu.Unlock()
		w.WaitDurable(context.Background(), w.tail)
		w.mu.Lock()
	}
	marker()
	var starts []Position
	for _, b := range bodies {
		starts = append(starts, w.appendLocked(1, [][]byte{[]byte(b)}, 0, 0))
	}
	end := w.tail
	w.mu.Unlock()
	w.flushReq <- struct{}{}
	if err := w.WaitDurable(context.Background(), end); err != nil {
		t.Fatal(err)
	}
	return starts
}

func flip(t *testing.T, path string, at Position) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[at] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

func openErr(dir string, opts Options) error {
	opts.Dir = dir
	w, err := Open(opts, 0, func(Position, Kind, []byte) error { return nil })
	if err == nil {
		w.Close()
	}
	return err
}

// TestCorruptionIsNotEndOfLog: one flipped byte in a frame that later write
// units follow must stop recovery with a CorruptError that names the file
// and position, and must leave every byte on disk as it was.
func TestCorruptionIsNotEndOfLog(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1 << 20}
	w, _ := replayAll(t, dir, 0, opts)
	a := appendUnit(t, w, "unit-1-frame-a", "unit-1-frame-b")
	appendUnit(t, w, "unit-2-frame-a")
	w.Close()
	path := filepath.Join(dir, SegmentName(0))
	damaged := flip(t, path, a[1]+headerLen+2)

	err := openErr(dir, opts)
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open of a log with a damaged durable frame = %v, want a CorruptError", err)
	}
	if ce.Pos != a[1] || ce.Segment != SegmentName(0) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error names %s at %d (%v), want %s at %d", ce.Segment, ce.Pos, err, path, a[1])
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, damaged) {
		t.Fatal("recovery changed the damaged segment")
	}
	// Refused again on the next start: nothing was "fixed" silently.
	if err := openErr(dir, opts); !errors.As(err, &ce) {
		t.Fatalf("second open = %v", err)
	}
}

// TestTornWriteInsideTheLastUnitIsCut: a power loss can persist the pages
// of the last, unsynced write out of order, leaving a bad frame followed by
// valid frames of the same unit. Nothing of that unit was acknowledged, so
// it is a torn tail and is cut.
func TestTornWriteInsideTheLastUnitIsCut(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1 << 20}
	w, _ := replayAll(t, dir, 0, opts)
	appendUnit(t, w, "unit-1")
	b := appendUnit(t, w, "unit-2-frame-a", "unit-2-frame-b", "unit-2-frame-c")
	w.Close()
	flip(t, filepath.Join(dir, SegmentName(0)), b[1]+headerLen+1)
	w, got := replayAll(t, dir, 0, opts)
	defer w.Close()
	var bodies []string
	for _, f := range got {
		bodies = append(bodies, string(f.body))
	}
	if strings.Join(bodies, ",") != "unit-1,unit-2-frame-a" {
		t.Fatalf("replayed %v, want [unit-1 unit-2-frame-a]", bodies)
	}
}

func TestCorruptionInAClosedSegment(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 64}
	w, _ := replayAll(t, dir, 0, opts)
	first := appendUnit(t, w, strings.Repeat("x", 80)) // fills segment 0
	appendUnit(t, w, "in the next segment")
	w.Close()
	if starts := w.SegmentStarts(); len(starts) != 2 {
		t.Fatalf("segments %v, want 2", starts)
	}
	flip(t, filepath.Join(dir, SegmentName(0)), first[0]+headerLen+5)
	var ce *CorruptError
	if err := openErr(dir, opts); !errors.As(err, &ce) || !strings.Contains(ce.Evidence, "closed segment") {
		t.Fatalf("open = %v, want corruption in a closed segment", err)
	}
}

func TestMissingSegmentIsCorruption(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 64}
	w, _ := replayAll(t, dir, 0, opts)
	for range 3 {
		appendUnit(t, w, strings.Repeat("y", 80))
	}
	starts := w.SegmentStarts()
	w.Close()
	if len(starts) < 3 {
		t.Fatalf("segments %v, want 3", starts)
	}
	os.Remove(filepath.Join(dir, SegmentName(starts[1])))
	var ce *CorruptError
	if err := openErr(dir, opts); !errors.As(err, &ce) {
		t.Fatalf("open with a missing segment = %v, want a CorruptError", err)
	}
}

// TestInspectAndCut: the repair path reports what cutting would lose, keeps
// a copy of the damaged file, cuts, and the log then opens with what came
// before the damage.
func TestInspectAndCut(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1 << 20}
	w, _ := replayAll(t, dir, 0, opts)
	appendUnit(t, w, "kept")
	bad := appendUnit(t, w, "damaged", "lost-1")
	appendUnit(t, w, "lost-2", "lost-3")
	w.Close()
	path := filepath.Join(dir, SegmentName(0))
	damaged := flip(t, path, bad[0]+headerLen+1)

	var lost []string
	d, err := Inspect(Options{Dir: dir}, 0, func(pos Position, kind Kind, body []byte) error {
		lost = append(lost, string(body))
		return nil
	})
	if err != nil || d == nil {
		t.Fatalf("Inspect = %v, %v", d, err)
	}
	if d.Pos != bad[0] || strings.Join(lost, ",") != "lost-2,lost-3" || len(d.Segments) != 1 {
		t.Fatalf("Inspect found damage at %d with lost frames %v in %v; want %d, [lost-2 lost-3]", d.Pos, lost, d.Segments, bad[0])
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, damaged) {
		t.Fatal("Inspect changed the segment")
	}
	backup := filepath.Join(t.TempDir(), "backup")
	if err := Cut(Options{Dir: dir}, d, backup); err != nil {
		t.Fatal(err)
	}
	if kept, _ := os.ReadFile(filepath.Join(backup, SegmentName(0))); !bytes.Equal(kept, damaged) {
		t.Fatal("the backup is not the damaged file")
	}
	w, got := replayAll(t, dir, 0, opts)
	defer w.Close()
	if len(got) != 1 || string(got[0].body) != "kept" {
		t.Fatalf("after the cut replayed %d frames", len(got))
	}
	if d, err := Inspect(Options{Dir: dir}, 0, func(Position, Kind, []byte) error { return nil }); d != nil || err != nil {
		t.Fatalf("Inspect after the cut = %v, %v", d, err)
	}
}
