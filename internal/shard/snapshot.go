package shard

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/braidstream/braid/internal/wal"
)

// Snapshot is the part of a shard's state a checkpoint keeps: everything
// whose frames lie before the checkpoint's replay position.
type Snapshot struct {
	Key       Key
	LogStart  Offset
	Next      Offset
	entries   index // shares the shard's sealed blocks when taken from it
	producers map[int64]*producerState
	txns      map[int64]*openTxn
	aborted   []AbortedTxn
}

// Snapshot returns the shard's state covering its frames that are durable
// now, which is at least upTo (the checkpoint's replay position): replay
// skips batches a snapshot already holds. Later frames are left to replay.
func (s *Shard) Snapshot(upTo wal.Position) Snapshot {
	snap, _, _, _, _ := s.SnapshotSince(upTo, CheckpointMark{})
	return snap
}

// Len is the number of batches the snapshot holds.
func (snap *Snapshot) Len() int { return snap.entries.len() }

// Entries returns the snapshot's batches, in a new array.
func (snap *Snapshot) Entries() []Entry { return snap.entries.copyOut(0, snap.entries.len()) }

// OldestInLog returns the log position of the first batch the snapshot
// holds in the log; ok is false if it holds none there. Batches in
// segment files precede those in the log.
func (snap *Snapshot) OldestInLog() (pos wal.Position, ok bool) {
	return snap.entries.oldestInLog()
}

// CheckpointMark records which of a shard's entries a checkpoint holds, so
// that the next checkpoint can write only what changed since
// (SnapshotSince). The zero mark holds nothing.
type CheckpointMark struct {
	set      bool
	rewrites uint64 // the shard's rewrites when taken
	from     int64  // the first entry held, counted from the shard's first entry ever
	to       int64  // one past the last entry held, counted the same way
}

// SnapshotSince returns what Snapshot(upTo) returns, as a change to the
// snapshot that prev marks when it can: drop entries leave the front of
// prev's entries and snap.Entries follow the rest. full says snap holds
// every entry instead: prev is the zero mark, or compaction, a move or a
// restore changed entries prev holds. oldest is the lowest log position
// the snapshot's entries (all of them, not only the change's) point at,
// or -1 if none is in the log. next marks the entries the result holds.
func (s *Shard) SnapshotSince(upTo wal.Position, prev CheckpointMark) (snap Snapshot, drop int, full bool, oldest wal.Position, next CheckpointMark) {
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
	snap = Snapshot{Key: s.key, LogStart: s.logStart, Next: s.next}
	snap.txns, snap.aborted = s.snapshotTxnsLocked(upTo)
	// Entries in segments precede those in the log, and the log's are in
	// log order: the snapshot holds a prefix, up to the first entry in the
	// log at or past upTo.
	inLog := s.idx.firstInLog()
	cut := s.idx.search(func(e *Entry) bool { return e.Loc.Seg == InWAL && e.Loc.Pos >= upTo })
	if cut < s.idx.len() {
		snap.Next = s.idx.at(cut).Base
	}
	oldest = -1
	if inLog < cut {
		oldest = s.idx.at(inLog).Loc.Pos
	}
	next = CheckpointMark{set: true, rewrites: s.rewrites, from: s.dropped, to: s.dropped + int64(cut)}
	first := 0
	full = !prev.set || prev.rewrites != s.rewrites || next.from < prev.from || next.to < prev.to
	if !full {
		// prev held [prev.from, prev.to); the snapshot holds [next.from,
		// next.to): the front of prev's that is gone, then what follows.
		drop = int(min(next.from, prev.to) - prev.from)
		first = int(max(prev.to, next.from) - next.from)
	}
	snap.entries = s.idx.slice(first, cut)
	// Only the sequence windows of batches the snapshot holds: a batch
	// that is not durable yet must not be answered as a duplicate after a
	// crash took it back.
	snap.producers = cloneProducers(s.producers, snap.Next, upTo)
	return snap, drop, full, oldest, next
}

// ApplyChange applies to snap a change SnapshotSince returned for the
// shard it snapshots (with full false): drop entries leave the front, the
// change's entries follow, and the rest of the state is the change's.
// The entries kept are not copied: their blocks are shared.
func (snap *Snapshot) ApplyChange(change Snapshot, drop int) error {
	if change.Key != snap.Key {
		return fmt.Errorf("shard snapshot: a change of shard %s applied to %s", change.Key, snap.Key)
	}
	x := &snap.entries
	if drop < 0 || drop > x.len() {
		return fmt.Errorf("shard snapshot %s: %d entries dropped of %d", snap.Key, drop, x.len())
	}
	if x.len() > drop && change.entries.len() > 0 {
		if first, last := change.entries.at(0), x.last(); first.Base <= last.Last {
			return fmt.Errorf("shard snapshot %s: entry at offset %d follows one ending at %d", snap.Key, first.Base, last.Last)
		}
	}
	// Copies of the arrays (not of the blocks): a snapshot copied before
	// shares them, and sealing changes the recent array in place.
	x.blocks, x.recent = slices.Clone(x.blocks), slices.Clone(x.recent)
	x.dropFront(drop)
	x.extend(&change.entries)
	entries := *x
	*snap = change
	snap.entries = entries
	return nil
}

