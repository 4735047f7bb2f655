package engine

import (
	"context"
	"time"

	"github.com/braidstream/braid/internal/shard"
)

// cleaner runs key compaction (cleanup.policy=compact) every CleanerEvery
// on each shard that is due (see shard.Compact). Passes run one at a time,
// under an I/O budget, beside produce and fetch.
func (e *Engine) cleaner() {
	defer e.wg.Done()
	e.every(e.opts.CleanerEvery, func() { e.CleanPass(context.Background(), false) })
}

// every calls fn every interval until the engine stops.
func (e *Engine) every(interval time.Duration, fn func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
		}
		fn()
	}
}

// CleanPass runs a cleaning pass on every compacted shard that is due (all
// of them with force) and returns the totals.
func (e *Engine) CleanPass(ctx context.Context, force bool) shard.CompactStats {
	var total shard.CompactStats
	throttle := newThrottle(e.opts.CleanerBytesPerSec)
	for _, st := range e.Streams() {
		if st.Compact == nil {
			continue
		}
		for _, sh := range st.Shards {
			select {
			case <-e.stop:
				return total
			default:
			}
			began := time.Now()
			stats, end, err := sh.Compact(*st.Compact, began, force, throttle)
			if err != nil {
				e.opts.Logger.Error("engine: compaction", "stream", st.Name, "shard", sh.Key().Shard, "err", err)
				continue
			}
			if stats.Batches == 0 {
				continue
			}
			if end > 0 {
				if err := e.wal.WaitDurable(ctx, end); err != nil {
					e.opts.Logger.Error("engine: compaction: wait for the log", "stream", st.Name, "err", err)
					continue
				}
				if _, err := sh.DropUnreferencedSegments(e.opts.RetentionGrace, time.Now()); err != nil {
					e.opts.Logger.Error("engine: compaction: remove replaced segments", "stream", st.Name, "err", err)
				}
			}
			e.opts.Logger.Info("engine: compacted shard", "stream", st.Name, "shard", sh.Key().Shard,
				"batches", stats.Batches, "batches_removed", stats.Dropped, "records", stats.Records,
				"records_removed", stats.Removed, "read_bytes", stats.ReadBytes, "written_bytes", stats.WrittenBytes,
				"took", time.Since(began))
			if e.opts.OnClean != nil {
				e.opts.OnClean(stats)
			}
			total.Add(stats)
		}
	}
	return total
}
