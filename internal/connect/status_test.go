package connect

import (
	"log/slog"
	"testing"
	"time"
)

// Backfill progress on a sink's first run: from where each shard started
// to the end it had when first seen; caught up once all are reached.
func TestBackfillProgress(t *testing.T) {
	m := &Manager{store: &Store{dir: t.TempDir()}, log: slog.New(slog.DiscardHandler)}
	c := m.newConnector("x", nil)
	a, b := ShardKey{"s", 0}, ShardKey{"s", 1}
	c.mu.Lock()
	c.shards[a] = &shardStatus{position: 10, end: 110, bfStart: 10, bfEnd: 110, bfSet: true}
	c.shards[b] = &shardStatus{position: 0, end: 100, bfStart: 0, bfEnd: 100, bfSet: true}
	c.mu.Unlock()
	c.deleted = true // markCaughtUp saves nothing
	c.advance([]Record{{Stream: "s", Shard: 0, Offset: 59}})
	d := c.describe()
	if d.Backfill == nil || d.Backfill.Done != 50 || d.Backfill.Total != 200 || d.Backfill.Percent != 25 {
		t.Fatalf("backfill %+v, want 50 of 200", d.Backfill)
	}
	if d.Lag != 150 {
		t.Fatalf("lag %d, want 150", d.Lag)
	}
	// Records past the first end do not count beyond it.
	c.advance([]Record{{Stream: "s", Shard: 0, Offset: 500}, {Stream: "s", Shard: 1, Offset: 98}})
	if d := c.describe(); d.Backfill == nil || d.Backfill.Done != 199 {
		t.Fatalf("backfill %+v, want 199 done", d.Backfill)
	}
	c.advance([]Record{{Stream: "s", Shard: 1, Offset: 99}})
	if d := c.describe(); d.Backfill != nil {
		t.Fatalf("backfill %+v after catching up, want null", d.Backfill)
	}
}

func TestRateWindow(t *testing.T) {
	var w rateWindow
	now := time.Unix(1000, 0)
	for i := 0; i < 10; i++ {
		w.add(now.Add(time.Duration(i)*time.Second), 10)
	}
	if r := w.perSec(now.Add(9 * time.Second)); r != 10 {
		t.Fatalf("rate %v, want 10/s", r)
	}
	if r := w.perSec(now.Add(30 * time.Second)); r != 0 {
		t.Fatalf("rate %v long after, want 0", r)
	}
}
