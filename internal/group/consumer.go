package group

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The KIP-848 consumer-group protocol: members heartbeat their
// subscription and what they own; the coordinator computes a target
// assignment with a server-side assignor whenever the group epoch moves
// (membership, subscriptions or stream metadata changed) and reconciles each
// member towards it:
//
//  1. a member that owns shards outside its target is told to revoke them
//     first (its member epoch does not move);
//  2. once it no longer owns any, it gets the target shards that no other
//     member still owns or is revoking, and its member epoch moves to the
//     target's epoch;
//  3. shards still held elsewhere arrive on a later heartbeat, once
//     released. So a shard is never owned by two members at once.

var (
	ErrFencedMemberEpoch    = errors.New("group: fenced member epoch")
	ErrStaleMemberEpoch     = errors.New("group: stale member epoch")
	ErrUnreleasedInstanceID = errors.New("group: unreleased instance id")
	ErrUnsupportedAssignor  = errors.New("group: unsupported assignor")
	ErrInvalidRegex         = errors.New("group: invalid subscription regex")
	ErrGroupIsClassic       = errors.New("group: group uses the classic protocol")
	ErrInvalidRequest       = errors.New("group: invalid heartbeat")
)

// Consumer-group states, as Kafka names them.
const (
	StateAssigning   = "Assigning"
	StateReconciling = "Reconciling"
)

// HeartbeatRequest is a ConsumerGroupHeartbeat.
type HeartbeatRequest struct {
	Group, MemberID, InstanceID, RackID, ClientID, ClientHost string
	MemberEpoch                                               int32
	RebalanceTimeout                                          time.Duration
	SubscribedTopics                                          []string // nil: unchanged
	SubscribedRegex                                           *string  // nil: unchanged
	Assignor                                                  *string  // nil: unchanged
	Owned                                                     []TopicPartition
	OwnedKnown                                                bool // Owned was sent
}

// HeartbeatResponse answers a ConsumerGroupHeartbeat.
type HeartbeatResponse struct {
	MemberID          string
	MemberEpoch       int32
	HeartbeatInterval time.Duration
	Assignment        []TopicPartition // nil: unchanged since the last answer
	AssignmentSent    bool
}

type cgMember struct {
	id, instanceID, rack, clientID, clientHost string
	epoch, prevEpoch                           int32
	topics                                     []string
	regex                                      string
	assignor                                   string
	rebalanceTimeout                           time.Duration
	assigned                                   map[TopicPartition]bool
	revoking                                   map[TopicPartition]bool
	lastSent                                   string // fingerprint of the last assignment sent
	deadline                                   time.Time
	leftStatic                                 bool // left with epoch -2: keeps its shards for its instance
}

type consumerGroup struct {
	name            string
	epoch           int32
	assignmentEpoch int32
	assignorName    string
	members         map[string]*cgMember
	target          map[string]map[TopicPartition]bool
	metaKey         string
}

// Topics tells the coordinator which streams exist.
type Topics func() map[string]TopicInfo

// ConsumerOptions configures the KIP-848 side of the coordinator.
type ConsumerOptions struct {
	SessionTimeout    time.Duration             // default 45 s, as Kafka
	HeartbeatInterval time.Duration             // default 1 s
	Topics            Topics                    // required
	Assignable        func(TopicPartition) bool // nil: every shard
}

// EnableConsumerProtocol turns on the KIP-848 protocol.
func (c *Coordinator) EnableConsumerProtocol(opts ConsumerOptions) {
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 45 * time.Second
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = time.Second
	}
	c.mu.Lock()
	c.copts = opts
	if c.consumers == nil {
		c.consumers = map[string]*consumerGroup{}
	}
	c.mu.Unlock()
}

func fingerprint(m map[TopicPartition]bool) string {
	keys := make([]string, 0, len(m))
	for tp := range m {
		keys = append(keys, fmt.Sprintf("%s\x00%d", tp.Topic, tp.Partition))
	}
	sort.Strings(keys)
	return strings.Join(keys, "\x01")
}

