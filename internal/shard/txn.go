package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/braidstream/braid/internal/wal"
)

// Transactions, as a shard sees them (KIP-98). A transactional producer's
// first batch on the shard opens a transaction there; the coordinator later
// appends a control batch (a commit or abort marker) that closes it. The
// shard keeps, per producer, the open transaction's first offset, and per
// aborted transaction its offset range:
//
//   - the last stable offset (LSO) is the first offset of the oldest
//     transaction not yet closed by a durable marker, or the high watermark;
//     read_committed readers never read past it;
//   - the aborted list tells read_committed readers which producers'
//     batches in a fetched range to drop (Kafka's aborted-transaction index).
//
// Both are rebuilt by replay from the batches themselves, and checkpointed
// as of the durable position, so they survive restarts like the data.

// ErrNotInTransaction is returned for a marker for a producer that has no
// open transaction on the shard; nothing is written.
var ErrNotInTransaction = errors.New("shard: producer has no open transaction here")

// openTxn is a transaction open on this shard.
type openTxn struct {
	first    Offset
	firstPos wal.Position // Loc.Pos of its first batch
	// marker is the offset of the control batch closing it, -1 while
	// open; the transaction still holds the LSO back until the marker is
	// durable (below the high watermark).
	marker    Offset
	markerPos wal.Position
}

// AbortedTxn is an aborted transaction's range on a shard: a producer's
// batches from First up to its abort marker at Last.
type AbortedTxn struct {
	ProducerID  int64
	First, Last Offset
	pos         wal.Position // Loc.Pos of the marker
}

// Control record types (the key of a control record).
const (
	controlAbort  = 0
	controlCommit = 1
)

// beginTxnLocked notes a transactional batch appended at base.
func (s *Shard) beginTxnLocked(h Header, base Offset, pos wal.Position) {
	if !h.Transactional() || h.Control() || h.ProducerID < 0 {
		return
	}
	if t := s.txns[h.ProducerID]; t != nil && t.marker < 0 {
		return // already open
	}
	if s.txns == nil {
		s.txns = map[int64]*openTxn{}
	}
	s.txns[h.ProducerID] = &openTxn{first: base, firstPos: pos, marker: -1}
}

// endTxnLocked applies a marker appended at base: the producer's open
// transaction is closed, and remembered as aborted if it was.
func (s *Shard) endTxnLocked(pid int64, commit bool, base Offset, pos wal.Position) {
	t := s.txns[pid]
	if t == nil || t.marker >= 0 {
		return
	}
	t.marker, t.markerPos = base, pos
	if commit {
		return
	}
	for _, a := range s.aborted {
		if a.ProducerID == pid && a.Last == base {
			return // replayed over a checkpoint that already had it
		}
	}
	s.aborted = append(s.aborted, AbortedTxn{ProducerID: pid, First: t.first, Last: base, pos: pos})
}

// markerEpochLocked applies a marker's producer epoch: a marker written with
// a bumped epoch fences every batch of the older one.
func (s *Shard) markerEpochLocked(pid int64, epoch int16, ts int64) {
	st := s.producerLocked(pid)
	if st == nil {
		st = &producerState{epoch: epoch}
		s.setProducerLocked(pid, st)
	}
	if epoch > st.epoch {
		*st = producerState{epoch: epoch, lastTS: st.lastTS}
	}
	st.lastTS = max(st.lastTS, ts)
}

// pruneTxnsLocked forgets transactions whose marker is below hw and aborted
// ranges wholly below the log start.
func (s *Shard) pruneTxnsLocked(hw Offset) {
	for pid, t := range s.txns {
		if t.marker >= 0 && t.marker < hw {
			delete(s.txns, pid)
		}
	}
	i := 0
	for i < len(s.aborted) && s.aborted[i].Last < s.logStart {
		i++
	}
	if i > 0 {
		s.aborted = append(s.aborted[:0:0], s.aborted[i:]...)
	}
}

