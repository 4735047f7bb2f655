package group

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/braidstream/braid/internal/wal"
)

// KindOffsets is the WAL frame kind of offset changes.
const KindOffsets wal.Kind = 3

// Log is what the offset store needs from the shared write-ahead log.
type Log interface {
	Append(kind wal.Kind, parts ...[]byte) (start, end wal.Position, err error)
	WaitDurable(ctx context.Context, end wal.Position) error
	Durable() wal.Position
}

// TopicPartition names a shard by stream name and shard id, as Kafka does.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Commit is one committed offset.
type Commit struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	TimeMillis  int64
}

type entryJSON struct {
	T  string `json:"t"`
	P  int32  `json:"p"`
	O  int64  `json:"o,omitempty"`
	E  int32  `json:"e,omitempty"`
	M  string `json:"m,omitempty"`
	TS int64  `json:"ts,omitempty"`
}

type change struct {
	G   string      `json:"g"`
	Set []entryJSON `json:"set,omitempty"`
	Del []entryJSON `json:"del,omitempty"`
	All bool        `json:"all,omitempty"`
	// Txn names the transactional producer of a transactional commit:
	// Set is held aside until a change with End "commit" applies it or
	// End "abort" drops it.
	Txn *int64 `json:"x,omitempty"`
	End string `json:"end,omitempty"`
	// DelTopic removes every group's offsets of a stream, held-aside
	// transactional ones included, as they stand when the change applies:
	// commits that raced the deletion go too.
	DelTopic string `json:"dt,omitempty"`
}

type pendingChange struct {
	end   wal.Position
	c     change
	group *groupRecord // a group membership record instead of c
}

// Offsets is the durable store of committed offsets.
type Offsets struct {
	log Log // nil until attached; replay needs none

	mu     sync.Mutex
	groups map[string]map[TopicPartition]Commit
	// txn holds transactional commits until their transaction ends, by
	// group and producer id.
	txn     map[string]map[int64]map[TopicPartition]Commit
	pending []pendingChange // appended, maybe not durable; in log order
	// meta is the durable group membership (see persist.go).
	meta map[string]*storedGroup
}

// NewOffsets returns an empty store; Attach gives it the log to write to.
func NewOffsets() *Offsets {
	return &Offsets{groups: map[string]map[TopicPartition]Commit{}, txn: map[string]map[int64]map[TopicPartition]Commit{}}
}

// Attach sets the log that commits are written to.
func (o *Offsets) Attach(log Log) { o.log = log }

func (o *Offsets) applyLocked(c change) {
	if c.DelTopic != "" {
		o.deleteTopicLocked(c.DelTopic)
		return
	}
	if c.Txn != nil {
		o.applyTxnLocked(c)
		return
	}
	if c.All {
		delete(o.groups, c.G)
	}
	g := o.groups[c.G]
	for _, e := range c.Set {
		if g == nil {
			g = map[TopicPartition]Commit{}
			o.groups[c.G] = g
		}
		g[TopicPartition{e.T, e.P}] = Commit{Offset: e.O, LeaderEpoch: e.E, Metadata: e.M, TimeMillis: e.TS}
	}
	for _, e := range c.Del {
		delete(g, TopicPartition{e.T, e.P})
	}
	if g != nil && len(g) == 0 {
		delete(o.groups, c.G)
	}
}

func (o *Offsets) applyTxnLocked(c change) {
	pid := *c.Txn
	byPID := o.txn[c.G]
	switch c.End {
	case "":
		if byPID == nil {
			byPID = map[int64]map[TopicPartition]Commit{}
			o.txn[c.G] = byPID
		}
		m := byPID[pid]
		if m == nil {
			m = map[TopicPartition]Commit{}
			byPID[pid] = m
		}
		for _, e := range c.Set {
			m[TopicPartition{e.T, e.P}] = Commit{Offset: e.O, LeaderEpoch: e.E, Metadata: e.M, TimeMillis: e.TS}
		}
		return
	case "commit":
		if m := byPID[pid]; len(m) > 0 {
			g := o.groups[c.G]
			if g == nil {
				g = map[TopicPartition]Commit{}
				o.groups[c.G] = g
			}
			for tp, cm := range m {
				g[tp] = cm
			}
		}
	}
	delete(byPID, pid)
	if len(byPID) == 0 {
		delete(o.txn, c.G)
	}
}

