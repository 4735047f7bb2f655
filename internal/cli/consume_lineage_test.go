package cli

import (
	"fmt"
	"slices"
	"testing"
)

// A layout: 0 split into 1 and 2; 2 split into 3 and 4; 1 and 3 merged
// into 5. Open: 4, 5.
func testLayout() *adminStream {
	end := func(v int64) *int64 { return &v }
	return &adminStream{Shards: []adminShard{
		{Shard: 0, State: "closed", EndOffset: end(10), HighWatermark: 10, Children: []int32{1, 2}},
		{Shard: 1, State: "closed", EndOffset: end(4), HighWatermark: 4, Parents: []int32{0}, Children: []int32{5}},
		{Shard: 2, State: "closed", EndOffset: end(0), HighWatermark: 0, Parents: []int32{0}, Children: []int32{3, 4}},
		{Shard: 3, State: "closed", EndOffset: end(6), HighWatermark: 6, Parents: []int32{2}, Children: []int32{5}},
		{Shard: 4, State: "open", HighWatermark: 7, Parents: []int32{2}},
		{Shard: 5, State: "open", HighWatermark: 3, Parents: []int32{1, 3}},
	}}
}

func addKeys[V any](m map[int32]V) []int32 {
	var out []int32
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestLineageGate(t *testing.T) {
	earliest, _ := parseFrom("earliest")
	latest, _ := parseFrom("latest")

	t.Run("earliest walks the tree as parents end", func(t *testing.T) {
		g := newLineageGate(testLayout())
		add, drop := g.settle(true, earliest)
		if fmt.Sprint(addKeys(add), drop) != "[0] []" {
			t.Fatalf("start: add %v drop %v, want only the root", addKeys(add), drop)
		}
		g.advance(0, 8)
		if add, drop = g.settle(false, earliest); len(add) != 0 || len(drop) != 0 {
			t.Fatalf("parent not at its end: add %v drop %v", addKeys(add), drop)
		}
		g.advance(0, 9)
		// 0 ends; 1 and 2 open up; 2 is empty, so 3 and 4 follow at once.
		add, drop = g.settle(false, earliest)
		if fmt.Sprint(addKeys(add), drop) != "[1 3 4] [0]" {
			t.Fatalf("after 0 ends: add %v drop %v", addKeys(add), drop)
		}
		g.advance(1, 3)
		if add, drop = g.settle(false, earliest); len(add) != 0 || fmt.Sprint(drop) != "[1]" {
			t.Fatalf("merged child must wait for both parents: add %v drop %v", addKeys(add), drop)
		}
		g.advance(3, 5)
		if add, drop = g.settle(false, earliest); fmt.Sprint(addKeys(add), drop) != "[5] [3]" {
			t.Fatalf("after 1 and 3 end: add %v drop %v", addKeys(add), drop)
		}
	})
	t.Run("latest starts at the open shards", func(t *testing.T) {
		g := newLineageGate(testLayout())
		add, drop := g.settle(true, latest)
		if fmt.Sprint(addKeys(add), drop) != "[4 5] []" {
			t.Fatalf("add %v drop %v, want the open shards only", addKeys(add), drop)
		}
	})
	t.Run("a reshard seen on refresh", func(t *testing.T) {
		g := newLineageGate(testLayout())
		g.settle(true, latest)
		l := testLayout()
		end := int64(9)
		l.Shards[4].State, l.Shards[4].EndOffset, l.Shards[4].Children = "closed", &end, []int32{6, 7}
		l.Shards = append(l.Shards, adminShard{Shard: 6, State: "open", Parents: []int32{4}}, adminShard{Shard: 7, State: "open", Parents: []int32{4}})
		g.update(l)
		if add, _ := g.settle(false, latest); len(add) != 0 {
			t.Fatalf("children before the parent's end: %v", addKeys(add))
		}
		g.advance(4, 8)
		add, drop := g.settle(false, latest)
		if fmt.Sprint(addKeys(add), drop) != "[6 7] [4]" {
			t.Fatalf("add %v drop %v", addKeys(add), drop)
		}
		if o := add[6].EpochOffset().Offset; o != -2 {
			t.Errorf("a child found later starts at offset %d, want the start (-2)", o)
		}
	})
}
