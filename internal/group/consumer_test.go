package group

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func topicsOf(n map[string]int32) Topics {
	return func() map[string]TopicInfo {
		out := map[string]TopicInfo{}
		for name, p := range n {
			out[name] = TopicInfo{Name: name, Partitions: p}
		}
		return out
	}
}

func TestAssignors(t *testing.T) {
	topics := map[string]TopicInfo{"a": {Name: "a", Partitions: 7}, "b": {Name: "b", Partitions: 2}}
	members := []AssignMember{{ID: "m1", Topics: []string{"a", "b"}}, {ID: "m2", Topics: []string{"a", "b"}}, {ID: "m3", Topics: []string{"a"}}}
	for _, tc := range []struct {
		assignor   Assignor
		wantCounts map[string]int
	}{
		{uniformAssignor{}, map[string]int{"m1": 3, "m2": 3, "m3": 3}},
		{rangeAssignor{}, map[string]int{"m1": 3 + 1, "m2": 2 + 1, "m3": 2}},
	} {
		t.Run(tc.assignor.Name(), func(t *testing.T) {
			got := tc.assignor.Assign(members, topics, nil)
			seen := map[TopicPartition]string{}
			for id, tps := range got {
				if len(tps) != tc.wantCounts[id] {
					t.Errorf("%s got %d shards, want %d", id, len(tps), tc.wantCounts[id])
				}
				for tp := range tps {
					if prev, dup := seen[tp]; dup {
						t.Fatalf("%v assigned to %s and %s", tp, prev, id)
					}
					if tp.Topic == "b" && id == "m3" {
						t.Fatalf("m3 got %v without subscribing to b", tp)
					}
					seen[tp] = id
				}
			}
			if len(seen) != 9 {
				t.Fatalf("%d of 9 shards assigned", len(seen))
			}
		})
	}
	// The seam for lineage: a withheld shard goes to nobody.
	got := uniformAssignor{}.Assign(members, topics, func(tp TopicPartition) bool { return tp != TopicPartition{"a", 3} })
	for id, tps := range got {
		if tps[TopicPartition{"a", 3}] {
			t.Fatalf("withheld shard assigned to %s", id)
		}
	}
	// Stickiness: when a member joins, shards that can stay, stay.
	cur := uniformAssignor{}.Assign(members[:2], topics, nil)
	next := uniformAssignor{}.Assign([]AssignMember{
		{ID: "m1", Topics: []string{"a", "b"}, Current: cur["m1"]},
		{ID: "m2", Topics: []string{"a", "b"}, Current: cur["m2"]},
		{ID: "m3", Topics: []string{"a"}},
	}, topics, nil)
	moved := 0
	for _, id := range []string{"m1", "m2"} {
		for tp := range cur[id] {
			if !next[id][tp] {
				moved++
			}
		}
	}
	if moved != 3 {
		t.Fatalf("%d shards moved when a third member joined, want 3 (only what m3 needs)", moved)
	}
}

// TestReconcileNeverOwnsTwice drives random joins, leaves and heartbeats
// (members acknowledge revocations only some of the time) and checks after
// every step that no shard is owned by two members, and that a quiet group
// converges to its target.
func TestReconcileNeverOwnsTwice(t *testing.T) {
	c := NewCoordinator(NewOffsets(), Options{})
	defer c.Close()
	c.EnableConsumerProtocol(ConsumerOptions{Topics: topicsOf(map[string]int32{"s": 12})})
	rng := rand.New(rand.NewPCG(1, 2))
	type client struct {
		epoch int32
		owned []TopicPartition
	}
	clients := map[string]*client{}
	beat := func(id string, ack bool) {
		cl := clients[id]
		req := HeartbeatRequest{Group: "g", MemberID: id, MemberEpoch: cl.epoch, SubscribedTopics: []string{"s"}, RebalanceTimeout: time.Second}
		if ack {
			req.Owned, req.OwnedKnown = cl.owned, true
		}
		resp, err := c.ConsumerHeartbeat(req)
		if err != nil {
			t.Fatalf("heartbeat %s: %v", id, err)
		}
		cl.epoch = resp.MemberEpoch
		if resp.AssignmentSent {
			cl.owned = resp.Assignment
		}
	}
	check := func(step int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		owner := map[TopicPartition]string{}
		for id, m := range c.consumers["g"].members {
			for tp := range m.assigned {
				if o, dup := owner[tp]; dup {
					t.Fatalf("step %d: %v owned by %s and %s", step, tp, o, id)
				}
				owner[tp] = id
			}
			for tp := range m.revoking {
				if o, dup := owner[tp]; dup {
					t.Fatalf("step %d: %v owned by %s and revoked by %s", step, tp, o, id)
				}
				owner[tp] = id
			}
		}
	}
	next := 0
	for step := range 400 {
		switch r := rng.IntN(10); {
		case r == 0 || len(clients) == 0:
			id := fmt.Sprintf("m%d", next)
			next++
			clients[id] = &client{}
			beat(id, true)
		case r == 1 && len(clients) > 1:
			for id := range clients {
				c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: id, MemberEpoch: -1})
				delete(clients, id)
				break
			}
		default:
			for id := range clients {
				beat(id, rng.IntN(2) == 0)
				break
			}
		}
		check(step)
	}
	// Quiet: everyone heartbeats and acknowledges until stable.
	for range 10 {
		for id := range clients {
			beat(id, true)
		}
	}
	d, _ := c.DescribeConsumer("g")
	total := 0
	for _, m := range d.Members {
		total += len(m.Assignment)
		if fmt.Sprint(m.Assignment) != fmt.Sprint(m.Target) {
			t.Fatalf("member %s did not converge: has %v, target %v", m.MemberID, m.Assignment, m.Target)
		}
	}
	if d.State != StateStable || total != 12 {
		t.Fatalf("after quiet heartbeats: state %s, %d of 12 shards owned", d.State, total)
	}
}

