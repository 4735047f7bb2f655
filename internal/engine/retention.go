package engine

import (
	"context"
	"time"
)

// retention runs the delete policy every RetentionEvery.
func (e *Engine) retention() {
	defer e.wg.Done()
	e.every(e.opts.RetentionEvery, func() {
		stats := e.RetentionPass(context.Background())
		if e.opts.OnRetention != nil {
			e.opts.OnRetention(stats)
		}
	})
}

// RetentionStats says what a retention pass did.
type RetentionStats struct {
	ShardsTrimmed int
	SegmentsBytes int64 // bytes of shard segment files removed
}

// RetentionPass applies every stream's retention now: log starts move
// (durably) past expired data, shard segment files below them go, and
// producers idle past ProducerIDExpiration are forgotten.
func (e *Engine) RetentionPass(ctx context.Context) RetentionStats {
	var stats RetentionStats
	now := time.Now()
	for _, st := range e.Streams() {
		for _, sh := range st.Shards {
			if st.Retention.Ms >= 0 || st.Retention.Bytes >= 0 {
				start, _, _ := sh.Offsets()
				if target := sh.RetentionTarget(st.Retention, now); target > start {
					if _, err := e.DeleteRecords(ctx, sh, target); err != nil {
						e.opts.Logger.Error("engine: retention", "stream", st.Name, "shard", sh.Key().Shard, "err", err)
						continue
					}
					stats.ShardsTrimmed++
					e.opts.Logger.Info("engine: retention moved log start", "stream", st.Name,
						"shard", sh.Key().Shard, "from", start, "to", target)
				}
			}
			if n := sh.ExpireProducers(e.opts.ProducerIDExpiration, now); n > 0 {
				e.opts.Logger.Info("engine: expired idle producers", "stream", st.Name, "shard", sh.Key().Shard, "count", n)
			}
			freed, err := sh.DropUnreferencedSegments(e.opts.RetentionGrace, now)
			if err != nil {
				e.opts.Logger.Error("engine: remove expired segments", "stream", st.Name, "err", err)
			}
			stats.SegmentsBytes += freed
		}
	}
	return stats
}
