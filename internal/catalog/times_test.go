package catalog

import (
	"path/filepath"
	"testing"
	"time"
)

// TestStreamAndShardTimes checks that creation and close times are kept,
// persisted, and set by the change that causes them (the Kinesis door
// reports them and ListShards filters by them).
func TestStreamAndShardTimes(t *testing.T) {
	store := FileStore{Path: filepath.Join(t.TempDir(), "catalog.json")}
	c, err := Open(store)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixMilli()
	s, err := c.CreateStream("t", 2, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.CreatedMs < before || s.Shards[0].CreatedMs != s.CreatedMs || s.Shards[1].CreatedMs != s.CreatedMs {
		t.Fatalf("created %d, shards %+v, want at least %d", s.CreatedMs, s.Shards, before)
	}
	time.Sleep(5 * time.Millisecond)
	plan, err := c.PlanSplit("t", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err = c.ApplyReshard(plan, map[ShardID]int64{0: 3})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Open(store)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = c2.Stream("t"); err != nil {
		t.Fatal(err)
	}
	p, open, kid := s.Shards[0], s.Shards[1], s.Shards[2]
	if p.ClosedMs <= s.CreatedMs || kid.CreatedMs != p.ClosedMs || s.Shards[3].CreatedMs != p.ClosedMs {
		t.Fatalf("after split, reloaded: parent %+v, children %+v %+v (stream created %d)", p, kid, s.Shards[3], s.CreatedMs)
	}
	if open.ClosedMs != 0 || kid.ClosedMs != 0 {
		t.Fatalf("open shards have close times: %+v %+v", open, kid)
	}
}
