package shard

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/wal"
)

// Key compaction (cleanup.policy=compact), as Kafka's log cleaner does it.
//
// The shard's log is cut into logical segments: walking batches from the
// log start, a segment ends once it holds segment.bytes or spans segment.ms
// (by batch max timestamps). The last one is the active head and is never
// cleaned; neither is anything at or past the last stable offset (open
// transactions) or younger than min.compaction.lag.ms. What lies before
// all three is the cleanable range, [log start, clean end).
//
// A pass reads the cleanable range twice. First it maps every key (MD5 of
// the key bytes, as Kafka's offset map) to the offset of its latest record
// in the range. Then it keeps a record only if it is that latest record,
// and, for a tombstone (null value), only while its batch is younger than
// delete.retention.ms. Records with a null key, and every batch of an
// aborted transaction, go. A transaction marker goes once its transaction
// has no record left here and it is older than delete.retention.ms.
//
// Batches keep their base and last offsets (so fetch positions and the
// index stay valid, with gaps where records went); a batch that lost some
// records is rebuilt from the kept records' bytes, compressed again with
// its codec; one that lost all is dropped from the index. The result is
// written to new segment files, fsync'd, and then recorded as compaction
// frames in the shared log (under the shard lock, with the index switch),
// so recovery replays it like any other change. Old files go only once no
// entry refers to them and the frame is durable (DropUnreferencedSegments).
// Produce and fetch go on throughout: the rewrite happens outside the
// shard's lock, and readers that picked an old location still read the old
// file, which stays open for the grace period.

// KindCompact is the WAL frame kind of a compaction's index changes:
//
//	stream u64 | shard i32 | cleaned to i64 | n u32 | n × change
//	change: base i64 | segment id i64 | file position i64 | size i32
//
// all little-endian; size -1 removes the batch at base from the index.
const KindCompact wal.Kind = 5

const (
	compactHeaderLen = FramePrefixLen + 8 + 4
	compactChangeLen = 8 + 8 + 8 + 4
	// compactChangesPerFrame keeps each frame well under wal.MaxFrame.
	compactChangesPerFrame = 1 << 15
	// compactFileBytes bounds one output segment file.
	compactFileBytes = 256 << 20
)

// maxNotedRecords bounds what pass 1 remembers per record for pass 2
// (about 40 bytes each): past it, pass 2 decompresses every batch again.
const maxNotedRecords = 1 << 21

// recordNote is what pass 2 needs to know of a record.
type recordNote struct {
	off       Offset
	key       [16]byte
	keyed     bool
	tombstone bool
}

func noteOf(off Offset, r *kmsg.Record) recordNote {
	n := recordNote{off: off, keyed: r.Key != nil, tombstone: r.Value == nil}
	if n.keyed {
		n.key = md5.Sum(r.Key)
	}
	return n
}

// ErrNullKey refuses a record without a key in a compacted stream.
var ErrNullKey = errors.New("shard: compacted streams need a key on every record")

// CompactPolicy is a compacted stream's settings (Kafka's names in
// brackets); durations in milliseconds.
type CompactPolicy struct {
	SegmentBytes    int64   // segment.bytes
	SegmentMs       int64   // segment.ms
	MinLagMs        int64   // min.compaction.lag.ms
	MaxLagMs        int64   // max.compaction.lag.ms
	DeleteRetention int64   // delete.retention.ms
	MinDirtyRatio   float64 // min.cleanable.dirty.ratio
}

// CleanState is what a shard says about its compaction.
type CleanState struct {
	CleanEnd    Offset    // end of the cleanable range
	CleanedTo   Offset    // offsets below this were cleaned by the last pass
	DirtyBytes  int64     // bytes in [CleanedTo, CleanEnd)
	TotalBytes  int64     // bytes in [log start, CleanEnd)
	LastCleaned time.Time // zero if never since start-up
	Due         bool      // dirty ratio or max lag says clean now
}