// drainLocked applies every queued change whose frame is durable.
func (o *Offsets) drainLocked() {
	if o.log == nil {
		return
	}
	durable := o.log.Durable()
	i := 0
	for ; i < len(o.pending) && o.pending[i].end <= durable; i++ {
		if p := o.pending[i]; p.group != nil {
			o.applyGroupLocked(*p.group)
		} else {
			o.applyLocked(p.c)
		}
	}
	o.pending = o.pending[i:]
}

func (o *Offsets) write(ctx context.Context, c change) error {
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("group: encode offsets: %w", err)
	}
	o.mu.Lock()
	_, end, err := o.log.Append(KindOffsets, body)
	if err == nil {
		o.pending = append(o.pending, pendingChange{end: end, c: c})
	}
	o.mu.Unlock()
	if err != nil {
		return err
	}
	return o.WaitDurable(ctx, end)
}

// Commit durably sets offsets for a group; it returns once they are durable
// and readable.
func (o *Offsets) Commit(ctx context.Context, group string, commits map[TopicPartition]Commit) error {
	c := change{G: group}
	for tp, cm := range commits {
		c.Set = append(c.Set, entryJSON{T: tp.Topic, P: tp.Partition, O: cm.Offset, E: cm.LeaderEpoch, M: cm.Metadata, TS: cm.TimeMillis})
	}
	return o.write(ctx, c)
}

// TxnCommit durably stores offsets committed within producer pid's
// transaction; they become visible when the transaction commits.
func (o *Offsets) TxnCommit(ctx context.Context, group string, pid int64, commits map[TopicPartition]Commit) error {
	c := change{G: group, Txn: &pid}
	for tp, cm := range commits {
		c.Set = append(c.Set, entryJSON{T: tp.Topic, P: tp.Partition, O: cm.Offset, E: cm.LeaderEpoch, M: cm.Metadata, TS: cm.TimeMillis})
	}
	return o.write(ctx, c)
}

