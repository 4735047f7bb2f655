package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// Idempotent producers (KIP-98): a batch carries its producer id, epoch and
// the sequence number of its first record. Per shard and producer, the
// shard remembers the last producerWindow batches it appended (the most a
// client has in flight), so that:
//
//   - a retried batch matching one of them is not appended again and is
//     answered with the offset it got the first time;
//   - a batch that does not continue the sequence is refused
//     (OUT_OF_ORDER_SEQUENCE_NUMBER), so nothing is lost or reordered;
//   - a batch from an older epoch is refused (INVALID_PRODUCER_EPOCH).
//
// The state is part of every checkpoint and rebuilt from the batch headers
// the log replays, so it survives restarts exactly like the data.

var (
	ErrOutOfOrderSequence   = errors.New("shard: out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("shard: producer epoch is older than the current one")
	ErrUnknownProducer      = errors.New("shard: no state for this producer id")
)

const producerWindow = 5

type seqBatch struct {
	first, last int32
	base        Offset
	end         wal.Position // durable once the log is durable to end; 0 after restart
}

type producerState struct {
	epoch  int16
	n      int   // batches held in window
	lastTS int64 // max timestamp of its last batch, for expiry
	// window holds the last n batches, oldest first. Held inline, a
	// batch's check reads one object where a slice was a second cache
	// miss per shard (1,000 shards take turns in a wide produce).
	window [producerWindow]seqBatch
}

// batches are the batches held, oldest first.
func (st *producerState) batches() []seqBatch { return st.window[:st.n] }

// push remembers b as the newest batch, forgetting the oldest beyond
// producerWindow.
func (st *producerState) push(b seqBatch) {
	if st.n == producerWindow {
		copy(st.window[:], st.window[1:])
		st.n--
	}
	st.window[st.n] = b
	st.n++
}

// producerLocked returns the state of producer id, or nil (mu held for
// writing: it remembers the last one found, the one a shard's batches
// almost always come from, so that a batch does not cost a map lookup).
// Every change to s.producers goes through setProducerLocked,
// forgetProducerLocked or setProducersLocked, which keep that consistent.
func (s *Shard) producerLocked(id int64) *producerState {
	if s.lastProducer != nil && s.lastProducerID == id {
		return s.lastProducer
	}
	st := s.producers[id]
	if st != nil {
		s.lastProducerID, s.lastProducer = id, st
	}
	return st
}

func (s *Shard) setProducerLocked(id int64, st *producerState) {
	if s.producers == nil {
		s.producers = map[int64]*producerState{}
	}
	s.producers[id] = st
	s.lastProducerID, s.lastProducer = id, st
}

func (s *Shard) forgetProducerLocked(id int64) {
	delete(s.producers, id)
	if s.lastProducerID == id {
		s.lastProducer = nil
	}
}

func (s *Shard) setProducersLocked(m map[int64]*producerState) {
	s.producers, s.lastProducer = m, nil
}

// lastSequence returns the sequence of a batch's last record; sequences wrap
// from MaxInt32 to 0.
func lastSequence(h Header) int32 {
	return int32((int64(h.FirstSequence) + int64(h.LastOffsetDelta)) % (1 << 31))
}

func nextSequence(s int32) int32 {
	if s == 1<<31-1 {
		return 0
	}
	return s + 1
}

// checkSequenceLocked decides what to do with an idempotent batch: append it
// (nil, nil), answer it as a duplicate (the original, nil), or refuse it.
func (s *Shard) checkSequenceLocked(h Header) (*seqBatch, error) {
	if h.ProducerID < 0 {
		return nil, nil
	}
	st := s.producerLocked(h.ProducerID)
	switch {
	case st == nil:
		if h.FirstSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d starts at sequence %d", ErrUnknownProducer, h.ProducerID, h.FirstSequence)
		}
		return nil, nil
	case h.ProducerEpoch < st.epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, st.epoch)
	case h.ProducerEpoch > st.epoch:
		if h.FirstSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d new epoch %d starts at sequence %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.FirstSequence)
		}
		return nil, nil
	}
	last := lastSequence(h)
	held := st.batches()
	for i := range held {
		if b := &held[i]; b.first == h.FirstSequence && b.last == last {
			dup := *b
			return &dup, nil
		}
	}
	if len(held) > 0 {
		if want := nextSequence(held[len(held)-1].last); h.FirstSequence != want {
			return nil, fmt.Errorf("%w: producer %d sent sequence %d, expected %d", ErrOutOfOrderSequence, h.ProducerID, h.FirstSequence, want)
		}
	}
	return nil, nil
}

