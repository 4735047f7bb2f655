package shard

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/braidtest/pagecache"
	"github.com/braidstream/braid/internal/wal"
)

// indexOf builds a shard whose index holds batches of one record each, of
// the given sizes, laid out one after another in the log with gap bytes
// (other frames) between them.
func indexOf(sizes []int32, gap wal.Position) *Shard {
	s := New(Key{Stream: 1}, nil, 0, nil, "")
	pos := wal.Position(1000)
	for i, n := range sizes {
		s.addLocked(Entry{Base: Offset(i), Last: Offset(i), Loc: Location{Seg: InWAL, Pos: pos, Size: n}}, nil)
		pos += wal.Position(n) + gap
	}
	return s
}

// refsOf returns s's entries [i, j) as a read takes them.
func refsOf(s *Shard, i, j int) []ref {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.refsLocked(i, j)
}

// span is the log range from entry i's start to entry j's end.
func span(s *Shard, i, j int) Location {
	a, b := entriesOf(s)[i].Loc, entriesOf(s)[j].Loc
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
	if got, want := s.prefetchRanges(0, prefetchAhead), []Location{span(s, 0, 7)}; !slices.Equal(got, want) {
		t.Fatalf("first read-ahead = %v, want %v", got, want)
	}
	// The reader moved two batches on: only what is new in its window.
	if got, want := s.prefetchRanges(2, prefetchAhead), []Location{span(s, 8, 9)}; !slices.Equal(got, want) {
		t.Fatalf("read-ahead after two batches = %v, want %v", got, want)
	}
	// Nothing new within the window.
	if got := s.prefetchRanges(2, prefetchAhead); len(got) != 0 {
		t.Fatalf("read-ahead asked twice for %v", got)
	}
	// A reader starting over from offset 0 (or another one behind) finds
	// the mark beyond its window, and gets its own read-ahead.
	s.prefetchRanges(12, prefetchAhead)
	if got, want := s.prefetchRanges(0, prefetchAhead), []Location{span(s, 0, 7)}; !slices.Equal(got, want) {
		t.Fatalf("read-ahead of a reader behind the mark = %v, want %v", got, want)
	}

	// A smaller window (read-ahead shared among shards) asks for less.
	s.prefetchedTo.Store(0)
	if got, want := s.prefetchRanges(0, 8*mib), []Location{span(s, 0, 1)}; !slices.Equal(got, want) {
		t.Fatalf("read-ahead in an 8 MiB window = %v, want %v", got, want)
	}

	// Cached batches are not asked for, and split the range; so do a gap
	// wider than prefetchGap and a batch in another file.
	s = indexOf([]int32{mib, mib, mib, mib, mib, mib}, 64)
	// Entry 1 is the first the tail cache holds.
	s.cacheFrom, s.tail = 1, [][]byte{make([]byte, mib), nil, nil, nil, nil}
	s.idx.update(4, 5, func(e *Entry) { e.Loc.Pos += prefetchGap })
	s.idx.update(5, 6, func(e *Entry) { e.Loc = Location{Seg: 7, Pos: 0, Size: mib} })
	want := []Location{entriesOf(s)[0].Loc, span(s, 2, 3), entriesOf(s)[4].Loc, entriesOf(s)[5].Loc}
	if got := s.prefetchRanges(0, prefetchAhead); !slices.Equal(got, want) {
		t.Fatalf("read-ahead = %v, want %v", got, want)
	}
}

// recordingLog is the real log, recording the read-ahead hints it takes
// and, in events, the hints and reads in the order they came.
type recordingLog struct {
	*wal.WAL
	mu     sync.Mutex
	hints  []Location
	events []string
	drops  []Location // dropbehind_test.go
}

func (l *recordingLog) WillNeed(pos wal.Position, n int64) {
	l.mu.Lock()
	l.hints = append(l.hints, Location{Seg: InWAL, Pos: pos, Size: int32(n)})
	l.events = append(l.events, fmt.Sprintf("hint %d", pos))
	l.mu.Unlock()
	l.WAL.WillNeed(pos, n)
}

