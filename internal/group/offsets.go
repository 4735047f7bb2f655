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
}

type pendingChange struct {
	end wal.Position
	c   change
}

// Offsets is the durable store of committed offsets.
type Offsets struct {
	log Log // nil until attached; replay needs none

	mu      sync.Mutex
	groups  map[string]map[TopicPartition]Commit
	pending []pendingChange // appended, maybe not durable; in log order
}

// NewOffsets returns an empty store; Attach gives it the log to write to.
func NewOffsets() *Offsets { return &Offsets{groups: map[string]map[TopicPartition]Commit{}} }

// Attach sets the log that commits are written to.
func (o *Offsets) Attach(log Log) { o.log = log }

func (o *Offsets) applyLocked(c change) {
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

// drainLocked applies every queued change whose frame is durable.
func (o *Offsets) drainLocked() {
	if o.log == nil {
		return
	}
	durable := o.log.Durable()
	i := 0
	for ; i < len(o.pending) && o.pending[i].end <= durable; i++ {
		o.applyLocked(o.pending[i].c)
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
	if err := o.log.WaitDurable(ctx, end); err != nil {
		return err
	}
	o.mu.Lock()
	o.drainLocked()
	o.mu.Unlock()
	return nil
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
	o.mu.Lock()
	o.drainLocked()
	var changes []change
	for g, m := range o.groups {
		c := change{G: g}
		for tp := range m {
			if tp.Topic == topic {
				c.Del = append(c.Del, entryJSON{T: tp.Topic, P: tp.Partition})
			}
		}
		if len(c.Del) > 0 {
			changes = append(changes, c)
		}
	}
	o.mu.Unlock()
	for _, c := range changes {
		if err := o.write(ctx, c); err != nil {
			return err
		}
	}
	return nil
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

// Snapshot encodes the durable state, for the engine's checkpoint. Changes
// after the checkpoint's replay position may be included: replaying them
// again, in order, ends in the same state.
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
	b, _ := json.Marshal(all)
	return b
}

// Restore loads a Snapshot into an empty store.
func (o *Offsets) Restore(b []byte) error {
	var all []change
	if err := json.Unmarshal(b, &all); err != nil {
		return fmt.Errorf("group: decode offsets snapshot: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range all {
		o.applyLocked(c)
	}
	return nil
}
