package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/braidstream/braid/internal/wal"
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
//
// A member asked to revoke must do so within its rebalance timeout, or it
// is fenced (removed from the group), so one stuck member cannot hold its
// shards back from the others forever.
//
// A steady-state heartbeat does work in proportion to the member's own
// assignment, not to the group's size or the number of streams: who holds
// each shard is kept in one map (consumerGroup.held), subscriptions are
// resolved again only when the group epoch or the set of streams changed,
// and regexes are compiled once.

var (
	ErrFencedMemberEpoch    = errors.New("group: fenced member epoch")
	ErrStaleMemberEpoch     = errors.New("group: stale member epoch")
	ErrUnreleasedInstanceID = errors.New("group: unreleased instance id")
	ErrUnsupportedAssignor  = errors.New("group: unsupported assignor")
	ErrInvalidRegex         = errors.New("group: invalid subscription regex")
	ErrGroupIsClassic       = errors.New("group: group uses the classic protocol")
	ErrInvalidRequest       = errors.New("group: invalid heartbeat")
)

// MaxRegexBytes bounds a subscription regex: every member's regex is
// matched against every stream name whenever streams change, under the
// coordinator's lock.
const MaxRegexBytes = 1024

// defaultRebalanceTimeout applies to a member that sent none (Kafka's
// max.poll.interval.ms default).
const defaultRebalanceTimeout = 5 * time.Minute

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
	Wait              wal.Position // durable group state to wait for before answering
}

type cgMember struct {
	id, instanceID, rack, clientID, clientHost string
	epoch, prevEpoch                           int32
	topics                                     []string
	regex                                      string
	re                                         *regexp.Regexp // regex, anchored, compiled once
	assignor                                   string
	rebalanceTimeout                           time.Duration
	assigned                                   map[TopicPartition]bool
	revoking                                   map[TopicPartition]bool
	subs                                       []string // resolved subscription, see consumerGroup.resolved
	lastSent                                   string   // fingerprint of the last assignment sent
	deadline                                   time.Time
	revokeBy                                   time.Time // while revoking: fenced if still revoking then
	leftStatic                                 bool      // left with epoch -2: keeps its shards for its instance
	persisted                                  string    // the member as last written to the log
}

type consumerGroup struct {
	name            string
	epoch           int32
	assignmentEpoch int32
	assignorName    string
	members         map[string]*cgMember
	target          map[string]map[TopicPartition]bool
	// held names the member that owns (assigned or revoking) each shard.
	held map[TopicPartition]string
	// metaHash digests every member's resolved subscription with the
	// streams' ids and shard counts; resolvedAt and topics say for which
	// group epoch and which stream map the members' subs were resolved.
	metaHash   uint64
	resolvedAt int32
	topics     map[string]TopicInfo
	persisted  string // the group header as last written to the log
	// heldBack are the subscribed shards the lineage gate kept out of the
	// current target; the target is computed again once one is assignable.
	heldBack map[TopicPartition]bool
}

func newConsumerGroup(name string) *consumerGroup {
	return &consumerGroup{name: name, members: map[string]*cgMember{}, held: map[TopicPartition]string{}, resolvedAt: -1}
}

// own records that m now owns tp.
func (g *consumerGroup) own(m *cgMember, tp TopicPartition) {
	m.assigned[tp] = true
	g.held[tp] = m.id
}

// release records that m no longer owns tp.
func (g *consumerGroup) release(m *cgMember, tp TopicPartition) {
	delete(m.assigned, tp)
	delete(m.revoking, tp)
	if g.held[tp] == m.id {
		delete(g.held, tp)
	}
}

// dropMember removes m and releases everything it owns.
func (g *consumerGroup) dropMember(m *cgMember) {
	for tp := range m.assigned {
		g.release(m, tp)
	}
	for tp := range m.revoking {
		g.release(m, tp)
	}
	delete(g.members, m.id)
}

// rename moves m to a new member id, keeping what it owns and its target
// (a static member's new incarnation takes over, KIP-848).
func (g *consumerGroup) rename(m *cgMember, id string) {
	if t, ok := g.target[m.id]; ok {
		delete(g.target, m.id)
		g.target[id] = t
	}
	delete(g.members, m.id)
	m.id = id
	g.members[id] = m
	for tp := range m.assigned {
		g.held[tp] = id
	}
	for tp := range m.revoking {
		g.held[tp] = id
	}
}

