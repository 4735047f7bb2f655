package group

import "time"

// The lineage gate (docs/design/resharding.md, "Readers: the lineage gate"):
// a consumer group is handed a child shard only once it has consumed every
// parent to its end, so that each key's records reach the group in the order
// they were acknowledged across splits and merges.
//
// The rule is pure and lives here; the Kafka door supplies what it reads
// (the catalog's lineage, the shards' offsets, the group's committed
// offsets) through ShardLineage and a committed-offset lookup, because the
// engine imports this package and not the other way round.

// ShardLineage is what the gate reads about one shard.
type ShardLineage struct {
	Parents []int32 // shard ids in the same stream
	Closed  bool
	// LogStart, HighWatermark and LastStable are the shard's offsets.
	LogStart, HighWatermark, LastStable int64
	// ReadsRemain reports whether a reader at offset from would still be
	// given a record; nil: whenever from is below the high watermark.
	ReadsRemain func(from int64) bool
}

// Drained reports whether a group is done with shard s: s is closed and
// either holds no records (log start = end: never written, or all of it
// deleted by retention) or no transaction is open on s (one could still
// commit records the group has not read) and the group's committed offset
// has reached the end, or is followed only by what readers skip
// (transaction markers, aborted records): clients commit the offset after
// the last record they were given, so a shard whose log ends with a commit
// marker is never committed to its high watermark. committed is the
// group's committed offset on s, has whether it has one.
func Drained(s ShardLineage, committed int64, has bool) bool {
	switch {
	case !s.Closed:
		return false
	case s.LogStart >= s.HighWatermark:
		return true
	case !has || s.LastStable < s.HighWatermark:
		return false
	case committed >= s.HighWatermark:
		return true
	}
	return s.ReadsRemain != nil && !s.ReadsRemain(committed)
}

// LineageGate returns the gate for one evaluation: whether a shard may be
// handed to the group whose offsets committed reads. A shard is assignable
// when every parent is drained and itself assignable (so a grandchild waits
// for the whole line above it, even if an offset was committed on a parent
// by hand). shard reports a shard's lineage (ok false: unknown, which holds
// nothing back). Answers are remembered for the evaluation, so a deep
// lineage is walked once.
func LineageGate(shard func(TopicPartition) (ShardLineage, bool), committed func(TopicPartition) (int64, bool)) func(TopicPartition) bool {
	memo := map[TopicPartition]bool{}
	var assignable func(TopicPartition) bool
	assignable = func(tp TopicPartition) bool {
		if v, ok := memo[tp]; ok {
			return v
		}
		memo[tp] = false  // lineage has no cycles; this only guards against a corrupt one
		s, _ := shard(tp) // unknown: no parents
		v := true
		for _, p := range s.Parents {
			ptp := TopicPartition{Topic: tp.Topic, Partition: p}
			ps, known := shard(ptp)
			if !known {
				continue
			}
			off, has := committed(ptp)
			if !Drained(ps, off, has) || !assignable(ptp) {
				v = false
				break
			}
		}
		memo[tp] = v
		return v
	}
	return assignable
}

// Gate returns, for one group, the function that says whether a shard may
// be handed to it. Each call starts a fresh evaluation (see LineageGate).
// It is called with the coordinator's lock held, so it may take the
// offsets' and shards' locks but never the coordinator's.
type Gate func(group string) func(TopicPartition) bool

// AssignmentFilter removes from a classic "consumer" protocol member
// assignment the shards keep refuses, keeping everything else (version,
// user data); it returns the new assignment and the shards it removed.
// Assignments it cannot decode are returned as they are. The Kafka door
// implements it, since the encoding is the protocol's.
type AssignmentFilter func(assignment []byte, keep func(TopicPartition) bool) ([]byte, []TopicPartition)

// SetLineageGate installs the lineage gate: KIP-848 assignors skip shards
// the gate refuses, classic assignments are filtered through filter, and
// the coordinator starts a new assignment once a held-back shard becomes
// assignable. Without a gate every shard is assignable.
func (c *Coordinator) SetLineageGate(gate Gate, filter AssignmentFilter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate, c.filter = gate, filter
	if c.copts.Topics == nil {
		return // the KIP-848 side is off: nothing to recompute
	}
	for _, g := range c.consumers {
		g.target = nil // recompute with the gate
		c.refreshTargetLocked(g)
	}
}

// anyAssignable reports whether one of held may be handed to the group now.
func (c *Coordinator) anyAssignable(group string, held map[TopicPartition]bool) bool {
	if c.gate == nil || len(held) == 0 {
		return false
	}
	keep := c.gate(group)
	for tp := range held {
		if keep(tp) {
			return true
		}
	}
	return false
}

// releaseHeldLocked starts a new assignment for every group holding back a
// shard that has become assignable: a commit reached a parent's end, a
// transaction on it ended, or retention emptied it. Polled by the timer
// loop, so every way a parent can drain is seen, whatever changed it.
func (c *Coordinator) releaseHeldLocked(now time.Time) {
	for _, g := range c.consumers {
		if len(g.members) > 0 && c.anyAssignable(g.name, g.heldBack) {
			g.epoch++
			c.refreshTargetLocked(g)
			c.persistConsumerLocked(g, nil, nil)
		}
	}
	for _, g := range c.groups {
		if g.state == StateStable && c.anyAssignable(g.name, g.heldBack) {
			g.heldBack = nil
			c.prepareRebalanceLocked(g, now)
		}
	}
}
