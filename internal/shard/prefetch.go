package shard

import (
	"sync/atomic"
	"time"

	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

// Read-ahead for catch-up reads. A consumer reading from disk fetches one
// response at a time: without help, each fetch waits for its batches to
// come off the device, then the device idles while the response is sent
// and the next fetch arrives. When a read had to go to disk, the shard asks
// the kernel (posix_fadvise WILLNEED) to start reading the batches that
// follow, up to prefetchAhead bytes past the reader (shared among the
// shards reading from disk), so that the next fetches find them in the
// page cache. The kernel's own read-ahead cannot
// do this as well: the shard's batches lie between other shards' frames in
// the log, and it sees only the file.

const (
	// prefetchAhead is how far past a disk read the shard asks for.
	prefetchAhead = 32 << 20
	// prefetchGap: two batches closer than this in the same file are
	// asked for in one range (the bytes between are other frames).
	prefetchGap = 256 << 10
)

// diskReaders counts the shards reading from disk. prefetchAhead is
// shared among them: the page cache the read-ahead fills is the machine's,
// and a consumer of many shards moves through all of them at once (1,000
// shards each asking for 32 MiB ahead asked for more than memory holds, and
// the device read what was evicted before it was consumed).
var diskReaders readerCount

// readerCount counts distinct shards per second.
type readerCount struct {
	second    atomic.Int64 // the second being counted
	now, prev atomic.Int64 // shards counted in it, and in the second before
}

// note counts the shard whose last counted second is *seen in second sec,
// once per second, and returns how many shards read from disk lately
// (this second or the one before, at least 1). The count is approximate
// where seconds turn over: it sizes a hint.
func (c *readerCount) note(seen *atomic.Int64, sec int64) int64 {
	if old := c.second.Load(); old != sec && c.second.CompareAndSwap(old, sec) {
		prev := int64(0)
		if old == sec-1 {
			prev = c.now.Load()
		}
		c.prev.Store(prev)
		c.now.Store(0)
	}
	if seen.Swap(sec) != sec {
		c.now.Add(1)
	}
	return max(c.now.Load(), c.prev.Load(), 1)
}

// willNeeder is what a Log implements to take read-ahead hints.
type willNeeder interface {
	WillNeed(pos wal.Position, n int64)
}

// prefetch asks for the batches after a disk read that ended before next,
// in the background; at most one such request runs per shard.
func (s *Shard) prefetch(next Offset) {
	if !s.prefetching.CompareAndSwap(false, true) {
		return
	}
	window := prefetchAhead / diskReaders.note(&s.diskReadSecond, time.Now().Unix())
	go func() {
		defer s.prefetching.Store(false)
		for _, r := range s.prefetchRanges(next, window) {
			s.willNeed(r)
		}
	}()
}

// prefetchRanges returns the file ranges holding the uncached batches from
// next on, up to window bytes of batches past next, less those
// already asked for, and records them as asked for. The window of a
// reader moving forward always reaches the mark (it was set by the same
// reader's window further back); when it ends short of it, another reader
// (or a rewind) moved the mark, and it restarts at next.
func (s *Shard) prefetchRanges(next Offset, window int64) []Location {
	s.mu.RLock()
	defer s.mu.RUnlock()
	first := s.findLocked(next)
	asked := Offset(s.prefetchedTo.Load())
	for range 2 {
		var out []Location
		var ahead int64
		to, reached := asked, false
		var prev Entry // the last entry looked at
		looked := false
		for i, e := range s.idx.from(first) {
			if ahead >= window {
				break
			}
			prev, looked = e, true
			ahead += int64(e.Loc.Size)
			if e.Base < asked {
				continue
			}
			reached = true
			to = e.Last + 1
			if s.dataLocked(i) != nil {
				continue
			}
			out = appendRange(out, e.Loc)
		}
		if !reached && looked && prev.Last+1 < asked {
			asked = next // the mark is another reader's
			continue
		}
		if to > asked {
			s.prefetchedTo.Store(int64(to))
		}
		return out
	}
	return nil
}

// appendRange adds loc to ranges, into the last range when loc lies in the
// same file less than prefetchGap after it.
func appendRange(ranges []Location, loc Location) []Location {
	if n := len(ranges); n > 0 {
		last := &ranges[n-1]
		end := last.Pos + wal.Position(last.Size)
		if last.Seg == loc.Seg && loc.Pos >= end && loc.Pos-end < prefetchGap {
			last.Size = int32(loc.Pos + wal.Position(loc.Size) - last.Pos)
			return ranges
		}
	}
	return append(ranges, loc)
}

// hintReads asks for the batches of pick that are not cached before the
// first is read, when they lie in several ranges apart: read one after
// another, each would wait for the device in turn (a consumer of many
// shards reads each shard's batches from places far apart in the log);
// asked for together, the device serves them in parallel while the reads
// wait in order. One range is left to the kernel's own read-ahead, which
// follows a sequential read: a hint would cost a system call and gain
// nothing.
func (s *Shard) hintReads(pick []ref) {
	var ranges []Location
	for _, e := range pick {
		if e.data == nil {
			ranges = appendRange(ranges, e.Loc)
		}
	}
	if len(ranges) < 2 {
		return
	}
	for _, r := range ranges {
		s.willNeed(r)
	}
}

// willNeed passes one range's hint to the file that holds it.
func (s *Shard) willNeed(loc Location) {
	if loc.Seg == InWAL {
		if w, ok := s.log.(willNeeder); ok {
			w.WillNeed(loc.Pos, int64(loc.Size))
		}
		return
	}
	if f := s.readableSeg(loc.Seg); f != nil {
		vfs.WillNeed(f, int64(loc.Pos), int64(loc.Size))
	}
}