// A KIP-848 subscription regex matches whole stream names, internal ones
// included, as Kafka's broker-side resolution does (franz-go's
// Test848RegexBrokerResolves relies on both).
func TestSubscribedRegexWholeNamesAndInternal(t *testing.T) {
	all := map[string]TopicInfo{"orders": {}, "a-orders": {}, "orders-v2": {}, "__consumer_offsets": {}, "other": {}}
	for _, tc := range []struct {
		regex  string
		topics []string
		want   []string
	}{
		{regex: "orders", want: []string{"orders"}},
		{regex: ".*orders.*", want: []string{"a-orders", "orders", "orders-v2"}},
		{regex: "orders|__consumer_offsets", want: []string{"__consumer_offsets", "orders"}},
		{regex: "oth.*", topics: []string{"orders", "missing"}, want: []string{"orders", "other"}},
	} {
		re, err := compileSubscription(tc.regex)
		if err != nil {
			t.Fatalf("regex %q: %v", tc.regex, err)
		}
		m := &cgMember{regex: tc.regex, re: re, topics: tc.topics}
		if got := m.subscribedTopics(all); !slices.Equal(got, tc.want) {
			t.Errorf("regex %q, names %q: %q, want %q", tc.regex, tc.topics, got, tc.want)
		}
	}
}

// KIP-848: a member that does not revoke within its rebalance timeout is
// fenced, and its shards go to the members waiting for them.
func TestRebalanceTimeoutFencesStuckMember(t *testing.T) {
	c := NewCoordinator(NewOffsets(), Options{})
	defer c.Close()
	c.EnableConsumerProtocol(ConsumerOptions{SessionTimeout: time.Hour, Topics: topicsOf(map[string]int32{"t": 4})})
	a, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a", SubscribedTopics: []string{"t"}, RebalanceTimeout: 300 * time.Millisecond})
	if err != nil || len(a.Assignment) != 4 {
		t.Fatalf("a joins: %v %v", a.Assignment, err)
	}
	if _, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a", MemberEpoch: a.MemberEpoch, Owned: a.Assignment, OwnedKnown: true}); err != nil {
		t.Fatal(err)
	}
	b, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "b", SubscribedTopics: []string{"t"}, RebalanceTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// a learns it must revoke two shards, and then never answers.
	if _, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a", MemberEpoch: a.MemberEpoch, Owned: a.Assignment, OwnedKnown: true}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "b", MemberEpoch: b.MemberEpoch, OwnedKnown: true, Owned: b.Assignment})
		if err != nil {
			t.Fatal(err)
		}
		b.MemberEpoch = r.MemberEpoch
		if r.AssignmentSent {
			b.Assignment = r.Assignment
		}
		if len(b.Assignment) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b owns %v 5 s after a's 300 ms rebalance timeout", b.Assignment)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a", MemberEpoch: a.MemberEpoch}); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("fenced member's heartbeat: %v, want ErrUnknownMember", err)
	}
}

// A subscription regex is bounded, and bad input changes nothing.
func TestSubscriptionRegexBounded(t *testing.T) {
	c := NewCoordinator(NewOffsets(), Options{})
	defer c.Close()
	c.EnableConsumerProtocol(ConsumerOptions{Topics: topicsOf(map[string]int32{"t": 1})})
	long := strings.Repeat("a", MaxRegexBytes+1)
	for _, re := range []string{long, "(unclosed"} {
		if _, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a", SubscribedRegex: &re}); !errors.Is(err, ErrInvalidRegex) {
			t.Fatalf("regex of %d bytes: %v, want ErrInvalidRegex", len(re), err)
		}
	}
	if _, ok := c.DescribeConsumer("g"); ok {
		t.Fatalf("a refused join left a group behind")
	}
	ok := strings.Repeat("a", MaxRegexBytes-2) + "|t"
	if _, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "a", SubscribedRegex: &ok}); err != nil {
		t.Fatalf("regex at the limit: %v", err)
	}
}
