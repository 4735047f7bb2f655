package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

// Offset is a record's position in its shard.
type Offset int64

func (o Offset) String() string { return strconv.FormatInt(int64(o), 10) }

var (
	// ErrClosed is returned for writes to a closed shard.
	ErrClosed = errors.New("shard: closed")
	// ErrOffsetOutOfRange is returned for reads before the log start or past
	// the high watermark.
	ErrOffsetOutOfRange = errors.New("shard: offset out of range")
)

// Frame kinds this package writes to the shared log.
const (
	KindBatch    wal.Kind = 1 // stream u64 | shard i32 | RecordBatch
	KindLogStart wal.Kind = 2 // stream u64 | shard i32 | new log start offset i64
)

// FramePrefixLen is the size of the stream/shard prefix of every frame body.
const FramePrefixLen = 12

// Log is what a shard needs from the shared write-ahead log.
type Log interface {
	Append(kind wal.Kind, parts ...[]byte) (start, end wal.Position, err error)
	AppendSummed(kind wal.Kind, head, body []byte, from int, sum uint32) (start, end wal.Position, err error)
	ReadAt(p []byte, pos wal.Position) error
	Durable() wal.Position
}

// InWAL is Location.Seg for a batch still in the shared write-ahead log.
const InWAL = -1

// Location says where a batch's bytes are: in the shared log (Seg == InWAL,
// Pos a log position) or in the shard segment file whose base offset is Seg
// (Pos a file offset).
type Location struct {
	Seg  int64
	Pos  wal.Position
	Size int32
}

// Entry is one batch in the index. It holds no pointer: the index grows
// with every batch retained (48 bytes each), and an array without
// pointers is one the garbage collector never scans. The batch's bytes,
// while the tail cache holds them, are in Shard.tail.
type Entry struct {
	Base, Last Offset
	MaxTS      int64
	Loc        Location
}

// ref is an entry as a reader took it from the index, with its bytes when
// the tail cache held them (nil otherwise).
type ref struct {
	Entry
	data []byte
}

type mark struct {
	end  wal.Position
	next Offset
}

// Key names a shard on this node.
type Key struct {
	Stream uint64
	Shard  int32
}

func (k Key) String() string { return fmt.Sprintf("%d/%d", k.Stream, k.Shard) }

// Shard is one shard's log.
type Shard struct {
	key Key
	log Log

	mu       sync.RWMutex
	idx      index // the batches, ascending by Base (index.go)
	logStart Offset
	next     Offset
	pending  []mark // frames appended but maybe not durable, in log order
	closed   bool
	// The tail window is the index's entries from cacheFrom on: the most
	// recent batches, window bytes of them, at most cacheLimit. tail holds
	// their bytes, one slice per entry (nil: not held), so len(tail) ==
	// idx.len()-cacheFrom; cached counts the bytes held. Appends hold
	// their bytes only while the window is read (see CachesTail).
	window     int64
	cached     int64
	cacheFrom  int
	tail       [][]byte
	cacheLimit int64
	producers  map[int64]*producerState // idempotent producers; see producers.go
	// lastProducer is producers[lastProducerID] or nil (producerLocked).
	lastProducerID int64
	lastProducer   *producerState
	txns           map[int64]*openTxn // by producer id; see txn.go
	aborted        []AbortedTxn       // ascending by Last
	// dropped counts entries ever removed from the front of the index, and
	// rewrites the changes to entries other than appends and front drops
	// (compaction, moves, restores): together they let a checkpoint write
	// only what changed since the last one (SnapshotSince).
	dropped  int64
	rewrites uint64
	// readEnd: the number (idx.front counts the same way) of the entry
	// after the last read's last, where a reader moving forward reads
	// next (findLocked).
	readEnd atomic.Int64

	dir   string     // segment files
	fs    vfs.FS     // where dir is
	segMu sync.Mutex // guards segs; held across segment writes, never under mu
	segs  []*segFile // ascending by id
	// active is the segment the mover appends to (nil: start a new one).
	active    *segFile
	nextSegID int64 // lower bound for the next segment id
	// retired are unlinked segment files kept open until in-flight reads
	// are done (see retention.go).
	retired []retiredFile
	// segsRO is what readers search by id: segs and retired files.
	segsRO atomic.Pointer[[]*segFile]
	// dropAfter: no segment file may go before the log is durable here
	// (the end of the last compaction or log-start frame; guarded by mu).
	dropAfter wal.Position
	// cleanedTo: offsets below it were compacted by the last pass. It is
	// not checkpointed: after a restart, the first pass treats the whole
	// log as dirty. lastCleaned is when the last pass ran.
	cleanedTo   Offset
	lastCleaned time.Time

	hw         atomic.Int64
	lastAppend atomic.Int64 // unix nanos
	// tailRead is when a read last started in the tail window or at its
	// end (unix nanos).
	tailRead atomic.Int64
	// wroteRecords and wroteBytes count what appends (not markers) took
	// since the shard was loaded, for write rates and autoscale.
	wroteRecords atomic.Int64
	wroteBytes   atomic.Int64

	// prefetchedTo: batches below it were asked for by read-ahead;
	// prefetching: a read-ahead request is under way (prefetch.go).
	prefetchedTo atomic.Int64
	prefetching  atomic.Bool
	// diskReadSecond: the last second diskReaders counted this shard in.
	diskReadSecond atomic.Int64
	// ahead: direct read-ahead for a catch-up reader (readahead.go).
	ahead readAhead
	// behind: runs of batches read from disk, kept in the page cache
	// until the shard's reads are readDropLag past them; lastRead: the
	// last run read from disk, and whether it was cold (dropbehind.go).
	behindMu    sync.Mutex
	behind      []readRun
	behindBytes int64
	lastRead    readRun
	lastCold    bool
}