// Restore loads a checkpoint snapshot into an empty shard.
func (s *Shard) Restore(snap Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The snapshot's blocks are shared, not its arrays: a shard changes
	// its own in place.
	s.idx = snap.entries
	s.idx.blocks, s.idx.recent = slices.Clone(s.idx.blocks), slices.Clone(s.idx.recent)
	s.emptyTailLocked()
	s.sealLocked()
	s.rewrites++
	s.logStart = snap.LogStart
	s.next = snap.Next
	s.setProducersLocked(snap.producers)
	s.txns, s.aborted = snap.txns, snap.aborted
	s.hw.Store(int64(s.next))
}

// SnapshotFormat is how a checkpoint stores a shard's snapshot.
type SnapshotFormat int

const (
	// SnapshotPlainNoTxns: every entry in 44 bytes, no transaction state
	// (checkpoints BRDCKPT1).
	SnapshotPlainNoTxns SnapshotFormat = iota
	// SnapshotPlain: every entry in 44 bytes (BRDCKPT2, BRDCKPT3 and
	// their deltas, BRDCKDL1).
	SnapshotPlain
	// SnapshotPacked: entries in groups stored as the index's sealed
	// blocks, about 10 bytes an entry (BRDCKPT4, BRDCKDL2); what
	// AppendSnapshot writes.
	SnapshotPacked
)

const entryLen = 8 + 8 + 8 + 8 + 8 + 4

// AppendSnapshot encodes snap onto dst (little-endian) in the packed
// format.
func AppendSnapshot(dst []byte, snap Snapshot) []byte {
	return EncodeSnapshot(dst, &snap, nil)
}

// EncodeSnapshot is AppendSnapshot handing the encoding to flush in pieces
// of about 64 KiB as it goes (each time going on from an empty dst), so
// that a large index is never encoded whole in memory; what is left is
// returned. A nil flush leaves it all in the result.
func EncodeSnapshot(dst []byte, snap *Snapshot, flush func([]byte)) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint64(dst, snap.Key.Stream)
	dst = le.AppendUint32(dst, uint32(snap.Key.Shard))
	dst = le.AppendUint64(dst, uint64(snap.LogStart))
	dst = le.AppendUint64(dst, uint64(snap.Next))
	dst = appendIndex(dst, &snap.entries, flush)
	dst = appendProducers(dst, snap.producers)
	return appendTxns(dst, snap.txns, snap.aborted)
}

// AppendPlainSnapshot encodes snap onto dst in the SnapshotPlain format.
// Braid no longer writes it; tests do, for checkpoints written before
// BRDCKPT4, and to compare snapshots: unlike the packed format, its bytes
// follow from the entries alone, not from how they were sealed.
func AppendPlainSnapshot(dst []byte, snap Snapshot) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint64(dst, snap.Key.Stream)
	dst = le.AppendUint32(dst, uint32(snap.Key.Shard))
	dst = le.AppendUint64(dst, uint64(snap.LogStart))
	dst = le.AppendUint64(dst, uint64(snap.Next))
	dst = le.AppendUint32(dst, uint32(snap.entries.len()))
	for _, e := range snap.entries.from(0) {
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

// ReadSnapshot decodes one snapshot stored in format from b and returns
// the rest.
func ReadSnapshot(b []byte, format SnapshotFormat) (Snapshot, []byte, error) {
	le := binary.LittleEndian
	var snap Snapshot
	if len(b) < 32 {
		return snap, nil, fmt.Errorf("shard snapshot: truncated header")
	}
	snap.Key = Key{Stream: le.Uint64(b), Shard: int32(le.Uint32(b[8:]))}
	snap.LogStart = Offset(le.Uint64(b[12:]))
	snap.Next = Offset(le.Uint64(b[20:]))
	var err error
	if format == SnapshotPacked {
		snap.entries, b, err = readIndex(b[28:])
	} else {
		snap.entries, b, err = readPlainEntries(b[28:])
	}
	if err != nil {
		return snap, nil, fmt.Errorf("shard snapshot %s: %w", snap.Key, err)
	}
	snap.producers, b, err = readProducers(b)
	if err != nil || format == SnapshotPlainNoTxns {
		return snap, b, err
	}
	snap.txns, snap.aborted, b, err = readTxns(b)
	return snap, b, err
}

// readPlainEntries decodes entries stored whole (a u32 count, 44 bytes
// each), checked as readIndex checks them.
func readPlainEntries(b []byte) (index, []byte, error) {
	le := binary.LittleEndian
	n := int(le.Uint32(b))
	b = b[4:]
	if n < 0 || n > len(b)/entryLen {
		return index{}, nil, fmt.Errorf("%d entries do not fit in %d bytes", n, len(b))
	}
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{
			Base:  Offset(le.Uint64(b)),
			Last:  Offset(le.Uint64(b[8:])),
			MaxTS: int64(le.Uint64(b[16:])),
			Loc: Location{Seg: int64(le.Uint64(b[24:])), Pos: wal.Position(le.Uint64(b[32:])),
				Size: int32(le.Uint32(b[40:]))},
		}
		// Reads slice and allocate by these (found by FuzzCheckpointRecovery).
		switch e := es[i]; {
		case e.Last < e.Base || e.Loc.Size < BatchHeaderLen:
			return index{}, nil, fmt.Errorf("entry %d: offsets %d-%d, %d bytes", i, e.Base, e.Last, e.Loc.Size)
		case i > 0 && e.Base <= es[i-1].Last:
			return index{}, nil, fmt.Errorf("entry %d: offset %d follows one ending at %d", i, e.Base, es[i-1].Last)
		}
		b = b[entryLen:]
	}
	return packedIndexOf(es), b, nil
}