// recordSequenceLocked remembers an appended idempotent batch. Recording
// the same batch twice (a checkpoint's state, then its replay) is harmless.
func (s *Shard) recordSequenceLocked(h Header, base Offset, end wal.Position) {
	if h.ProducerID < 0 {
		return
	}
	st := s.producerLocked(h.ProducerID)
	if st == nil || h.ProducerEpoch > st.epoch {
		st = &producerState{epoch: h.ProducerEpoch}
		s.setProducerLocked(h.ProducerID, st)
	}
	st.lastTS = max(st.lastTS, h.MaxTimestamp)
	for _, b := range st.batches() {
		// A routed batch's note has no base (routedBase): it is known by
		// its sequences.
		if b.base == base && (base != routedBase || b.first == h.FirstSequence && b.last == lastSequence(h)) {
			return
		}
	}
	st.push(seqBatch{first: h.FirstSequence, last: lastSequence(h), base: base, end: end})
}

// cloneProducers copies the producer states, keeping only the windows of
// batches below next, and the sequence notes of routed batches whose frame
// is durable (end at most upTo).
func cloneProducers(m map[int64]*producerState, next Offset, upTo wal.Position) map[int64]*producerState {
	out := make(map[int64]*producerState, len(m))
	for id, st := range m {
		c := &producerState{epoch: st.epoch, lastTS: st.lastTS}
		for _, b := range st.batches() {
			if b.base == routedBase && b.end > upTo {
				continue
			}
			if b.base < next {
				c.push(b)
			}
		}
		out[id] = c
	}
	return out
}

func appendProducers(dst []byte, m map[int64]*producerState) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, uint32(len(m)))
	for id, st := range m {
		dst = le.AppendUint64(dst, uint64(id))
		dst = le.AppendUint64(dst, uint64(st.lastTS))
		dst = le.AppendUint16(dst, uint16(st.epoch))
		dst = append(dst, byte(st.n))
		for _, b := range st.batches() {
			dst = le.AppendUint32(dst, uint32(b.first))
			dst = le.AppendUint32(dst, uint32(b.last))
			dst = le.AppendUint64(dst, uint64(b.base))
		}
	}
	return dst
}

func readProducers(b []byte) (map[int64]*producerState, []byte, error) {
	le := binary.LittleEndian
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("shard snapshot: truncated producer count")
	}
	n := int(le.Uint32(b))
	b = b[4:]
	if n > len(b)/19 {
		return nil, nil, fmt.Errorf("shard snapshot: %d producers do not fit in %d bytes", n, len(b))
	}
	m := make(map[int64]*producerState, n)
	for range n {
		if len(b) < 19 {
			return nil, nil, fmt.Errorf("shard snapshot: truncated producer")
		}
		id, st := int64(le.Uint64(b)), &producerState{lastTS: int64(le.Uint64(b[8:])), epoch: int16(le.Uint16(b[16:]))}
		k := int(b[18])
		b = b[19:]
		if k > producerWindow || len(b) < k*16 {
			return nil, nil, fmt.Errorf("shard snapshot: bad producer window of %d", k)
		}
		for range k {
			st.push(seqBatch{first: int32(le.Uint32(b)), last: int32(le.Uint32(b[4:])), base: Offset(le.Uint64(b[8:]))})
			b = b[16:]
		}
		m[id] = st
	}
	return m, b, nil
}

// ProducerInfo describes an idempotent producer a shard knows.
type ProducerInfo struct {
	ID            int64
	Epoch         int16
	LastSequence  int32
	LastTimestamp int64
	// TxnStart is the first offset of its open transaction here, or -1.
	TxnStart Offset
}

// Producers lists the producers whose state the shard keeps.
func (s *Shard) Producers() []ProducerInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]ProducerInfo, 0, len(s.producers))
	for id, st := range s.producers {
		pi := ProducerInfo{ID: id, Epoch: st.epoch, LastSequence: -1, LastTimestamp: st.lastTS, TxnStart: -1}
		if t := s.txns[id]; t != nil && t.marker < 0 {
			pi.TxnStart = t.first
		}
		if st.n > 0 {
			pi.LastSequence = st.window[st.n-1].last
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ExpireProducers forgets producers whose last batch is older than maxAge
// (Kafka's producer.id.expiration.ms); a later batch from one of them must
// start a new sequence. It returns how many were forgotten.
func (s *Shard) ExpireProducers(maxAge time.Duration, now time.Time) int {
	cutoff := now.Add(-maxAge).UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, st := range s.producers {
		if st.lastTS < cutoff {
			s.forgetProducerLocked(id)
			n++
		}
	}
	return n
}