// ConsumerHeartbeat runs one ConsumerGroupHeartbeat.
func (c *Coordinator) ConsumerHeartbeat(req HeartbeatRequest) (HeartbeatResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := HeartbeatResponse{MemberID: req.MemberID, MemberEpoch: req.MemberEpoch, HeartbeatInterval: c.copts.HeartbeatInterval}
	if c.closed {
		return resp, ErrCoordinatorClosed
	}
	if g := c.groups[req.Group]; g != nil && len(g.members) > 0 {
		return resp, ErrGroupIsClassic
	}
	if req.MemberID == "" {
		return resp, fmt.Errorf("%w: member id is required (v1)", ErrInvalidRequest)
	}
	g := c.consumers[req.Group]
	if g == nil {
		g = &consumerGroup{name: req.Group, members: map[string]*cgMember{}}
		c.consumers[req.Group] = g
	}
	now := time.Now()
	m := g.members[req.MemberID]
	switch req.MemberEpoch {
	case -1, -2: // leave; -2 keeps a static member's shards for a while
		if m == nil {
			return resp, ErrUnknownMember
		}
		if req.MemberEpoch == -2 && m.instanceID != "" {
			m.leftStatic, m.deadline = true, now.Add(c.copts.SessionTimeout)
		} else {
			delete(g.members, m.id)
			g.epoch++
		}
		return resp, nil
	case 0: // join (or rejoin after being fenced)
		if req.InstanceID != "" {
			for id, old := range g.members {
				if old.instanceID != req.InstanceID || id == req.MemberID {
					continue
				}
				if !old.leftStatic {
					return resp, ErrUnreleasedInstanceID
				}
				// The new incarnation takes over the old one's shards.
				delete(g.members, id)
				if m == nil {
					m = old
					m.id, m.leftStatic = req.MemberID, false
					g.members[m.id] = m
				}
			}
		}
		if m == nil || m.epoch != 0 && m.instanceID == "" {
			m = &cgMember{id: req.MemberID, assigned: map[TopicPartition]bool{}, revoking: map[TopicPartition]bool{}}
			g.members[m.id] = m
			g.epoch++
		}
		m.leftStatic = false
		m.lastSent = "\xff" // always send the assignment to a joiner
	default:
		if m == nil {
			return resp, ErrUnknownMember
		}
		if req.MemberEpoch != m.epoch && !(req.MemberEpoch == m.prevEpoch && req.OwnedKnown && subset(req.Owned, m.assigned)) {
			return resp, ErrFencedMemberEpoch
		}
	}
	m.instanceID, m.rack, m.clientID, m.clientHost = req.InstanceID, req.RackID, req.ClientID, req.ClientHost
	if req.RebalanceTimeout > 0 {
		m.rebalanceTimeout = req.RebalanceTimeout
	}
	m.deadline = now.Add(c.copts.SessionTimeout)
	if req.SubscribedTopics != nil {
		topics := append([]string(nil), req.SubscribedTopics...)
		sort.Strings(topics)
		if strings.Join(topics, "\x00") != strings.Join(m.topics, "\x00") {
			m.topics = topics
			g.epoch++
		}
	}
	if req.SubscribedRegex != nil && *req.SubscribedRegex != m.regex {
		if _, err := regexp.Compile(*req.SubscribedRegex); err != nil {
			return resp, fmt.Errorf("%w: %v", ErrInvalidRegex, err)
		}
		m.regex = *req.SubscribedRegex
		g.epoch++
	}
	if req.Assignor != nil && *req.Assignor != m.assignor {
		if assignorByName(*req.Assignor) == nil {
			return resp, fmt.Errorf("%w: %q (have uniform, range)", ErrUnsupportedAssignor, *req.Assignor)
		}
		m.assignor = *req.Assignor
		g.epoch++
	}
	if req.OwnedKnown {
		owned := map[TopicPartition]bool{}
		for _, tp := range req.Owned {
			owned[tp] = true
		}
		for tp := range m.revoking {
			if !owned[tp] {
				delete(m.revoking, tp) // released
			}
		}
	}
	c.refreshTargetLocked(g)
	c.reconcileLocked(g, m)
	resp.MemberID, resp.MemberEpoch = m.id, m.epoch
	if fp := fingerprint(m.assigned); fp != m.lastSent {
		m.lastSent = fp
		resp.AssignmentSent = true
		resp.Assignment = sortedTPs(m.assigned)
	}
	return resp, nil
}

func subset(tps []TopicPartition, of map[TopicPartition]bool) bool {
	for _, tp := range tps {
		if !of[tp] {
			return false
		}
	}
	return true
}

