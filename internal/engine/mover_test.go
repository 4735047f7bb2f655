package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// TestGCCut checks the mover's choice of which head of the closed log to
// free by copying its live batches out.
func TestGCCut(t *testing.T) {
	seg := func(n int) []wal.Position { // n closed segments of 100 bytes
		s := make([]wal.Position, n)
		for i := range s {
			s[i] = wal.Position(1000 + 100*i)
		}
		return s
	}
	for _, c := range []struct {
		name string
		live []int64
		want wal.Position // 0: no move
	}{
		{"all live: a stream with one retention is never copied", []int64{100, 100, 100}, 0},
		{"nothing closed", nil, 0},
		{"nothing live: reclaimed without a move", []int64{0, 0, 0}, 0},
		// The next round frees the third segment: its 3 bytes head the log then.
		{"a little long-lived data pins dead log", []int64{5, 0, 3, 100}, 1200},
		{"dead head skipped, then mostly dead", []int64{0, 10, 10, 100}, 1300},
		{"just over half live does not pay", []int64{51, 51}, 0},
		{"exactly half pays", []int64{50, 50}, 1200},
		{"the cheapest prefix wins over a longer dearer one", []int64{1, 1, 100, 90}, 1200},
		{"equal shares: the longer prefix", []int64{10, 10, 10}, 1300},
		{"a live head is worth copying when dead log follows it", []int64{100, 0, 0, 0}, 1400},
	} {
		got := gcCut(seg(len(c.live)), wal.Position(1000+100*len(c.live)), c.live, maxMovedFraction)
		if got != c.want {
			t.Errorf("%s: live %v: cut %d, want %d", c.name, c.live, got, c.want)
		}
	}
}

// TestMoverCopiesOnlyWhatPays runs the background mover on a real engine:
// log data that is all retained stays in the log (written once), and once
// most of it is deleted, the little that lives on is copied out so the
// dead log is reclaimed, readable before and after a restart.
func TestMoverCopiesOnlyWhatPays(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(Options{Dir: dir, WALSegmentBytes: 64 << 10, CheckpointEvery: time.Hour, RetentionEvery: time.Hour, CleanerEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()
	for _, name := range []string{"big", "small"} {
		if _, err := e.CreateStream(name, 1, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	value := strings.Repeat("x", 1024)
	var want []string
	for i := range 300 {
		produce(t, e, "big", 0, value)
		if i%30 == 0 {
			want = append(want, fmt.Sprint("s", i))
			produce(t, e, "small", 0, want[len(want)-1])
		}
	}
	big, small := e.Stream("big").Shards[0], e.Stream("small").Shards[0]
	segs, bigFrom, smallFrom := len(e.wal.SegmentStarts()), big.OldestPosition(), small.OldestPosition()
	if segs < 4 || bigFrom < 0 || smallFrom < 0 {
		t.Fatalf("%d log segments, oldest positions %d %d", segs, bigFrom, smallFrom)
	}
	time.Sleep(2500 * time.Millisecond) // the mover looks every second
	if big.OldestPosition() != bigFrom || small.OldestPosition() != smallFrom || len(e.wal.SegmentStarts()) < segs {
		t.Fatalf("the mover copied retained data: oldest positions %d %d (were %d %d), %d log segments (were %d)",
			big.OldestPosition(), small.OldestPosition(), bigFrom, smallFrom, len(e.wal.SegmentStarts()), segs)
	}

	_, hw, _ := big.Offsets()
	if _, err := e.DeleteRecords(t.Context(), big, hw); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(e.wal.SegmentStarts()) > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("dead log not reclaimed: %d segments, small's oldest log position %d (was %d)", len(e.wal.SegmentStarts()), small.OldestPosition(), smallFrom)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := readAll(t, e, "small", 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("small after the move: %v, want %v", got, want)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, dir)
	if got := readAll(t, e, "small", 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("small after a restart: %v, want %v", got, want)
	}
}

// TestMoverWeighsOnlyWhenEntriesLeave: weighing the log walks every index
// entry in it, which is everything retained, so the mover does it only
// when an entry may have left (here DeleteRecords), not each time the log
// rolls.
func TestMoverWeighsOnlyWhenEntriesLeave(t *testing.T) {
	e, err := Open(Options{Dir: t.TempDir(), WALSegmentBytes: 64 << 10, CheckpointEvery: time.Hour, RetentionEvery: time.Hour, CleanerEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.CreateStream("s", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("x", 2048)
	segs := len(e.wal.SegmentStarts())
	// The log rolls several times while the mover ticks (once a second).
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		produce(t, e, "s", 0, value)
	}
	if rolled := len(e.wal.SegmentStarts()) - segs; rolled < 4 {
		t.Fatalf("the log rolled %d times, too few to check", rolled)
	}
	if n := e.weighs.Load(); n > 1 {
		t.Fatalf("the mover weighed the log %d times while nothing left the index", n)
	}
	sh := e.Stream("s").Shards[0]
	if _, err := e.DeleteRecords(t.Context(), sh, 10); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.weighs.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the mover did not weigh the log after DeleteRecords")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
