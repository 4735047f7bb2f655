package group

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// Group membership is durable, as Kafka keeps it in __consumer_offsets: a
// restarted node knows every group's generation (classic) or epochs
// (KIP-848), its members and their assignments, so members carry on
// without a rebalance and their commits succeed.
//
// A change is one KindGroup frame in the shared log. Its body is a version
// byte (1) and a JSON group record:
//
//	+---------+---------------------------------------------------------+
//	| version | {"g":"name","type":"classic"|"consumer", header fields, |
//	|  0x01   |  "full":true|false,"m":[members...],"rm":["id",...]}    |
//	+---------+---------------------------------------------------------+
//
// A classic group is written whole ("full") when its leader hands in the
// assignment (as Kafka stores it on SyncGroup; "held" lists the shards the
// lineage gate kept out of it), when a static member
// replaces its member id, and when it empties (a full record with no
// members removes it). A consumer group is written as deltas: the member a
// heartbeat changed and the group header, or the members that left or were
// fenced; a group whose last member goes is removed. Heartbeats that change
// nothing write nothing.
//
// Records are applied to Offsets' durable state in log order with the
// offset changes, and the checkpoint holds them as full records.

// KindGroup is the WAL frame kind of group membership records.
const KindGroup wal.Kind = 6

const groupRecordVersion = 1

// ErrCorruptGroupRecord marks a group record that cannot be decoded.
var ErrCorruptGroupRecord = errors.New("group: corrupt group record")

const (
	typeClassic  = "classic"
	typeConsumer = "consumer"
)

type tpsRecord struct {
	T string  `json:"t"`
	P []int32 `json:"p"`
}

type memberRecord struct {
	ID       string `json:"id"`
	Instance string `json:"inst,omitempty"`
	Client   string `json:"client,omitempty"`
	Host     string `json:"host,omitempty"`
	// Classic members.
	SessionMs   int64  `json:"sess,omitempty"`
	RebalanceMs int64  `json:"rebal,omitempty"`
	Metadata    []byte `json:"meta,omitempty"` // for the group's protocol
	Assignment  []byte `json:"asgn,omitempty"`
	// Consumer (KIP-848) members.
	Rack      string      `json:"rack,omitempty"`
	Epoch     int32       `json:"epoch,omitempty"`
	PrevEpoch int32       `json:"prev,omitempty"`
	Topics    []string    `json:"topics,omitempty"`
	Regex     string      `json:"regex,omitempty"`
	Assignor  string      `json:"assignor,omitempty"`
	Owned     []tpsRecord `json:"own,omitempty"`
	Revoking  []tpsRecord `json:"revoke,omitempty"`
	// LeftStatic: a static member that left with epoch -2; its instance
	// may come back under a new member id and take its shards.
	LeftStatic bool `json:"left,omitempty"`
}

type groupRecord struct {
	G    string `json:"g"`
	Type string `json:"type"`
	// Classic groups.
	Generation   int32  `json:"gen,omitempty"`
	ProtocolType string `json:"pt,omitempty"`
	Protocol     string `json:"proto,omitempty"`
	Leader       string `json:"leader,omitempty"`
	// Held are the shards the lineage gate kept out of the generation's
	// assignment: a restarted node still rebalances when they drain.
	Held []tpsRecord `json:"held,omitempty"`
	// Consumer groups.
	Epoch           int32  `json:"epoch,omitempty"`
	AssignmentEpoch int32  `json:"aepoch,omitempty"`
	MetaHash        uint64 `json:"mh,omitempty"`
	// Full: Members is the whole group (none: the group is gone).
	// Otherwise Members are added or replaced and Removed dropped.
	Full    bool           `json:"full,omitempty"`
	Members []memberRecord `json:"m,omitempty"`
	Removed []string       `json:"rm,omitempty"`
}

func encodeGroupRecord(r groupRecord) []byte {
	b, _ := json.Marshal(r) // plain data: cannot fail
	return append([]byte{groupRecordVersion}, b...)
}

