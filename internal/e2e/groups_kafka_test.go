package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// Raw classic and KIP-848 group requests through kgo (which finds the
// coordinator), for the group guarantees Kafka gives and clients rely on.

type classicMember struct {
	group, id, instance string
	generation          int32
	leader              string
	members             []kmsg.JoinGroupResponseMember
	skipAssignment      bool
}

func subscriptionMetadata(topics ...string) []byte {
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = topics
	return md.AppendTo(nil)
}

// joinGroup runs JoinGroup (answering MEMBER_ID_REQUIRED once) and returns
// the member, or the error code of the final answer.
func joinGroup(ctx context.Context, cl *kgo.Client, group, memberID, instance string, session time.Duration, topics ...string) (classicMember, int16, error) {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.ProtocolType = group, memberID, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = int32(session/time.Millisecond), 10000
	if instance != "" {
		req.InstanceID = &instance
	}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", subscriptionMetadata(topics...)
	req.Protocols = append(req.Protocols, p)
	for range 2 {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return classicMember{}, 0, err
		}
		if resp.ErrorCode == kerr.MemberIDRequired.Code {
			req.MemberID = resp.MemberID
			continue
		}
		m := classicMember{group: group, id: resp.MemberID, instance: instance, generation: resp.Generation,
			leader: resp.LeaderID, members: resp.Members, skipAssignment: resp.SkipAssignment}
		return m, resp.ErrorCode, nil
	}
	return classicMember{}, 0, fmt.Errorf("MEMBER_ID_REQUIRED twice")
}

func mustJoin(t testing.TB, ctx context.Context, cl *kgo.Client, group, instance string, topics ...string) classicMember {
	t.Helper()
	m, code, err := joinGroup(ctx, cl, group, "", instance, 10*time.Second, topics...)
	if err != nil || code != 0 {
		t.Fatalf("join %s: code %d, %v", group, code, err)
	}
	return m
}

func syncGroup(t testing.TB, ctx context.Context, cl *kgo.Client, m classicMember, assignments map[string][]byte) ([]byte, int16) {
	t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.Generation, req.MemberID = m.group, m.generation, m.id
	if m.instance != "" {
		req.InstanceID = &m.instance
	}
	pt, proto := "consumer", "range"
	req.ProtocolType, req.Protocol = &pt, &proto
	for id, a := range assignments {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = id, a
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return resp.MemberAssignment, resp.ErrorCode
}

func heartbeat(t testing.TB, ctx context.Context, cl *kgo.Client, m classicMember) int16 {
	t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = m.group, m.generation, m.id
	if m.instance != "" {
		req.InstanceID = &m.instance
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	return resp.ErrorCode
}

// commit commits offset at to topic/partition as member id in generation,
// and returns the partition's error code.
func commit(t testing.TB, ctx context.Context, cl *kgo.Client, group, id string, generation int32, topic string, part int32, at int64, metadata string) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = group, id, generation
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.Metadata = part, at, &metadata
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("offset commit: %+v %v", resp, err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// committed returns a group's committed offsets by topic and partition.
func committed(t testing.TB, ctx context.Context, cl *kgo.Client, group string) map[string]map[int32]int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("offset fetch: %v %v", err, resp)
	}
	out := map[string]map[int32]int64{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.Offset >= 0 {
				if out[rt.Topic] == nil {
					out[rt.Topic] = map[int32]int64{}
				}
				out[rt.Topic][rp.Partition] = rp.Offset
			}
		}
	}
	return out
}

type consumerMember struct {
	group, id string
	epoch     int32
	owned     []kmsg.ConsumerGroupHeartbeatRequestTopic
}

// beat868 sends one KIP-848 heartbeat for m (joining when m.epoch is 0)
// and updates m's epoch and owned shards from the answer.
func (m *consumerMember) beat(t testing.TB, ctx context.Context, cl *kgo.Client, rebalance time.Duration, topics ...string) int16 {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = m.group, m.id, m.epoch
	req.RebalanceTimeoutMillis = int32(rebalance / time.Millisecond)
	if m.epoch == 0 {
		req.SubscribedTopicNames = topics
	}
	req.Topics = append([]kmsg.ConsumerGroupHeartbeatRequestTopic{}, m.owned...)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("consumer heartbeat: %v", err)
	}
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	m.epoch = resp.MemberEpoch
	if resp.Assignment != nil {
		m.owned = nil
		for _, at := range resp.Assignment.Topics {
			rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
			rt.TopicID, rt.Partitions = at.TopicID, at.Partitions
			m.owned = append(m.owned, rt)
		}
	}
	return 0
}