// Topics tells the coordinator which streams exist. It should return the
// same map (not a copy) for as long as the streams do not change: the
// coordinator resolves subscriptions again only when it gets a new map.
type Topics func() map[string]TopicInfo

// ConsumerOptions configures the KIP-848 side of the coordinator.
type ConsumerOptions struct {
	SessionTimeout    time.Duration // default 45 s, as Kafka
	HeartbeatInterval time.Duration // default 1 s
	Topics            Topics        // required
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
	now := time.Now()
	for _, g := range c.consumers { // restored groups: a full session, their target
		for _, m := range g.members {
			m.deadline = now.Add(opts.SessionTimeout)
		}
		c.refreshTargetLocked(g)
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

// ConsumerHeartbeat runs one ConsumerGroupHeartbeat. When it changed
// durable group state, the answer may be sent only once resp.Wait is
// durable (Offsets.WaitDurable).
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
	// Bad input is refused before anything changes.
	var re *regexp.Regexp
	if req.SubscribedRegex != nil && *req.SubscribedRegex != "" {
		var err error
		if re, err = compileSubscription(*req.SubscribedRegex); err != nil {
			return resp, err
		}
	}
	if req.Assignor != nil && *req.Assignor != "" && assignorByName(*req.Assignor) == nil {
		return resp, fmt.Errorf("%w: %q (have uniform, range)", ErrUnsupportedAssignor, *req.Assignor)
	}
	g := c.consumers[req.Group]
	if g == nil {
		g = newConsumerGroup(req.Group)
		c.consumers[req.Group] = g
	}
	now := time.Now()
	var removed []string
	m := g.members[req.MemberID]
	switch req.MemberEpoch {
	case -1, -2: // leave; -2 keeps a static member's shards for a while
		if m == nil {
			return resp, ErrUnknownMember
		}
		if req.MemberEpoch == -2 && m.instanceID != "" {
			m.leftStatic, m.deadline = true, now.Add(c.copts.SessionTimeout)
			resp.Wait, _ = c.persistConsumerLocked(g, m, nil)
			return resp, nil
		}
		g.dropMember(m)
		g.epoch++
		resp.Wait, _ = c.persistConsumerLocked(g, nil, []string{m.id})
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
				removed = append(removed, id)
				if m == nil {
					// The new incarnation takes over the old one's shards.
					g.rename(old, req.MemberID)
					m = old
					m.leftStatic = false
				} else {
					g.dropMember(old)
				}
			}
		}
		if m == nil || m.epoch != 0 && m.instanceID == "" {
			if m != nil {
				g.dropMember(m)
			}
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
		topics = slicesCompact(topics)
		if strings.Join(topics, "\x00") != strings.Join(m.topics, "\x00") {
			m.topics = topics
			g.epoch++
		}
	}
	if req.SubscribedRegex != nil && *req.SubscribedRegex != m.regex {
		m.regex, m.re = *req.SubscribedRegex, re
		g.epoch++
	}
	if req.Assignor != nil && *req.Assignor != m.assignor {
		m.assignor = *req.Assignor
		g.epoch++
	}
	if req.OwnedKnown {
		owned := make(map[TopicPartition]bool, len(req.Owned))
		for _, tp := range req.Owned {
			owned[tp] = true
		}
		for tp := range m.revoking {
			if !owned[tp] {
				g.release(m, tp)
			}
		}
	}
	c.refreshTargetLocked(g)
	c.reconcileLocked(g, m, now)
	resp.MemberID, resp.MemberEpoch = m.id, m.epoch
	if fp := fingerprint(m.assigned); fp != m.lastSent {
		m.lastSent = fp
		resp.AssignmentSent = true
		resp.Assignment = sortedTPs(m.assigned)
	}
	var err error
	if resp.Wait, err = c.persistConsumerLocked(g, m, removed); err != nil {
		return resp, err
	}
	return resp, nil
}

