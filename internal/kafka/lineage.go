package kafka

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/group"
	"github.com/braidstream/braid/internal/shard"
)

// The lineage gate's inputs (group/lineage.go holds the rule): the
// catalog's lineage and the shards' offsets from the engine, the group's
// committed offsets from the offset store.

// lineageGate is the group.Gate over this server's engine.
func (s *Server) lineageGate(groupName string) func(group.TopicPartition) bool {
	offsets := s.eng.Offsets()
	return group.LineageGate(s.shardLineage, func(tp group.TopicPartition) (int64, bool) {
		return offsets.Committed(groupName, tp)
	})
}

// shardLineage describes one shard for the gate.
func (s *Server) shardLineage(tp group.TopicPartition) (group.ShardLineage, bool) {
	st := s.eng.Stream(tp.Topic)
	i := int(tp.Partition)
	if st == nil || i < 0 || i >= len(st.Shards) || i >= len(st.Stream.Shards) || int(st.Stream.Shards[i].ID) != i {
		return group.ShardLineage{}, false
	}
	cs := st.Stream.Shards[i]
	if cs.State != catalog.ShardClosed && len(cs.Parents) == 0 {
		return group.ShardLineage{}, true // the common case: nothing to read
	}
	l := group.ShardLineage{Closed: cs.State == catalog.ShardClosed}
	for _, p := range cs.Parents {
		l.Parents = append(l.Parents, int32(p))
	}
	sh := st.Shards[i]
	logStart, hw, _ := sh.Offsets()
	l.LogStart, l.HighWatermark, l.LastStable = int64(logStart), int64(hw), int64(sh.LastStableOffset())
	if l.Closed {
		// The end the catalog recorded was durable before the shard was
		// closed; markers of transactions open then may follow it.
		l.HighWatermark = max(l.HighWatermark, cs.EndOffset)
		l.ReadsRemain = func(from int64) bool {
			return s.readsRemain(st.TopicID, tp.Partition, int64(l.HighWatermark), from, func() (bool, error) {
				return sh.ReadsRemain(shard.Offset(from))
			})
		}
	}
	return l, true
}

// readsRemain caches Shard.ReadsRemain for closed shards, whose records
// below the high watermark no longer change: the gate asks on every timer
// tick while a child is held back, and the answer for a committed offset
// needs a read.
func (s *Server) readsRemain(topic [16]byte, part int32, hw, from int64, read func() (bool, error)) bool {
	k := remainKey{topic, part, hw, from}
	s.remainMu.Lock()
	v, ok := s.remain[k]
	s.remainMu.Unlock()
	if ok {
		return v
	}
	v, err := read()
	if err != nil {
		return true // cannot tell: hold the children back, ask again later
	}
	s.remainMu.Lock()
	if len(s.remain) >= 4096 {
		clear(s.remain)
	}
	s.remain[k] = v
	s.remainMu.Unlock()
	return v
}

type remainKey struct {
	topic    [16]byte
	part     int32
	hw, from int64
}

// filterAssignment is the group.AssignmentFilter for the classic
// "consumer" protocol's member assignment.
func filterAssignment(b []byte, keep func(group.TopicPartition) bool) ([]byte, []group.TopicPartition) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		return b, nil // not ours to judge; the client will complain
	}
	var held []group.TopicPartition
	for i := range a.Topics {
		t := &a.Topics[i]
		kept := t.Partitions[:0:0]
		for _, p := range t.Partitions {
			tp := group.TopicPartition{Topic: t.Topic, Partition: p}
			if keep(tp) {
				kept = append(kept, p)
			} else {
				held = append(held, tp)
			}
		}
		t.Partitions = kept
	}
	if len(held) == 0 {
		return b, nil
	}
	return a.AppendTo(nil), held
}
