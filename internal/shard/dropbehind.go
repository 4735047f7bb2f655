package shard

import (
	"sync/atomic"

	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

// Drop-behind for catch-up reads. A consumer reading a shard from its
// start reads every byte once, from the device, through the page cache:
// left to the kernel, the cache grows by every byte read, until memory is
// full, evicting whatever else it held (the log's recent data, other
// shards' read-ahead). On this project's virtual machines that growth is
// also the read's main cost: each page the cache grows into is memory the
// host took back, and touching it again costs about 3 s of system time
// per GB (docs/design/storage.md, "The log's page cache"); a 10 GB
// catch-up read of one shard ran at 330 MB/s and used 21.6 s of the
// node's CPU, against 584 MB/s and 10.3 s when what it had read left the
// cache behind it, whose pages the next reads then reused.
//
// So a shard remembers the runs of batches it read from disk and, once its
// reads are readDropLag past them, tells the kernel it will not need them
// (posix_fadvise DONTNEED), the way a database reads a large table
// through a small ring of buffers instead of through all of its cache. It
// is confined to sequential reads: batches closer than readDropGap in one
// file make a run, a read that continues the shard's last run extends it,
// and a run that ends shorter than readDropMin is forgotten, left to the
// kernel; so a consumer of many shards, whose batches lie between each
// other's in the log, drops nothing, and never another shard's pages.
// What a hint drops is only clean pages: a reader coming back for them (a
// second consumer more than readDropLag behind, a rewind) reads them from
// the device again, as it would have once the cache was full.

// readDropLag is how much of what a shard read from disk stays in the page
// cache behind its latest read: a second consumer that close behind the
// first still finds it there. (A variable for tests.)
var readDropLag int64 = 32 << 20

const (
	// readDropMin: a run that ends shorter than this (the next read
	// does not continue it) is forgotten.
	readDropMin = 1 << 20
	// readDropGap: two batches closer than this in one file are one run
	// (the bytes between are frame headers and unit markers, or a small
	// frame of another shard's, read again from the device if needed).
	readDropGap = 4 << 10
	// readDropAlign is the largest folio the page cache makes of a file's
	// pages. The kernel drops only the folios wholly inside a range, so
	// each drop after a run's first starts this far back, to take the
	// folio across the last drop's end.
	readDropAlign = 2 << 20
)

// readDropped counts the bytes shards asked the kernel to drop.
var readDropped atomic.Int64

// ReadDroppedBytes returns the bytes of batches read from disk that shards
// have since dropped from the page cache behind their readers.
func ReadDroppedBytes() int64 { return readDropped.Load() }

// readRun is a run of batches read from disk: [start, end) of file seg
// (a log position for InWAL), of which [start, dropped) has been dropped.
type readRun struct {
	seg                 int64
	start, dropped, end int64
}

// continuedBy says whether a batch at start of file seg continues r: it
// lies in the same file, less than readDropGap after r's end.
func (r readRun) continuedBy(seg, start int64) bool {
	return r.seg == seg && start >= r.end && start-r.end < readDropGap
}

// cacheStater is what a Log implements to say what of it is in the page
// cache.
type cacheStater interface {
	Cached(pos wal.Position, n int64) (cached, pages int64, ok bool)
}

// readIsCold says whether the batches of pick not in the tail cache come
// from the device: a read that continues the shard's last run from disk
// is what that run was; a read that starts a run is cold unless at least
// half the pages of its first run's batches are in the page cache
// already. A reader that finds them there (behind the tail cache but not
// behind memory, or behind another consumer) reads what the page cache
// holds for others too, and dropping it behind this one would send the
// next reader to the device. Asked once per run, before any read-ahead: the shard's own
// read-ahead and the kernel's fill the pages ahead of a cold reader, so
// asking again later would always find them. Where the page cache cannot
// be asked (no cachestat), a run counts as cold.
func (s *Shard) readIsCold(pick []ref) bool {
	// The first run decides: scattered runs (a consumer of many shards)
	// are forgotten whatever the answer, so one question per read is
	// enough.
	var runs []readRun
	for _, e := range pick {
		if e.data != nil {
			continue
		}
		if runs = appendRun(runs, e.Loc); len(runs) > 1 {
			break
		}
	}
	if len(runs) == 0 {
		return false
	}
	r := runs[0]
	s.behindMu.Lock()
	last, cold := s.lastRead, s.lastCold
	s.behindMu.Unlock()
	if last.end > 0 && last.continuedBy(r.seg, r.start) {
		return cold
	}
	cached, pages, ok := s.pageCached(r)
	return !ok || 2*cached < pages
}

// pageCached says how many pages of [r.start, r.end) of its file are in
// the page cache, and how many pages that is.
func (s *Shard) pageCached(r readRun) (cached, pages int64, ok bool) {
	if r.seg == InWAL {
		if c, is := s.log.(cacheStater); is {
			return c.Cached(wal.Position(r.start), r.end-r.start)
		}
		return 0, 0, false
	}
	if f := s.readableSeg(r.seg); f != nil {
		return vfs.Cached(f, r.start, r.end-r.start)
	}
	return 0, 0, false
}

// dropBehind remembers the runs of pick read from disk (those without
// cached data) and drops from the page cache what lies more than
// readDropLag behind them. next is the offset after the last batch read:
// pick's batches from next on were not read (a failed read). cold is
// readIsCold's answer for pick, asked before it was read: a warm read is
// only noted as the shard's last run.
func (s *Shard) dropBehind(pick []ref, next Offset, cold bool) {
	var runs []readRun
	for _, e := range pick {
		if e.Base >= next {
			break
		}
		if e.data == nil {
			runs = appendRun(runs, e.Loc)
		}
	}
	if len(runs) == 0 {
		return
	}
	var drops []readRun
	var dropped int64
	s.behindMu.Lock()
	defer func() {
		s.behindMu.Unlock()
		for _, d := range drops {
			s.dontNeed(d)
		}
		readDropped.Add(dropped)
	}()
	s.lastRead, s.lastCold = runs[len(runs)-1], cold
	if !cold {
		return
	}
	for _, r := range runs {
		if n := len(s.behind); n > 0 {
			last := &s.behind[n-1]
			if last.continuedBy(r.seg, r.start) {
				s.behindBytes += r.end - last.end
				last.end = r.end
				continue
			}
			if last.end-last.start < readDropMin {
				// A short run that nothing continued: not a
				// sequential reader's, left to the kernel.
				s.behindBytes -= last.end - last.dropped
				s.behind = s.behind[:n-1]
			}
		}
		s.behind = append(s.behind, r)
		s.behindBytes += r.end - r.start
	}
	for s.behindBytes > readDropLag {
		q := &s.behind[0]
		n := min(q.end-q.dropped, s.behindBytes-readDropLag)
		from := max(q.start, q.dropped&^(readDropAlign-1))
		drops = append(drops, readRun{seg: q.seg, start: from, end: q.dropped + n})
		q.dropped += n
		s.behindBytes -= n
		dropped += n
		if q.dropped == q.end {
			s.behind = s.behind[1:]
		}
	}
}

// appendRun adds loc to runs, into the last run when loc lies in the same
// file less than readDropGap after it.
func appendRun(runs []readRun, loc Location) []readRun {
	start := int64(loc.Pos)
	end := start + int64(loc.Size)
	if n := len(runs); n > 0 {
		last := &runs[n-1]
		if last.continuedBy(loc.Seg, start) {
			last.end = end
			return runs
		}
	}
	return append(runs, readRun{seg: loc.Seg, start: start, dropped: start, end: end})
}

// dontNeeder is what a Log implements to drop ranges from the page cache.
type dontNeeder interface {
	DontNeed(pos wal.Position, n int64)
}

// dontNeed drops [r.start, r.end) of its file from the page cache.
func (s *Shard) dontNeed(r readRun) {
	if r.seg == InWAL {
		if d, ok := s.log.(dontNeeder); ok {
			d.DontNeed(wal.Position(r.start), r.end-r.start)
		}
		return
	}
	if f := s.readableSeg(r.seg); f != nil {
		vfs.DontNeed(f, r.start, r.end-r.start)
	}
}