func (m *consumerMember) shards() int {
	n := 0
	for _, t := range m.owned {
		n += len(t.Partitions)
	}
	return n
}

// Classic and KIP-848 groups keep their generation, epochs, members and
// assignments across a SIGKILL: members carry on without rejoining and
// their commits succeed, as with Kafka.
func TestGroupMembershipSurvivesRestart(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	p.CreateStream(ctx, "surv", 2, nil)
	cl := newClient(t, p)

	cm := mustJoin(t, ctx, cl, "classic", "", "surv")
	if a, code := syncGroup(t, ctx, cl, cm, map[string][]byte{cm.id: []byte("assignment")}); code != 0 || string(a) != "assignment" {
		t.Fatalf("sync: %q code %d", a, code)
	}
	km := &consumerMember{group: "kip848", id: "member-one"}
	for range 3 {
		if code := km.beat(t, ctx, cl, time.Minute, "surv"); code != 0 {
			t.Fatalf("consumer heartbeat: code %d", code)
		}
	}
	if km.epoch <= 0 || km.shards() != 2 {
		t.Fatalf("KIP-848 member: epoch %d, %d shards, want > 0 and 2", km.epoch, km.shards())
	}
	epoch := km.epoch

	p.Kill()
	p.Restart()
	cl2 := newClient(t, p)

	if code := heartbeat(t, ctx, cl2, cm); code != 0 {
		t.Fatalf("classic heartbeat after restart: %v", kerr.ErrorForCode(code))
	}
	if code := commit(t, ctx, cl2, "classic", cm.id, cm.generation, "surv", 0, 5, ""); code != 0 {
		t.Fatalf("classic commit after restart: %v", kerr.ErrorForCode(code))
	}
	if a, code := syncGroup(t, ctx, cl2, cm, nil); code != 0 || string(a) != "assignment" {
		t.Fatalf("classic sync after restart: %q %v", a, kerr.ErrorForCode(code))
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"classic"}
	dresp, err := dg.RequestWith(ctx, cl2)
	if err != nil || len(dresp.Groups) != 1 || dresp.Groups[0].State != "Stable" || len(dresp.Groups[0].Members) != 1 ||
		dresp.Groups[0].Members[0].MemberID != cm.id || string(dresp.Groups[0].Members[0].MemberAssignment) != "assignment" {
		t.Fatalf("classic group after restart: %+v %v", dresp, err)
	}

	if code := km.beat(t, ctx, cl2, time.Minute); code != 0 || km.epoch != epoch || km.shards() != 2 {
		t.Fatalf("consumer heartbeat after restart: %v, epoch %d (was %d), %d shards", kerr.ErrorForCode(code), km.epoch, epoch, km.shards())
	}
	if code := commit(t, ctx, cl2, "kip848", km.id, km.epoch, "surv", 1, 7, ""); code != 0 {
		t.Fatalf("consumer commit after restart: %v", kerr.ErrorForCode(code))
	}
	if got := committed(t, ctx, cl2, "kip848"); got["surv"][1] != 7 {
		t.Fatalf("committed after restart: %v", got)
	}
}

