package shard

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

// Direct read-ahead for catch-up readers. A consumer reading a shard from
// far behind reads each byte once; through the page cache, each byte also
// costs a page the cache allocates and later drops (dropbehind.go), and on
// this project's virtual machines that is the read's bound: a 10 GB
// catch-up ran at 537-567 MB/s, about what dd reads through the cache
// (579-715 MB/s), while the device reads 1.0-1.4 GB/s with O_DIRECT.
//
// So once a read of a shard went to the device (cold), and the shard's
// next batches lie together in one file (dense: they fill at least half of
// the range up to its next batch there, within a chunk; in the log, or in
// a shard segment file as compaction and the mover leave them), the shard
// reads the next aheadChunks chunks
// of its batches, aheadChunk bytes of file each, with direct reads into
// buffers of its own, in the background, as the kernel's read-ahead would
// into the page cache. The reads that follow copy their batches from the
// chunks, waiting for a chunk still being read; a chunk the reader has
// passed is given back, and the next is started, so the device works
// while the answer before is sent and taken. A chunk holds one file's
// bytes; batches in the tail cache, or mostly in the page cache already
// (cachestat), end the read-ahead, and the reads go the page cache's way
// (prefetch.go, dropbehind.go) again. A consumer of many shards, whose
// batches lie between each other's in the log, never starts it.
//
// Chunks are found by file and position, which name the same bytes for as
// long as the file holds them (a log position is never reused, nor is a
// segment id, and a segment's bytes never change): a batch moved since
// (compaction, a move into a segment file) is simply not in a chunk. All
// shards' chunks together hold at most aheadBudget bytes of memory; a
// shard's chunks unused for aheadIdle may be taken back for another
// reader.

const (
	// aheadChunk is the file range one direct read covers.
	aheadChunk = 8 << 20
	// aheadChunks is how many chunks a reader keeps ahead: 32 MiB, the
	// page cache read-ahead's prefetchAhead.
	aheadChunks = 4
	// aheadIdle: chunks no read used for this long are another reader's
	// to take.
	aheadIdle = time.Second
	// aheadBufBytes is a chunk buffer's size, with the direct read's
	// alignment room.
	aheadBufBytes = aheadChunk + wal.DirectReadPad
)

// directLog is what a log implements for direct read-ahead of the
// batches in it (*wal.WAL).
type directLog interface {
	ReadDirect(scratch []byte, pos wal.Position, n int) ([]byte, error)
	ReadRange(p []byte, pos wal.Position) error
	Cached(pos wal.Position, n int64) (cached, pages int64, ok bool)
	Written() wal.Position
}

// aheadBudget bounds all shards' chunk buffers (a part of the memory
// constant above --cache-bytes): four catch-up readers at full depth. Past
// it, reads go the page cache's way. (A variable for tests.)
var aheadBudget int64 = 4 * aheadChunks * aheadBufBytes

var (
	// aheadHeld is the bytes of chunk buffers all shards hold.
	aheadHeld atomic.Int64
	// aheadBufs keeps chunk buffers between readers.
	aheadBufs = sync.Pool{New: func() any {
		b := vfs.AlignedBuffer(aheadBufBytes)
		return &b
	}}
	// readDirectBytes counts the bytes of batches served from chunks;
	// readDirectWaits the reads that waited for a chunk's device read.
	readDirectBytes atomic.Int64
	readDirectWaits atomic.Int64
	// aheadActive is the shards holding chunks, for aheadIdle's reclaim.
	aheadActive = struct {
		mu  sync.Mutex
		set map[*readAhead]struct{}
	}{set: map[*readAhead]struct{}{}}
)

// ReadDirectBytes returns the bytes of batches catch-up reads took from
// direct read-ahead, past the page cache.
func ReadDirectBytes() int64 { return readDirectBytes.Load() }

// ReadDirectWaits returns how many reads waited for direct read-ahead to
// bring their batches from the device: a catch-up reader bound by the
// device rather than by its consumer.
func ReadDirectWaits() int64 { return readDirectWaits.Load() }

