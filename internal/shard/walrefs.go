package shard

import (
	"github.com/braidstream/braid/internal/wal"
)

// WALRefs calls add, in log order, for every batch of this shard whose
// bytes still live in the shared log: what the mover weighs when it
// decides whether copying them out frees enough log to pay.
func (s *Shard) WALRefs(add func(pos wal.Position, size int32)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.idx.from(s.idx.firstInLog()) {
		add(e.Loc.Pos, e.Loc.Size)
	}
}

// RefChanges counts the changes that can leave log bytes unreferenced:
// entries dropped from the front, and rewrites (compaction, moves,
// restores). Appends do not count.
func (s *Shard) RefChanges() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return uint64(s.dropped) + s.rewrites
}
