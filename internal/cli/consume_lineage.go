package cli

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// lineageRefresh is how often a groupless consume asks the admin API for
// the stream's layout again, to see shards closed and children opened by
// a reshard while it reads.
const lineageRefresh = time.Second

// lineageGate lets a consume outside any consumer group follow a stream's
// lineage (docs/design/resharding.md, "Readers: the lineage gate"): a
// shard is read only once every parent has been read to its end offset, so
// a key's records print in the order they were written across splits and
// merges. Positions count every offset the client returned, control
// records included, so a closed shard ending in a transaction marker is
// still seen to end.
//
// It is a plain state machine: the poll loop reports positions (advance)
// and asks which shards to add and drop (settle); refresh feeds it the
// admin API's answer.
type lineageGate struct {
	shards map[int32]*gateShard
}

type gateShard struct {
	closed            bool
	end               int64 // end offset; meaningful when closed
	logStart, hw      int64
	parents, children []int32

	assigned, done bool
	pos            int64 // next offset to read; meaningful when assigned
}

func newLineageGate(st *adminStream) *lineageGate {
	g := &lineageGate{shards: map[int32]*gateShard{}}
	g.update(st)
	return g
}

// update merges a fresh answer of GET /v1/streams/{name}; what the gate
// learned by reading (assigned, done, pos) is kept.
func (g *lineageGate) update(st *adminStream) {
	for _, s := range st.Shards {
		gs := g.shards[s.Shard]
		if gs == nil {
			gs = &gateShard{}
			g.shards[s.Shard] = gs
		}
		gs.closed = s.State == "closed"
		if s.EndOffset != nil {
			gs.end = *s.EndOffset
		}
		gs.logStart, gs.hw = s.LogStart, s.HighWatermark
		gs.parents, gs.children = s.Parents, s.Children
	}
}

// advance records that the client returned the record at offset.
func (g *lineageGate) advance(shard int32, offset int64) {
	if gs := g.shards[shard]; gs != nil && gs.assigned {
		gs.pos = max(gs.pos, offset+1)
	}
}

// settle assigns every shard whose parents are all read to their ends and
// retires every closed shard read to its end, until nothing changes. A
// shard assigned at the start (first) begins where --from says; one
// assigned later begins at its log start, because everything in it was
// written after its parents ended. It returns the shards to add, with
// their offsets, and those to drop.
func (g *lineageGate) settle(first bool, from startOffset) (add map[int32]kgo.Offset, drop []int32) {
	ids := make([]int32, 0, len(g.shards))
	for id := range g.shards {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	add = map[int32]kgo.Offset{}
	for changed := true; changed; {
		changed = false
		for _, id := range ids {
			gs := g.shards[id]
			if !gs.assigned && g.parentsDone(gs) {
				gs.assigned, changed = true, true
				add[id] = g.startAt(gs, first, from)
			}
			if gs.assigned && !gs.done && gs.closed && gs.pos >= gs.end {
				gs.done, changed = true, true
				if _, added := add[id]; added {
					delete(add, id) // nothing to read there
				} else {
					drop = append(drop, id)
				}
			}
		}
	}
	return add, drop
}

func (g *lineageGate) parentsDone(gs *gateShard) bool {
	for _, p := range gs.parents {
		// A parent the answer does not list cannot hold anything back.
		if ps := g.shards[p]; ps != nil && !ps.done {
			return false
		}
	}
	return true
}

func (g *lineageGate) startAt(gs *gateShard, first bool, from startOffset) kgo.Offset {
	switch {
	case first && from.latest:
		gs.pos = gs.hw
		return kgo.NewOffset().AtEnd()
	case !first || from.exact < 0:
		gs.pos = gs.logStart
		return kgo.NewOffset().AtStart()
	}
	gs.pos = min(max(from.exact, gs.logStart), gs.hw)
	return kgo.NewOffset().At(gs.pos)
}

// isDialError reports an admin address where nothing answers: a broker
// that is not braid, or one with its HTTP listener elsewhere or off.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// lineageFor asks the admin API for the stream's layout; nil (and no
// error) means reading without the gate: no admin address, or nothing
// listening there.
func lineageFor(ctx context.Context, f *clientFlags, stream string) (*lineageGate, error) {
	if f.adminAddr == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := f.streamState(ctx, stream)
	if isDialError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return newLineageGate(st), nil
}

// refresh asks the admin API for the layout again.
func (g *lineageGate) refresh(ctx context.Context, f *clientFlags, stream string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := f.streamState(ctx, stream)
	if err != nil {
		return err
	}
	g.update(st)
	return nil
}