// DirtyRatio is DirtyBytes over TotalBytes (0 with nothing cleanable).
func (c CleanState) DirtyRatio() float64 {
	if c.TotalBytes == 0 {
		return 0
	}
	return float64(c.DirtyBytes) / float64(c.TotalBytes)
}

// CompactStats says what a pass did.
type CompactStats struct {
	ReadBytes, WrittenBytes int64
	RemovedBytes            int64 // bytes of the range that are gone
	Batches, Dropped        int   // batches in the range, and batches removed
	Records, Removed        int
}

// Add adds o's counts to s.
func (s *CompactStats) Add(o CompactStats) {
	s.ReadBytes += o.ReadBytes
	s.WrittenBytes += o.WrittenBytes
	s.RemovedBytes += o.RemovedBytes
	s.Batches += o.Batches
	s.Dropped += o.Dropped
	s.Records += o.Records
	s.Removed += o.Removed
}

// CleanState computes the cleanable range and whether a pass is due.
func (s *Shard) CleanState(p CompactPolicy, now time.Time) CleanState {
	hw := s.HighWatermark()
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, _ := s.cleanStateLocked(p, now, hw)
	return st
}

// cleanStateLocked returns the state and the number of leading entries in
// the cleanable range (s.mu held). It runs under the read lock appends
// wait behind, every cleaner pass, over the whole index: sealed blocks are
// taken whole where their byte sums and timestamp bounds settle every
// question the entries would answer.
func (s *Shard) cleanStateLocked(p CompactPolicy, now time.Time, hw Offset) (CleanState, int) {
	st := CleanState{CleanedTo: max(s.cleanedTo, s.logStart), LastCleaned: s.lastCleaned}
	if s.idx.len() == 0 {
		return st, 0
	}
	// The active head: the last logical segment, which starts at the
	// first entry that finds the one before full or its first timestamp
	// SegmentMs old.
	head := 0
	var segBytes int64
	segFirstTS := s.idx.at(0).MaxTS
	for r := range s.idx.runs(0) {
		if r.n > 1 && segBytes+r.bytes < p.SegmentBytes && r.minTS >= segFirstTS &&
			segFirstTS <= math.MaxInt64-p.SegmentMs && r.maxTS < segFirstTS+p.SegmentMs {
			segBytes += r.bytes // no entry of the block starts a segment
			continue
		}
		for i, e := range s.idx.between(r.i, r.i+r.n) {
			if i > 0 && (segBytes >= p.SegmentBytes || e.MaxTS-segFirstTS >= p.SegmentMs) {
				head, segBytes, segFirstTS = i, 0, e.MaxTS
			}
			segBytes += int64(e.Loc.Size)
		}
	}
	limit := min(s.lsoLocked(hw), hw)
	minLagCut := now.UnixMilli() - p.MinLagMs
	maxLagCut := now.UnixMilli() - p.MaxLagMs
	k := 0
	overdue := false
	// take counts entry i, reporting false where the cleanable range ends.
	take := func(i int, e Entry) bool {
		if i >= head || e.Last >= limit || e.MaxTS > minLagCut {
			return false
		}
		k = i + 1
		st.CleanEnd = e.Last + 1
		st.TotalBytes += int64(e.Loc.Size)
		if e.Last >= st.CleanedTo {
			st.DirtyBytes += int64(e.Loc.Size)
			if p.MaxLagMs > 0 && e.MaxTS < maxLagCut {
				overdue = true
			}
		}
		return true
	}
runs:
	for r := range s.idx.runs(0) {
		if r.n > 1 && r.i+r.n <= head && r.last.Last < limit && r.maxTS <= minLagCut {
			clean := r.last.Last < st.CleanedTo
			dirty := r.first.Last >= st.CleanedTo
			if clean || dirty && (p.MaxLagMs <= 0 || r.minTS >= maxLagCut) {
				k, st.CleanEnd = r.i+r.n, r.last.Last+1
				st.TotalBytes += r.bytes
				if dirty {
					st.DirtyBytes += r.bytes
				}
				continue
			}
		}
		for i, e := range s.idx.between(r.i, r.i+r.n) {
			if !take(i, e) {
				break runs
			}
		}
	}
	st.Due = st.DirtyBytes > 0 && (st.DirtyRatio() >= p.MinDirtyRatio || overdue)
	return st, k
}

