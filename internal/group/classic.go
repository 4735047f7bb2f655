package group

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// The classic consumer-group protocol (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup), as a state machine per group:
//
//	Empty --join--> PreparingRebalance --all joined / timeout--> CompletingRebalance
//	  ^                    ^                                           |
//	  |                    '-- join, leave, expiry, new protocol ------+
//	  '-- last member gone                                     leader's SyncGroup
//	                                                                   v
//	                                                                Stable
//
// Errors are the protocol's own and carry Kafka's meaning; the Kafka door
// maps them to codes.
var (
	ErrUnknownMember        = errors.New("group: unknown member id")
	ErrIllegalGeneration    = errors.New("group: illegal generation")
	ErrRebalanceInProgress  = errors.New("group: rebalance in progress")
	ErrMemberIDRequired     = errors.New("group: member id required")
	ErrInconsistentProtocol = errors.New("group: inconsistent group protocol")
	ErrFencedInstance       = errors.New("group: fenced instance id")
	ErrInvalidSessionTime   = errors.New("group: invalid session timeout")
	ErrNotEmpty             = errors.New("group: group is not empty")
	ErrGroupNotFound        = errors.New("group: group not found")
	ErrCoordinatorClosed    = errors.New("group: coordinator shutting down")
	// ErrOffsetMetadataTooLarge refuses a commit whose metadata is longer
	// than offset.metadata.max.bytes.
	ErrOffsetMetadataTooLarge = errors.New("group: offset metadata too large")
	// ErrSubscribedToTopic refuses to delete offsets of a stream an
	// active group is subscribed to.
	ErrSubscribedToTopic = errors.New("group: group is subscribed to the topic")
)

// States, as Kafka names them.
const (
	StateEmpty               = "Empty"
	StatePreparingRebalance  = "PreparingRebalance"
	StateCompletingRebalance = "CompletingRebalance"
	StateStable              = "Stable"
	StateDead                = "Dead"
)

// Protocol is one assignment protocol a member supports, with its metadata.
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a member's JoinGroup.
type JoinRequest struct {
	Group, MemberID, InstanceID, ClientID, ClientHost, ProtocolType string
	SessionTimeout, RebalanceTimeout                                time.Duration
	Protocols                                                       []Protocol
	RequireKnownMember                                              bool // KIP-394 (JoinGroup v4+)
}

// MemberInfo describes a member in join results and descriptions.
type MemberInfo struct {
	MemberID, InstanceID, ClientID, ClientHost string
	Metadata, Assignment                       []byte
}

// JoinResult answers a JoinGroup.
type JoinResult struct {
	Err          error
	Generation   int32
	ProtocolType string
	Protocol     string
	LeaderID     string
	MemberID     string
	Members      []MemberInfo // only for the leader
	// SkipAssignment tells a static leader that rejoined a stable group
	// that the assignment stands (KIP-814, JoinGroup v9).
	SkipAssignment bool
	Wait           wal.Position // durable group state to wait for before answering
}

// SyncResult answers a SyncGroup.
type SyncResult struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
	Wait         wal.Position // durable group state to wait for before answering
}

type member struct {
	MemberInfo
	sessionTimeout, rebalanceTimeout time.Duration
	protocols                        []Protocol
	deadline                         time.Time // session expiry
	join                             chan JoinResult
	sync                             chan SyncResult
}

type classicGroup struct {
	name         string
	state        string
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	static       map[string]string    // instance id -> member id
	pending      map[string]time.Time // member ids handed out by MEMBER_ID_REQUIRED
	rebalanceEnd time.Time
	// An Empty group's first rebalance waits delayEnd out (and longer
	// while members keep arriving, within delayBudget) so that members
	// starting together land in one generation.
	delaying      bool
	delayEnd      time.Time
	delayBudget   time.Duration
	joinedInDelay bool
	persisted     bool // the log holds this group with members
	// syncWait is where the last assignment became durable: members
	// answered by the leader's SyncGroup wait for it too.
	syncWait wal.Position
	// heldBack are the shards the lineage gate removed from this
	// generation's assignment; once one is assignable, a rebalance starts.
	heldBack map[TopicPartition]bool
}

