package group

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// withRemain gives s a log whose last record is at offset last-1, followed
// only by what readers skip.
func withRemain(s ShardLineage, last int64) ShardLineage {
	s.ReadsRemain = func(from int64) bool { return from < last }
	return s
}

func TestDrained(t *testing.T) {
	closed := func(logStart, hw, lso int64) ShardLineage {
		return ShardLineage{Closed: true, LogStart: logStart, HighWatermark: hw, LastStable: lso}
	}
	for _, tc := range []struct {
		name      string
		s         ShardLineage
		committed int64
		has       bool
		want      bool
	}{
		{"open shard is never drained", ShardLineage{LogStart: 0, HighWatermark: 0, LastStable: 0}, 0, true, false},
		{"committed to the end", closed(0, 10, 10), 10, true, true},
		{"committed past the end", closed(0, 10, 10), 12, true, true},
		{"committed short of the end", closed(0, 10, 10), 9, true, false},
		{"no commit", closed(0, 10, 10), 0, false, false},
		{"open transaction", closed(0, 10, 7), 10, true, false},
		{"never written", closed(0, 0, 0), 0, false, true},
		{"only markers after the commit", withRemain(closed(0, 10, 10), 8), 8, true, true},
		{"records after the commit", withRemain(closed(0, 10, 10), 8), 7, true, false},
		{"only markers after the commit, transaction open", withRemain(closed(0, 10, 9), 8), 8, true, false},
		{"emptied by retention", closed(10, 10, 10), 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Drained(tc.s, tc.committed, tc.has); got != tc.want {
				t.Fatalf("Drained(%+v, %d, %v) = %v, want %v", tc.s, tc.committed, tc.has, got, tc.want)
			}
		})
	}
}

// TestLineageGate walks a stream where shard 0 was split into 2 and 3,
// 3 split into 4 and 5, and 2 and 4 merged into 6; shard 1 never changed.
func TestLineageGate(t *testing.T) {
	shards := map[int32]ShardLineage{
		0: {Closed: true, HighWatermark: 10, LastStable: 10},
		1: {HighWatermark: 5, LastStable: 5},
		2: {Parents: []int32{0}, Closed: true, HighWatermark: 4, LastStable: 4},
		3: {Parents: []int32{0}, Closed: true, HighWatermark: 6, LastStable: 6},
		4: {Parents: []int32{3}, Closed: true, LogStart: 0, HighWatermark: 0},
		5: {Parents: []int32{3}, HighWatermark: 3, LastStable: 3},
		6: {Parents: []int32{2, 4}, HighWatermark: 1, LastStable: 1},
	}
	lookup := func(tp TopicPartition) (ShardLineage, bool) {
		s, ok := shards[tp.Partition]
		return s, ok && tp.Topic == "s"
	}
	for _, tc := range []struct {
		name      string
		committed map[int32]int64
		want      []int32 // assignable shards
	}{
		{"nothing committed", nil, []int32{0, 1}},
		{"parent half read", map[int32]int64{0: 5}, []int32{0, 1}},
		{"parent drained", map[int32]int64{0: 10}, []int32{0, 1, 2, 3}},
		{"one child drained", map[int32]int64{0: 10, 3: 6}, []int32{0, 1, 2, 3, 4, 5}},
		{"both merge parents drained", map[int32]int64{0: 10, 3: 6, 2: 4}, []int32{0, 1, 2, 3, 4, 5, 6}},
		// Offsets committed by hand below an undrained ancestor release nothing.
		{"grandparent not drained", map[int32]int64{3: 6, 2: 4}, []int32{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keep := LineageGate(lookup, func(tp TopicPartition) (int64, bool) {
				o, ok := tc.committed[tp.Partition]
				return o, ok
			})
			var got []int32
			for p := int32(0); p < 7; p++ {
				if keep(TopicPartition{"s", p}) {
					got = append(got, p)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("assignable %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("assignable %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestCoordinatorHoldsBack drives the coordinator with a gate that refuses
// shard t/2 until opened: KIP-848 members and classic assignments go
// without it, and opening the gate releases it (a new target, a rebalance).
func TestCoordinatorHoldsBack(t *testing.T) {
	var mu sync.Mutex
	open := false
	gate := func(string) func(TopicPartition) bool {
		mu.Lock()
		defer mu.Unlock()
		o := open
		return func(tp TopicPartition) bool { return o || tp.Partition != 2 }
	}
	openGate := func() {
		mu.Lock()
		open = true
		mu.Unlock()
	}
	// The test's assignment encoding: "t/0,t/1".
	filter := func(b []byte, keep func(TopicPartition) bool) ([]byte, []TopicPartition) {
		var kept []string
		var held []TopicPartition
		for _, s := range strings.Split(string(b), ",") {
			var tp TopicPartition
			topic, part, _ := strings.Cut(s, "/")
			fmt.Sscan(part, &tp.Partition)
			tp.Topic = topic
			if keep(tp) {
				kept = append(kept, s)
			} else {
				held = append(held, tp)
			}
		}
		return []byte(strings.Join(kept, ",")), held
	}
	eventually := func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not happen", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	t.Run("kip848", func(t *testing.T) {
		mu.Lock()
		open = false
		mu.Unlock()
		c := NewCoordinator(NewOffsets(), Options{})
		defer c.Close()
		c.EnableConsumerProtocol(ConsumerOptions{Topics: topicsOf(map[string]int32{"t": 3})})
		c.SetLineageGate(gate, filter)
		r, err := c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "m", SubscribedTopics: []string{"t"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(r.Assignment); got != "[{t 0} {t 1}]" {
			t.Fatalf("assignment %s with t/2 held back", got)
		}
		openGate()
		eventually(t, "t/2 handed out", func() bool {
			r, err = c.ConsumerHeartbeat(HeartbeatRequest{Group: "g", MemberID: "m", MemberEpoch: r.MemberEpoch, Owned: r.Assignment, OwnedKnown: true})
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(r.Assignment) == "[{t 0} {t 1} {t 2}]"
		})
	})

	t.Run("classic", func(t *testing.T) {
		mu.Lock()
		open = false
		mu.Unlock()
		c := NewCoordinator(NewOffsets(), Options{})
		defer c.Close()
		c.SetLineageGate(gate, filter)
		j := <-c.Join(JoinRequest{Group: "g", ClientID: "c", ProtocolType: "consumer", SessionTimeout: 10 * time.Second,
			RebalanceTimeout: time.Second, Protocols: []Protocol{{Name: "range"}}})
		if j.Err != nil {
			t.Fatal(j.Err)
		}
		s := <-c.Sync("g", j.MemberID, "", j.Generation, map[string][]byte{j.MemberID: []byte("t/0,t/1,t/2")})
		if s.Err != nil || string(s.Assignment) != "t/0,t/1" {
			t.Fatalf("sync: %q %v, want t/2 held back", s.Assignment, s.Err)
		}
		time.Sleep(150 * time.Millisecond) // a few timer ticks: nothing to release yet
		if err := c.Heartbeat("g", j.MemberID, "", j.Generation); err != nil {
			t.Fatalf("heartbeat with t/2 still held: %v", err)
		}
		openGate()
		eventually(t, "a rebalance", func() bool {
			return errors.Is(c.Heartbeat("g", j.MemberID, "", j.Generation), ErrRebalanceInProgress)
		})
	})
}