// Written returns the records and bytes appended to the shard since the
// process loaded it (producer batches, routed parts included; markers not).
func (s *Shard) Written() (records, bytes int64) {
	return s.wroteRecords.Load(), s.wroteBytes.Load()
}

// New returns an empty shard whose segment files live in dir on fs (nil:
// vfs.Default).
func New(key Key, log Log, cacheLimit int64, fs vfs.FS, dir string) *Shard {
	if fs == nil {
		fs = vfs.Default
	}
	return &Shard{key: key, log: log, cacheLimit: cacheLimit, fs: fs, dir: dir}
}

// Key returns the shard's key.
func (s *Shard) Key() Key { return s.key }

// SetClosed marks the shard closed (or open again, during recovery).
func (s *Shard) SetClosed(closed bool) {
	s.mu.Lock()
	s.closed = closed
	s.mu.Unlock()
}

// SetCacheLimit bounds the bytes of recent batches kept in memory.
func (s *Shard) SetCacheLimit(n int64) {
	s.mu.Lock()
	s.cacheLimit = n
	s.evictLocked()
	s.mu.Unlock()
}

// AppendResult tells a producer where its batch went.
type AppendResult struct {
	Base Offset
	End  wal.Position // the batch is durable once the log is durable to End
	// Duplicate is set when the batch was a retry of one already appended:
	// nothing was written, Base and End are the original's.
	Duplicate bool
}

// tailReadTTL is how long a shard goes on holding appended bytes after the
// last read in its tail window.
const tailReadTTL = 10 * time.Second

// CachesTail says whether the tail window was read in the last tailReadTTL:
// only then is it worth holding appended batches in memory. A shard nobody
// reads at its tail (a producer's data consumed later, or by catch-up
// readers) would pay a copy, an allocation and collector work per batch
// for bytes evicted unread; its readers find them in the page cache.
func (s *Shard) CachesTail() bool { return s.cachesTail(time.Now().UnixNano()) }

func (s *Shard) cachesTail(now int64) bool { return now-s.tailRead.Load() < int64(tailReadTTL) }

// noteReadLocked records a read from offset from when it starts in the tail
// window or at its end (mu held, read or write).
func (s *Shard) noteReadLocked(from Offset) {
	edge := s.next
	if s.cacheFrom < s.idx.len() {
		edge = s.idx.at(s.cacheFrom).Base
	}
	if from >= edge {
		s.tailRead.Store(time.Now().UnixNano())
	}
}