// Compact runs one cleaning pass if one is due (or force is set) and
// returns what it did and the log position to wait for before the files it
// replaced may go (0 if it changed nothing). throttle, if set, is called
// with the bytes read and written, and may sleep to keep an I/O budget.
func (s *Shard) Compact(p CompactPolicy, now time.Time, force bool, throttle func(n int)) (CompactStats, wal.Position, error) {
	var stats CompactStats
	hw := s.HighWatermark()
	s.mu.RLock()
	state, k := s.cleanStateLocked(p, now, hw)
	work := s.refsLocked(0, k)
	aborted := append([]AbortedTxn(nil), s.aborted...)
	s.mu.RUnlock()
	if k == 0 || !(state.Due || force) {
		return stats, 0, nil
	}
	stats.Batches = len(work)
	// read returns a batch of the range and its header, under the budget.
	read := func(e ref) ([]byte, Header, error) {
		b, err := s.readEntry(e)
		if err != nil {
			return nil, Header{}, fmt.Errorf("shard %s: compact: read batch %d: %w", s.key, e.Base, err)
		}
		if throttle != nil {
			throttle(len(b))
		}
		stats.ReadBytes += int64(len(b))
		h, err := ParseHeader(b)
		if err == nil && h.NumRecords < 0 {
			// Sizes notes below; a damaged segment file must fail the pass,
			// not the node (found by FuzzSegmentFile).
			err = fmt.Errorf("shard %s: compact: batch %d: %w: %d records", s.key, e.Base, ErrCorruptBatch, h.NumRecords)
		}
		return b, h, err
	}

	// Pass 1: the latest offset of every key in the range. What pass 2
	// needs of each record is noted too (while that stays small), so pass
	// 2 decompresses only batches that keep some records and lose others.
	latest := map[[16]byte]Offset{}
	notes := make([][]recordNote, len(work))
	noted := 0
	for i, e := range work {
		b, h, err := read(e)
		if err != nil {
			return stats, 0, err
		}
		if h.Control() || (h.Transactional() && isAborted(aborted, h.ProducerID, e.Base)) {
			continue
		}
		var batchNotes []recordNote
		if noted+int(h.NumRecords) <= maxNotedRecords {
			batchNotes = make([]recordNote, 0, h.NumRecords)
			noted += int(h.NumRecords)
		}
		err = eachRecord(b, h, func(off Offset, _ []byte, r *kmsg.Record) {
			n := noteOf(off, r)
			if n.keyed {
				latest[n.key] = off
			}
			if batchNotes != nil {
				batchNotes = append(batchNotes, n)
			}
		})
		if err != nil {
			return stats, 0, fmt.Errorf("shard %s: compact: batch %d: %w", s.key, e.Base, err)
		}
		notes[i] = batchNotes
	}

	// Pass 2: what each batch keeps.
	horizon := now.UnixMilli() - p.DeleteRetention
	txnHasData := map[int64]bool{}
	out := make([][]byte, len(work)) // nil: dropped
	changed := false
	for i, e := range work {
		b, h, err := read(e)
		if err != nil {
			return stats, 0, err
		}
		switch {
		case h.Control():
			if txnHasData[h.ProducerID] || e.MaxTS >= horizon {
				out[i] = b
			}
			delete(txnHasData, h.ProducerID)
		case h.Transactional() && isAborted(aborted, h.ProducerID, e.Base):
			stats.Records += int(h.NumRecords)
			stats.Removed += int(h.NumRecords)
		default:
			keeps := func(n recordNote) bool {
				return n.keyed && latest[n.key] == n.off && !(n.tombstone && e.MaxTS < horizon)
			}
			n, kept := len(notes[i]), 0
			for _, note := range notes[i] {
				if keeps(note) {
					kept++
				}
			}
			var keep [][]byte
			if notes[i] == nil || (kept > 0 && kept < n) {
				// Unnoted, or partly kept: the kept records' bytes are needed.
				n, keep = 0, nil
				err := eachRecord(b, h, func(off Offset, raw []byte, r *kmsg.Record) {
					n++
					if keeps(noteOf(off, r)) {
						keep = append(keep, raw)
					}
				})
				if err != nil {
					return stats, 0, fmt.Errorf("shard %s: compact: batch %d: %w", s.key, e.Base, err)
				}
				kept = len(keep)
			}
			stats.Records += n
			stats.Removed += n - kept
			switch {
			case kept == n:
				out[i] = b
			case kept > 0:
				var err error
				if out[i], err = rebuildBatch(b, h, keep); err != nil {
					return stats, 0, fmt.Errorf("shard %s: compact: rebuild batch %d: %w", s.key, e.Base, err)
				}
			}
			if kept > 0 && h.Transactional() {
				txnHasData[h.ProducerID] = true
			}
		}
		if out[i] == nil {
			stats.Dropped++
		}
		if out[i] == nil || len(out[i]) != len(b) {
			changed = true
		}
	}
	if !changed {
		// Nothing to remove: rewriting the same bytes would gain nothing,
		// so note the progress only.
		s.mu.Lock()
		s.cleanedTo, s.lastCleaned = max(s.cleanedTo, state.CleanEnd), now
		s.mu.Unlock()
		return stats, 0, nil
	}

	for i, e := range work {
		stats.RemovedBytes += int64(e.Loc.Size) - int64(len(out[i]))
	}

	// Write the kept batches to new segment files.
	s.segMu.Lock()
	defer s.segMu.Unlock()
	locs := make([]Location, len(work))
	var files []*segFile
	var cur *segFile
	var pending []byte
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if _, err := cur.f.WriteAt(pending, cur.size-int64(len(pending))); err != nil {
			return fmt.Errorf("shard %s: compact: write segment: %w", s.key, err)
		}
		if err := cur.f.Datasync(); err != nil {
			return fmt.Errorf("shard %s: compact: sync segment: %w", s.key, err)
		}
		if throttle != nil {
			throttle(len(pending))
		}
		pending = pending[:0]
		return nil
	}
	fail := func(err error) (CompactStats, wal.Position, error) {
		for _, sf := range files {
			sf.f.Close()
			s.fs.Remove(sf.f.Name())
		}
		return stats, 0, err
	}
	for i, b := range out {
		if b == nil {
			continue
		}
		if cur == nil || cur.size >= compactFileBytes {
			if err := flush(); err != nil {
				return fail(err)
			}
			sf, err := s.newSegmentLocked()
			if err != nil {
				return fail(err)
			}
			files = append(files, sf)
			cur = sf
		}
		locs[i] = Location{Seg: cur.id, Pos: wal.Position(cur.size), Size: int32(len(b))}
		pending = append(pending, b...)
		cur.size += int64(len(b))
		stats.WrittenBytes += int64(len(b))
		if len(pending) >= 8<<20 {
			if err := flush(); err != nil {
				return fail(err)
			}
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	if len(files) > 0 {
		if err := s.syncDir(); err != nil {
			return fail(err)
		}
	}

	// Readers must find the new files before any entry points at them.
	s.segs = append(s.segs, files...)
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].id < s.segs[j].id })
	s.publishSegsLocked()

	// Switch the index and record the switch in the log, in one critical
	// section: a checkpoint sees both or neither. If an append fails, the
	// switches already appended stand (recovery replays them) and the new
	// files the rest would have used go once nothing refers to them.
	s.mu.Lock()
	defer s.mu.Unlock()
	changes := make([]compactChange, 0, len(work))
	for i, e := range work {
		j := s.idx.search(func(x *Entry) bool { return x.Base >= e.Base })
		if j == s.idx.len() || s.idx.at(j).Base != e.Base {
			continue // removed by retention meanwhile
		}
		c := compactChange{base: e.Base, loc: locs[i]}
		if out[i] == nil {
			c.loc.Size = -1
		}
		changes = append(changes, c)
	}
	var end wal.Position
	for first := true; first || len(changes) > 0; first = false {
		n := min(len(changes), compactChangesPerFrame)
		_, frameEnd, err := s.log.Append(KindCompact, encodeCompactFrame(s.key, state.CleanEnd, changes[:n]))
		if err != nil {
			s.dropAfter = max(s.dropAfter, end)
			return stats, end, fmt.Errorf("shard %s: compact: record index changes: %w", s.key, err)
		}
		end = frameEnd
		s.applyCompactLocked(changes[:n])
		changes = changes[n:]
	}
	s.cleanedTo, s.lastCleaned = max(s.cleanedTo, state.CleanEnd), now
	s.dropAfter = end
	return stats, end, nil
}

