package connect

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// setPosition records the next offset a sink reads from a shard.
func (c *connector) setPosition(k ShardKey, off int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shard(k).position = off
}

func (c *connector) shard(k ShardKey) *shardStatus {
	s := c.shards[k]
	if s == nil {
		s = &shardStatus{position: -1, end: -1}
		c.shards[k] = s
	}
	return s
}

func (c *connector) dropShard(k ShardKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.shards, k)
}

// advance moves the read positions past records read.
func (c *connector) advance(recs []Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		s := c.shard(ShardKey{r.Stream, r.Shard})
		if r.Offset+1 > s.position {
			s.position = r.Offset + 1
		}
	}
	c.updateBackfill()
}

// watchEnds refreshes the shards' end offsets every two seconds (the lag);
// the returned func stops it.
func (c *connector) watchEnds(ctx context.Context, adm *kadm.Client, streams []string) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			c.refreshEnds(ctx, adm, streams)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (c *connector) refreshEnds(ctx context.Context, adm *kadm.Client, streams []string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ends, err := adm.ListCommittedOffsets(ctx, streams...)
	if err != nil {
		return
	}
	starts, err := adm.ListStartOffsets(ctx, streams...)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	first := !c.caughtUp
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Partition < 0 {
			return
		}
		k := ShardKey{o.Topic, o.Partition}
		s := c.shard(k)
		s.end = o.Offset
		if s.position < 0 {
			if so, ok := starts.Lookup(o.Topic, o.Partition); ok && so.Err == nil {
				s.position = so.Offset // nothing read or committed: the shard's start
			}
		}
		if first && !s.bfSet && s.position >= 0 {
			s.bfStart, s.bfEnd, s.bfSet = s.position, s.end, true
		}
	})
	c.updateBackfill()
}

// updateBackfill recomputes a first run's progress; once every shard has
// reached the end it found, the sink is caught up for good (saved).
func (c *connector) updateBackfill() {
	if c.caughtUp || len(c.shards) == 0 {
		return
	}
	var done, total int64
	for _, s := range c.shards {
		if !s.bfSet {
			return
		}
		total += s.bfEnd - s.bfStart
		done += min(max(s.position, s.bfStart), s.bfEnd) - s.bfStart
	}
	b := &Backfill{Done: done, Total: total, Percent: 100}
	if total > 0 {
		b.Percent = float64(done) * 100 / float64(total)
	}
	c.backfill = b
	if done >= total {
		c.caughtUp = true
		go c.m.markCaughtUp(c)
	}
}