// decodeGroupRecord decodes and checks a KindGroup frame body.
func decodeGroupRecord(body []byte) (groupRecord, error) {
	var r groupRecord
	if len(body) == 0 {
		return r, fmt.Errorf("%w: empty", ErrCorruptGroupRecord)
	}
	if body[0] != groupRecordVersion {
		return r, fmt.Errorf("%w: unknown version %d", ErrCorruptGroupRecord, body[0])
	}
	if err := json.Unmarshal(body[1:], &r); err != nil {
		return r, fmt.Errorf("%w: %v", ErrCorruptGroupRecord, err)
	}
	return r, r.check()
}

func (r *groupRecord) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: group %q: %s", ErrCorruptGroupRecord, r.G, fmt.Sprintf(format, a...))
	}
	switch {
	case r.G == "":
		return bad("no group name")
	case r.Type != typeClassic && r.Type != typeConsumer:
		return bad("unknown type %q", r.Type)
	case r.Type == typeClassic && !r.Full:
		return bad("classic records are whole")
	case r.Full && len(r.Removed) > 0:
		return bad("a whole record removes nothing")
	case r.Generation < 0 || r.Epoch < 0 || r.AssignmentEpoch < 0:
		return bad("negative generation or epoch")
	}
	seen := map[string]bool{}
	for _, m := range r.Members {
		if m.ID == "" || seen[m.ID] {
			return bad("empty or repeated member id %q", m.ID)
		}
		seen[m.ID] = true
		if m.SessionMs < 0 || m.RebalanceMs < 0 || m.Epoch < 0 || m.PrevEpoch < 0 {
			return bad("member %q: negative timeout or epoch", m.ID)
		}
		for _, set := range [][]tpsRecord{m.Owned, m.Revoking} {
			for _, t := range set {
				for _, p := range t.P {
					if t.T == "" || p < 0 {
						return bad("member %q: bad shard %q/%d", m.ID, t.T, p)
					}
				}
			}
		}
	}
	for _, t := range r.Held {
		for _, p := range t.P {
			if t.T == "" || p < 0 {
				return bad("bad held-back shard %q/%d", t.T, p)
			}
		}
	}
	if r.Type == typeClassic && len(r.Members) > 0 && !seen[r.Leader] {
		return bad("leader %q is not a member", r.Leader)
	}
	for _, id := range r.Removed {
		if id == "" {
			return bad("empty removed member id")
		}
	}
	return nil
}

// storedGroup is a group's durable membership, as records left it.
type storedGroup struct {
	hdr     groupRecord // without members
	members map[string]memberRecord
}

func (o *Offsets) applyGroupLocked(r groupRecord) {
	if o.meta == nil {
		o.meta = map[string]*storedGroup{}
	}
	sg := o.meta[r.G]
	if r.Full || sg == nil || sg.hdr.Type != r.Type {
		sg = &storedGroup{members: map[string]memberRecord{}}
		o.meta[r.G] = sg
	}
	sg.hdr = r
	sg.hdr.Members, sg.hdr.Removed, sg.hdr.Full = nil, nil, false
	for _, m := range r.Members {
		sg.members[m.ID] = m
	}
	for _, id := range r.Removed {
		delete(sg.members, id)
	}
	if len(sg.members) == 0 {
		delete(o.meta, r.G)
	}
}

// groupRecordsLocked returns the durable membership as whole records,
// sorted by group and member.
func (o *Offsets) groupRecordsLocked() []groupRecord {
	out := make([]groupRecord, 0, len(o.meta))
	for _, sg := range o.meta {
		r := sg.hdr
		r.Full = true
		for _, m := range sg.members {
			r.Members = append(r.Members, m)
		}
		sort.Slice(r.Members, func(i, j int) bool { return r.Members[i].ID < r.Members[j].ID })
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].G < out[j].G })
	return out
}

// appendGroup writes a group record; it is applied once durable at the
// returned position. Without a log (unit tests) it applies at once.
func (o *Offsets) appendGroup(r groupRecord) (wal.Position, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.log == nil {
		o.applyGroupLocked(r)
		return 0, nil
	}
	_, end, err := o.log.Append(KindGroup, encodeGroupRecord(r))
	if err != nil {
		return 0, fmt.Errorf("group: write group %q: %w", r.G, err)
	}
	o.pending = append(o.pending, pendingChange{end: end, group: &r})
	return end, nil
}

