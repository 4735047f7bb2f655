package shard

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/wal"
)

// Routed writes (elastic shards, docs/design/resharding.md): a batch a
// producer addressed to one shard whose records belong elsewhere is cut
// into one batch per destination shard, and all of them go to the log as
// one frame, so that a crash keeps all or none. The frame also carries the
// sequence note of the shard the producer addressed (the origin), which
// keeps the producer's sequence state for batches addressed there wherever
// their records went.

// KindRouted is the frame of a routed write:
//
//	origin stream u64 | origin shard i32 | flags u8 (1: sequence note)
//	| producer id i64 | epoch i16 | first sequence i32 | last offset delta i32
//	| max timestamp i64 | parts u32 | { stream u64 | shard i32 | len u32 | RecordBatch }...
const KindRouted wal.Kind = 7

const routedNoteLen = FramePrefixLen + 1 + 8 + 2 + 4 + 4 + 8 + 4

// RoutedPart is one destination's batch of a routed write.
type RoutedPart struct {
	Shard  *Shard
	Batch  []byte // stamped in place; retained as cache where the shard's tail is read
	Header Header
}

// RoutedResult tells where a routed write went.
type RoutedResult struct {
	Bases []Offset     // per part
	End   wal.Position // durable once the log is durable to End
	// Duplicate: the origin had already taken this batch (a retry);
	// nothing was written and End is the original's.
	Duplicate bool
}

// AppendRouted writes parts to their shards in one log frame and notes the
// batch (header oh) in the origin's producer state when it is idempotent.
// The origin may be closed; every destination must be open, else ErrClosed
// and nothing is written. Destination parts are not checked against the
// destinations' sequence state, which belongs to batches addressed there.
func AppendRouted(origin *Shard, oh Header, parts []RoutedPart, logAppendTime int64) (RoutedResult, error) {
	locked := []*Shard{origin}
	for _, p := range parts {
		if !slices.Contains(locked, p.Shard) {
			locked = append(locked, p.Shard)
		}
	}
	slices.SortFunc(locked, func(a, b *Shard) int {
		if a.key.Stream != b.key.Stream {
			return cmpU64(a.key.Stream, b.key.Stream)
		}
		return int(a.key.Shard) - int(b.key.Shard)
	})
	for _, s := range locked {
		s.mu.Lock()
	}
	defer func() {
		for _, s := range locked {
			s.mu.Unlock()
		}
	}()
	dup, err := origin.checkSequenceLocked(oh)
	if err != nil {
		return RoutedResult{}, err
	}
	if dup != nil {
		return RoutedResult{End: dup.end, Duplicate: true}, nil
	}
	for _, p := range parts {
		if p.Shard.closed {
			return RoutedResult{}, fmt.Errorf("%w: shard %s", ErrClosed, p.Shard.key)
		}
	}
	le := binary.LittleEndian
	note := make([]byte, 0, routedNoteLen+len(parts)*(FramePrefixLen+4))
	note = appendPrefix(note, origin.key)
	var flags byte
	if oh.ProducerID >= 0 {
		flags = 1
	}
	note = append(note, flags)
	note = le.AppendUint64(note, uint64(oh.ProducerID))
	note = le.AppendUint16(note, uint16(oh.ProducerEpoch))
	note = le.AppendUint32(note, uint32(oh.FirstSequence))
	note = le.AppendUint32(note, uint32(oh.LastOffsetDelta))
	note = le.AppendUint64(note, uint64(oh.MaxTimestamp))
	note = le.AppendUint32(note, uint32(len(parts)))
	// The frame body is the note, then per part a prefix and the batch,
	// handed to the log as pieces: the log copies them once.
	pieces := make([][]byte, 0, 1+2*len(parts))
	pieces = append(pieces, note)
	res := RoutedResult{Bases: make([]Offset, len(parts))}
	at := make([]int, len(parts))
	size := routedNoteLen
	for i, p := range parts {
		res.Bases[i] = p.Shard.next
		// Two parts for one shard (never made by the engine) get
		// consecutive offsets.
		p.Shard.next += Offset(p.Header.LastOffsetDelta) + 1
		stamp(p.Batch, int64(res.Bases[i]), logAppendTime)
		hdr := len(note)
		note = appendPrefix(note, p.Shard.key)
		note = le.AppendUint32(note, uint32(len(p.Batch)))
		size += FramePrefixLen + 4
		at[i] = size
		size += len(p.Batch)
		pieces = append(pieces, note[hdr:], p.Batch)
	}
	pieces[0] = note[:routedNoteLen]
	for _, p := range parts { // undo the reservation; addLocked sets next
		p.Shard.next -= Offset(p.Header.LastOffsetDelta) + 1
	}
	start, end, err := origin.log.Append(KindRouted, pieces...)
	if err != nil {
		return RoutedResult{}, err
	}
	now := time.Now().UnixNano()
	for i, p := range parts {
		h := p.Header
		maxTS := h.MaxTimestamp
		if logAppendTime >= 0 {
			maxTS = logAppendTime
		}
		pos := start + wal.HeaderLen + wal.Position(at[i])
		s := p.Shard
		data := p.Batch
		if !s.cachesTail(now) {
			data = nil
		}
		s.addLocked(Entry{
			Base: res.Bases[i], Last: res.Bases[i] + Offset(h.LastOffsetDelta), MaxTS: maxTS,
			Loc: Location{Seg: InWAL, Pos: pos, Size: int32(len(p.Batch))},
		}, data)
		s.pending = append(s.pending, mark{end: end, next: s.next})
		s.beginTxnLocked(h, res.Bases[i], pos)
		s.lastAppend.Store(now)
		s.wroteRecords.Add(int64(h.NumRecords))
		s.wroteBytes.Add(int64(len(p.Batch)))
	}
	origin.recordSequenceLocked(oh, routedBase, end)
	res.End = end
	return res, nil
}

