package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/shard"
)

// ErrUnconfirmed wraps a failure to see an appended frame become durable
// (the log filled or failed, or the caller gave up waiting): the frame
// may still be stored later, whole. Callers must not report it as "not
// written".
var ErrUnconfirmed = errors.New("engine: appended, but not confirmed durable")

// ShardBatch is one record batch for one shard of a stream, as the
// Kinesis door builds them: not idempotent, not transactional.
type ShardBatch struct {
	Shard int32
	Batch []byte
}

// AppendShards writes batches that the caller has already routed to
// shards: build is called with the stream's current layout and returns
// the batches (in the order their records must take within each shard);
// all of them go to the log as ONE frame, so a crash keeps all or none.
// If a reshard closes a destination meanwhile, AppendShards waits for
// the new layout and calls build again. It returns the batches written
// and their base offsets once the frame is durable.
//
// Records routed by the caller (a Kinesis ExplicitHashKey) may belong to
// a shard other than the owner of MD5(key), which is why this does not go
// through Produce.
func (e *Engine) AppendShards(ctx context.Context, name string, appendTime int64, build func(st *Stream) ([]ShardBatch, error)) ([]ShardBatch, []shard.Offset, error) {
	deadline := time.Now().Add(layoutWait)
	for {
		changed := e.layoutChanged()
		st := e.Stream(name)
		if st == nil {
			return nil, nil, fmt.Errorf("%w: %q", catalog.ErrUnknownStream, name)
		}
		if st.Internal {
			return nil, nil, fmt.Errorf("%w: %q is written by Braid only", catalog.ErrInternalStream, name)
		}
		batches, err := build(st)
		if err != nil {
			return nil, nil, err
		}
		if len(batches) == 0 {
			return nil, nil, nil
		}
		parts := make([]shard.RoutedPart, len(batches))
		for i, b := range batches {
			if b.Shard < 0 || int(b.Shard) >= len(st.Shards) {
				return nil, nil, fmt.Errorf("%w: shard %d of %q", catalog.ErrUnknownShard, b.Shard, name)
			}
			h, err := shard.Validate(b.Batch)
			if err != nil {
				return nil, nil, err
			}
			if h.ProducerID >= 0 || h.Transactional() || h.Control() {
				return nil, nil, fmt.Errorf("engine: AppendShards takes plain batches only (shard %d)", b.Shard)
			}
			parts[i] = shard.RoutedPart{Shard: st.Shards[b.Shard], Batch: b.Batch, Header: h}
		}
		// No producer id: the frame carries no sequence note, and the
		// origin only takes part in the locking.
		res, err := shard.AppendRouted(parts[0].Shard, shard.Header{ProducerID: -1}, parts, appendTime)
		if err == nil {
			if err := e.WaitDurable(ctx, res.End); err != nil {
				return nil, nil, fmt.Errorf("%w: %w", ErrUnconfirmed, err)
			}
			return batches, res.Bases, nil
		}
		if !errors.Is(err, shard.ErrClosed) {
			return nil, nil, err
		}
		// A reshard closed a destination between build and the append:
		// nothing was written; route again on the new layout.
		if err := awaitLayout(ctx, changed, deadline, fmt.Sprintf("stream %q", name)); err != nil {
			return nil, nil, err
		}
	}
}