// WaitDurable waits until the log is durable up to pos (a position a
// group operation returned; 0 waits for nothing).
func (o *Offsets) WaitDurable(ctx context.Context, pos wal.Position) error {
	if o.log == nil || pos == 0 {
		return nil
	}
	if err := o.log.WaitDurable(ctx, pos); err != nil {
		return err
	}
	o.mu.Lock()
	o.drainLocked()
	o.mu.Unlock()
	return nil
}

// ReplayGroup applies a KindGroup frame found during recovery.
func (o *Offsets) ReplayGroup(body []byte) error {
	r, err := decodeGroupRecord(body)
	if err != nil {
		return err
	}
	o.mu.Lock()
	o.applyGroupLocked(r)
	o.mu.Unlock()
	return nil
}

func tpsToRecord(m map[TopicPartition]bool) []tpsRecord {
	var out []tpsRecord
	for _, tp := range sortedTPs(m) {
		if n := len(out); n > 0 && out[n-1].T == tp.Topic {
			out[n-1].P = append(out[n-1].P, tp.Partition)
		} else {
			out = append(out, tpsRecord{T: tp.Topic, P: []int32{tp.Partition}})
		}
	}
	return out
}

func tpsFromRecord(rs []tpsRecord) map[TopicPartition]bool {
	out := map[TopicPartition]bool{}
	for _, r := range rs {
		for _, p := range r.P {
			out[TopicPartition{r.T, p}] = true
		}
	}
	return out
}

// persistClassicLocked writes a classic group whole (or its removal, once
// it has no members).
func (c *Coordinator) persistClassicLocked(g *classicGroup) (wal.Position, error) {
	if len(g.members) == 0 && !g.persisted {
		return 0, nil
	}
	r := groupRecord{G: g.name, Type: typeClassic, Full: true}
	if len(g.members) > 0 {
		r.Generation, r.ProtocolType, r.Protocol, r.Leader = g.generation, g.protocolType, g.protocol, g.leader
		r.Held = tpsToRecord(g.heldBack)
		for _, m := range g.members {
			r.Members = append(r.Members, memberRecord{
				ID: m.MemberID, Instance: m.InstanceID, Client: m.ClientID, Host: m.ClientHost,
				SessionMs: m.sessionTimeout.Milliseconds(), RebalanceMs: m.rebalanceTimeout.Milliseconds(),
				Metadata: m.Metadata, Assignment: m.Assignment,
			})
		}
		sort.Slice(r.Members, func(i, j int) bool { return r.Members[i].ID < r.Members[j].ID })
	}
	g.persisted = len(g.members) > 0
	return c.offsets.appendGroup(r)
}

func (m *cgMember) record() memberRecord {
	return memberRecord{
		ID: m.id, Instance: m.instanceID, Client: m.clientID, Host: m.clientHost, Rack: m.rack,
		RebalanceMs: m.rebalanceTimeout.Milliseconds(), Epoch: m.epoch, PrevEpoch: m.prevEpoch,
		Topics: m.topics, Regex: m.regex, Assignor: m.assignor,
		Owned: tpsToRecord(m.assigned), Revoking: tpsToRecord(m.revoking), LeftStatic: m.leftStatic,
	}
}

// persistKey sums up the member's durable fields that can change without
// the group epoch moving (a subscription change moves it); it is cheaper
// than encoding the member on every heartbeat.
func (m *cgMember) persistKey() string {
	return fmt.Sprint(m.instanceID, "\x00", m.clientID, "\x00", m.clientHost, "\x00", m.rack, "\x00",
		m.rebalanceTimeout, m.epoch, m.prevEpoch, m.leftStatic, "\x00", fingerprint(m.assigned), "\x00", fingerprint(m.revoking))
}