// Options configures the classic protocol.
type Options struct {
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (Kafka's group.min.session.timeout.ms and
	// group.max.session.timeout.ms; defaults 6 s and 30 min).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is how long an empty group's first rebalance
	// waits for more members (Kafka's group.initial.rebalance.delay.ms;
	// Kafka's default is 3 s, the zero value here is none).
	InitialRebalanceDelay time.Duration
}

// Coordinator runs the classic protocol for every group on this node.
type Coordinator struct {
	offsets *Offsets
	opts    Options

	mu        sync.Mutex
	groups    map[string]*classicGroup
	consumers map[string]*consumerGroup // KIP-848 groups; see consumer.go
	copts     ConsumerOptions
	gate      Gate             // nil: every shard is assignable; see lineage.go
	filter    AssignmentFilter // classic assignments through the gate
	closed    bool
	stop      chan struct{}
	done      chan struct{}
}

// NewCoordinator starts a coordinator with the groups offsets holds;
// Close stops its timer loop.
func NewCoordinator(offsets *Offsets, opts Options) *Coordinator {
	if opts.MinSessionTimeout <= 0 {
		opts.MinSessionTimeout = 6 * time.Second
	}
	if opts.MaxSessionTimeout <= 0 {
		opts.MaxSessionTimeout = 30 * time.Minute
	}
	c := &Coordinator{offsets: offsets, opts: opts, groups: map[string]*classicGroup{},
		consumers: map[string]*consumerGroup{}, stop: make(chan struct{}), done: make(chan struct{})}
	c.copts.SessionTimeout = 45 * time.Second
	c.mu.Lock()
	c.restoreLocked(time.Now())
	c.mu.Unlock()
	go c.tick()
	return c
}

// Close answers every waiting member with ErrCoordinatorClosed.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	for _, g := range c.groups {
		for _, m := range g.members {
			m.answerJoin(JoinResult{Err: ErrCoordinatorClosed})
			m.answerSync(SyncResult{Err: ErrCoordinatorClosed})
		}
	}
	c.mu.Unlock()
	close(c.stop)
	<-c.done
}

func newMemberID(clientID string) string {
	var b [8]byte
	rand.Read(b[:])
	return clientID + "-" + hex.EncodeToString(b[:])
}

func (m *member) answerJoin(r JoinResult) {
	if m.join != nil {
		m.join <- r
		m.join = nil
	}
}

func (m *member) answerSync(r SyncResult) {
	if m.sync != nil {
		m.sync <- r
		m.sync = nil
	}
}

func (c *Coordinator) groupLocked(name string) *classicGroup {
	g := c.groups[name]
	if g == nil {
		g = &classicGroup{name: name, state: StateEmpty, members: map[string]*member{},
			static: map[string]string{}, pending: map[string]time.Time{}}
		c.groups[name] = g
	}
	return g
}