// KIP-345: a static member that restarts and joins with an empty member
// id gets its old assignment in the same generation, without a rebalance;
// its old member id is fenced.
func TestStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	p.CreateStream(ctx, "static", 1, nil)
	cl := newClient(t, p)
	old := mustJoin(t, ctx, cl, "sg", "instance-1", "static")
	if _, code := syncGroup(t, ctx, cl, old, map[string][]byte{old.id: []byte("mine")}); code != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(code))
	}

	again := mustJoin(t, ctx, cl, "sg", "instance-1", "static")
	if again.generation != old.generation || again.id == old.id || again.leader != again.id || !again.skipAssignment {
		t.Fatalf("static rejoin: generation %d (was %d), id %q (was %q), leader %q, skip assignment %v",
			again.generation, old.generation, again.id, old.id, again.leader, again.skipAssignment)
	}
	if a, code := syncGroup(t, ctx, cl, again, nil); code != 0 || string(a) != "mine" {
		t.Fatalf("sync after static rejoin: %q %v", a, kerr.ErrorForCode(code))
	}
	if code := heartbeat(t, ctx, cl, old); code != kerr.FencedInstanceID.Code {
		t.Fatalf("old member id's heartbeat: %v, want FENCED_INSTANCE_ID", kerr.ErrorForCode(code))
	}
	if code := heartbeat(t, ctx, cl, again); code != 0 {
		t.Fatalf("new member id's heartbeat: %v", kerr.ErrorForCode(code))
	}
}

// group.initial.rebalance.delay.ms: members that start together land in
// one generation instead of one rebalance each.
func TestInitialRebalanceDelay(t *testing.T) {
	p := braidtest.Start(t, "--group-initial-rebalance-delay", "2s")
	ctx := testCtx(t, 30*time.Second)
	p.CreateStream(ctx, "delayed", 2, nil)
	var wg sync.WaitGroup
	got := make([]classicMember, 2)
	took := make([]time.Duration, 2)
	for i := range got {
		cl := newClient(t, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 500 * time.Millisecond)
			began := time.Now()
			m, code, err := joinGroup(ctx, cl, "dg", "", "", 10*time.Second, "delayed")
			if err != nil || code != 0 {
				t.Errorf("join %d: code %d, %v", i, code, err)
			}
			got[i], took[i] = m, time.Since(began)
		}()
	}
	wg.Wait()
	if got[0].generation != 1 || got[1].generation != 1 {
		t.Fatalf("generations %d and %d, want both 1", got[0].generation, got[1].generation)
	}
	leader := got[0]
	if leader.id != leader.leader {
		leader = got[1]
	}
	if len(leader.members) != 2 {
		t.Fatalf("leader sees %d members, want 2", len(leader.members))
	}
	if took[0] < 1500*time.Millisecond {
		t.Fatalf("first join answered after %s, before the 2 s delay", took[0])
	}
}

// Session timeouts outside group.min/max.session.timeout.ms are refused;
// the bounds are flags, and contradictory bounds stop the node at start.
func TestSessionTimeoutBounds(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	code := func(p *braidtest.Proc, session time.Duration) int16 {
		_, c, err := joinGroup(ctx, newClient(t, p), "bounds", "", "", session)
		if err != nil {
			t.Fatalf("join: %v", err)
		}
		return c
	}
	def := braidtest.Start(t)
	for _, tc := range []struct {
		session time.Duration
		want    *kerr.Error
	}{
		{5999 * time.Millisecond, kerr.InvalidSessionTimeout},
		{6 * time.Second, nil},
		{30 * time.Minute, nil},
		{30*time.Minute + time.Millisecond, kerr.InvalidSessionTimeout},
	} {
		if got := code(def, tc.session); tc.want == nil && got != 0 || tc.want != nil && got != tc.want.Code {
			t.Errorf("default bounds, session %s: %v, want %v", tc.session, kerr.ErrorForCode(got), tc.want)
		}
	}
	flagged := braidtest.Start(t, "--group-min-session-timeout", "1s", "--group-max-session-timeout", "1m")
	if got := code(flagged, time.Second); got != 0 {
		t.Errorf("min 1s, session 1s: %v", kerr.ErrorForCode(got))
	}
	if got := code(flagged, time.Minute+time.Millisecond); got != kerr.InvalidSessionTimeout.Code {
		t.Errorf("max 1m, session 1m0.001s: %v, want INVALID_SESSION_TIMEOUT", kerr.ErrorForCode(got))
	}
	out, err := exec.Command(braidtest.Binary(t), "serve", "--data-dir", t.TempDir(), "--kafka-addr", braidtest.FreeAddr(t),
		"--http-addr", "", "--group-min-session-timeout", "10s", "--group-max-session-timeout", "5s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "group max session timeout") {
		t.Fatalf("serve with min > max: %v\n%s", err, out)
	}
}