type compactChange struct {
	base Offset
	loc  Location // Size -1: remove
}

func encodeCompactFrame(key Key, cleanedTo Offset, changes []compactChange) []byte {
	b := make([]byte, compactHeaderLen, compactHeaderLen+len(changes)*compactChangeLen)
	le := binary.LittleEndian
	le.PutUint64(b[0:], key.Stream)
	le.PutUint32(b[8:], uint32(key.Shard))
	le.PutUint64(b[12:], uint64(cleanedTo))
	le.PutUint32(b[20:], uint32(len(changes)))
	for _, c := range changes {
		b = le.AppendUint64(b, uint64(c.base))
		b = le.AppendUint64(b, uint64(c.loc.Seg))
		b = le.AppendUint64(b, uint64(c.loc.Pos))
		b = le.AppendUint32(b, uint32(c.loc.Size))
	}
	return b
}

// ReplayCompact applies a compaction frame's payload (after the stream and
// shard prefix) found during recovery.
func (s *Shard) ReplayCompact(payload []byte) error {
	if len(payload) < 12 {
		return fmt.Errorf("%w: compaction frame of %d bytes", wal.ErrCorrupt, len(payload))
	}
	le := binary.LittleEndian
	cleanedTo := Offset(le.Uint64(payload))
	n := int(le.Uint32(payload[8:]))
	payload = payload[12:]
	if len(payload) != n*compactChangeLen {
		return fmt.Errorf("%w: compaction frame with %d changes in %d bytes", wal.ErrCorrupt, n, len(payload))
	}
	changes := make([]compactChange, n)
	for i := range changes {
		c := payload[i*compactChangeLen:]
		changes[i] = compactChange{base: Offset(le.Uint64(c)), loc: Location{
			Seg: int64(le.Uint64(c[8:])), Pos: wal.Position(le.Uint64(c[16:])), Size: int32(le.Uint32(c[24:]))}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyCompactLocked(changes)
	s.cleanedTo = max(s.cleanedTo, cleanedTo)
	return nil
}

// applyCompactLocked repoints or removes the entries named by changes
// (ascending by base; bases no longer indexed are skipped).
func (s *Shard) applyCompactLocked(changes []compactChange) {
	kept := index{front: s.idx.front, split: s.idx.front}
	var tail [][]byte
	var window int64
	c := 0
	newCacheFrom := -1
	for i, e := range s.idx.from(0) {
		data := s.dataLocked(i)
		for c < len(changes) && changes[c].base < e.Base {
			c++
		}
		if c < len(changes) && changes[c].base == e.Base {
			ch := changes[c]
			if data != nil {
				s.cached -= int64(len(data))
				data = nil
			}
			if ch.loc.Size < 0 {
				continue
			}
			e.Loc = ch.loc
		}
		if i >= s.cacheFrom && newCacheFrom < 0 {
			newCacheFrom = kept.len()
		}
		if newCacheFrom >= 0 {
			tail = append(tail, data)
			window += int64(e.Loc.Size)
		} else if len(kept.recent) >= 4*blockLen {
			kept.seal(kept.len()) // keeps a large index from being whole twice
		}
		kept.add(e)
	}
	if newCacheFrom < 0 {
		newCacheFrom = kept.len()
	}
	s.idx, s.cacheFrom, s.tail, s.window = kept, newCacheFrom, tail, window
	s.sealLocked()
	s.rewrites++
}

func isAborted(aborted []AbortedTxn, pid int64, off Offset) bool {
	for _, a := range aborted {
		if a.ProducerID == pid && off >= a.First && off <= a.Last {
			return true
		}
	}
	return false
}

// eachRecord calls fn with every record of batch b: its offset, its raw
// bytes (length prefix included) and its decoded fields (aliasing b).
func eachRecord(b []byte, h Header, fn func(off Offset, raw []byte, r *kmsg.Record)) error {
	raw, err := decompressor.Decompress(b[BatchHeaderLen:], kgo.CompressionCodecType(h.Codec()))
	if err != nil {
		return fmt.Errorf("%w: decompress: %v", ErrCorruptBatch, err)
	}
	var r kmsg.Record
	for i := int32(0); i < h.NumRecords; i++ {
		size, k := binary.Varint(raw)
		if k <= 0 || size < 3 || size > int64(len(raw)-k) {
			return fmt.Errorf("%w: record %d has bad length", ErrCorruptBatch, i)
		}
		rec := raw[:k+int(size)]
		raw = raw[k+int(size):]
		if err := r.UnsafeReadFrom(rec); err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorruptBatch, i, err)
		}
		fn(Offset(h.BaseOffset)+Offset(r.OffsetDelta), rec, &r)
	}
	return nil
}