// ReadDirectBufferBytes returns the memory direct read-ahead holds now.
func ReadDirectBufferBytes() int64 { return aheadHeld.Load() }

// chunk is one direct read: [pos, end) of the log or of a segment file,
// holding the shard's batches up to last.
type chunk struct {
	seg      int64 // the file: InWAL, or a segment's id
	pos, end wal.Position
	last     Offset
	done     chan struct{} // closed once data or err is set
	buf      *[]byte
	data     []byte
	err      error
	refs     int  // readAhead.mu: the read under way and readers copying
	dropped  bool // readAhead.mu: no longer in chunks; freed at refs 0
}

// readAhead is a shard's direct read-ahead state.
type readAhead struct {
	mu     sync.Mutex
	chunks []*chunk // in offset order
	next   Offset   // the first batch not in a chunk
	used   int64    // when a read last took from the chunks (unix ns)
}

// serveAhead serves pick from the shard's chunks, as read would: the
// batches up to the first read from disk that no chunk holds. ok is false
// when pick's first batch from disk is in no chunk (or a chunk's read
// failed): the caller reads pick its usual way.
func (s *Shard) serveAhead(alloc Alloc, pick []ref) (out []byte, next Offset, ok bool) {
	a := &s.ahead
	a.mu.Lock()
	if len(a.chunks) == 0 {
		a.mu.Unlock()
		return nil, 0, false
	}
	var from []*chunk // for each batch served, its chunk (nil: tail cache)
	total, disk := 0, 0
	for _, e := range pick {
		var c *chunk
		if e.data == nil {
			if c = a.holding(e.Loc); c == nil {
				break
			}
			disk += int(e.Loc.Size)
		}
		from = append(from, c)
		total += int(e.Loc.Size)
	}
	if disk == 0 {
		a.mu.Unlock()
		return nil, 0, false
	}
	pick = pick[:len(from)]
	var refs []*chunk
	for _, c := range from {
		if c != nil && (len(refs) == 0 || refs[len(refs)-1] != c) {
			c.refs++
			refs = append(refs, c)
		}
	}
	a.used = time.Now().UnixNano()
	a.mu.Unlock()

	failed, waited := false, false
	for _, c := range refs {
		select {
		case <-c.done:
		default:
			waited = true
			<-c.done
		}
		failed = failed || c.err != nil
	}
	if waited {
		readDirectWaits.Add(1)
	}
	if !failed {
		out = alloc.get(total)
		for i, e := range pick {
			if c := from[i]; c != nil {
				at := int(e.Loc.Pos - c.pos)
				out = append(out, c.data[at:at+int(e.Loc.Size)]...)
			} else {
				out = append(out, e.data...)
			}
		}
		next = pick[len(pick)-1].Last + 1
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range refs {
		a.unrefLocked(c)
	}
	if failed {
		a.resetLocked()
		return nil, 0, false
	}
	// Chunks whose batches were all served are done with. (They are
	// planned in offset order, across files.)
	passed := 0
	for passed < len(a.chunks) && a.chunks[passed].last < next {
		a.dropLocked(a.chunks[passed])
		passed++
	}
	a.chunks = append(a.chunks[:0], a.chunks[passed:]...)
	s.topUpLocked(a, false)
	if len(a.chunks) == 0 {
		a.resetLocked()
	}
	readDirectBytes.Add(int64(disk))
	return out, next, true
}

// holding returns the chunk holding the batch at loc, or nil.
func (a *readAhead) holding(loc Location) *chunk {
	for _, c := range a.chunks {
		if c.seg == loc.Seg && c.pos <= loc.Pos && loc.Pos+wal.Position(loc.Size) <= c.end {
			return c
		}
	}
	return nil
}

// startAhead starts direct read-ahead after a cold read of pick from disk
// that ended before next, unless another reader's chunks are in use. It
// says whether this reader's read-ahead now runs (the page cache's need
// not).
func (s *Shard) startAhead(pick []ref, next Offset) bool {
	first := slices.IndexFunc(pick, func(e ref) bool { return e.data == nil })
	if first < 0 {
		return false
	}
	a := &s.ahead
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now().UnixNano()
	if n := len(a.chunks); n > 0 {
		// Chunks all behind this read, or idle, are this reader's to
		// replace; others' in use are left to them.
		behind := a.chunks[n-1].last < pick[first].Base
		if !behind && now-a.used < int64(aheadIdle) {
			return false
		}
		a.resetLocked()
	}
	a.next, a.used = next, now
	s.topUpLocked(a, true)
	return len(a.chunks) > 0
}

// topUpLocked plans and starts chunks until aheadChunks are ahead (a.mu
// held). starting: the reader's last read was cold, and the chunks of this
// first top-up are planned whatever the page cache holds of them: the
// kernel reads ahead of that read's own pages, up to read_ahead_kb and
// then as much again asynchronously (16 MiB where it is 8 MiB, as on this
// project's machines); those pages do not make the reader warm, and
// counted, they would send its next reads the page cache's way for good
// (a one-partition read of 21 GB past the log's page-cache window read 8
// MB direct and ran at 275 MB/s, against 508 with a 128 KiB
// read_ahead_kb). Once the reads come from chunks, the kernel reads
// nothing ahead for them.
func (s *Shard) topUpLocked(a *readAhead, starting bool) {
	for len(a.chunks) < aheadChunks {
		c := s.planChunk(a.next, !starting)
		if c == nil || !reserveAhead(a) {
			return
		}
		if len(a.chunks) == 0 {
			aheadActive.mu.Lock()
			aheadActive.set[a] = struct{}{}
			aheadActive.mu.Unlock()
		}
		c.refs = 1 // the read
		a.chunks = append(a.chunks, c)
		a.next = c.last + 1
		go s.load(a, c)
	}
}

// load reads c from its file.
func (s *Shard) load(a *readAhead, c *chunk) {
	c.buf = aheadBufs.Get().(*[]byte)
	c.data, c.err = s.readDirect(*c.buf, c.seg, c.pos, int(c.end-c.pos))
	close(c.done)
	a.mu.Lock()
	a.unrefLocked(c)
	a.mu.Unlock()
}

// planChunk returns the next chunk of batches from offset from on, or nil
// where direct read-ahead ends: at a batch in the tail cache, in another
// file than the one before, not yet written, larger than a chunk; at
// batches spread thinly over the file (the one judge of that: a cold read
// starts read-ahead only if its next chunk is dense); with askCache, at
// batches mostly in the page cache already.
func (s *Shard) planChunk(from Offset, askCache bool) *chunk {
	s.mu.RLock()
	i := s.findLocked(from)
	if i == s.idx.len() {
		s.mu.RUnlock()
		return nil
	}
	first := s.idx.at(i)
	seg, pos := first.Loc.Seg, first.Loc.Pos
	written := wal.Position(1<<63 - 1) // a segment file's batches are written when indexed
	if seg == InWAL {
		dl, ok := s.log.(directLog)
		if !ok {
			s.mu.RUnlock()
			return nil
		}
		written = dl.Written()
	}
	// The range judged dense reaches back to the shard's batch before, as
	// far as a chunk reaches (a chunk of the last batch so far must not
	// look dense for lack of one after it).
	lo := pos
	if i > 0 {
		if prev := s.idx.at(i - 1); prev.Loc.Seg == seg {
			prevEnd := prev.Loc.Pos + wal.Position(prev.Loc.Size)
			lo = max(min(prevEnd, pos), pos-aheadChunk)
		}
	}
	end, last := pos, Offset(-1)
	var own int64
	// The shard's batches fill at least half of the range from its batch
	// before to its next batch in the same file, as far as a chunk reaches
	// each way: a chunk cut short by batches far off (a consumer of many
	// shards, one batch a read) holds too little of its range.
	hi := wal.Position(-1)
	for k, e := range s.idx.from(i) {
		eEnd := e.Loc.Pos + wal.Position(e.Loc.Size)
		if s.dataLocked(k) != nil || e.Loc.Seg != seg || e.Loc.Pos < end || eEnd-pos > aheadChunk || eEnd > written {
			if e.Loc.Seg == seg && e.Loc.Pos >= end {
				hi = max(end, min(e.Loc.Pos, pos+aheadChunk))
			}
			break
		}
		end, last = eEnd, e.Last
		own += int64(e.Loc.Size)
	}
	if hi < 0 {
		hi = end
	}
	span := hi - lo
	s.mu.RUnlock()
	if last < 0 || 2*own < int64(span) {
		return nil
	}
	if askCache {
		if cached, pages, ok := s.pageCached(readRun{seg: seg, start: int64(pos), end: int64(end)}); ok && 2*cached >= pages {
			return nil
		}
	}
	return &chunk{seg: seg, pos: pos, end: end, last: last, done: make(chan struct{})}
}

// readDirect reads [pos, pos+n) of file seg (InWAL: the log) past the page
// cache into scratch, and returns the part of scratch holding it. Where
// the file cannot be opened for direct reads (a filesystem that refuses
// them, a segment file unlinked while readers finish), it reads through
// the page cache.
func (s *Shard) readDirect(scratch []byte, seg int64, pos wal.Position, n int) ([]byte, error) {
	if seg == InWAL {
		dl, ok := s.log.(directLog)
		if !ok {
			return nil, fmt.Errorf("shard %s: the log takes no direct reads", s.key)
		}
		return dl.ReadDirect(scratch, pos, n)
	}
	f := s.readableSeg(seg)
	if f == nil {
		return nil, fmt.Errorf("shard %s: segment %s is gone", s.key, SegmentName(seg))
	}
	d, err := vfs.OpenDirect(s.fs, f.Name(), os.O_RDONLY, 0)
	if err != nil {
		if _, err := f.ReadAt(scratch[:n], int64(pos)); err != nil {
			return nil, fmt.Errorf("shard %s: read segment %s: %w", s.key, SegmentName(seg), err)
		}
		return scratch[:n:n], nil
	}
	defer d.Close()
	data, err := vfs.ReadAligned(d, scratch, int64(pos), n)
	if err != nil {
		return nil, fmt.Errorf("shard %s: direct read of segment %s: %w", s.key, SegmentName(seg), err)
	}
	return data, nil
}

// reserveAhead takes one chunk buffer's room from aheadBudget, taking
// back idle shards' chunks if it must (a, whose lock the caller holds,
// excepted).
func reserveAhead(a *readAhead) bool {
	if aheadHeld.Add(aheadBufBytes) <= aheadBudget {
		return true
	}
	aheadHeld.Add(-aheadBufBytes)
	aheadActive.mu.Lock()
	var idle []*readAhead
	for o := range aheadActive.set {
		if o != a {
			idle = append(idle, o)
		}
	}
	aheadActive.mu.Unlock()
	now := time.Now().UnixNano()
	for _, o := range idle {
		if o.mu.TryLock() {
			if now-o.used >= int64(aheadIdle) {
				o.resetLocked()
			}
			o.mu.Unlock()
		}
	}
	if aheadHeld.Add(aheadBufBytes) <= aheadBudget {
		return true
	}
	aheadHeld.Add(-aheadBufBytes)
	return false
}

// resetLocked drops every chunk (a.mu held).
func (a *readAhead) resetLocked() {
	for _, c := range a.chunks {
		a.dropLocked(c)
	}
	a.chunks = a.chunks[:0]
	aheadActive.mu.Lock()
	delete(aheadActive.set, a)
	aheadActive.mu.Unlock()
}

// dropLocked marks c dropped, freeing it once no one uses it.
func (a *readAhead) dropLocked(c *chunk) {
	c.dropped = true
	if c.refs == 0 {
		a.free(c)
	}
}

// unrefLocked ends one use of c.
func (a *readAhead) unrefLocked(c *chunk) {
	if c.refs--; c.refs == 0 && c.dropped {
		a.free(c)
	}
}

func (a *readAhead) free(c *chunk) {
	if c.buf != nil {
		aheadBufs.Put(c.buf)
		c.buf, c.data = nil, nil
	}
	aheadHeld.Add(-aheadBufBytes)
}