// lsoLocked returns the last stable offset for high watermark hw.
func (s *Shard) lsoLocked(hw Offset) Offset {
	lso := hw
	for _, t := range s.txns {
		if t.marker < 0 || t.marker >= hw {
			lso = min(lso, t.first)
		}
	}
	return lso
}

// LastStableOffset returns the offset read_committed readers may read up to
// (exclusive): the first offset of the oldest transaction not yet durably
// closed, or the high watermark.
func (s *Shard) LastStableOffset() Offset {
	hw := s.HighWatermark()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lsoLocked(hw)
}

// OpenTxnFirst returns the first offset of producer pid's open transaction
// on this shard, or -1.
func (s *Shard) OpenTxnFirst(pid int64) Offset {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if t := s.txns[pid]; t != nil && t.marker < 0 {
		return t.first
	}
	return -1
}

// MarkerResult tells where a marker went.
type MarkerResult struct {
	Offset Offset
	End    wal.Position
}

// AppendMarker closes producer pid's open transaction on the shard with a
// commit or abort control batch written at epoch. It returns
// ErrNotInTransaction, writing nothing, if the producer has no open
// transaction here (it never wrote to the shard, or the marker is already
// written: completing a transaction again after a crash is a no-op).
func (s *Shard) AppendMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32, now int64) (MarkerResult, error) {
	var prefix [FramePrefixLen]byte
	binary.LittleEndian.PutUint64(prefix[:8], s.key.Stream)
	binary.LittleEndian.PutUint32(prefix[8:], uint32(s.key.Shard))

	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.txns[pid]
	if t == nil || t.marker >= 0 {
		return MarkerResult{}, ErrNotInTransaction
	}
	if st := s.producerLocked(pid); st != nil && epoch < st.epoch {
		return MarkerResult{}, fmt.Errorf("%w: marker for producer %d at epoch %d, current %d", ErrInvalidProducerEpoch, pid, epoch, st.epoch)
	}
	base := s.next
	b := ControlBatch(int64(base), pid, epoch, commit, coordinatorEpoch, now)
	start, end, err := s.log.Append(KindBatch, prefix[:], b)
	if err != nil {
		return MarkerResult{}, err
	}
	pos := start + wal.HeaderLen + FramePrefixLen
	s.addLocked(Entry{Base: base, Last: base, MaxTS: now, Loc: Location{Seg: InWAL, Pos: pos, Size: int32(len(b))}}, b)
	s.pending = append(s.pending, mark{end: end, next: s.next})
	s.markerEpochLocked(pid, epoch, now)
	s.endTxnLocked(pid, commit, base, pos)
	return MarkerResult{Offset: base, End: end}, nil
}