// EndTxn appends the end of producer pid's transaction for group: its
// offsets are applied (commit) or dropped. It does not wait; the change is
// visible once durable at the returned position.
func (o *Offsets) EndTxn(group string, pid int64, commit bool) (wal.Position, error) {
	c := change{G: group, Txn: &pid, End: "abort"}
	if commit {
		c.End = "commit"
	}
	body, err := json.Marshal(c)
	if err != nil {
		return 0, fmt.Errorf("group: encode offsets: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	_, end, err := o.log.Append(KindOffsets, body)
	if err == nil {
		o.pending = append(o.pending, pendingChange{end: end, c: c})
	}
	return end, err
}

// Unstable returns the partitions of group with offsets committed in a
// transaction that has not ended (OffsetFetch's require_stable).
func (o *Offsets) Unstable(group string) map[TopicPartition]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drainLocked()
	var out map[TopicPartition]bool
	for _, m := range o.txn[group] {
		for tp := range m {
			if out == nil {
				out = map[TopicPartition]bool{}
			}
			out[tp] = true
		}
	}
	return out
}

// Delete durably removes some offsets of a group.
func (o *Offsets) Delete(ctx context.Context, group string, tps []TopicPartition) error {
	c := change{G: group}
	for _, tp := range tps {
		c.Del = append(c.Del, entryJSON{T: tp.Topic, P: tp.Partition})
	}
	return o.write(ctx, c)
}

// DeleteTopic durably removes every group's offsets for a stream, as Kafka
// does when a topic is deleted, so a stream recreated under the same name
// does not inherit them.
func (o *Offsets) DeleteTopic(ctx context.Context, topic string) error {
	return o.write(ctx, change{DelTopic: topic})
}

func (o *Offsets) deleteTopicLocked(topic string) {
	for g, m := range o.groups {
		for tp := range m {
			if tp.Topic == topic {
				delete(m, tp)
			}
		}
		if len(m) == 0 {
			delete(o.groups, g)
		}
	}
	for _, byPID := range o.txn {
		for _, m := range byPID {
			for tp := range m {
				if tp.Topic == topic {
					delete(m, tp)
				}
			}
		}
	}
}

// Topics returns the streams that some group has durable offsets for.
func (o *Offsets) Topics() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drainLocked()
	seen := map[string]bool{}
	for _, m := range o.groups {
		for tp := range m {
			seen[tp.Topic] = true
		}
	}
	for _, byPID := range o.txn {
		for _, m := range byPID {
			for tp := range m {
				seen[tp.Topic] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// DeleteGroup durably removes every offset of a group.
func (o *Offsets) DeleteGroup(ctx context.Context, group string) error {
	return o.write(ctx, change{G: group, All: true})
}

// Fetch returns a group's durable committed offsets.
func (o *Offsets) Fetch(group string) map[TopicPartition]Commit {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drainLocked()
	out := make(map[TopicPartition]Commit, len(o.groups[group]))
	for tp, c := range o.groups[group] {
		out[tp] = c
	}
	return out
}

// Committed returns a group's durable committed offset on one shard; ok is
// false when it has none.
func (o *Offsets) Committed(group string, tp TopicPartition) (offset int64, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drainLocked()
	c, ok := o.groups[group][tp]
	return c.Offset, ok
}

// Groups returns the names of groups holding committed offsets, sorted.
func (o *Offsets) Groups() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drainLocked()
	out := make([]string, 0, len(o.groups))
	for g := range o.groups {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// Replay applies a frame found during recovery (durable by definition).
func (o *Offsets) Replay(body []byte) error {
	var c change
	if err := json.Unmarshal(body, &c); err != nil {
		return fmt.Errorf("group: decode offsets frame: %w", err)
	}
	o.mu.Lock()
	o.applyLocked(c)
	o.mu.Unlock()
	return nil
}

// Snapshot encodes the durable state (offsets and group membership), for
// the engine's checkpoint. Changes after the checkpoint's replay position
// may be included: replaying them again, in order, ends in the same state
// (group records are whole or idempotent deltas).
func (o *Offsets) Snapshot() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.drainLocked()
	var all []change
	for g, m := range o.groups {
		c := change{G: g}
		for tp, cm := range m {
			c.Set = append(c.Set, entryJSON{T: tp.Topic, P: tp.Partition, O: cm.Offset, E: cm.LeaderEpoch, M: cm.Metadata, TS: cm.TimeMillis})
		}
		all = append(all, c)
	}
	for g, byPID := range o.txn {
		for pid, m := range byPID {
			c := change{G: g, Txn: &pid}
			for tp, cm := range m {
				c.Set = append(c.Set, entryJSON{T: tp.Topic, P: tp.Partition, O: cm.Offset, E: cm.LeaderEpoch, M: cm.Metadata, TS: cm.TimeMillis})
			}
			all = append(all, c)
		}
	}
	b, _ := json.Marshal(snapshotV2{V: 2, Offsets: all, Groups: o.groupRecordsLocked()})
	return b
}

// Restore loads a Snapshot into an empty store.
func (o *Offsets) Restore(b []byte) error {
	var snap snapshotV2
	if isLegacySnapshot(b) {
		if err := json.Unmarshal(b, &snap.Offsets); err != nil {
			return fmt.Errorf("group: decode offsets snapshot: %w", err)
		}
	} else if err := json.Unmarshal(b, &snap); err != nil {
		return fmt.Errorf("group: decode offsets snapshot: %w", err)
	} else if snap.V != 2 {
		return fmt.Errorf("group: offsets snapshot version %d unknown", snap.V)
	}
	for i := range snap.Groups {
		if !snap.Groups[i].Full {
			return fmt.Errorf("%w: group %q in a snapshot is not whole", ErrCorruptGroupRecord, snap.Groups[i].G)
		}
		if err := snap.Groups[i].check(); err != nil {
			return err
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range snap.Offsets {
		o.applyLocked(c)
	}
	for _, r := range snap.Groups {
		o.applyGroupLocked(r)
	}
	return nil
}
