package shard

import (
	"encoding/binary"
	"fmt"

	"github.com/braidstream/braid/internal/wal"
)

// Snapshot is the part of a shard's state a checkpoint keeps: everything
// whose frames lie before the checkpoint's replay position.
type Snapshot struct {
	Key       Key
	LogStart  Offset
	Next      Offset
	Entries   []Entry
	producers map[int64]*producerState
	txns      map[int64]*openTxn
	aborted   []AbortedTxn
}

// Snapshot returns the shard's state covering its frames that are durable
// now, which is at least upTo (the checkpoint's replay position): replay
// skips batches a snapshot already holds. Later frames are left to replay.
func (s *Shard) Snapshot(upTo wal.Position) Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	// Frames of this shard are appended under s.mu, so every frame of it
	// below the durable position read here is durable, and none above is.
	upTo = max(upTo, s.log.Durable())
	// Next is where the first batch the snapshot leaves to replay starts,
	// or the shard's next offset when it holds them all. It is never
	// derived from the last entry kept: compaction can drop trailing
	// batches, and DeleteRecords every batch, and offsets below next must
	// never be handed out again after a restart.
	snap := Snapshot{Key: s.key, LogStart: s.logStart, Next: s.next}
	snap.txns, snap.aborted = s.snapshotTxnsLocked(upTo)
	for _, e := range s.entries {
		if e.Loc.Seg == InWAL && e.Loc.Pos >= upTo {
			snap.Next = e.Base
			break
		}
		e.data = nil
		snap.Entries = append(snap.Entries, e)
	}
	// Only the sequence windows of batches the snapshot holds: a batch
	// that is not durable yet must not be answered as a duplicate after a
	// crash took it back.
	snap.producers = cloneProducers(s.producers, snap.Next, upTo)
	return snap
}

// Restore loads a checkpoint snapshot into an empty shard.
func (s *Shard) Restore(snap Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries[:0], snap.Entries...)
	s.logStart = snap.LogStart
	s.next = snap.Next
	s.producers = snap.producers
	s.txns, s.aborted = snap.txns, snap.aborted
	s.hw.Store(int64(s.next))
}

const entryLen = 8 + 8 + 8 + 8 + 8 + 4

// AppendSnapshot encodes snap onto dst (little-endian).
func AppendSnapshot(dst []byte, snap Snapshot) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint64(dst, snap.Key.Stream)
	dst = le.AppendUint32(dst, uint32(snap.Key.Shard))
	dst = le.AppendUint64(dst, uint64(snap.LogStart))
	dst = le.AppendUint64(dst, uint64(snap.Next))
	dst = le.AppendUint32(dst, uint32(len(snap.Entries)))
	for _, e := range snap.Entries {
		dst = le.AppendUint64(dst, uint64(e.Base))
		dst = le.AppendUint64(dst, uint64(e.Last))
		dst = le.AppendUint64(dst, uint64(e.MaxTS))
		dst = le.AppendUint64(dst, uint64(e.Loc.Seg))
		dst = le.AppendUint64(dst, uint64(e.Loc.Pos))
		dst = le.AppendUint32(dst, uint32(e.Loc.Size))
	}
	dst = appendProducers(dst, snap.producers)
	return appendTxns(dst, snap.txns, snap.aborted)
}

// ReadSnapshot decodes one snapshot from b and returns the rest; withTxns
// is false for checkpoints written before transactions existed.
func ReadSnapshot(b []byte, withTxns bool) (Snapshot, []byte, error) {
	le := binary.LittleEndian
	var snap Snapshot
	if len(b) < 32 {
		return snap, nil, fmt.Errorf("shard snapshot: truncated header")
	}
	snap.Key = Key{Stream: le.Uint64(b), Shard: int32(le.Uint32(b[8:]))}
	snap.LogStart = Offset(le.Uint64(b[12:]))
	snap.Next = Offset(le.Uint64(b[20:]))
	n := int(le.Uint32(b[28:]))
	b = b[32:]
	if n < 0 || n > len(b)/entryLen {
		return snap, nil, fmt.Errorf("shard snapshot: %d entries do not fit in %d bytes", n, len(b))
	}
	snap.Entries = make([]Entry, n)
	for i := range snap.Entries {
		snap.Entries[i] = Entry{
			Base:  Offset(le.Uint64(b)),
			Last:  Offset(le.Uint64(b[8:])),
			MaxTS: int64(le.Uint64(b[16:])),
			Loc: Location{Seg: int64(le.Uint64(b[24:])), Pos: wal.Position(le.Uint64(b[32:])),
				Size: int32(le.Uint32(b[40:]))},
		}
		// Reads slice and allocate by these (found by FuzzCheckpointRecovery).
		if e := snap.Entries[i]; e.Last < e.Base || e.Loc.Size < BatchHeaderLen {
			return snap, nil, fmt.Errorf("shard snapshot: entry %d: offsets %d-%d, %d bytes", i, e.Base, e.Last, e.Loc.Size)
		}
		b = b[entryLen:]
	}
	var err error
	snap.producers, b, err = readProducers(b)
	if err != nil || !withTxns {
		return snap, b, err
	}
	snap.txns, snap.aborted, b, err = readTxns(b)
	return snap, b, err
}