// ControlBatch encodes a one-record control batch (a transaction marker) as
// Kafka writes it: transactional and control attributes, no sequence, the
// record key (version 0, type) and value (version 0, coordinator epoch).
func ControlBatch(base, pid int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	typ := int16(controlAbort)
	if commit {
		typ = controlCommit
	}
	var rec []byte
	rec = append(rec, 0)              // attributes
	rec = binary.AppendVarint(rec, 0) // timestamp delta
	rec = binary.AppendVarint(rec, 0) // offset delta
	rec = binary.AppendVarint(rec, 4) // key length
	rec = binary.BigEndian.AppendUint16(rec, 0)
	rec = binary.BigEndian.AppendUint16(rec, uint16(typ))
	rec = binary.AppendVarint(rec, 6) // value length
	rec = binary.BigEndian.AppendUint16(rec, 0)
	rec = binary.BigEndian.AppendUint32(rec, uint32(coordinatorEpoch))
	rec = binary.AppendVarint(rec, 0) // headers

	b := make([]byte, BatchHeaderLen, BatchHeaderLen+binary.MaxVarintLen64+len(rec))
	be := binary.BigEndian
	be.PutUint64(b[offBaseOffset:], uint64(base))
	b[offMagic] = 2
	be.PutUint16(b[offAttributes:], attrTransactional|attrControl)
	be.PutUint32(b[offLastOffsetDelta:], 0)
	be.PutUint64(b[offFirstTimestamp:], uint64(ts))
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint64(b[offProducerID:], uint64(pid))
	be.PutUint16(b[offProducerEpoch:], uint16(epoch))
	be.PutUint32(b[offFirstSequence:], 0xffffffff)
	be.PutUint32(b[offNumRecords:], 1)
	b = binary.AppendVarint(b, int64(len(rec)))
	b = append(b, rec...)
	be.PutUint32(b[offLength:], uint32(len(b)-12))
	be.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// ControlType decodes a control batch's marker: commit (true) or abort.
func ControlType(b []byte) (commit bool, err error) {
	if len(b) < BatchHeaderLen {
		return false, fmt.Errorf("%w: short control batch", ErrCorruptBatch)
	}
	raw := b[BatchHeaderLen:]
	size, k := binary.Varint(raw)
	if k <= 0 || size < 0 || size > int64(len(raw)-k) {
		return false, fmt.Errorf("%w: control record length", ErrCorruptBatch)
	}
	rec := raw[k : k+int(size)]
	if len(rec) < 1 {
		return false, fmt.Errorf("%w: empty control record", ErrCorruptBatch)
	}
	rec = rec[1:] // attributes
	for range 2 { // timestamp delta, offset delta
		_, n := binary.Varint(rec)
		if n <= 0 {
			return false, fmt.Errorf("%w: control record varint", ErrCorruptBatch)
		}
		rec = rec[n:]
	}
	klen, n := binary.Varint(rec)
	if n <= 0 || klen < 4 || klen > int64(len(rec)-n) {
		return false, fmt.Errorf("%w: control record key", ErrCorruptBatch)
	}
	key := rec[n:]
	switch binary.BigEndian.Uint16(key[2:]) {
	case controlCommit:
		return true, nil
	case controlAbort:
		return false, nil
	default:
		return false, fmt.Errorf("%w: control record type %d", ErrCorruptBatch, binary.BigEndian.Uint16(key[2:]))
	}
}

// ReadCommitted is Read for read_committed readers: it stops at the last
// stable offset and returns the aborted transactions overlapping what it
// returns, and the last stable offset itself.
func (s *Shard) ReadCommitted(from Offset, maxBytes int, atLeastOne bool) ([]byte, []AbortedTxn, Offset, error) {
	return s.ReadCommittedTo(nil, nil, from, maxBytes, atLeastOne)
}

// ReadCommittedTo is ReadCommitted returning the batches in memory from
// alloc, copied from win when they all lie in it (win may be nil).
func (s *Shard) ReadCommittedTo(alloc Alloc, win *LogWindow, from Offset, maxBytes int, atLeastOne bool) ([]byte, []AbortedTxn, Offset, error) {
	hw := s.HighWatermark()
	s.mu.RLock()
	lso := s.lsoLocked(hw)
	s.mu.RUnlock()
	data, next, err := s.read(alloc, win, from, hw, lso, maxBytes, atLeastOne)
	if err != nil || len(data) == 0 {
		return data, nil, lso, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []AbortedTxn
	for _, a := range s.aborted {
		if a.Last >= from && a.First < next {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].First < out[j].First })
	return data, out, lso, nil
}

// TxnStats counts a shard's open and remembered aborted transactions.
func (s *Shard) TxnStats() (open, aborted int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.txns {
		if t.marker < 0 {
			open++
		}
	}
	return open, len(s.aborted)
}

// snapshotTxnsLocked returns the transaction state as of durable position
// upTo: transactions opened by a later frame are left to replay, and ones
// whose marker is at or after upTo are still open.
func (s *Shard) snapshotTxnsLocked(upTo wal.Position) (map[int64]*openTxn, []AbortedTxn) {
	txns := map[int64]*openTxn{}
	for pid, t := range s.txns {
		if t.firstPos >= upTo || t.marker >= 0 && t.markerPos < upTo {
			continue
		}
		txns[pid] = &openTxn{first: t.first, firstPos: t.firstPos, marker: -1}
	}
	var aborted []AbortedTxn
	for _, a := range s.aborted {
		if a.pos < upTo {
			aborted = append(aborted, a)
		}
	}
	return txns, aborted
}

func appendTxns(dst []byte, txns map[int64]*openTxn, aborted []AbortedTxn) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, uint32(len(txns)))
	for pid, t := range txns {
		dst = le.AppendUint64(dst, uint64(pid))
		dst = le.AppendUint64(dst, uint64(t.first))
		dst = le.AppendUint64(dst, uint64(t.firstPos))
	}
	dst = le.AppendUint32(dst, uint32(len(aborted)))
	for _, a := range aborted {
		dst = le.AppendUint64(dst, uint64(a.ProducerID))
		dst = le.AppendUint64(dst, uint64(a.First))
		dst = le.AppendUint64(dst, uint64(a.Last))
		dst = le.AppendUint64(dst, uint64(a.pos))
	}
	return dst
}