// Append assigns offsets to a validated batch, writes it to the shared log
// and indexes it. b is modified in place; with keep, it is also retained as
// the tail cache's copy and the caller must not reuse it (keep where
// CachesTail says so). logAppendTime is -1 for CreateTime streams.
func (s *Shard) Append(b []byte, h Header, logAppendTime int64, keep bool) (AppendResult, error) {
	var prefix [FramePrefixLen]byte
	binary.LittleEndian.PutUint64(prefix[:8], s.key.Stream)
	binary.LittleEndian.PutUint32(prefix[8:], uint32(s.key.Shard))

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return AppendResult{}, ErrClosed
	}
	dup, err := s.checkSequenceLocked(h)
	if err != nil {
		return AppendResult{}, err
	}
	if dup != nil {
		return AppendResult{Base: dup.base, End: dup.end, Duplicate: true}, nil
	}
	base := s.next
	stamp(b, int64(base), logAppendTime)
	maxTS := h.MaxTimestamp
	if logAppendTime >= 0 {
		maxTS = logAppendTime
	}
	// Validate checked the batch's CRC and stamp keeps it: the frame's
	// is derived from it.
	start, end, err := s.log.AppendSummed(KindBatch, prefix[:], b, offAttributes, binary.BigEndian.Uint32(b[offCRC:]))
	if err != nil {
		return AppendResult{}, err
	}
	pos := start + wal.HeaderLen + FramePrefixLen
	var data []byte
	if keep {
		data = b
	}
	s.addLocked(Entry{
		Base: base, Last: base + Offset(h.LastOffsetDelta), MaxTS: maxTS,
		Loc: Location{Seg: InWAL, Pos: pos, Size: int32(len(b))},
	}, data)
	s.pending = append(s.pending, mark{end: end, next: s.next})
	s.recordSequenceLocked(h, base, end)
	s.beginTxnLocked(h, base, pos)
	s.lastAppend.Store(time.Now().UnixNano())
	s.wroteRecords.Add(int64(h.NumRecords))
	s.wroteBytes.Add(int64(len(b)))
	return AppendResult{Base: base, End: end}, nil
}

// addLocked indexes e, just appended, in the tail window, holding its bytes
// data (nil: not held).
func (s *Shard) addLocked(e Entry, data []byte) {
	s.idx.add(e)
	s.next = e.Last + 1
	s.tail = append(s.tail, data)
	s.window += int64(e.Loc.Size)
	s.cached += int64(len(data))
	s.evictLocked()
	s.sealLocked()
}

// sealLocked seals the index's entries before the tail window, a block
// whenever one is whole; it costs a comparison otherwise (mu held).
func (s *Shard) sealLocked() { s.idx.seal(s.cacheFrom) }

// indexLocked indexes e, found in the log during recovery. Recovery adds
// whole logs with an empty window, and needs no slot per batch.
func (s *Shard) indexLocked(e Entry) {
	if len(s.tail) > 0 {
		s.addLocked(e, nil)
		return
	}
	s.idx.add(e)
	s.next = e.Last + 1
	s.cacheFrom = s.idx.len()
	s.sealLocked()
}

// dataLocked returns the cached bytes of entry i, nil if the tail cache
// does not hold them (mu held).
func (s *Shard) dataLocked(i int) []byte {
	if i < s.cacheFrom {
		return nil
	}
	return s.tail[i-s.cacheFrom]
}

// refsLocked returns entries [i, j) with their cached bytes (mu held).
func (s *Shard) refsLocked(i, j int) []ref {
	out := make([]ref, 0, max(0, j-i))
	for k, e := range s.idx.from(i) {
		if k >= j {
			break
		}
		out = append(out, ref{Entry: e, data: s.dataLocked(k)})
	}
	return out
}

func (s *Shard) evictLocked() {
	for s.window > s.cacheLimit && len(s.tail) > 0 {
		s.window -= int64(s.idx.at(s.cacheFrom).Loc.Size)
		s.cached -= int64(len(s.tail[0]))
		s.tail[0] = nil
		s.tail = s.tail[1:]
		s.cacheFrom++
	}
}

