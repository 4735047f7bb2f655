package shard

import (
	"sync"
	"testing"

	"github.com/braidstream/braid/internal/braidtest/pagecache"
	"github.com/braidstream/braid/internal/wal"
)

// dropLog is a log that only records what it is asked to drop.
type dropLog struct {
	Log
	mu    sync.Mutex
	drops []readRun
}

func (l *dropLog) DontNeed(pos wal.Position, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drops = append(l.drops, readRun{seg: InWAL, start: int64(pos), end: int64(pos) + n})
}

func (l *recordingLog) DontNeed(pos wal.Position, n int64) {
	l.mu.Lock()
	l.drops = append(l.drops, Location{Seg: InWAL, Pos: pos, Size: int32(n)})
	l.mu.Unlock()
	l.WAL.DontNeed(pos, n)
}

// withDropLag sets readDropLag for one test.
func withDropLag(t *testing.T, n int64) {
	old := readDropLag
	readDropLag = n
	t.Cleanup(func() { readDropLag = old })
}

// TestDropBehindRanges: a sequential reader's runs join into one, and what
// lies more than readDropLag behind its latest read is dropped, each drop
// after the first starting a folio back; nothing before the run is asked.
func TestDropBehindRanges(t *testing.T) {
	const mib = 1 << 20
	withDropLag(t, 8*mib)
	sizes := make([]int32, 40)
	for i := range sizes {
		sizes[i] = mib
	}
	s := indexOf(sizes, 64) // frame headers between batches
	log := &dropLog{}
	s.log = log
	runStart := int64(entriesOf(s)[0].Loc.Pos)
	dropped := runStart // the end of the last drop
	for i := 0; i < len(entriesOf(s)); i += 3 {
		pick := refsOf(s, i, min(i+3, len(entriesOf(s))))
		last := pick[len(pick)-1]
		s.dropBehind(pick, last.Last+1, true)
		readEnd := int64(last.Loc.Pos) + int64(last.Loc.Size)
		wantEnd := max(readEnd-readDropLag, runStart)
		log.mu.Lock()
		for _, d := range log.drops {
			if d.start < runStart || d.end <= d.start {
				t.Fatalf("after reading to %d: drop [%d,%d) outside the run from %d", readEnd, d.start, d.end, runStart)
			}
			if d.start > dropped || d.end <= dropped {
				t.Fatalf("after reading to %d: drop [%d,%d) leaves [%d,%d) behind", readEnd, d.start, d.end, dropped, d.start)
			}
			if want := max(runStart, dropped&^(readDropAlign-1)); d.start != want {
				t.Fatalf("drop [%d,%d) after one that ended at %d: want it to start at %d (the run's start, or the folio under that end)", d.start, d.end, dropped, want)
			}
			dropped = d.end
		}
		log.drops = nil
		log.mu.Unlock()
		if readEnd-runStart <= readDropLag && dropped != runStart {
			t.Fatalf("dropped to %d with %d bytes read, fewer than the lag", dropped, readEnd-runStart)
		}
		if readEnd-runStart > readDropLag && dropped != wantEnd {
			t.Fatalf("after reading to %d: dropped to %d, want %d (the lag behind)", readEnd, dropped, wantEnd)
		}
	}
	if len(s.behind) != 1 {
		t.Fatalf("a sequential reader's runs: %d remembered, want 1", len(s.behind))
	}
}

// TestDropBehindLeavesScatteredReads: batches that lie apart (a consumer
// of many shards) and a short read on its own are never dropped, however
// much is read.
func TestDropBehindLeavesScatteredReads(t *testing.T) {
	withDropLag(t, 1<<20)
	sizes := make([]int32, 400)
	for i := range sizes {
		sizes[i] = 16 << 10
	}
	s := indexOf(sizes, 1<<20) // other shards' batches between
	log := &dropLog{}
	s.log = log
	for i := 0; i < len(entriesOf(s)); i += 10 {
		pick := refsOf(s, i, i+10)
		s.dropBehind(pick, pick[len(pick)-1].Last+1, true)
	}
	if n := len(log.drops); n != 0 {
		t.Fatalf("scattered reads asked to drop %d ranges, first [%d,%d)", n, log.drops[0].start, log.drops[0].end)
	}
	if len(s.behind) > 1 {
		t.Fatalf("scattered reads: %d runs remembered, want at most the last", len(s.behind))
	}
}

