package group

import "testing"

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