// DropCacheIfIdle releases the cached batches of a shard that has taken no
// append for idle, and returns the bytes released. Readers then get the
// bytes from the page cache or disk.
func (s *Shard) DropCacheIfIdle(idle time.Duration) int64 {
	if time.Since(time.Unix(0, s.lastAppend.Load())) < idle {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	freed := s.cached
	s.emptyTailLocked()
	return freed
}

// emptyTailLocked empties the tail window: the next append starts it anew
// (mu held).
func (s *Shard) emptyTailLocked() {
	s.window, s.cached, s.cacheFrom, s.tail = 0, 0, s.idx.len(), nil
}

// findLocked returns the first entry holding offset from or after it (mu
// held). It tries where the last read ended first: a reader moving forward
// starts there, and sealed entries cost more to search than to check.
func (s *Shard) findLocked(from Offset) int {
	if i := int(s.readEnd.Load()) - s.idx.front; i >= 0 && i < s.idx.len() {
		if s.idx.at(i).Last >= from && (i == 0 || s.idx.at(i-1).Last < from) {
			return i
		}
	}
	return s.idx.search(func(e *Entry) bool { return e.Last >= from })
}

// Replay indexes a batch found in the shared log during recovery; the batch
// is durable by definition. Batches already covered (from a checkpoint) are
// skipped.
func (s *Shard) Replay(b []byte, pos wal.Position) error { return s.replay(b, pos, true) }

func (s *Shard) replay(b []byte, pos wal.Position, seq bool) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	base := Offset(h.BaseOffset)
	if base < s.next {
		return nil
	}
	s.indexLocked(Entry{Base: base, Last: base + Offset(h.LastOffsetDelta), MaxTS: h.MaxTimestamp,
		Loc: Location{Seg: InWAL, Pos: pos, Size: int32(len(b))}})
	s.hw.Store(int64(s.next))
	if h.Control() {
		commit, err := ControlType(b)
		if err != nil {
			return err
		}
		s.markerEpochLocked(h.ProducerID, h.ProducerEpoch, h.MaxTimestamp)
		s.endTxnLocked(h.ProducerID, commit, base, pos)
		return nil
	}
	if seq {
		s.recordSequenceLocked(h, base, 0)
	}
	s.beginTxnLocked(h, base, pos)
	return nil
}

// HighWatermark returns the offset up to which readers may see, moving it
// past every batch whose frame is now durable.
func (s *Shard) HighWatermark() Offset {
	durable := s.log.Durable()
	s.mu.RLock()
	stale := len(s.pending) > 0 && s.pending[0].end <= durable
	s.mu.RUnlock()
	if stale {
		s.mu.Lock()
		i := 0
		for ; i < len(s.pending) && s.pending[i].end <= durable; i++ {
			s.hw.Store(int64(s.pending[i].next))
		}
		if i == len(s.pending) {
			// Emptied, its array serves the next appends; a slice
			// advanced to its end would make them allocate anew.
			s.pending = s.pending[:0]
		} else {
			s.pending = s.pending[i:]
		}
		if len(s.txns) > 0 {
			s.pruneTxnsLocked(Offset(s.hw.Load()))
		}
		s.mu.Unlock()
	}
	return Offset(s.hw.Load())
}

// Offsets returns the log start offset, high watermark and next offset.
func (s *Shard) Offsets() (logStart, hw, next Offset) {
	hw = s.HighWatermark()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.logStart, hw, s.next
}

// IndexBytes is the memory the shard's index holds, spare capacity
// included. It grows with every batch retained, by 48 bytes while recent
// and 9-13 once sealed.
func (s *Shard) IndexBytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.memory()
}

// Stats returns the shard's indexed batch count and bytes.
func (s *Shard) Stats() (batches int, bytes int64, cached int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.len(), s.idx.bytesFrom(0, math.MaxInt64), s.cached
}

// Read returns whole batches starting with the one holding from, up to
// maxBytes (at least one batch if atLeastOne), never past the high
// watermark. Reading at the high watermark returns nothing.
func (s *Shard) Read(from Offset, maxBytes int, atLeastOne bool) ([]byte, error) {
	return s.ReadTo(nil, nil, from, maxBytes, atLeastOne)
}

// Alloc returns an empty slice with room for exactly n bytes: the memory a
// read returns its batches in. A nil Alloc makes new memory.
type Alloc func(n int) []byte

// get returns an empty slice with room for exactly n bytes, from a (new
// memory if a is nil).
func (a Alloc) get(n int) []byte {
	if a != nil {
		return a(n)[:0:n]
	}
	return make([]byte, 0, n)
}

// ReadTo is Read returning the batches in memory from alloc, copied from
// win when they all lie in it (win may be nil).
func (s *Shard) ReadTo(alloc Alloc, win *LogWindow, from Offset, maxBytes int, atLeastOne bool) ([]byte, error) {
	hw := s.HighWatermark()
	data, _, err := s.read(alloc, win, from, hw, hw, maxBytes, atLeastOne)
	return data, err
}

