package shard

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/braidtest/pagecache"
	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

// catchUpShard appends n batches of one record of value bytes each (every
// batch's value its own) to one shard on a log of 16 MiB segments in a
// directory of its own, tail cache off, and returns the shard, its log and
// each batch's bytes as the log holds them, dropped from the page cache.
// With moved, the batches are moved out of the log into 16 MiB shard
// segment files first (as compaction and the mover leave them).
func catchUpShard(t *testing.T, n, value int, moved bool) (*Shard, *recordingLog, [][]byte) {
	t.Helper()
	dir := t.TempDir()
	pagecache.SkipOnTmpfs(t, dir)
	w, err := wal.Open(wal.Options{Dir: dir, SegmentBytes: 16 << 20}, 0, func(wal.Position, wal.Kind, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	log := &recordingLog{WAL: w}
	s := New(Key{Stream: 1}, log, 0, nil, t.TempDir())
	t.Cleanup(func() { // a failed test's chunks are not the next test's
		s.ahead.mu.Lock()
		s.ahead.resetLocked()
		s.ahead.mu.Unlock()
	})
	v := make([]byte, value)
	var end wal.Position
	for i := range n {
		for j := range v {
			v[j] = byte(i + j/251)
		}
		end = appendBatch(t, s, seedValueBatch(v, "k")).End
	}
	if err := w.WaitDurable(context.Background(), end); err != nil {
		t.Fatal(err)
	}
	batches := make([][]byte, len(entriesOf(s)))
	for i, e := range entriesOf(s) {
		batches[i] = make([]byte, e.Loc.Size)
		if err := w.ReadAt(batches[i], e.Loc.Pos); err != nil {
			t.Fatal(err)
		}
	}
	if moved {
		if _, err := s.MoveOut(w.Written(), 16<<20, nil); err != nil {
			t.Fatal(err)
		}
		if e := s.idx.last(); e.Loc.Seg == InWAL {
			t.Fatal("the batches are still in the log after moving them out")
		}
	}
	w.DontNeed(0, int64(w.Written()))
	var cached, pages int64
	for _, r := range fileRanges(s) {
		if r.seg != InWAL {
			vfs.DontNeed(s.readableSeg(r.seg), r.start, r.end-r.start)
		}
		c, p, _ := s.pageCached(r)
		cached, pages = cached+c, pages+p
	}
	if 4*cached > pages {
		t.Skipf("%d of %d pages of the shard's files still cached after dropping them: this filesystem keeps them", cached, pages)
	}
	return s, log, batches
}

// fileRanges returns the range each file holds of s's batches.
func fileRanges(s *Shard) []readRun {
	var out []readRun
	for _, e := range entriesOf(s) {
		end := int64(e.Loc.Pos) + int64(e.Loc.Size)
		if n := len(out); n > 0 && out[n-1].seg == e.Loc.Seg {
			out[n-1].end = end
			continue
		}
		out = append(out, readRun{seg: e.Loc.Seg, start: int64(e.Loc.Pos), end: end})
	}
	return out
}

// cachedPages counts the pages of s's files' ranges in the page cache.
func cachedPages(s *Shard) (cached, pages int64) {
	for _, r := range fileRanges(s) {
		c, p, _ := s.pageCached(r)
		cached, pages = cached+c, pages+p
	}
	return cached, pages
}

// readChecked reads s from offset from to its end, maxBytes at a time, and
// checks every batch against batches.
func readChecked(t *testing.T, s *Shard, batches [][]byte, from Offset, maxBytes int) {
	t.Helper()
	hw := s.HighWatermark()
	for from < hw {
		out, next, err := s.read(nil, nil, from, hw, hw, maxBytes, true)
		if err != nil {
			t.Fatalf("read at %d: %v", from, err)
		}
		if next <= from {
			t.Fatalf("read at %d moved to %d", from, next)
		}
		if want := bytes.Join(batches[from:next], nil); !bytes.Equal(out, want) {
			t.Fatalf("read at %d: batches %d-%d differ from the log's", from, from, next-1)
		}
		from = next
	}
}

// readDirect reads s from offset from to its end in 1 MiB reads, checking
// every batch (readChecked), and wants all of it but the first read's
// 1 MiB from direct read-ahead.
func readDirect(t *testing.T, s *Shard, batches [][]byte, from Offset) {
	t.Helper()
	direct := ReadDirectBytes()
	readChecked(t, s, batches, from, 1<<20)
	var want int64
	for _, b := range batches[from:] {
		want += int64(len(b))
	}
	if got := ReadDirectBytes() - direct; got < want-1<<20 {
		t.Fatalf("%d of the %d bytes from offset %d came from direct read-ahead, want all but the first read's", got, want, from)
	}
}

// waitAheadFreed waits for every chunk buffer to be given back.
func waitAheadFreed(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for aheadHeld.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("chunk buffers of %d bytes still held after the reads", aheadHeld.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDirectReadAhead: a reader catching up on one shard from the start,
// cold, takes its batches from direct read-ahead: the same bytes, read
// past the page cache, and the chunks given back at the end.
func TestDirectReadAhead(t *testing.T) {
	for _, moved := range []bool{false, true} {
		name := "log"
		if moved {
			name = "segment files"
		}
		t.Run(name, func(t *testing.T) {
			s, log, batches := catchUpShard(t, 512, 128<<10, moved) // 64 MiB, 4 files
			// Also across the files' boundaries.
			readDirect(t, s, batches, 0)
			// Only the first read (and the kernel's read-ahead behind
			// it) went through the page cache.
			if c, pages := cachedPages(s); 4*c > pages {
				t.Fatalf("%d of %d pages of the shard's files in the page cache after the read", c, pages)
			}
			waitAheadFreed(t)

			// A second reader from the start, and one rewinding
			// half-way: the same bytes again.
			log.DontNeed(0, int64(log.Written()))
			readChecked(t, s, batches, 0, 3<<20)
			readChecked(t, s, batches, 100, 1<<20)
			readChecked(t, s, batches, 7, 512<<10)
			waitAheadFreed(t)
		})
	}
}

// TestDirectReadAheadTwoReaders: two readers of one shard, one far behind
// the other, take turns: each gets its own batches, whichever way they
// come, and the chunks are given back once both are done.
func TestDirectReadAheadTwoReaders(t *testing.T) {
	s, _, batches := catchUpShard(t, 384, 128<<10, false)
	hw := s.HighWatermark()
	a, b := Offset(0), Offset(200)
	for a < hw || b < hw {
		for _, from := range []*Offset{&a, &b} {
			if *from >= hw {
				continue
			}
			out, next, err := s.read(nil, nil, *from, hw, hw, 1<<20, true)
			if err != nil {
				t.Fatal(err)
			}
			if want := bytes.Join(batches[*from:next], nil); !bytes.Equal(out, want) {
				t.Fatalf("read at %d: batches %d-%d differ from the log's", *from, *from, next-1)
			}
			*from = next
		}
	}
	waitAheadFreed(t)
}

// TestNoDirectReadAheadForScatteredBatches: a consumer of many shards,
// whose batches lie between each other's in the log, reads through the
// page cache as before.
func TestNoDirectReadAheadForScatteredBatches(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		rounds, batch, maxBytes int
	}{
		// 8 shards' 64 KiB batches: each shard's 512 KiB apart.
		{"close", 64, 64 << 10, 256 << 10},
		// 1.25 MiB batches, each shard's 10 MiB apart (more than a
		// chunk), read one at a time: a read of one batch is as dense
		// as can be, the batches it would read ahead are not.
		{"far apart", 8, 5 << 18, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pagecache.SkipOnTmpfs(t, dir)
			shards, logs := interleavedIn(t, dir, 8, tc.rounds, tc.batch)
			coldLog(t, dir, logs[0])
			direct := ReadDirectBytes()
			for _, s := range shards {
				hw := s.HighWatermark()
				for from := Offset(0); from < hw; {
					_, next, err := s.read(nil, nil, from, hw, hw, tc.maxBytes, true)
					if err != nil || next <= from {
						t.Fatalf("read at %d: next %d, %v", from, next, err)
					}
					from = next
				}
			}
			if got := ReadDirectBytes() - direct; got != 0 {
				t.Fatalf("%d bytes of scattered batches came from direct read-ahead", got)
			}
			waitAheadFreed(t)
		})
	}
}

// withoutDirectReadAhead leaves direct read-ahead no memory for the rest
// of t, as when other readers hold it all: reads go through the page cache.
func withoutDirectReadAhead(t *testing.T) {
	old := aheadBudget
	aheadBudget = 0
	t.Cleanup(func() { aheadBudget = old })
}

// TestDirectReadAheadFollowsAJump: a reader that jumps past the chunks
// read ahead for it (a seek forward) gets new ones where it reads now, at
// once, instead of reading through the page cache until the old ones
// have been idle for aheadIdle.
func TestDirectReadAheadFollowsAJump(t *testing.T) {
	s, _, batches := catchUpShard(t, 512, 128<<10, false)
	hw := s.HighWatermark()
	if _, _, err := s.read(nil, nil, 0, hw, hw, 1<<20, true); err != nil {
		t.Fatal(err)
	}
	s.ahead.mu.Lock()
	planned := s.ahead.next
	s.ahead.mu.Unlock()
	if planned <= 0 || planned+10 >= hw {
		t.Fatalf("read-ahead planned to offset %d of %d", planned, hw)
	}
	readDirect(t, s, batches, planned+10)
	waitAheadFreed(t)
}

// TestDirectReadAheadPastTheKernelsReadAhead: the pages the kernel read
// ahead of a cold read's own (up to read_ahead_kb, 8 MiB on this
// project's machines, and as much again asynchronously) do not keep the
// reader on the page cache's way: the first chunks are read direct all
// the same.
func TestDirectReadAheadPastTheKernelsReadAhead(t *testing.T) {
	s, log, batches := catchUpShard(t, 256, 128<<10, false) // 32 MiB
	// The first read takes batches 0-6 (1 MiB); as the kernel would,
	// the next 16 MiB come into the page cache with it (asked for exactly:
	// reads would start the kernel's own read-ahead past them).
	ahead := span(s, 7, 135)
	for _, half := range []Location{span(s, 7, 70), span(s, 71, 135)} {
		log.WAL.WillNeed(half.Pos, int64(half.Size)) // a call reads at most read_ahead_kb
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, pages, ok := log.Cached(ahead.Pos, int64(ahead.Size))
		if !ok {
			t.Skip("the page cache cannot be asked here (cachestat)")
		}
		if 10*c >= 9*pages {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pages cached 5s after asking for them", c, pages)
		}
		time.Sleep(time.Millisecond)
	}
	if rest := span(s, 136, 255); func() bool { c, _, _ := log.Cached(rest.Pos, int64(rest.Size)); return c > 0 }() {
		t.Skip("the page cache read ahead past what was asked for")
	}
	readDirect(t, s, batches, 0)
	waitAheadFreed(t)
}

// TestDirectReadAheadTakesIdleChunks: chunks a reader left (it stopped
// reading) hold the budget until they have been idle for aheadIdle; then
// another shard's cold reader takes them.
func TestDirectReadAheadTakesIdleChunks(t *testing.T) {
	old := aheadBudget
	aheadBudget = aheadChunks * aheadBufBytes // one reader's worth
	t.Cleanup(func() { aheadBudget = old })
	a, _, _ := catchUpShard(t, 384, 128<<10, false)
	b, _, _ := catchUpShard(t, 384, 128<<10, false)
	c, _, batchesC := catchUpShard(t, 384, 128<<10, false)
	read := func(s *Shard) {
		hw := s.HighWatermark()
		if _, _, err := s.read(nil, nil, 0, hw, hw, 1<<20, true); err != nil {
			t.Fatal(err)
		}
	}
	read(a) // and stops: its chunks hold the whole budget
	if held := aheadHeld.Load(); held != aheadBudget {
		t.Fatalf("one reader's chunks hold %d bytes, want the budget, %d", held, aheadBudget)
	}
	read(b) // at once: no room
	if b.ahead.mu.Lock(); len(b.ahead.chunks) != 0 {
		t.Fatalf("a second reader got %d chunks with the budget in use", len(b.ahead.chunks))
	}
	b.ahead.mu.Unlock()

	time.Sleep(aheadIdle + 100*time.Millisecond)
	readDirect(t, c, batchesC, 0)
	if a.ahead.mu.Lock(); len(a.ahead.chunks) != 0 {
		t.Fatalf("the idle reader still has %d chunks", len(a.ahead.chunks))
	}
	a.ahead.mu.Unlock()
	waitAheadFreed(t)
}

// TestPlanChunkJudgesTheGaps: a chunk of one batch is dense only if the
// shard's batches around it are close: the last batch of a shard whose
// batches lie apart is not worth a chunk, nor is one whose next batch is
// far; the last batch of a shard written alone is.
func TestPlanChunkJudgesTheGaps(t *testing.T) {
	pagecache.SkipOnTmpfs(t, t.TempDir())
	shards, _ := interleaved(t, 8, 4, 64<<10)
	s := shards[0]
	last := s.idx.last().Last
	if c := s.planChunk(last, false); c != nil {
		t.Fatalf("the last of a shard's scattered batches planned as a chunk [%d,%d)", c.pos, c.end)
	}
	if c := s.planChunk(last-1, false); c != nil {
		t.Fatalf("scattered batches planned as a chunk [%d,%d)", c.pos, c.end)
	}
	alone, _, _ := catchUpShard(t, 8, 64<<10, false)
	if c := alone.planChunk(entriesOf(alone)[7].Last, false); c == nil {
		t.Fatal("the last batch of a shard written alone was not planned")
	}
}