// TestCatchUpReadLeavesThePageCache reads a shard from its start out of a
// real log on disk, after its pages left the cache: what lies more than
// readDropLag behind the reader leaves the page cache again, and the last
// readDropLag stays.
func TestCatchUpReadLeavesThePageCache(t *testing.T) {
	withoutDirectReadAhead(t) // the page cache's way, as past its budget
	const mib = 1 << 20
	withDropLag(t, 4*mib)
	dir := t.TempDir()
	pagecache.SkipOnTmpfs(t, dir)
	shards, logs := interleavedIn(t, dir, 1, 96, 256<<10) // 24 MiB of one shard alone
	s, log := shards[0], logs[0]
	file, _ := coldLog(t, dir, log)

	readEnd := readAll(t, s, log)
	page := int64(4096)
	behind := (readEnd - readDropLag - 2*readDropAlign) &^ (page - 1)
	if in, _ := pagecache.Resident(t, file, 0, behind); int64(in)*page > 2*readDropAlign {
		t.Fatalf("%d KiB of the first %d KiB the reader passed are still cached, want at most %d KiB (its first folio)",
			int64(in)*page>>10, behind>>10, 2*readDropAlign>>10)
	}
	lagFrom := (readEnd - readDropLag) &^ (page - 1)
	if in, pages := pagecache.Resident(t, file, lagFrom, readEnd-lagFrom); in < pages*3/4 {
		t.Fatalf("%d of the %d pages just behind the reader are cached, want them kept (readDropLag)", in, pages)
	}
}

// TestWarmReadKeepsThePageCache: a reader whose batches are in the page
// cache when it starts (as behind the tail cache, or behind another
// consumer) drops nothing: the next reader finds them there too.
func TestWarmReadKeepsThePageCache(t *testing.T) {
	withoutDirectReadAhead(t) // the page cache's way, as past its budget
	withDropLag(t, 4<<20)
	dir := t.TempDir()
	pagecache.SkipOnTmpfs(t, dir)
	shards, logs := interleavedIn(t, dir, 1, 96, 256<<10) // 24 MiB, cached as written
	s, log := shards[0], logs[0]
	end := int64(log.Written())
	if _, _, ok := log.WAL.Cached(0, end); !ok {
		t.Skip("the page cache cannot be asked here (cachestat)")
	}
	file := logFile(t, dir)
	before, pages := pagecache.Resident(t, file, 0, end&^4095)
	if before < pages*3/4 {
		t.Skipf("only %d of %d pages cached after writing", before, pages)
	}
	readAll(t, s, log)
	if n := len(log.drops); n != 0 {
		t.Fatalf("a read of cached batches asked to drop %d ranges, first %v", n, log.drops[0])
	}
	if in, _ := pagecache.Resident(t, file, 0, end&^4095); in < before {
		t.Fatalf("%d pages cached after the read, %d before", in, before)
	}

	// The same shard read again from disk once its pages are gone is a
	// cold run: it drops behind itself.
	log.WAL.DontNeed(0, end)
	readAll(t, s, log)
	if len(log.drops) == 0 {
		t.Fatal("a cold read after a warm one dropped nothing")
	}
}

// TestInterleavedReadsDropNothing: a shard whose batches lie between
// other shards' in the log, read from disk from its start, asks to drop
// nothing.
func TestInterleavedReadsDropNothing(t *testing.T) {
	withDropLag(t, 1<<20)
	pagecache.SkipOnTmpfs(t, t.TempDir())
	shards, logs := interleaved(t, 8, 80, 64<<10) // 5 MiB a shard
	for _, s := range shards {
		s.SetCacheLimit(0)
	}
	readAll(t, shards[0], logs[0])
	if n := len(logs[0].drops); n != 0 {
		t.Fatalf("reading one of interleaved shards asked to drop %d ranges, first %v", n, logs[0].drops[0])
	}
}

// readAll reads s from its start to its high watermark in 1 MiB reads,
// each one's read-ahead settled before the next, and returns the log
// position after the last batch.
func readAll(t *testing.T, s *Shard, log *recordingLog) int64 {
	t.Helper()
	hw := s.HighWatermark()
	for from := Offset(0); from < hw; {
		data, next, err := s.read(nil, nil, from, hw, hw, 1<<20, true)
		if err != nil || len(data) == 0 || next <= from {
			t.Fatalf("read at %d: %d bytes, next %d, %v", from, len(data), next, err)
		}
		log.settledHints(t, s)
		from = next
	}
	last := s.idx.last().Loc
	return int64(last.Pos) + int64(last.Size)
}
