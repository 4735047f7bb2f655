package engine

import (
	"fmt"
	"testing"

	"github.com/braidstream/braid/internal/group"
)

func TestCommittedOffsetsSurviveCrash(t *testing.T) {
	for _, ckpt := range []string{"none", "middle", "end"} {
		t.Run("checkpoint="+ckpt, func(t *testing.T) {
			dir := t.TempDir()
			e := openEngine(t, dir)
			// Offsets of a stream that does not exist are dropped at
			// start-up (the Kafka door refuses commits to unknown streams,
			// so only a deletion leaves them).
			if _, err := e.CreateStream("orders", 3, nil, false); err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			tp := func(p int32) group.TopicPartition { return group.TopicPartition{Topic: "orders", Partition: p} }
			commit := func(g string, p int32, off int64) {
				if err := e.Offsets().Commit(ctx, g, map[group.TopicPartition]group.Commit{tp(p): {Offset: off, LeaderEpoch: 0, Metadata: "m"}}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 10 {
				commit("g1", int32(i%3), int64(i))
			}
			commit("g2", 0, 99)
			commit("gone", 0, 1)
			if ckpt == "middle" {
				e.checkpoint()
			}
			commit("g1", 0, 100)
			if err := e.Offsets().Delete(ctx, "g1", []group.TopicPartition{tp(1)}); err != nil {
				t.Fatal(err)
			}
			if err := e.Offsets().DeleteGroup(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
			if ckpt == "end" {
				e.checkpoint()
			}
			crashed := t.TempDir()
			copyDir(t, dir, crashed)
			e.Close()
			e2 := openEngine(t, crashed)
			defer e2.Close()
			got := fmt.Sprint(e2.Offsets().Groups(), e2.Offsets().Fetch("g1"), e2.Offsets().Fetch("g2"))
			want := fmt.Sprint([]string{"g1", "g2"},
				map[group.TopicPartition]group.Commit{tp(0): {Offset: 100, Metadata: "m"}, tp(2): {Offset: 8, Metadata: "m"}},
				map[group.TopicPartition]group.Commit{tp(0): {Offset: 99, Metadata: "m"}})
			if got != want {
				t.Fatalf("after crash:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestDeletedStreamTakesItsOffsets: a recreated stream must not inherit the
// committed offsets of the one deleted under the same name, also after a
// crash.
func TestDeletedStreamTakesItsOffsets(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	e.CreateStream("orders", 2, nil, false)
	e.CreateStream("other", 1, nil, false)
	ctx := t.Context()
	e.Offsets().Commit(ctx, "g", map[group.TopicPartition]group.Commit{
		{Topic: "orders", Partition: 0}: {Offset: 7}, {Topic: "orders", Partition: 1}: {Offset: 3}, {Topic: "other", Partition: 0}: {Offset: 5},
	})
	if err := e.DeleteStream("orders"); err != nil {
		t.Fatal(err)
	}
	e.CreateStream("orders", 2, nil, false)
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	e.Close()
	e2 := openEngine(t, crashed)
	defer e2.Close()
	got := e2.Offsets().Fetch("g")
	if len(got) != 1 || got[group.TopicPartition{Topic: "other", Partition: 0}].Offset != 5 {
		t.Fatalf("offsets after deleting and recreating orders: %v, want only other/0 at 5", got)
	}
}