// CheckKeys refuses a batch holding a record without a key (for compacted
// streams, as Kafka does).
func CheckKeys(b []byte, h Header) error {
	if h.Control() {
		return nil
	}
	var missing bool
	if err := eachRecord(b, h, func(_ Offset, _ []byte, r *kmsg.Record) {
		missing = missing || r.Key == nil
	}); err != nil {
		return err
	}
	if missing {
		return ErrNullKey
	}
	return nil
}

var (
	compressorsOnce sync.Once
	compressors     map[int8]kgo.Compressor
)

func initCompressors() {
	compressors = map[int8]kgo.Compressor{}
	for codec, c := range map[int8]kgo.CompressionCodec{
		1: kgo.GzipCompression(), 2: kgo.SnappyCompression(), 3: kgo.Lz4Compression(), 4: kgo.ZstdCompression(),
	} {
		compressors[codec], _ = kgo.DefaultCompressor(c)
	}
}

// rebuildBatch returns a copy of batch b holding only the records keep (raw
// record bytes, in order), compressed again with b's codec. Base offset,
// last offset delta, timestamps and producer fields stay as they were.
func rebuildBatch(b []byte, h Header, keep [][]byte) ([]byte, error) {
	var raw []byte
	for _, r := range keep {
		raw = append(raw, r...)
	}
	attrs := h.Attributes
	if codec := h.Codec(); codec != 0 {
		var err error
		if raw, err = compress(codec, raw); err != nil {
			return nil, err
		}
	}
	nb := make([]byte, BatchHeaderLen, BatchHeaderLen+len(raw))
	copy(nb, b[:BatchHeaderLen])
	nb = append(nb, raw...)
	be := binary.BigEndian
	be.PutUint32(nb[offLength:], uint32(len(nb)-12))
	be.PutUint16(nb[offAttributes:], uint16(attrs))
	be.PutUint32(nb[offNumRecords:], uint32(len(keep)))
	be.PutUint32(nb[offCRC:], crc32.Checksum(nb[offAttributes:], castagnoli))
	return nb, nil
}
