package group

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkConsumerHeartbeat measures one steady-state KIP-848 heartbeat
// in a group of 1,000 members subscribed to 100 streams of 10 shards each:
// the work done under the coordinator's one lock on every heartbeat.
func BenchmarkConsumerHeartbeat(b *testing.B) {
	const members, topics, parts = 1000, 100, 10
	all := map[string]TopicInfo{}
	names := make([]string, 0, topics)
	for i := range topics {
		name := fmt.Sprintf("topic-%03d", i)
		all[name] = TopicInfo{Name: name, ID: [16]byte{byte(i), 1}, Partitions: parts}
		names = append(names, name)
	}
	c := NewCoordinator(NewOffsets(), Options{})
	defer c.Close()
	// Members join while no stream exists, then the streams appear: one
	// target computation instead of one per join keeps the setup short.
	cur := map[string]TopicInfo{}
	c.EnableConsumerProtocol(ConsumerOptions{SessionTimeout: time.Hour, Topics: func() map[string]TopicInfo { return cur }})
	ids := make([]string, members)
	epochs := make([]int32, members)
	owned := make([][]TopicPartition, members)
	for i := range ids {
		ids[i] = fmt.Sprintf("member-%04d", i)
	}
	beat := func(i int, first bool) {
		req := HeartbeatRequest{Group: "g", MemberID: ids[i], MemberEpoch: epochs[i], Owned: owned[i], OwnedKnown: true}
		if first {
			req.SubscribedTopics = names
		}
		r, err := c.ConsumerHeartbeat(req)
		if err != nil {
			b.Fatalf("heartbeat %s: %v", ids[i], err)
		}
		epochs[i] = r.MemberEpoch
		if r.AssignmentSent {
			owned[i] = r.Assignment
		}
	}
	for i := range ids {
		beat(i, true)
	}
	cur = all
	// Converge: everyone takes up its target.
	for round := 0; ; round++ {
		for i := range ids {
			beat(i, false)
		}
		if d, _ := c.DescribeConsumer("g"); d.State == StateStable {
			break
		} else if round == 5 {
			b.Fatalf("group is %s after converging, want Stable", d.State)
		}
	}
	b.ResetTimer()
	for n := range b.N {
		beat(n%members, false)
	}
}