// routedBase is the base offset a sequence note records: a routed batch
// has no offset in its origin.
const routedBase Offset = -1

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func appendPrefix(dst []byte, k Key) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, k.Stream)
	return binary.LittleEndian.AppendUint32(dst, uint32(k.Shard))
}

func readPrefix(b []byte) Key {
	return Key{Stream: binary.LittleEndian.Uint64(b), Shard: int32(binary.LittleEndian.Uint32(b[8:]))}
}

// RoutedFrame is a decoded routed frame.
type RoutedFrame struct {
	Origin Key
	// Note is the origin's sequence note; HasNote is false for a batch
	// without a producer id.
	Note    Header
	HasNote bool
	Parts   []RoutedFramePart
}

// RoutedFramePart is one destination batch of a routed frame; At is its
// offset in the frame body.
type RoutedFramePart struct {
	Key   Key
	Batch []byte
	At    int
}

// DecodeRouted parses a routed frame body.
func DecodeRouted(body []byte) (RoutedFrame, error) {
	var f RoutedFrame
	if len(body) < routedNoteLen {
		return f, fmt.Errorf("%w: routed frame of %d bytes", ErrCorruptBatch, len(body))
	}
	le := binary.LittleEndian
	f.Origin = readPrefix(body)
	b := body[FramePrefixLen:]
	f.HasNote = b[0]&1 != 0
	f.Note = Header{
		ProducerID: int64(le.Uint64(b[1:])), ProducerEpoch: int16(le.Uint16(b[9:])),
		FirstSequence: int32(le.Uint32(b[11:])), LastOffsetDelta: int32(le.Uint32(b[15:])),
		MaxTimestamp: int64(le.Uint64(b[19:])),
	}
	n := le.Uint32(b[27:])
	at := routedNoteLen
	for range n {
		if len(body)-at < FramePrefixLen+4 {
			return f, fmt.Errorf("%w: routed frame cut short", ErrCorruptBatch)
		}
		k := readPrefix(body[at:])
		size := int(le.Uint32(body[at+FramePrefixLen:]))
		at += FramePrefixLen + 4
		if size < BatchHeaderLen || size > len(body)-at {
			return f, fmt.Errorf("%w: routed frame part of %d bytes", ErrCorruptBatch, size)
		}
		f.Parts = append(f.Parts, RoutedFramePart{Key: k, Batch: body[at : at+size], At: at})
		at += size
	}
	if at != len(body) {
		return f, fmt.Errorf("%w: routed frame has %d bytes after its parts", ErrCorruptBatch, len(body)-at)
	}
	return f, nil
}

// ReplayRouted indexes a destination part of a routed frame found during
// recovery (pos: where its batch starts in the log), like Replay but
// without touching the shard's sequence state.
func (s *Shard) ReplayRouted(b []byte, pos wal.Position) error {
	return s.replay(b, pos, false)
}

// ReplayNote applies the sequence note of a routed frame to its origin.
func (s *Shard) ReplayNote(h Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordSequenceLocked(h, routedBase, 0)
}

// CloseForReshard closes the shard to appends and returns its next offset
// and the end of its last frame that may not be durable yet (0: all are).
// Markers of transactions already open may still be appended.
func (s *Shard) CloseForReshard() (next Offset, end wal.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if n := len(s.pending); n > 0 {
		end = s.pending[n-1].end
	}
	return s.next, end
}

