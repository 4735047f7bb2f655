package client

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

func lineageLayoutOf(t *testing.T, js string) *streamLayout {
	t.Helper()
	var l streamLayout
	if err := json.Unmarshal([]byte(js), &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

// The client-side lineage gate: a child is assigned only once every parent
// is read to its end; closed shards read to their end are dropped; an
// empty closed shard holds nothing back.
func TestLineageSettle(t *testing.T) {
	// 0 split into 1 and 2; 2 and 3 (empty, closed) merged into 4.
	g := newLineage()
	g.update(lineageLayoutOf(t, `{"shards":[
		{"shard":0,"log_start":0,"state":"closed","end_offset":10,"parents":[]},
		{"shard":1,"log_start":0,"state":"open","parents":[0]},
		{"shard":2,"log_start":0,"state":"closed","end_offset":5,"parents":[0]},
		{"shard":3,"log_start":7,"state":"closed","end_offset":7,"parents":[]},
		{"shard":4,"log_start":0,"state":"open","parents":[2,3]}]}`))
	steps := []struct {
		name    string
		advance map[int32]int64 // shard → last offset read
		add     []int32
		drop    []int32
	}{
		{"start: the roots; the empty closed root is done at once", nil, []int32{0}, nil},
		{"parent partly read: children wait", map[int32]int64{0: 8}, nil, nil},
		{"parent read to its end: children start", map[int32]int64{0: 9}, []int32{1, 2}, []int32{0}},
		{"one parent of the merge read", map[int32]int64{2: 3}, nil, nil},
		{"both parents done: the merge child starts", map[int32]int64{2: 4}, []int32{4}, []int32{2}},
		{"nothing more", map[int32]int64{1: 100, 4: 100}, nil, nil},
	}
	for _, st := range steps {
		for shard, off := range st.advance {
			g.advance(shard, off)
		}
		add, drop := g.settle()
		gotAdd := slices.Sorted(maps.Keys(add))
		slices.Sort(drop)
		if !slices.Equal(gotAdd, st.add) || !slices.Equal(drop, st.drop) {
			t.Fatalf("%s: add %v drop %v, want add %v drop %v", st.name, gotAdd, drop, st.add, st.drop)
		}
	}
	if g.shards[3].assigned && !g.shards[3].done {
		t.Errorf("empty closed shard 3 left assigned")
	}
}