// persistConsumerLocked writes what changed in a consumer group: its
// header, member m (if it changed) and the removed members.
func (c *Coordinator) persistConsumerLocked(g *consumerGroup, m *cgMember, removed []string) (wal.Position, error) {
	r := groupRecord{G: g.name, Type: typeConsumer, Epoch: g.epoch, AssignmentEpoch: g.assignmentEpoch, MetaHash: g.metaHash, Removed: removed}
	hdr := fmt.Sprint(r.Epoch, r.AssignmentEpoch, r.MetaHash)
	changed := hdr != g.persisted || len(removed) > 0
	var key string
	if m != nil {
		key = m.persistKey()
		if changed || key != m.persisted {
			r.Members = []memberRecord{m.record()}
			changed = true
		}
	}
	if !changed {
		return 0, nil
	}
	pos, err := c.offsets.appendGroup(r)
	if err == nil {
		g.persisted = hdr
		if m != nil {
			m.persisted = key
		}
	}
	return pos, err
}

// restoreLocked rebuilds the groups the log and checkpoint hold, as a
// restarted node finds them: classic groups Stable in their generation,
// consumer groups with their epochs and assignments; every member gets a
// fresh session.
func (c *Coordinator) restoreLocked(now time.Time) {
	c.offsets.mu.Lock()
	c.offsets.drainLocked()
	recs := c.offsets.groupRecordsLocked()
	c.offsets.mu.Unlock()
	for _, r := range recs {
		switch r.Type {
		case typeClassic:
			g := c.groupLocked(r.G)
			g.state, g.generation, g.protocolType, g.protocol, g.leader = StateStable, r.Generation, r.ProtocolType, r.Protocol, r.Leader
			g.persisted = true
			if len(r.Held) > 0 {
				g.heldBack = tpsFromRecord(r.Held)
			}
			for _, mr := range r.Members {
				m := &member{
					MemberInfo:     MemberInfo{MemberID: mr.ID, InstanceID: mr.Instance, ClientID: mr.Client, ClientHost: mr.Host, Metadata: mr.Metadata, Assignment: mr.Assignment},
					sessionTimeout: time.Duration(mr.SessionMs) * time.Millisecond, rebalanceTimeout: time.Duration(mr.RebalanceMs) * time.Millisecond,
					protocols: []Protocol{{Name: r.Protocol, Metadata: mr.Metadata}},
				}
				m.deadline = now.Add(m.sessionTimeout)
				g.members[mr.ID] = m
				if mr.Instance != "" {
					g.static[mr.Instance] = mr.ID
				}
			}
		case typeConsumer:
			g := newConsumerGroup(r.G)
			g.epoch, g.assignmentEpoch, g.metaHash = r.Epoch, r.AssignmentEpoch, r.MetaHash
			g.persisted = fmt.Sprint(r.Epoch, r.AssignmentEpoch, r.MetaHash)
			for _, mr := range r.Members {
				m := &cgMember{
					id: mr.ID, instanceID: mr.Instance, clientID: mr.Client, clientHost: mr.Host, rack: mr.Rack,
					epoch: mr.Epoch, prevEpoch: mr.PrevEpoch, topics: mr.Topics, regex: mr.Regex, assignor: mr.Assignor,
					rebalanceTimeout: time.Duration(mr.RebalanceMs) * time.Millisecond, leftStatic: mr.LeftStatic,
					assigned: map[TopicPartition]bool{}, revoking: tpsFromRecord(mr.Revoking),
					deadline: now.Add(c.copts.SessionTimeout),
				}
				if mr.Regex != "" {
					m.re, _ = compileSubscription(mr.Regex)
				}
				for tp := range tpsFromRecord(mr.Owned) {
					if _, taken := g.held[tp]; !taken {
						g.own(m, tp)
					}
				}
				for tp := range m.revoking {
					g.held[tp] = m.id
				}
				m.lastSent = fingerprint(m.assigned)
				m.persisted = m.persistKey()
				g.members[m.id] = m
			}
			if c.consumers == nil {
				c.consumers = map[string]*consumerGroup{}
			}
			c.consumers[r.G] = g
		}
	}
}

// snapshotV2 is the checkpoint form of Offsets since group membership is
// durable; older checkpoints hold a bare JSON array of offset changes.
type snapshotV2 struct {
	V       int           `json:"v"`
	Offsets []change      `json:"offsets"`
	Groups  []groupRecord `json:"groups,omitempty"`
}

func isLegacySnapshot(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '['
}