// Join handles a JoinGroup. The returned channel yields the answer once the
// rebalance completes (or at once, for an error or MEMBER_ID_REQUIRED).
func (c *Coordinator) Join(req JoinRequest) <-chan JoinResult {
	out := make(chan JoinResult, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		out <- JoinResult{Err: ErrCoordinatorClosed}
		return out
	}
	if req.SessionTimeout < c.opts.MinSessionTimeout || req.SessionTimeout > c.opts.MaxSessionTimeout {
		out <- JoinResult{Err: ErrInvalidSessionTime, MemberID: req.MemberID}
		return out
	}
	if cg := c.consumers[req.Group]; cg != nil && len(cg.members) > 0 {
		out <- JoinResult{Err: ErrInconsistentProtocol, MemberID: req.MemberID}
		return out
	}
	g := c.groupLocked(req.Group)
	if g.state != StateEmpty && (g.protocolType != req.ProtocolType || !g.supportsAll(req.Protocols)) {
		out <- JoinResult{Err: ErrInconsistentProtocol, MemberID: req.MemberID}
		return out
	}
	now := time.Now()
	id := req.MemberID
	switch {
	case req.InstanceID != "":
		// Static member: its instance id names it; a new join with another
		// member id replaces (fences) the old one.
		if old, ok := g.static[req.InstanceID]; ok && id != old {
			if id != "" {
				out <- JoinResult{Err: ErrFencedInstance, MemberID: id}
				return out
			}
			if m := g.members[old]; m != nil && g.state == StateStable && m.keepsMetadata(g.protocol, req.Protocols) {
				out <- c.replaceStaticLocked(g, m, req, now)
				return out
			}
			if m := g.members[old]; m != nil {
				m.answerJoin(JoinResult{Err: ErrFencedInstance, MemberID: old})
				m.answerSync(SyncResult{Err: ErrFencedInstance})
				delete(g.members, old)
			}
		}
		if id == "" || g.members[id] == nil {
			id = newMemberID(req.ClientID)
		}
		g.static[req.InstanceID] = id
	case id == "":
		id = newMemberID(req.ClientID)
		if req.RequireKnownMember {
			g.pending[id] = now.Add(req.SessionTimeout)
			out <- JoinResult{Err: ErrMemberIDRequired, MemberID: id}
			return out
		}
	case g.members[id] == nil:
		if _, ok := g.pending[id]; !ok {
			out <- JoinResult{Err: ErrUnknownMember, MemberID: id}
			return out
		}
	}
	delete(g.pending, id)
	m := g.members[id]
	if m == nil {
		m = &member{}
		g.members[id] = m
	}
	m.answerJoin(JoinResult{Err: ErrRebalanceInProgress, MemberID: id}) // an older join of the same member
	m.MemberInfo = MemberInfo{MemberID: id, InstanceID: req.InstanceID, ClientID: req.ClientID, ClientHost: req.ClientHost, Assignment: m.Assignment}
	m.sessionTimeout, m.rebalanceTimeout, m.protocols = req.SessionTimeout, req.RebalanceTimeout, req.Protocols
	m.deadline = now.Add(req.SessionTimeout)
	m.join = out
	if g.state == StateEmpty {
		g.protocolType = req.ProtocolType
		if d := c.opts.InitialRebalanceDelay; d > 0 {
			first := min(d, max(req.RebalanceTimeout, time.Millisecond))
			g.delaying, g.delayEnd, g.delayBudget, g.joinedInDelay = true, now.Add(first), req.RebalanceTimeout-first, false
		}
	} else if g.delaying {
		g.joinedInDelay = true
	}
	if g.state != StatePreparingRebalance {
		c.prepareRebalanceLocked(g, now)
	}
	c.maybeCompleteJoinLocked(g)
	return out
}

// keepsMetadata reports whether a rejoining member still offers the
// group's protocol with the metadata it joined with: then the assignment
// still fits it.
func (m *member) keepsMetadata(protocol string, ps []Protocol) bool {
	for _, p := range ps {
		if p.Name == protocol {
			return string(p.Metadata) == string(m.Metadata)
		}
	}
	return false
}

// replaceStaticLocked lets a static member that rejoins a stable group
// with an empty member id take its old place without a rebalance
// (KIP-345): it gets a new member id, the old one is fenced, and it keeps
// the generation and its assignment.
func (c *Coordinator) replaceStaticLocked(g *classicGroup, old *member, req JoinRequest, now time.Time) JoinResult {
	oldID := old.MemberID
	old.answerJoin(JoinResult{Err: ErrFencedInstance, MemberID: oldID})
	old.answerSync(SyncResult{Err: ErrFencedInstance})
	delete(g.members, oldID)
	id := newMemberID(req.ClientID)
	old.MemberID, old.ClientID, old.ClientHost = id, req.ClientID, req.ClientHost
	old.sessionTimeout, old.rebalanceTimeout, old.protocols = req.SessionTimeout, req.RebalanceTimeout, req.Protocols
	old.deadline = now.Add(req.SessionTimeout)
	g.members[id] = old
	g.static[req.InstanceID] = id
	if g.leader == oldID {
		g.leader = id
	}
	r := JoinResult{Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, LeaderID: g.leader, MemberID: id}
	if g.leader == id {
		r.Members, r.SkipAssignment = g.memberInfosLocked(), true
	}
	var err error
	if r.Wait, err = c.persistClassicLocked(g); err != nil {
		return JoinResult{Err: err, MemberID: id}
	}
	return r
}

// memberInfosLocked lists the members with their metadata for the group's
// protocol, sorted by member id.
func (g *classicGroup) memberInfosLocked() []MemberInfo {
	var all []MemberInfo
	for _, m := range g.members {
		info := m.MemberInfo
		info.Assignment = nil
		all = append(all, info)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].MemberID < all[j].MemberID })
	return all
}