// compileSubscription checks a subscription regex and compiles it to
// match whole stream names.
func compileSubscription(expr string) (*regexp.Regexp, error) {
	if len(expr) > MaxRegexBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidRegex, len(expr), MaxRegexBytes)
	}
	if _, err := regexp.Compile(expr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRegex, err)
	}
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRegex, err)
	}
	return re, nil
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
	if m.re != nil {
		for name := range all {
			if m.re.MatchString(name) {
				out = append(out, name)
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

// sameMap reports whether a and b are the same map (not equal maps).
func sameMap(a, b map[string]TopicInfo) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// refreshTargetLocked bumps the group epoch when subscribed streams changed
// shape and recomputes the target assignment when the epoch moved. With
// neither the epoch nor the streams changed it does nothing.
func (c *Coordinator) refreshTargetLocked(g *consumerGroup) {
	all := c.copts.Topics()
	if g.resolvedAt != g.epoch || !sameMap(all, g.topics) {
		ids := make([]string, 0, len(g.members))
		for id := range g.members {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		h := fnv.New64a()
		var n [8]byte
		for _, id := range ids {
			m := g.members[id]
			m.subs = m.subscribedTopics(all)
			for _, t := range m.subs {
				h.Write([]byte(t))
				id := all[t].ID
				h.Write(id[:])
				binary.LittleEndian.PutUint32(n[:], uint32(all[t].Partitions))
				h.Write(n[:4])
			}
			h.Write([]byte{0})
		}
		if sum := h.Sum64(); sum != g.metaHash {
			g.metaHash = sum
			g.epoch++
		}
		g.resolvedAt, g.topics = g.epoch, all
	}
	if g.target != nil && g.assignmentEpoch == g.epoch {
		return
	}
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	assignor := ""
	members := make([]AssignMember, 0, len(ids))
	for _, id := range ids {
		m := g.members[id]
		if assignor == "" && m.assignor != "" {
			assignor = m.assignor
		}
		cur := maps.Clone(m.assigned)
		for tp := range m.revoking {
			cur[tp] = true
		}
		members = append(members, AssignMember{ID: id, Topics: m.subs, Current: cur})
	}
	a := assignorByName(assignor)
	if a == nil {
		a = Assignors[0]
	}
	g.assignorName = a.Name()
	var assignable func(TopicPartition) bool
	held := map[TopicPartition]bool{}
	if c.gate != nil {
		keep := c.gate(g.name)
		assignable = func(tp TopicPartition) bool {
			if keep(tp) {
				return true
			}
			held[tp] = true
			return false
		}
	}
	g.target = a.Assign(members, all, assignable)
	g.heldBack = held
	g.assignmentEpoch = g.epoch
}

// reconcileLocked moves a member towards its target: revoke first, then
// take what nobody else holds.
func (c *Coordinator) reconcileLocked(g *consumerGroup, m *cgMember, now time.Time) {
	target := g.target[m.id]
	for tp := range m.assigned {
		if !target[tp] {
			delete(m.assigned, tp)
			m.revoking[tp] = true // still held by m until released
		}
	}
	if len(m.revoking) > 0 {
		if m.revokeBy.IsZero() {
			timeout := m.rebalanceTimeout
			if timeout <= 0 {
				timeout = defaultRebalanceTimeout
			}
			m.revokeBy = now.Add(timeout)
		}
		return // the member must release these before it moves on
	}
	m.revokeBy = time.Time{}
	for tp := range target {
		if _, taken := g.held[tp]; !taken {
			g.own(m, tp)
		}
	}
	if m.epoch != g.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, g.assignmentEpoch
	}
}

// expireConsumersLocked drops members whose session ran out and fences
// those that did not revoke within their rebalance timeout.
func (c *Coordinator) expireConsumersLocked(now time.Time) {
	for name, g := range c.consumers {
		var removed []string
		for id, m := range g.members {
			if now.After(m.deadline) || len(m.revoking) > 0 && !m.revokeBy.IsZero() && now.After(m.revokeBy) {
				g.dropMember(m)
				g.epoch++
				removed = append(removed, id)
			}
		}
		if len(removed) > 0 {
			c.persistConsumerLocked(g, nil, removed)
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
