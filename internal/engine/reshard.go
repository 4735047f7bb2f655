package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/wal"
)

// ReshardResult is what a split, merge or scale did.
type ReshardResult struct {
	Stream *catalog.Stream     // the stream after the change
	Ops    []catalog.ReshardOp // the splits and merges, in plan order
	Closed []catalog.ShardID   // shards closed by the change
	Opened []catalog.ShardID   // shards that take writes now
	Took   time.Duration       // from closing the parents to the new layout
}

// SplitShard splits open shard id of stream name at hash key at (nil: the
// middle of its range). See docs/design/resharding.md.
func (e *Engine) SplitShard(ctx context.Context, name string, id catalog.ShardID, at *catalog.HashKey) (*ReshardResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	plan, err := e.cat.PlanSplit(name, id, at)
	if err != nil {
		return nil, err
	}
	return e.applyReshard(ctx, plan, "split")
}

// MergeShards merges open shards a and b, whose ranges are adjacent.
func (e *Engine) MergeShards(ctx context.Context, name string, a, b catalog.ShardID) (*ReshardResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	plan, err := e.cat.PlanMerge(name, a, b)
	if err != nil {
		return nil, err
	}
	return e.applyReshard(ctx, plan, "merge")
}

// ScaleStream reshards stream name to n open shards over even ranges, as
// one change. A stream already so laid out is left as it is.
func (e *Engine) ScaleStream(ctx context.Context, name string, n int) (*ReshardResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.Stream(name)
	if st == nil {
		return nil, fmt.Errorf("%w: %q", catalog.ErrUnknownStream, name)
	}
	plan, err := e.cat.PlanScale(name, n, int(st.Configs.Int(catalog.MaxShardsConfig, e.Defaults())))
	if err != nil {
		return nil, err
	}
	return e.applyReshard(ctx, plan, "scale")
}

// applyReshard carries out a plan (e.mu held): close the parents, wait
// until everything they hold is durable, save the catalog, install the new
// layout. If anything fails before the catalog is saved, the parents are
// opened again and the old layout stands.
func (e *Engine) applyReshard(ctx context.Context, plan *catalog.Reshard, kind string) (*ReshardResult, error) {
	began := time.Now()
	st := e.Stream(plan.Stream)
	if len(plan.Closes) == 0 {
		cs, err := e.cat.Stream(plan.Stream)
		if err != nil {
			return nil, err
		}
		return &ReshardResult{Stream: cs, Opened: openShards(cs)}, nil
	}
	ends := make(map[catalog.ShardID]int64, len(plan.Closes))
	var last wal.Position
	closed := make([]*shard.Shard, 0, len(plan.Closes))
	reopen := func() {
		for _, sh := range closed {
			sh.SetClosed(false)
		}
		// Writes that found a parent closed wait for a layout change:
		// the old layout is back, and they may go on.
		e.signalLayout()
	}
	for _, id := range plan.Closes {
		sh := st.Shards[id]
		next, end := sh.CloseForReshard()
		closed = append(closed, sh)
		ends[id] = int64(next)
		last = max(last, end)
	}
	if last > 0 {
		if err := e.wal.WaitDurable(ctx, last); err != nil {
			reopen()
			return nil, fmt.Errorf("engine: %s %q: the closing shards' last writes did not become durable: %w", kind, plan.Stream, err)
		}
	}
	cs, err := e.cat.ApplyReshard(plan, ends)
	if err != nil {
		reopen()
		return nil, err
	}
	e.installStreams(e.wal)
	took := time.Since(began)
	e.reshards.Add(1)
	res := &ReshardResult{Stream: cs, Ops: plan.Ops, Closed: plan.Closes, Opened: openShards(cs), Took: took}
	e.opts.Logger.Info("stream resharded", "stream", plan.Stream, "op", kind, "ops", len(plan.Ops),
		"closed", plan.Closes, "open", res.Opened, "took", took)
	if e.opts.OnReshard != nil {
		e.opts.OnReshard(plan.Stream, kind, took)
	}
	return res, nil
}

func openShards(cs *catalog.Stream) []catalog.ShardID {
	var out []catalog.ShardID
	for _, sh := range cs.Shards {
		if sh.State == catalog.ShardOpen {
			out = append(out, sh.ID)
		}
	}
	return out
}

// Reshards counts the reshards done since the engine opened.
func (e *Engine) Reshards() int64 { return e.reshards.Load() }