func sortedTPs(m map[TopicPartition]bool) []TopicPartition {
	out := make([]TopicPartition, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	sortTPs(out)
	return out
}

// subscribedTopics resolves a member's names and regex against the
// streams that exist. As in Kafka, a regex matches whole names and may
// match internal streams (__consumer_offsets) too: clients that want them
// skipped resolve regexes themselves.
func (m *cgMember) subscribedTopics(all map[string]TopicInfo) []string {
	var out []string
	for _, t := range m.topics {
		if _, ok := all[t]; ok {
			out = append(out, t)
		}
	}
	if m.regex != "" {
		if re, err := regexp.Compile("^(?:" + m.regex + ")$"); err == nil {
			for name := range all {
				if re.MatchString(name) {
					out = append(out, name)
				}
			}
		}
	}
	sort.Strings(out)
	return slicesCompact(out)
}

func slicesCompact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// refreshTargetLocked bumps the group epoch when subscribed streams changed
// shape and recomputes the target assignment when the epoch moved.
func (c *Coordinator) refreshTargetLocked(g *consumerGroup) {
	all := c.copts.Topics()
	var key strings.Builder
	var members []AssignMember
	assignor := ""
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := g.members[id]
		subs := m.subscribedTopics(all)
		for _, t := range subs {
			fmt.Fprintf(&key, "%s:%x:%d;", t, all[t].ID, all[t].Partitions)
		}
		if assignor == "" && m.assignor != "" {
			assignor = m.assignor
		}
		cur := maps.Clone(m.assigned)
		for tp := range m.revoking {
			cur[tp] = true
		}
		members = append(members, AssignMember{ID: id, Topics: subs, Current: cur})
	}
	if key.String() != g.metaKey {
		g.metaKey = key.String()
		g.epoch++
	}
	if g.target != nil && g.assignmentEpoch == g.epoch {
		return
	}
	a := assignorByName(assignor)
	if a == nil {
		a = Assignors[0]
	}
	g.assignorName = a.Name()
	g.target = a.Assign(members, all, c.copts.Assignable)
	g.assignmentEpoch = g.epoch
}

// reconcileLocked moves a member towards its target: revoke first, then
// take what nobody else holds.
func (c *Coordinator) reconcileLocked(g *consumerGroup, m *cgMember) {
	target := g.target[m.id]
	for tp := range m.assigned {
		if !target[tp] {
			delete(m.assigned, tp)
			m.revoking[tp] = true
		}
	}
	if len(m.revoking) > 0 {
		return // the member must release these before it moves on
	}
	held := map[TopicPartition]bool{}
	for id, o := range g.members {
		if id == m.id {
			continue
		}
		for tp := range o.assigned {
			held[tp] = true
		}
		for tp := range o.revoking {
			held[tp] = true
		}
	}
	for tp := range target {
		if !held[tp] {
			m.assigned[tp] = true
		}
	}
	if m.epoch != g.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, g.assignmentEpoch
	}
}

// expireConsumersLocked drops members whose session ran out.
func (c *Coordinator) expireConsumersLocked(now time.Time) {
	for name, g := range c.consumers {
		for id, m := range g.members {
			if now.After(m.deadline) {
				delete(g.members, id)
				g.epoch++
			}
		}
		if len(g.members) == 0 {
			delete(c.consumers, name)
		}
	}
}

func (g *consumerGroup) state() string {
	switch {
	case len(g.members) == 0:
		return StateEmpty
	case g.assignmentEpoch != g.epoch:
		return StateAssigning
	}
	for _, m := range g.members {
		if m.epoch != g.assignmentEpoch || len(m.revoking) > 0 || fingerprint(m.assigned) != fingerprint(g.target[m.id]) {
			return StateReconciling
		}
	}
	return StateStable
}

// ConsumerMember describes a KIP-848 member.
type ConsumerMember struct {
	MemberID, InstanceID, RackID, ClientID, ClientHost string
	MemberEpoch                                        int32
	SubscribedTopics                                   []string
	SubscribedRegex                                    string
	Assignment, Target                                 []TopicPartition
}

// ConsumerDescription describes a KIP-848 group.
type ConsumerDescription struct {
	State                  string
	Epoch, AssignmentEpoch int32
	Assignor               string
	Members                []ConsumerMember
}

// DescribeConsumer returns a KIP-848 group; ok is false if there is none.
func (c *Coordinator) DescribeConsumer(name string) (ConsumerDescription, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.consumers[name]
	if g == nil {
		return ConsumerDescription{State: StateDead}, false
	}
	d := ConsumerDescription{State: g.state(), Epoch: g.epoch, AssignmentEpoch: g.assignmentEpoch, Assignor: g.assignorName}
	for _, m := range g.members {
		d.Members = append(d.Members, ConsumerMember{
			MemberID: m.id, InstanceID: m.instanceID, RackID: m.rack, ClientID: m.clientID, ClientHost: m.clientHost,
			MemberEpoch: m.epoch, SubscribedTopics: m.topics, SubscribedRegex: m.regex,
			Assignment: sortedTPs(m.assigned), Target: sortedTPs(g.target[m.id]),
		})
	}
	sort.Slice(d.Members, func(i, j int) bool { return d.Members[i].MemberID < d.Members[j].MemberID })
	return d, true
}

func (c *Coordinator) validateConsumerCommitLocked(g *consumerGroup, memberID string, epoch int32) error {
	m := g.members[memberID]
	switch {
	case memberID == "" && epoch < 0:
		return ErrUnknownMember // as Kafka: a simple commit names no member of an active group
	case m == nil:
		return ErrUnknownMember
	case epoch != m.epoch:
		return ErrStaleMemberEpoch
	}
	return nil
}