// offset.metadata.max.bytes: a commit with longer metadata is refused for
// that partition and stores nothing; the others commit.
func TestOffsetMetadataMaxBytes(t *testing.T) {
	p := braidtest.Start(t, "--offset-metadata-max-bytes", "100")
	ctx := testCtx(t, 30*time.Second)
	p.CreateStream(ctx, "meta", 2, nil)
	cl := newClient(t, p)
	if c := commit(t, ctx, cl, "mg", "", -1, "meta", 0, 3, strings.Repeat("m", 100)); c != 0 {
		t.Fatalf("100 bytes of metadata: %v", kerr.ErrorForCode(c))
	}
	if c := commit(t, ctx, cl, "mg", "", -1, "meta", 1, 4, strings.Repeat("m", 101)); c != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("101 bytes of metadata: %v, want OFFSET_METADATA_TOO_LARGE", kerr.ErrorForCode(c))
	}
	if got := committed(t, ctx, cl, "mg"); len(got["meta"]) != 1 || got["meta"][0] != 3 {
		t.Fatalf("committed: %v, want only meta/0 at 3", got)
	}
	// Kafka's default is 4096 bytes.
	def := braidtest.Start(t)
	def.CreateStream(ctx, "meta", 1, nil)
	if c := commit(t, ctx, newClient(t, def), "mg", "", -1, "meta", 0, 1, strings.Repeat("m", 4097)); c != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("4097 bytes of metadata by default: %v, want OFFSET_METADATA_TOO_LARGE", kerr.ErrorForCode(c))
	}
}

func offsetDelete(t testing.TB, ctx context.Context, cl *kgo.Client, group string, topics ...string) map[string]int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = group
	for _, topic := range topics {
		rt := kmsg.NewOffsetDeleteRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetDeleteRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("offset delete: %v %v", err, resp)
	}
	out := map[string]int16{}
	for _, rt := range resp.Topics {
		out[rt.Topic] = rt.Partitions[0].ErrorCode
	}
	return out
}

// OffsetDelete keeps the offsets of streams an active group is subscribed
// to (GROUP_SUBSCRIBED_TO_TOPIC), for classic and KIP-848 groups alike.
func TestOffsetDeleteRefusesSubscribedTopics(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	p.CreateStream(ctx, "subd", 1, nil)
	p.CreateStream(ctx, "other", 1, nil)
	cl := newClient(t, p)

	m := mustJoin(t, ctx, cl, "classic-del", "", "subd")
	syncGroup(t, ctx, cl, m, map[string][]byte{m.id: nil})
	for _, topic := range []string{"subd", "other"} {
		if c := commit(t, ctx, cl, "classic-del", m.id, m.generation, topic, 0, 9, ""); c != 0 {
			t.Fatalf("commit %s: %v", topic, kerr.ErrorForCode(c))
		}
	}
	got := offsetDelete(t, ctx, cl, "classic-del", "subd", "other")
	if got["subd"] != kerr.GroupSubscribedToTopic.Code || got["other"] != 0 {
		t.Fatalf("classic offset delete: subd %v, other %v", kerr.ErrorForCode(got["subd"]), kerr.ErrorForCode(got["other"]))
	}
	if c := committed(t, ctx, cl, "classic-del"); c["subd"][0] != 9 || len(c["other"]) != 0 {
		t.Fatalf("classic group's offsets after delete: %v", c)
	}

	km := &consumerMember{group: "kip848-del", id: "member-del"}
	if c := km.beat(t, ctx, cl, time.Minute, "subd"); c != 0 {
		t.Fatalf("consumer heartbeat: %v", kerr.ErrorForCode(c))
	}
	if c := commit(t, ctx, cl, "kip848-del", km.id, km.epoch, "subd", 0, 4, ""); c != 0 {
		t.Fatalf("consumer commit: %v", kerr.ErrorForCode(c))
	}
	if got := offsetDelete(t, ctx, cl, "kip848-del", "subd"); got["subd"] != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("KIP-848 offset delete of a subscribed stream: %v", kerr.ErrorForCode(got["subd"]))
	}
	km.epoch = -1 // leave
	if c := km.beat(t, ctx, cl, time.Minute); c != 0 {
		t.Fatalf("leave: %v", kerr.ErrorForCode(c))
	}
	if got := offsetDelete(t, ctx, cl, "kip848-del", "subd"); got["subd"] != 0 {
		t.Fatalf("offset delete once the group is empty: %v", kerr.ErrorForCode(got["subd"]))
	}
}