func readTxns(b []byte) (map[int64]*openTxn, []AbortedTxn, []byte, error) {
	le := binary.LittleEndian
	if len(b) < 4 {
		return nil, nil, nil, fmt.Errorf("shard snapshot: truncated transaction count")
	}
	n := int(le.Uint32(b))
	b = b[4:]
	if n > len(b)/24 {
		return nil, nil, nil, fmt.Errorf("shard snapshot: %d open transactions do not fit in %d bytes", n, len(b))
	}
	txns := make(map[int64]*openTxn, n)
	for range n {
		txns[int64(le.Uint64(b))] = &openTxn{first: Offset(le.Uint64(b[8:])), firstPos: wal.Position(le.Uint64(b[16:])), marker: -1}
		b = b[24:]
	}
	if len(b) < 4 {
		return nil, nil, nil, fmt.Errorf("shard snapshot: truncated aborted count")
	}
	n = int(le.Uint32(b))
	b = b[4:]
	if n > len(b)/32 {
		return nil, nil, nil, fmt.Errorf("shard snapshot: %d aborted transactions do not fit in %d bytes", n, len(b))
	}
	aborted := make([]AbortedTxn, n)
	for i := range aborted {
		aborted[i] = AbortedTxn{ProducerID: int64(le.Uint64(b)), First: Offset(le.Uint64(b[8:])),
			Last: Offset(le.Uint64(b[16:])), pos: wal.Position(le.Uint64(b[24:]))}
		b = b[32:]
	}
	return txns, aborted, b, nil
}

// ReadsRemain reports whether a read_committed reader at offset from would
// still be handed a record below the last stable offset: a data batch with
// records, not part of an aborted transaction. Readers skip transaction
// markers and aborted records, and clients commit the offset after the last
// record they were given, so a group that has read everything of a shard
// whose log ends with them has committed short of the high watermark.
func (s *Shard) ReadsRemain(from Offset) (bool, error) {
	for {
		data, aborted, _, err := s.ReadCommitted(from, 64<<10, true)
		if err != nil || len(data) == 0 {
			return false, err
		}
		for len(data) > 0 {
			h, err := ParseHeader(data)
			if err != nil {
				return false, err
			}
			size := 12 + int(h.Length) // base offset and length precede the length
			if size > len(data) || h.Length <= 0 {
				return false, fmt.Errorf("%w: batch length %d", ErrCorruptBatch, h.Length)
			}
			last := Offset(h.BaseOffset) + Offset(h.LastOffsetDelta)
			if last >= from && h.NumRecords > 0 && !h.Control() && !(h.Transactional() && abortedBatch(aborted, h)) {
				return true, nil
			}
			from = max(from, last+1)
			data = data[size:]
		}
	}
}

func abortedBatch(aborted []AbortedTxn, h Header) bool {
	for _, a := range aborted {
		if a.ProducerID == h.ProducerID && Offset(h.BaseOffset) >= a.First && Offset(h.BaseOffset) <= a.Last {
			return true
		}
	}
	return false
}
