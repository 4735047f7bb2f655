package shard

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// indexOf builds a shard whose index holds batches of one record each, of
// the given sizes, laid out one after another in the log with gap bytes
// (other frames) between them.
func indexOf(sizes []int32, gap wal.Position) *Shard {
	s := New(Key{Stream: 1}, nil, 0, nil, "")
	pos := wal.Position(1000)
	for i, n := range sizes {
		s.entries = append(s.entries, Entry{Base: Offset(i), Last: Offset(i), Loc: Location{Seg: InWAL, Pos: pos, Size: n}})
		pos += wal.Position(n) + gap
	}
	return s
}

// span is the log range from entry i's start to entry j's end.
func span(s *Shard, i, j int) Location {
	a, b := s.entries[i].Loc, s.entries[j].Loc
	return Location{Seg: a.Seg, Pos: a.Pos, Size: int32(b.Pos + wal.Position(b.Size) - a.Pos)}
}

// TestPrefetchRanges: read-ahead asks for prefetchAhead bytes of batches
// past the reader, each batch once, in merged ranges, and starts over for a
// reader behind what was asked for.
func TestPrefetchRanges(t *testing.T) {
	const mib = 1 << 20
	sizes := make([]int32, 20)
	for i := range sizes {
		sizes[i] = 4 * mib
	}
	s := indexOf(sizes, 64)

	// 32 MiB past offset 0: batches 0-7, close enough to be one range.
	if got, want := s.prefetchRanges(0), []Location{span(s, 0, 7)}; !slices.Equal(got, want) {
		t.Fatalf("first read-ahead = %v, want %v", got, want)
	}
	// The reader moved two batches on: only what is new in its window.
	if got, want := s.prefetchRanges(2), []Location{span(s, 8, 9)}; !slices.Equal(got, want) {
		t.Fatalf("read-ahead after two batches = %v, want %v", got, want)
	}
	// Nothing new within the window.
	if got := s.prefetchRanges(2); len(got) != 0 {
		t.Fatalf("read-ahead asked twice for %v", got)
	}
	// A reader starting over from offset 0 (or another one behind) finds
	// the mark beyond its window, and gets its own read-ahead.
	s.prefetchRanges(12)
	if got, want := s.prefetchRanges(0), []Location{span(s, 0, 7)}; !slices.Equal(got, want) {
		t.Fatalf("read-ahead of a reader behind the mark = %v, want %v", got, want)
	}

	// Cached batches are not asked for, and split the range; so do a gap
	// wider than prefetchGap and a batch in another file.
	s = indexOf([]int32{mib, mib, mib, mib, mib, mib}, 64)
	s.entries[1].data = make([]byte, mib)
	s.entries[4].Loc.Pos += prefetchGap
	s.entries[5].Loc = Location{Seg: 7, Pos: 0, Size: mib}
	want := []Location{s.entries[0].Loc, span(s, 2, 3), s.entries[4].Loc, s.entries[5].Loc}
	if got := s.prefetchRanges(0); !slices.Equal(got, want) {
		t.Fatalf("read-ahead = %v, want %v", got, want)
	}
}

// recordingLog is the real log, recording the read-ahead hints it takes.
type recordingLog struct {
	*wal.WAL
	mu    sync.Mutex
	hints []Location
}

func (l *recordingLog) WillNeed(pos wal.Position, n int64) {
	l.mu.Lock()
	l.hints = append(l.hints, Location{Seg: InWAL, Pos: pos, Size: int32(n)})
	l.mu.Unlock()
	l.WAL.WillNeed(pos, n)
}

// TestReadFromDiskPrefetches: a read that goes to the log asks for the
// batches after it; one served from the tail cache does not.
func TestReadFromDiskPrefetches(t *testing.T) {
	w, err := wal.Open(wal.Options{Dir: t.TempDir()}, 0, func(wal.Position, wal.Kind, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	log := &recordingLog{WAL: w}
	s := New(Key{Stream: 1}, log, 1<<20, nil, t.TempDir())
	var r AppendResult
	for range 10 {
		r = appendKeys(t, s, "k")
	}
	if err := w.WaitDurable(context.Background(), r.End); err != nil {
		t.Fatal(err)
	}
	hints := func() []Location {
		deadline := time.Now().Add(5 * time.Second)
		for s.prefetching.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		log.mu.Lock()
		defer log.mu.Unlock()
		return slices.Clone(log.hints)
	}

	if _, err := s.Read(0, 1, true); err != nil {
		t.Fatal(err)
	}
	if got := hints(); len(got) != 0 {
		t.Fatalf("a read from the tail cache asked the log for %v", got)
	}

	s.SetCacheLimit(0) // evicts every batch: reads go to the log
	if _, err := s.Read(0, 1, true); err != nil {
		t.Fatal(err)
	}
	got := hints()
	if want := []Location{span(s, 1, 9)}; !slices.Equal(got, want) {
		t.Fatalf("read-ahead after a read from the log = %v, want %v (batches 1-9)", got, want)
	}
}