// KIP-848: a member told to revoke shards that does not do so within its
// rebalance timeout is fenced, and the shards go to the member waiting
// for them, long before its session would expire.
func TestConsumerRebalanceTimeoutEnforced(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	p.CreateStream(ctx, "rt", 4, nil)
	cl := newClient(t, p)
	stuck := &consumerMember{group: "rtg", id: "stuck"}
	for range 2 {
		if c := stuck.beat(t, ctx, cl, time.Second, "rt"); c != 0 {
			t.Fatalf("stuck joins: %v", kerr.ErrorForCode(c))
		}
	}
	waiting := &consumerMember{group: "rtg", id: "waiting"}
	if c := waiting.beat(t, ctx, cl, time.Minute, "rt"); c != 0 {
		t.Fatalf("waiting joins: %v", kerr.ErrorForCode(c))
	}
	// stuck learns it must revoke, and goes quiet (its session is 45 s).
	if c := stuck.beat(t, ctx, cl, time.Second); c != 0 {
		t.Fatalf("stuck heartbeat: %v", kerr.ErrorForCode(c))
	}
	deadline := time.Now().Add(10 * time.Second)
	for waiting.shards() != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("waiting member owns %d of 4 shards 10 s after a 1 s rebalance timeout", waiting.shards())
		}
		time.Sleep(200 * time.Millisecond)
		if c := waiting.beat(t, ctx, cl, time.Minute); c != 0 {
			t.Fatalf("waiting heartbeat: %v", kerr.ErrorForCode(c))
		}
	}
	if c := stuck.beat(t, ctx, cl, time.Second); c != kerr.UnknownMemberID.Code {
		t.Fatalf("fenced member's heartbeat: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(c))
	}
}

// TestTxnOffsetMetadataMaxBytes: offsets committed in a transaction obey
// --offset-metadata-max-bytes too, as Kafka's offset.metadata.max.bytes
// applies to TxnOffsetCommit.
func TestTxnOffsetMetadataMaxBytes(t *testing.T) {
	p := braidtest.Start(t, "--offset-metadata-max-bytes", "100")
	ctx := testCtx(t, 30*time.Second)
	p.CreateStream(ctx, "tmeta", 2, nil)
	c := dialRaw(t, p.KafkaAddr)
	ini := kmsg.NewPtrInitProducerIDRequest()
	ini.TransactionalID, ini.TransactionTimeoutMillis = ptr("tmeta-tx"), 60000
	ir := c.request(ini, 4).(*kmsg.InitProducerIDResponse)
	if ir.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(ir.ErrorCode))
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = "tmeta-tx", ir.ProducerID, ir.ProducerEpoch, "tmg"
	if ar := c.request(add, 3).(*kmsg.AddOffsetsToTxnResponse); ar.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(ar.ErrorCode))
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = "tmeta-tx", "tmg", ir.ProducerID, ir.ProducerEpoch
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = "tmeta"
	for part, n := range []int{100, 101} {
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.Metadata = int32(part), 1, ptr(strings.Repeat("m", n))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := c.request(req, 3).(*kmsg.TxnOffsetCommitResponse)
	if got := resp.Topics[0].Partitions; got[0].ErrorCode != 0 || got[1].ErrorCode != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("TxnOffsetCommit with 100 and 101 bytes of metadata: %v, %v; want none and OFFSET_METADATA_TOO_LARGE",
			kerr.ErrorForCode(got[0].ErrorCode), kerr.ErrorForCode(got[1].ErrorCode))
	}
}
