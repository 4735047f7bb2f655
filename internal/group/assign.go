package group

import (
	"sort"
)

// TopicInfo describes a stream as the assignors see it.
type TopicInfo struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// AssignMember is a member as an assignor sees it.
type AssignMember struct {
	ID      string
	Topics  []string                // subscribed streams that exist
	Current map[TopicPartition]bool // what it owns now, for stickiness
}

// Assignor computes a target assignment for a consumer group (KIP-848
// server-side assignors). assignable says whether a shard may be handed out
// at all: the seam through which shard lineage will hold a child shard back
// until its parents are drained.
type Assignor interface {
	Name() string
	Assign(members []AssignMember, topics map[string]TopicInfo, assignable func(TopicPartition) bool) map[string]map[TopicPartition]bool
}

// Assignors are the server-side assignors, by name; the first is the
// default.
var Assignors = []Assignor{uniformAssignor{}, rangeAssignor{}}

func assignorByName(name string) Assignor {
	for _, a := range Assignors {
		if a.Name() == name {
			return a
		}
	}
	return nil
}

func partitionsOf(members []AssignMember, topics map[string]TopicInfo, assignable func(TopicPartition) bool) []TopicPartition {
	seen := map[string]bool{}
	var out []TopicPartition
	for _, m := range members {
		for _, t := range m.Topics {
			if seen[t] {
				continue
			}
			seen[t] = true
			for p := int32(0); p < topics[t].Partitions; p++ {
				tp := TopicPartition{t, p}
				if assignable == nil || assignable(tp) {
					out = append(out, tp)
				}
			}
		}
	}
	sortTPs(out)
	return out
}

// sortTPs orders shards by stream name, then shard id.
func sortTPs(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
}

func subscribes(m AssignMember, topic string) bool {
	for _, t := range m.Topics {
		if t == topic {
			return true
		}
	}
	return false
}

// uniformAssignor spreads shards evenly over the members subscribed to
// them, keeping each shard where it is when that does not unbalance.
type uniformAssignor struct{}

func (uniformAssignor) Name() string { return "uniform" }

func (uniformAssignor) Assign(members []AssignMember, topics map[string]TopicInfo, assignable func(TopicPartition) bool) map[string]map[TopicPartition]bool {
	out := map[string]map[TopicPartition]bool{}
	for _, m := range members {
		out[m.ID] = map[TopicPartition]bool{}
	}
	if len(members) == 0 {
		return out
	}
	parts := partitionsOf(members, topics, assignable)
	limit := (len(parts) + len(members) - 1) / len(members)
	var rest []TopicPartition
	for _, tp := range parts {
		placed := false
		for _, m := range members {
			if m.Current[tp] && subscribes(m, tp.Topic) && len(out[m.ID]) < limit {
				out[m.ID][tp] = true
				placed = true
				break
			}
		}
		if !placed {
			rest = append(rest, tp)
		}
	}
	// Shards fewer members can take go first, so that members with narrow
	// subscriptions are not left short.
	candidates := map[string]int{}
	for _, m := range members {
		for _, t := range m.Topics {
			candidates[t]++
		}
	}
	sort.SliceStable(rest, func(i, j int) bool { return candidates[rest[i].Topic] < candidates[rest[j].Topic] })
	for _, tp := range rest {
		best := ""
		for _, m := range members {
			if !subscribes(m, tp.Topic) {
				continue
			}
			if best == "" || len(out[m.ID]) < len(out[best]) || len(out[m.ID]) == len(out[best]) && m.ID < best {
				best = m.ID
			}
		}
		if best != "" {
			out[best][tp] = true
		}
	}
	return out
}

// rangeAssignor gives each member a contiguous range of every stream it
// subscribes to, as Kafka's range assignor does.
type rangeAssignor struct{}

func (rangeAssignor) Name() string { return "range" }

func (rangeAssignor) Assign(members []AssignMember, topics map[string]TopicInfo, assignable func(TopicPartition) bool) map[string]map[TopicPartition]bool {
	out := map[string]map[TopicPartition]bool{}
	for _, m := range members {
		out[m.ID] = map[TopicPartition]bool{}
	}
	byTopic := map[string][]TopicPartition{}
	for _, tp := range partitionsOf(members, topics, assignable) {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp)
	}
	for topic, parts := range byTopic {
		var subs []string
		for _, m := range members {
			if subscribes(m, topic) {
				subs = append(subs, m.ID)
			}
		}
		sort.Strings(subs)
		n, k := len(parts), len(subs)
		at := 0
		for i, id := range subs {
			size := n / k
			if i < n%k {
				size++
			}
			for _, tp := range parts[at : at+size] {
				out[id][tp] = true
			}
			at += size
		}
	}
	return out
}