func (g *classicGroup) supportsAll(ps []Protocol) bool {
	if len(g.members) == 0 {
		return true
	}
	for _, p := range ps {
		ok := true
		for _, m := range g.members {
			if !m.supports(p.Name) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (c *Coordinator) prepareRebalanceLocked(g *classicGroup, now time.Time) {
	// Members waiting in SyncGroup must rejoin.
	for _, m := range g.members {
		m.answerSync(SyncResult{Err: ErrRebalanceInProgress})
	}
	g.state = StatePreparingRebalance
	g.rebalanceEnd = now.Add(g.rebalanceTimeoutLocked())
}

func (g *classicGroup) rebalanceTimeoutLocked() time.Duration {
	var timeout time.Duration
	for _, m := range g.members {
		timeout = max(timeout, m.rebalanceTimeout)
	}
	return timeout
}

// maybeCompleteJoinLocked finishes the join phase once every member has
// rejoined (or, when force is set by the timer, drops those that did not).
func (c *Coordinator) maybeCompleteJoinLocked(g *classicGroup) {
	if g.state != StatePreparingRebalance || g.delaying {
		return
	}
	for _, m := range g.members {
		if m.join == nil {
			return
		}
	}
	c.completeJoinLocked(g)
}

func (c *Coordinator) completeJoinLocked(g *classicGroup) {
	for id, m := range g.members {
		if m.join == nil {
			c.removeMemberLocked(g, id)
		}
	}
	if len(g.members) == 0 {
		g.state, g.protocol, g.leader = StateEmpty, "", ""
		g.generation++
		c.persistClassicLocked(g)
		return
	}
	g.generation++
	g.protocol = g.chooseProtocol()
	if g.members[g.leader] == nil {
		ids := make([]string, 0, len(g.members))
		for id := range g.members {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		g.leader = ids[0]
	}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if p.Name == g.protocol {
				m.Metadata = p.Metadata
			}
		}
	}
	all := g.memberInfosLocked()
	g.state = StateCompletingRebalance
	now := time.Now()
	for id, m := range g.members {
		r := JoinResult{Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, LeaderID: g.leader, MemberID: id}
		if id == g.leader {
			r.Members = all
		}
		m.deadline = now.Add(m.sessionTimeout)
		m.answerJoin(r)
	}
}

// chooseProtocol picks the protocol every member supports that gets the
// most votes, each member voting for its first supported choice.
func (g *classicGroup) chooseProtocol() string {
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supportedByAll(p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best, n := "", -1
	for name, v := range votes {
		if v > n || v == n && name < best {
			best, n = name, v
		}
	}
	return best
}

func (g *classicGroup) supportedByAll(name string) bool {
	for _, m := range g.members {
		if !m.supports(name) {
			return false
		}
	}
	return true
}

func (c *Coordinator) removeMemberLocked(g *classicGroup, id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	m.answerJoin(JoinResult{Err: ErrUnknownMember, MemberID: id})
	m.answerSync(SyncResult{Err: ErrUnknownMember})
	delete(g.members, id)
	if m.InstanceID != "" && g.static[m.InstanceID] == id {
		delete(g.static, m.InstanceID)
	}
}

// checkMemberLocked validates a member id, instance id and generation.
func (g *classicGroup) checkMemberLocked(id, instance string, generation int32) (*member, error) {
	if instance != "" {
		if cur, ok := g.static[instance]; ok && cur != id {
			return nil, ErrFencedInstance
		}
	}
	m := g.members[id]
	if m == nil {
		return nil, ErrUnknownMember
	}
	if generation != g.generation {
		return m, ErrIllegalGeneration
	}
	return m, nil
}

// Sync handles a SyncGroup; the leader's call carries every assignment.
func (c *Coordinator) Sync(group, memberID, instanceID string, generation int32, assignments map[string][]byte) <-chan SyncResult {
	out := make(chan SyncResult, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	if g == nil {
		out <- SyncResult{Err: ErrUnknownMember}
		return out
	}
	m, err := g.checkMemberLocked(memberID, instanceID, generation)
	switch {
	case err != nil:
		out <- SyncResult{Err: err}
		return out
	case g.state == StatePreparingRebalance:
		out <- SyncResult{Err: ErrRebalanceInProgress}
		return out
	case g.state == StateStable:
		out <- SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.Assignment, Wait: g.syncWait}
		return out
	}
	m.deadline = time.Now().Add(m.sessionTimeout)
	m.answerSync(SyncResult{Err: ErrRebalanceInProgress})
	m.sync = out
	if memberID == g.leader {
		var keep func(TopicPartition) bool
		if c.gate != nil && c.filter != nil && g.protocolType == "consumer" {
			keep = c.gate(g.name)
		}
		g.heldBack = nil
		for id, mm := range g.members {
			mm.Assignment = assignments[id]
			if keep != nil && len(mm.Assignment) > 0 {
				var held []TopicPartition
				mm.Assignment, held = c.filter(mm.Assignment, keep)
				for _, tp := range held {
					if g.heldBack == nil {
						g.heldBack = map[TopicPartition]bool{}
					}
					g.heldBack[tp] = true
				}
			}
		}
		g.state = StateStable
		// As Kafka, the group is stored with its assignment before anyone
		// learns it: a restarted node then knows this generation.
		wait, err := c.persistClassicLocked(g)
		g.syncWait = wait
		for _, mm := range g.members {
			mm.answerSync(SyncResult{Err: err, ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: mm.Assignment, Wait: wait})
		}
	}
	return out
}

// Heartbeat keeps a member alive; during a rebalance it tells the member to
// rejoin.
func (c *Coordinator) Heartbeat(group, memberID, instanceID string, generation int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	if g == nil {
		return ErrUnknownMember
	}
	m, err := g.checkMemberLocked(memberID, instanceID, generation)
	if m != nil && !errors.Is(err, ErrFencedInstance) {
		m.deadline = time.Now().Add(m.sessionTimeout)
	}
	if err != nil {
		return err
	}
	if g.state == StatePreparingRebalance {
		return ErrRebalanceInProgress
	}
	return nil
}

// LeaveMember names a member leaving, by member id or instance id.
type LeaveMember struct{ MemberID, InstanceID string }

// Leave removes members and rebalances the rest; it returns an error per
// member.
func (c *Coordinator) Leave(group string, leaving []LeaveMember) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := make([]error, len(leaving))
	g := c.groups[group]
	if g == nil {
		for i := range errs {
			errs[i] = ErrUnknownMember
		}
		return errs
	}
	changed := false
	for i, l := range leaving {
		id := l.MemberID
		if l.InstanceID != "" {
			cur, ok := g.static[l.InstanceID]
			if !ok {
				errs[i] = ErrUnknownMember
				continue
			}
			if id != "" && id != cur {
				errs[i] = ErrFencedInstance
				continue
			}
			id = cur
		}
		if g.members[id] == nil {
			errs[i] = ErrUnknownMember
			continue
		}
		c.removeMemberLocked(g, id)
		changed = true
	}
	if changed {
		c.membersChangedLocked(g)
	}
	return errs
}

// membersChangedLocked starts a rebalance after members left or expired.
func (c *Coordinator) membersChangedLocked(g *classicGroup) {
	switch {
	case len(g.members) == 0:
		g.state, g.protocol, g.leader = StateEmpty, "", ""
		g.generation++
		g.delaying = false
		c.persistClassicLocked(g)
	case g.state == StatePreparingRebalance:
		c.maybeCompleteJoinLocked(g)
	default:
		c.prepareRebalanceLocked(g, time.Now())
	}
}

// ValidateCommit checks an offset commit made inside a generation.
func (c *Coordinator) ValidateCommit(group, memberID, instanceID string, generation int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cg := c.consumers[group]; cg != nil && len(cg.members) > 0 {
		return c.validateConsumerCommitLocked(cg, memberID, generation)
	}
	g := c.groups[group]
	if g == nil || len(g.members) == 0 {
		if generation < 0 && memberID == "" {
			return nil // simple consumer: commits outside any generation
		}
		return ErrUnknownMember
	}
	if generation < 0 && memberID == "" {
		return ErrUnknownMember // as Kafka: a simple commit names no member of an active group
	}
	if _, err := g.checkMemberLocked(memberID, instanceID, generation); err != nil {
		return err
	}
	if g.state == StateCompletingRebalance {
		return ErrRebalanceInProgress
	}
	return nil
}

// Description is a group as DescribeGroups reports it.
type Description struct {
	State, ProtocolType, Protocol string
	Type                          string // "classic" (default when empty) or "consumer" (KIP-848)
	Members                       []MemberInfo
}

// Describe returns a group's state; ok is false for a group with neither
// members nor committed offsets.
func (c *Coordinator) Describe(group string) (Description, bool) {
	c.mu.Lock()
	g := c.groups[group]
	var d Description
	if g != nil && len(g.members) > 0 {
		d = Description{State: g.state, ProtocolType: g.protocolType, Protocol: g.protocol}
		for _, m := range g.members {
			d.Members = append(d.Members, m.MemberInfo)
		}
		sort.Slice(d.Members, func(i, j int) bool { return d.Members[i].MemberID < d.Members[j].MemberID })
	}
	c.mu.Unlock()
	if len(d.Members) > 0 {
		return d, true
	}
	if len(c.offsets.Fetch(group)) > 0 {
		return Description{State: StateEmpty, ProtocolType: "consumer"}, true
	}
	return Description{State: StateDead}, false
}

// List returns every known group with its state and protocol type.
func (c *Coordinator) List() map[string]Description {
	out := map[string]Description{}
	for _, name := range c.offsets.Groups() {
		out[name] = Description{State: StateEmpty, ProtocolType: "consumer"}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, g := range c.groups {
		if len(g.members) > 0 {
			out[name] = Description{State: g.state, ProtocolType: g.protocolType}
		}
	}
	for name, g := range c.consumers {
		if len(g.members) > 0 {
			out[name] = Description{State: g.state(), ProtocolType: "consumer", Type: "consumer"}
		}
	}
	return out
}

// Stat is a group's size and generation (classic) or group epoch (KIP-848).
type Stat struct {
	Members    int
	Generation int32
}

// Stats returns every group that has members.
func (c *Coordinator) Stats() map[string]Stat {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]Stat{}
	for name, g := range c.groups {
		if len(g.members) > 0 {
			out[name] = Stat{Members: len(g.members), Generation: g.generation}
		}
	}
	for name, g := range c.consumers {
		if len(g.members) > 0 {
			out[name] = Stat{Members: len(g.members), Generation: g.epoch}
		}
	}
	return out
}

// Active reports whether a group has members (so it cannot be deleted).
func (c *Coordinator) Active(group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	cg := c.consumers[group]
	return g != nil && len(g.members) > 0 || cg != nil && len(cg.members) > 0
}

// tick expires sessions, pending member ids and rebalance timeouts.
func (c *Coordinator) tick() {
	defer close(c.done)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		c.mu.Lock()
		c.expireConsumersLocked(now)
		c.releaseHeldLocked(now)
		for name, g := range c.groups {
			for id, until := range g.pending {
				if now.After(until) {
					delete(g.pending, id)
				}
			}
			if g.delaying && !now.Before(g.delayEnd) {
				if g.joinedInDelay && g.delayBudget > 0 {
					next := min(c.opts.InitialRebalanceDelay, g.delayBudget)
					g.delayEnd, g.delayBudget, g.joinedInDelay = now.Add(next), g.delayBudget-next, false
				} else {
					g.delaying = false
					g.rebalanceEnd = now.Add(g.rebalanceTimeoutLocked())
					c.maybeCompleteJoinLocked(g)
				}
			}
			if g.state == StatePreparingRebalance && !g.delaying && now.After(g.rebalanceEnd) {
				c.completeJoinLocked(g)
			}
			expired := false
			for id, m := range g.members {
				// A member waiting in JoinGroup is not expected to heartbeat.
				if m.join == nil && now.After(m.deadline) {
					c.removeMemberLocked(g, id)
					expired = true
				}
			}
			if expired {
				c.membersChangedLocked(g)
			}
			if len(g.members) == 0 && len(g.pending) == 0 && g.state == StateEmpty {
				delete(c.groups, name)
			}
		}
		c.mu.Unlock()
	}
}

// Subscription is what OffsetDelete needs to know about a group.
type Subscription struct {
	Active       bool // the group has members
	ProtocolType string
	// Metadata holds each member's metadata for the classic group's
	// protocol (nil for a member that has not completed a join yet).
	Metadata [][]byte
	// Topics are a KIP-848 group's subscribed streams (names and what
	// regexes match).
	Topics map[string]bool
}

// Subscription describes a group's members' subscriptions.
func (c *Coordinator) Subscription(group string) Subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.groups[group]; g != nil && len(g.members) > 0 {
		s := Subscription{Active: true, ProtocolType: g.protocolType}
		for _, m := range g.members {
			s.Metadata = append(s.Metadata, m.Metadata)
		}
		return s
	}
	if g := c.consumers[group]; g != nil && len(g.members) > 0 {
		s := Subscription{Active: true, ProtocolType: "consumer", Topics: map[string]bool{}}
		all := c.copts.Topics()
		for _, m := range g.members {
			for _, t := range m.topics {
				s.Topics[t] = true
			}
			for _, t := range m.subscribedTopics(all) {
				s.Topics[t] = true
			}
		}
		return s
	}
	return Subscription{}
}
