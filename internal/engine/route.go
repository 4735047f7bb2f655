package engine

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/wal"
)

// Routing (docs/design/resharding.md): a stream with braid.routing=key
// sends every keyed record to the open shard whose hash range owns the MD5
// of its key, whatever shard the producer addressed; a record without a
// key stays where addressed while that shard is open. Any stream takes a
// produce addressed to a closed shard and routes it the same way, so that
// writers never loop on an error after a reshard.

// route is one open shard's range start in a stream's routing table.
type route struct {
	start catalog.HashKey
	shard int32
}

// buildRoutes lists the open ranged shards by range start.
func buildRoutes(cs *catalog.Stream) []route {
	var out []route
	for _, sh := range cs.Shards {
		if sh.State == catalog.ShardOpen && sh.Range != nil {
			out = append(out, route{sh.Range.Start, int32(sh.ID)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Less(out[j].start) })
	return out
}

// HashKeyOf is the hash key of a record key: its MD5 read as a big-endian
// 128-bit number, as Kinesis computes it from a partition key.
func HashKeyOf(key []byte) catalog.HashKey {
	sum := md5.Sum(key)
	return catalog.HashKey{Hi: binary.BigEndian.Uint64(sum[:8]), Lo: binary.BigEndian.Uint64(sum[8:])}
}

// Owner returns the open shard owning hash key k, or -1 when no open shard
// has a range (a stream made only of Kafka-added partitions).
func (st *Stream) Owner(k catalog.HashKey) int32 {
	i := sort.Search(len(st.routes), func(i int) bool { return k.Less(st.routes[i].start) })
	if i == 0 {
		return -1
	}
	return st.routes[i-1].shard
}

// fallback is where a record without a key goes when the shard it was
// addressed to is closed: the open shard owning the start of that shard's
// range, one of its descendants.
func (st *Stream) fallback(id int32) int32 {
	cs := st.Stream.Shards[id]
	if cs.State == catalog.ShardOpen {
		return id
	}
	if cs.Range != nil {
		if o := st.Owner(cs.Range.Start); o >= 0 {
			return o
		}
	}
	for _, sh := range st.Stream.Shards {
		if sh.State == catalog.ShardOpen {
			return int32(sh.ID)
		}
	}
	return id
}

// Routed reports whether a produce addressed to shard id may land
// elsewhere.
func (st *Stream) Routed(id int32) bool {
	return (st.KeyRouting && len(st.routes) > 0) || st.Stream.Shards[id].State != catalog.ShardOpen
}

// layoutWait bounds how long a write waits for a reshard to finish.
const layoutWait = 10 * time.Second

// layoutChanged returns a channel closed at the next layout install.
func (e *Engine) layoutChanged() <-chan struct{} {
	e.layoutMu.Lock()
	defer e.layoutMu.Unlock()
	return e.layoutCh
}

// awaitLayout waits, after an append met a shard a reshard had just
// closed, until the layout changes (nil), ctx ends, or deadline passes (an
// error wrapping shard.ErrClosed; what names the shard or stream).
func awaitLayout(ctx context.Context, changed <-chan struct{}, deadline time.Time, what string) error {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("engine: %s: %w while a reshard did not finish in %s", what, shard.ErrClosed, layoutWait)
	}
}

func (e *Engine) signalLayout() {
	e.layoutMu.Lock()
	close(e.layoutCh)
	e.layoutCh = make(chan struct{})
	e.layoutMu.Unlock()
}

// produceRouted appends one validated batch addressed to shard id of the
// stream named name, routing its records. It returns the base offset when
// the whole batch went to id (else -1), the log position to wait for, and
// whether it was a duplicate.
func (e *Engine) produceRouted(name string, id int32, b []byte, h shard.Header, appendTime int64, inTxn func(p int32, pid int64, epoch int16, add bool) error) (shard.Offset, wal.Position, bool, error) {
	deadline := time.Now().Add(layoutWait)
	for {
		changed := e.layoutChanged()
		st := e.Stream(name)
		if st == nil || int(id) >= len(st.Shards) {
			return 0, 0, false, fmt.Errorf("%w: %q", catalog.ErrUnknownStream, name)
		}
		base, end, dup, err := e.routeOnce(st, id, b, h, appendTime, inTxn)
		if !errors.Is(err, shard.ErrClosed) {
			return base, end, dup, err
		}
		// A reshard closed a shard between our look at the layout and
		// the append: wait for the new layout and route again.
		if err := awaitLayout(context.Background(), changed, deadline, fmt.Sprintf("shard %d of %q", id, name)); err != nil {
			return 0, 0, false, err
		}
	}
}

func (e *Engine) routeOnce(st *Stream, id int32, b []byte, h shard.Header, appendTime int64, inTxn func(p int32, pid int64, epoch int16, add bool) error) (shard.Offset, wal.Position, bool, error) {
	origin := st.Shards[id]
	addrOpen := st.Stream.Shards[id].State == catalog.ShardOpen
	byKey := st.KeyRouting || !addrOpen
	nullTo := st.fallback(id)
	// dests maps destination shard ids to part indexes.
	var dests []int32
	idx := func(d int32) int {
		for i, x := range dests {
			if x == d {
				return i
			}
		}
		dests = append(dests, d)
		return len(dests) - 1
	}
	batches, headers, err := shard.RouteRecords(b, h, len(st.Shards), func(key []byte) int {
		d := nullTo
		if key != nil && byKey {
			if o := st.Owner(HashKeyOf(key)); o >= 0 {
				d = o
			}
		}
		return idx(d)
	})
	if err != nil {
		return 0, 0, false, err
	}
	if len(dests) == 1 {
		// The whole batch goes to one shard: copy it, so the request
		// buffer is not pinned by the cache (and a retry after ErrClosed
		// routes the original, not a stamped copy).
		b = append([]byte(nil), b...)
	}
	if len(dests) == 1 && dests[0] == id {
		// Fast path: the whole batch belongs where it was addressed.
		res, err := origin.Append(b, h, appendTime, origin.CachesTail())
		return res.Base, res.End, res.Duplicate, err
	}
	parts := make([]shard.RoutedPart, len(dests))
	for i, d := range dests {
		pb, ph := batches[i], headers[i]
		if len(dests) == 1 {
			pb = b // RouteRecords hands back the batch itself
		}
		if h.Transactional() && inTxn != nil {
			if err := inTxn(d, ph.ProducerID, ph.ProducerEpoch, d != id); err != nil {
				return 0, 0, false, err
			}
		}
		parts[i] = shard.RoutedPart{Shard: st.Shards[d], Batch: pb, Header: ph}
	}
	res, err := shard.AppendRouted(origin, h, parts, appendTime)
	if err != nil {
		return 0, 0, false, err
	}
	e.routedBatches.Add(1)
	return -1, res.End, res.Duplicate, nil
}