// read returns whole batches from the one holding from, stopping before the
// first batch at or past limit (hw or the last stable offset), and the
// offset after the last batch returned.
func (s *Shard) read(alloc Alloc, win *LogWindow, from, hw, limit Offset, maxBytes int, atLeastOne bool) ([]byte, Offset, error) {
	s.mu.RLock()
	if from < s.logStart || from > hw {
		start := s.logStart
		s.mu.RUnlock()
		return nil, from, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, from, start, hw)
	}
	s.noteReadLocked(from)
	var pick []ref
	total := 0
	end := s.findLocked(from)
	for i, e := range s.idx.from(end) {
		if e.Last >= limit || total+int(e.Loc.Size) > maxBytes && !(atLeastOne && len(pick) == 0) {
			break
		}
		pick = append(pick, ref{Entry: e, data: s.dataLocked(i)})
		total += int(e.Loc.Size)
		end = i + 1
	}
	s.readEnd.Store(int64(s.idx.front + end))
	s.mu.RUnlock()
	if len(pick) == 0 {
		return nil, from, nil
	}
	if out, next, ok := serveWindow(alloc, win, pick, total); ok {
		return out, next, nil
	}
	if out, next, ok := s.serveAhead(alloc, pick); ok {
		return out, next, nil
	}
	cold := s.readIsCold(pick)
	s.hintReads(pick)
	out := alloc.get(total)
	next := from
	fromDisk := false
	defer func() {
		if fromDisk {
			if !cold || !s.startAhead(pick, next) {
				s.prefetch(next)
			}
			s.dropBehind(pick, next, cold)
		}
	}()
	for _, e := range pick {
		if e.data != nil {
			out = append(out, e.data...)
			next = e.Last + 1
			continue
		}
		fromDisk = true
		n := len(out)
		out = out[:n+int(e.Loc.Size)]
		if err := s.readAt(out[n:], e.Loc); err != nil {
			if n > 0 {
				return out[:n], next, nil // serve what was read; the rest next time
			}
			return nil, from, fmt.Errorf("shard %s: read batch at offset %d: %w", s.key, e.Base, err)
		}
		next = e.Last + 1
	}
	return out, next, nil
}

// DeleteRecords advances the log start offset to to (which may not pass the
// high watermark) and writes that to the shared log; the caller waits for
// durability at the returned position before acknowledging.
func (s *Shard) DeleteRecords(to Offset) (Offset, wal.Position, error) {
	hw := s.HighWatermark()
	s.mu.Lock()
	defer s.mu.Unlock()
	if to < 0 || to > hw {
		return s.logStart, 0, fmt.Errorf("%w: %d not in [0, %d]", ErrOffsetOutOfRange, to, hw)
	}
	if to <= s.logStart {
		// Already there, but maybe by a frame not durable yet (a call
		// that failed waiting for it): the answer waits for it too.
		return s.logStart, s.dropAfter, nil
	}
	var body [FramePrefixLen + 8]byte
	binary.LittleEndian.PutUint64(body[:8], s.key.Stream)
	binary.LittleEndian.PutUint32(body[8:], uint32(s.key.Shard))
	binary.LittleEndian.PutUint64(body[12:], uint64(to))
	_, end, err := s.log.Append(KindLogStart, body[:])
	if err != nil {
		return s.logStart, 0, err
	}
	// The entries go now; their files only once this frame is durable.
	s.dropAfter = max(s.dropAfter, end)
	s.setLogStartLocked(to)
	return to, end, nil
}

// ReplayLogStart applies a log-start frame found during recovery.
func (s *Shard) ReplayLogStart(to Offset) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if to > s.logStart {
		s.setLogStartLocked(to)
	}
}

func (s *Shard) setLogStartLocked(to Offset) {
	s.logStart = to
	drop := s.idx.search(func(e *Entry) bool { return e.Last >= to })
	if gone := drop - s.cacheFrom; gone > 0 {
		for i, b := range s.tail[:gone] {
			s.window -= int64(s.idx.at(s.cacheFrom + i).Loc.Size)
			s.cached -= int64(len(b))
		}
		s.tail = append(s.tail[:0:0], s.tail[gone:]...)
	}
	s.idx.dropFront(drop)
	s.dropped += int64(drop)
	s.cacheFrom = max(0, s.cacheFrom-drop)
	s.pruneTxnsLocked(Offset(s.hw.Load()))
	if s.next < to {
		s.next = to
	}
}

// OldestPosition returns the lowest shared-log position this shard still
// needs, or -1 if it needs none. Entries in segments precede those in the
// log, and the log's entries are in log order.
func (s *Shard) OldestPosition() wal.Position {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if pos, ok := s.idx.oldestInLog(); ok {
		return pos
	}
	return -1
}