func (l *recordingLog) ReadAt(p []byte, pos wal.Position) error {
	l.mu.Lock()
	l.events = append(l.events, fmt.Sprintf("read %d", pos))
	l.mu.Unlock()
	return l.WAL.ReadAt(p, pos)
}

// settledHints waits for s's read-ahead to end and returns the hints l
// took.
func (l *recordingLog) settledHints(t *testing.T, s *Shard) []Location {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.prefetching.Load() {
		if time.Now().After(deadline) {
			t.Fatal("read-ahead still running after 5s")
		}
		time.Sleep(time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.hints)
}

// hintedBytes is the bytes of settledHints.
func (l *recordingLog) hintedBytes(t *testing.T, s *Shard) int64 {
	t.Helper()
	var n int64
	for _, h := range l.settledHints(t, s) {
		n += int64(h.Size)
	}
	return n
}

// interleaved appends rounds batches of value bytes to each of n shards
// on one log, one shard after another in each round, as producers to many
// shards do, and returns the shards (tail cache off: reads go to the log)
// with their recording logs.
func interleaved(t *testing.T, n, rounds, value int) ([]*Shard, []*recordingLog) {
	t.Helper()
	return interleavedIn(t, t.TempDir(), n, rounds, value)
}

// interleavedIn is interleaved with the log in dir.
func interleavedIn(t *testing.T, dir string, n, rounds, value int) ([]*Shard, []*recordingLog) {
	t.Helper()
	w, err := wal.Open(wal.Options{Dir: dir}, 0, func(wal.Position, wal.Kind, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	shards, logs := make([]*Shard, n), make([]*recordingLog, n)
	for i := range shards {
		logs[i] = &recordingLog{WAL: w}
		shards[i] = New(Key{Stream: uint64(i + 1)}, logs[i], 0, nil, t.TempDir())
	}
	b := seedValueBatch(make([]byte, value), "k")
	var end wal.Position
	for range rounds {
		for _, s := range shards {
			end = appendBatch(t, s, b).End
		}
	}
	if err := w.WaitDurable(context.Background(), end); err != nil {
		t.Fatal(err)
	}
	return shards, logs
}

// logFile returns the path of the log's one segment file in dir.
func logFile(t *testing.T, dir string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(files) != 1 {
		t.Fatalf("want the log in one segment file, have %v", files)
	}
	return files[0]
}

// coldLog drops what l's log in dir holds from the page cache, as after a
// restart or once memory filled, and returns the log's file and its
// written end; it skips the test where the filesystem keeps the pages.
func coldLog(t *testing.T, dir string, l *recordingLog) (file string, end int64) {
	t.Helper()
	file, end = logFile(t, dir), int64(l.Written())
	l.WAL.DontNeed(0, end)
	if in, _ := pagecache.Resident(t, file, 0, end&^4095); in > 0 {
		t.Skipf("%d pages of the log still cached after dropping them: this filesystem keeps them", in)
	}
	return file, end
}

// TestReadHintsScatteredBatches: a read of batches that lie apart in the
// log (between other shards' frames), not in the page cache, asks for all
// of them before it reads the first, so the device serves them together
// instead of one after another.
func TestReadHintsScatteredBatches(t *testing.T) {
	const batch = 64 << 10 // other shards' batches between two: > prefetchGap
	dir := t.TempDir()
	pagecache.SkipOnTmpfs(t, dir)
	shards, logs := interleavedIn(t, dir, 8, 4, batch)
	s, l := shards[0], logs[0]
	coldLog(t, dir, l)
	if _, err := s.Read(0, 1<<30, true); err != nil {
		t.Fatal(err)
	}
	l.hintedBytes(t, s)
	l.mu.Lock()
	defer l.mu.Unlock()
	var want []string
	for _, e := range entriesOf(s) {
		want = append(want, fmt.Sprintf("hint %d", e.Loc.Pos))
	}
	for _, e := range entriesOf(s) {
		want = append(want, fmt.Sprintf("read %d", e.Loc.Pos))
	}
	if !slices.Equal(l.events, want) {
		t.Fatalf("hints and reads = %v, want %v", l.events, want)
	}
}

// TestReadHintsBehindACachedBatch: the same cold read, its first batch
// in the page cache already (the shard's read-ahead asks for a reader of
// many shards' next batch or two): the batches after it are asked for all
// the same. Hints once went only with reads whose first batch was cold,
// and a consumer of 1,000 partitions reading 29 GB back (more than memory)
// fell from 398.8 to 199.0 MB/s, its batches read one after another.
func TestReadHintsBehindACachedBatch(t *testing.T) {
	dir := t.TempDir()
	pagecache.SkipOnTmpfs(t, dir)
	shards, logs := interleavedIn(t, dir, 8, 4, 64<<10)
	s, l := shards[0], logs[0]
	coldLog(t, dir, l)
	first := entriesOf(s)[0].Loc
	if err := l.WAL.ReadAt(make([]byte, first.Size), first.Pos); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(0, 1<<30, true); err != nil {
		t.Fatal(err)
	}
	l.settledHints(t, s)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range entriesOf(s)[1:] {
		if !slices.Contains(l.events, fmt.Sprintf("hint %d", e.Loc.Pos)) {
			t.Fatalf("batch at %d, not in the page cache, was not asked for: %v", e.Loc.Pos, l.events)
		}
	}
}

// TestReadAheadSharedAmongShards: shards reading from disk together share
// one read-ahead window, so a consumer of many shards does not ask the
// page cache for prefetchAhead bytes per shard.
func TestReadAheadSharedAmongShards(t *testing.T) {
	const n, batch = 64, 16 << 10
	shards, logs := interleaved(t, n, 64, batch) // 1 MiB per shard
	// The reads count in whole seconds: start them at the beginning of
	// one, so that (64 reads taking well under a second) they all count
	// in the same second.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	first := time.Now().Unix()
	turned := false
	for i, s := range shards {
		if _, err := s.Read(0, 1, true); err != nil {
			t.Fatal(err)
		}
		got := logs[i].hintedBytes(t, s)
		if got == 0 {
			t.Fatalf("shard %d asked for no read-ahead", i)
		}
		// The shards counted so far share the window: i+1 of them, or
		// i when the second turns over at this read (the count of the
		// second before is kept, and this shard is not in it yet). On a
		// machine so slow that the second turned over at an earlier
		// read k, the count is max(k, i-k+1): at least half of i+1.
		// One batch past the window is the most it overshoots.
		turned = turned || time.Now().Unix() != first
		readers := max(i, 1)
		if turned {
			readers = max((i+2)/2, 1)
		}
		share := prefetchAhead / int64(readers)
		if limit := share + batch + 256; got > limit {
			t.Fatalf("shard %d of %d reading asked for %d bytes ahead, want at most %d (%d shared by %d)", i, i+1, got, limit, prefetchAhead, readers)
		}
	}
}

// TestReaderCount: distinct shards per second, the second before kept.
func TestReaderCount(t *testing.T) {
	var c readerCount
	var a, b atomic.Int64
	for _, step := range []struct {
		seen *atomic.Int64
		sec  int64
		want int64
	}{
		{&a, 100, 1},
		{&b, 100, 2},
		{&a, 100, 2}, // counted once per second
		{&a, 101, 2}, // the second before still counts
		{&b, 101, 2},
		{&a, 105, 1}, // seconds without readers in between: forgotten
	} {
		if got := c.note(step.seen, step.sec); got != step.want {
			t.Fatalf("note at %d = %d, want %d", step.sec, got, step.want)
		}
	}
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
	hints := func() []Location { return log.settledHints(t, s) }

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
