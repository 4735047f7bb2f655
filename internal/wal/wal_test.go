package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type frame struct {
	pos  Position
	kind Kind
	body []byte
}

func replayAll(t testing.TB, dir string, from Position, opts Options) (*WAL, []frame) {
	t.Helper()
	var got []frame
	opts.Dir = dir
	w, err := Open(opts, from, func(pos Position, kind Kind, body []byte) error {
		got = append(got, frame{pos, kind, bytes.Clone(body)})
		return nil
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return w, got
}

func TestAppendReopenReplay(t *testing.T) {
	dir := t.TempDir()
	w, got := replayAll(t, dir, 0, Options{SegmentBytes: 200})
	if len(got) != 0 {
		t.Fatalf("fresh log replayed %d frames", len(got))
	}
	var want []frame
	var end Position
	for i := range 50 {
		body := []byte(fmt.Sprintf("record-%03d", i))
		start, e, err := w.Append(Kind(i%3), body[:4], body[4:])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, frame{start, Kind(i % 3), body})
		end = e
		if i%7 == 0 { // force several flushes so segments roll
			if err := w.WaitDurable(context.Background(), end); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.WaitDurable(context.Background(), end); err != nil {
		t.Fatal(err)
	}
	if len(w.SegmentStarts()) < 2 {
		t.Fatalf("expected rolled segments, have %v", w.SegmentStarts())
	}
	p := make([]byte, len(want[10].body))
	if err := w.ReadAt(p, want[10].pos+headerLen); err != nil || !bytes.Equal(p, want[10].body) {
		t.Fatalf("ReadAt = %q, %v; want %q", p, err, want[10].body)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	w2, got := replayAll(t, dir, 0, Options{SegmentBytes: 200})
	defer w2.Close()
	if len(got) != len(want) {
		t.Fatalf("replayed %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].pos != want[i].pos || got[i].kind != want[i].kind || !bytes.Equal(got[i].body, want[i].body) {
			t.Fatalf("frame %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Replaying from a later frame skips the earlier ones.
	w2.Close()
	w3, got := replayAll(t, dir, want[20].pos, Options{SegmentBytes: 200})
	defer w3.Close()
	if len(got) != 30 || got[0].pos != want[20].pos {
		t.Fatalf("partial replay got %d frames starting %v", len(got), got[0].pos)
	}
	// Appending after reopen continues the positions.
	// Appending after reopen continues the positions, after the new write
	// unit's marker.
	s, _, err := w3.Append(1, []byte("after"))
	if err != nil || s != end+unitLen {
		t.Fatalf("append after reopen at %d (%v), want %d", s, err, end+unitLen)
	}
}

func TestTornTailIsCut(t *testing.T) {
	cases := []struct {
		name   string
		damage func(data []byte) []byte
		keep   int
	}{
		{"truncated body", func(d []byte) []byte { return d[:len(d)-3] }, 2},
		{"truncated header", func(d []byte) []byte { return d[:len(d)-lastFrameLen+4] }, 2},
		{"flipped bit", func(d []byte) []byte { d[len(d)-2] ^= 0x10; return d }, 2},
		{"zero padding", func(d []byte) []byte { return append(d, make([]byte, 100)...) }, 3},
		{"garbage length", func(d []byte) []byte { return append(d, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5) }, 3},
	}
	// Each case damages only the last frame, so it is a torn tail however
	// the three frames fell into write units.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentBytes: 4096}
			w, _ := replayAll(t, dir, 0, opts)
			var end Position
			var starts []Position
			for i := range 3 {
				var s Position
				s, end, _ = w.Append(1, []byte(fmt.Sprintf("frame-%d-payload", i)))
				starts = append(starts, s)
			}
			starts = append(starts, end)
			w.WaitDurable(context.Background(), end)
			w.Close()
			path := filepath.Join(dir, SegmentName(0))
			data, _ := os.ReadFile(path)
			if len(data) != 4096 {
				t.Fatalf("active segment is %d bytes, want it preallocated to 4096", len(data))
			}
			data = data[:end] // what was written; the rest is preallocated zeros
			os.WriteFile(path, tc.damage(bytes.Clone(data)), 0o644)

			w2, got := replayAll(t, dir, 0, opts)
			defer w2.Close()
			if len(got) != tc.keep {
				t.Fatalf("kept %d frames, want %d", len(got), tc.keep)
			}
			after, _ := os.ReadFile(path)
			cut := starts[tc.keep]
			if !bytes.Equal(after[:cut], data[:cut]) || !allZero(after[cut:]) {
				t.Fatalf("after recovery the segment does not hold exactly the %d kept frames followed by zeros", tc.keep)
			}
			// The log goes on after the cut, at the cut.
			s, e, err := w2.Append(1, []byte("new"))
			if err != nil || s != cut+unitLen {
				t.Fatalf("append after cut at %d, %v", s, err)
			}
			if err := w2.WaitDurable(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// lastFrameLen is the size of each "frame-N-payload" frame in TestTornTailIsCut.
const lastFrameLen = headerLen + len("frame-0-payload")

func TestTooLarge(t *testing.T) {
	w, _ := replayAll(t, t.TempDir(), 0, Options{})
	defer w.Close()
	if _, _, err := w.Append(1, make([]byte, MaxFrame)); err == nil {
		t.Fatal("oversized frame accepted")
	}
}

// onlyUnitMarkers reports whether b is a sequence of unit markers, with a
// body or without (the older format).
func onlyUnitMarkers(b []byte) bool {
	for len(b) > 0 {
		if len(b) < headerLen || Kind(b[8]) != kindUnit {
			return false
		}
		n := headerLen - 1 + int(binary.LittleEndian.Uint32(b))
		if n != headerLen && n != unitLen || n > len(b) {
			return false
		}
		b = b[n:]
	}
	return true
}

// FuzzRecover feeds arbitrary bytes to recovery as a segment: it must never
// panic, must only replay frames whose checksum holds, and must leave a log
// that accepts appends at the cut.
func FuzzRecover(f *testing.F) {
	dir := f.TempDir()
	w, _ := replayAll(f, dir, 0, Options{SegmentBytes: 4096})
	_, end, _ := w.Append(2, []byte("hello"))
	_, end2, _ := w.Append(3, []byte("world!"))
	w.WaitDurable(context.Background(), max(end, end2))
	w.Close()
	seed, _ := os.ReadFile(filepath.Join(dir, SegmentName(0)))
	seed = seed[:end2]
	f.Add(seed)
	f.Add(seed[:len(seed)-1])
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, SegmentName(0)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		var n int
		var last Position
		w, err := Open(Options{Dir: dir, SegmentBytes: 4096}, 0, func(pos Position, kind Kind, body []byte) error {
			n++
			last = pos + headerLen + Position(len(body))
			return nil
		})
		after, _ := os.ReadFile(filepath.Join(dir, SegmentName(0)))
		if errors.Is(err, ErrCorrupt) {
			// Damage is refused, and nothing on disk changes.
			if !bytes.Equal(after, data) {
				t.Fatalf("recovery changed a corrupt segment: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer w.Close()
		s, e, err := w.Append(1, []byte("x"))
		cut := s - unitLen // the new write unit's marker starts at the cut
		if err != nil || cut < last || Position(len(data)) < cut || !onlyUnitMarkers(data[last:cut]) {
			t.Fatalf("append at %d (%v), want the cut at %d or after trailing unit markers", s, err, last)
		}
		if Position(len(after)) < cut || !bytes.Equal(after[:cut], data[:cut]) || !allZero(after[cut:]) {
			t.Fatalf("after recovery the segment is not the %d valid bytes followed by zeros", cut)
		}
		if err := w.WaitDurable(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStaleFrameAfterCutNeverReturns: frames A B C, B corrupted, so recovery
// keeps only A. A later, shorter frame D lands where B was; C's bytes must
// not survive behind D to be replayed after the next restart.
func TestStaleFrameAfterCutNeverReturns(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 4096}
	w, _ := replayAll(t, dir, 0, opts)
	w.Append(1, []byte("A-frame"))
	bStart, _, _ := w.Append(1, []byte("B-frame-long-long-long"))
	_, end, _ := w.Append(1, []byte("C-frame"))
	w.WaitDurable(context.Background(), end)
	w.Close()
	path := filepath.Join(dir, SegmentName(0))
	data, _ := os.ReadFile(path)
	data[bStart+headerLen] ^= 0xff
	os.WriteFile(path, data, 0o644)

	w, got := replayAll(t, dir, 0, opts)
	if len(got) != 1 {
		t.Fatalf("kept %d frames, want 1", len(got))
	}
	_, end, _ = w.Append(1, []byte("D"))
	w.WaitDurable(context.Background(), end)
	w.Close()
	w, got = replayAll(t, dir, 0, opts)
	defer w.Close()
	if len(got) != 2 || string(got[1].body) != "D" {
		var bodies []string
		for _, f := range got {
			bodies = append(bodies, string(f.body))
		}
		t.Fatalf("replayed %q, want [A-frame D]", bodies)
	}
}

// TestRecycledSegmentsReplayNothingStale fills segments, reclaims them (they
// become spares), reuses them for new segments, and checks that a reopen
// replays exactly the frames written since, none of the stale ones inside
// the reused files.
func TestRecycledSegmentsReplayNothingStale(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 4096}
	w, _ := replayAll(t, dir, 0, opts)
	var end Position
	body := bytes.Repeat([]byte("old-"), 100)
	for range 250 { // about 25 segments: 16 become spares, the rest trash
		_, end, _ = w.Append(1, body)
		w.WaitDurable(context.Background(), end)
	}
	removed, err := w.RemoveBefore(end)
	if err != nil {
		t.Fatal(err)
	}
	spares, _ := filepath.Glob(filepath.Join(dir, "*"+spareSuffix))
	trash, _ := filepath.Glob(filepath.Join(dir, "*"+trashSuffix))
	// Small trash files go whole, one per call.
	if len(spares) != maxSpares || len(trash) != removed-maxSpares-1 {
		t.Fatalf("%d reclaimed: %d spare and %d trash files, want %d and %d", removed, len(spares), len(trash), maxSpares, removed-maxSpares-1)
	}
	from := end // everything before it was written before the reclaim
	var want []string
	for i := range 30 {
		v := fmt.Sprintf("new-%02d-%s", i, bytes.Repeat([]byte("n"), 300))
		_, end, _ = w.Append(1, []byte(v))
		w.WaitDurable(context.Background(), end)
		want = append(want, v)
	}
	if spares, _ = filepath.Glob(filepath.Join(dir, "*"+spareSuffix)); len(spares) >= maxSpares {
		t.Fatalf("spares were not reused: %d left", len(spares))
	}
	w.Close()
	w, got := replayAll(t, dir, from, opts)
	defer w.Close()
	var bodies []string
	for _, f := range got {
		bodies = append(bodies, string(f.body))
	}
	if fmt.Sprint(bodies[len(bodies)-len(want):]) != fmt.Sprint(want) {
		t.Fatalf("replayed the wrong frames after recycling")
	}
	for _, b := range bodies {
		if strings.HasPrefix(b, "old-") {
			t.Fatalf("a stale frame from a recycled file was replayed")
		}
	}
}