// Closed reports whether the shard takes no appends.
func (s *Shard) Closed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// RouteRecords cuts batch b (header h) into batches by destination: dest is
// called with each record's key (nil for a null key) and returns a
// destination index in [0, n). Records keep their order within each
// destination; the new batches keep b's producer fields, attributes, codec
// and base timestamp, with offset deltas renumbered. When every record goes
// to one destination, that destination is given b itself.
func RouteRecords(b []byte, h Header, n int, dest func(key []byte) int) ([][]byte, []Header, error) {
	raw, err := decompressor.Decompress(b[BatchHeaderLen:], kgo.CompressionCodecType(h.Codec()))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: decompress: %v", ErrCorruptBatch, err)
	}
	// Pass 1: where each record goes and how big each new batch is.
	type rec struct {
		attrs   byte
		tsDelta int64
		rest    []byte // key, value and headers, as sent
		dest    int32
	}
	recs := make([]rec, 0, h.NumRecords)
	type group struct {
		size     int
		count    int32
		maxDelta int64
		firstIdx int32
	}
	groups := make([]group, n)
	used := 0
	first := -1
	for i := int32(0); i < h.NumRecords; i++ {
		size, k := binary.Varint(raw)
		if k <= 0 || size < 3 || size > int64(len(raw)-k) {
			return nil, nil, fmt.Errorf("%w: record %d has bad length", ErrCorruptBatch, i)
		}
		r := raw[k : k+int(size)]
		raw = raw[k+int(size):]
		attrs := r[0]
		r = r[1:]
		tsDelta, k1 := binary.Varint(r)
		if k1 <= 0 {
			return nil, nil, fmt.Errorf("%w: record %d has a bad timestamp delta", ErrCorruptBatch, i)
		}
		r = r[k1:]
		_, k2 := binary.Varint(r)
		if k2 <= 0 {
			return nil, nil, fmt.Errorf("%w: record %d has a bad offset delta", ErrCorruptBatch, i)
		}
		r = r[k2:]
		keyLen, k3 := binary.Varint(r)
		if k3 <= 0 || keyLen < -1 || keyLen > int64(len(r)-k3) {
			return nil, nil, fmt.Errorf("%w: record %d has a bad key length", ErrCorruptBatch, i)
		}
		var key []byte
		if keyLen >= 0 {
			key = r[k3 : k3+int(keyLen)]
		}
		d := dest(key)
		g := &groups[d]
		if g.count == 0 {
			g.firstIdx = i
			used++
			if first < 0 {
				first = d
			}
		}
		body := 1 + varintLen(tsDelta) + varintLen(int64(g.count)) + len(r)
		g.size += varintLen(int64(body)) + body
		g.count++
		g.maxDelta = max(g.maxDelta, tsDelta)
		recs = append(recs, rec{attrs: attrs, tsDelta: tsDelta, rest: r, dest: int32(d)})
	}
	batches := make([][]byte, n)
	headers := make([]Header, n)
	if used <= 1 {
		if first >= 0 {
			batches[first], headers[first] = b, h
		}
		return batches, headers, nil
	}
	// Pass 2: write the records into their new batches.
	compressed := h.Codec() != 0
	for d := range groups {
		if groups[d].count == 0 {
			continue
		}
		if compressed {
			batches[d] = make([]byte, 0, groups[d].size)
		} else {
			batches[d] = make([]byte, BatchHeaderLen, BatchHeaderLen+groups[d].size)
		}
		groups[d].count = 0 // reused as the next offset delta
	}
	for _, r := range recs {
		g := &groups[r.dest]
		out := batches[r.dest]
		body := 1 + varintLen(r.tsDelta) + varintLen(int64(g.count)) + len(r.rest)
		out = binary.AppendVarint(out, int64(body))
		out = append(out, r.attrs)
		out = binary.AppendVarint(out, r.tsDelta)
		out = binary.AppendVarint(out, int64(g.count))
		out = append(out, r.rest...)
		batches[r.dest] = out
		g.count++
	}
	for d := range groups {
		g := groups[d]
		if g.count == 0 {
			continue
		}
		nb := batches[d]
		if compressed {
			body, err := compress(h.Codec(), nb)
			if err != nil {
				return nil, nil, err
			}
			nb = make([]byte, BatchHeaderLen, BatchHeaderLen+len(body))
			nb = append(nb, body...)
		}
		copy(nb, b[:BatchHeaderLen])
		nh := h
		nh.NumRecords, nh.LastOffsetDelta = g.count, g.count-1
		nh.Length = int32(len(nb) - 12)
		if h.Attributes&attrTimestampType == 0 {
			nh.MaxTimestamp = h.FirstTimestamp + g.maxDelta
		}
		if h.ProducerID >= 0 && h.FirstSequence >= 0 {
			nh.FirstSequence = int32((int64(h.FirstSequence) + int64(g.firstIdx)) % (1 << 31))
		}
		be := binary.BigEndian
		be.PutUint32(nb[offLength:], uint32(nh.Length))
		be.PutUint32(nb[offLastOffsetDelta:], uint32(nh.LastOffsetDelta))
		be.PutUint64(nb[offMaxTimestamp:], uint64(nh.MaxTimestamp))
		be.PutUint32(nb[offFirstSequence:], uint32(nh.FirstSequence))
		be.PutUint32(nb[offNumRecords:], uint32(nh.NumRecords))
		be.PutUint32(nb[offCRC:], crc32.Checksum(nb[offAttributes:], castagnoli))
		batches[d], headers[d] = nb, nh
	}
	return batches, headers, nil
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

func compress(codec int8, raw []byte) ([]byte, error) {
	compressorsOnce.Do(initCompressors)
	var buf bytes.Buffer
	out, used := compressors[codec].Compress(&buf, raw)
	if int8(used) != codec {
		return nil, fmt.Errorf("recompress with codec %d gave codec %d", codec, used)
	}
	return append([]byte(nil), out...), nil
}
