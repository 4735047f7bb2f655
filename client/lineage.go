package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
)

// streamLayout is the part of the admin API's GET /v1/streams/{name}
// answer a Reader needs.
type streamLayout struct {
	Shards []struct {
		Shard         int32   `json:"shard"`
		LogStart      int64   `json:"log_start"`
		HighWatermark int64   `json:"high_watermark"`
		State         string  `json:"state"`
		EndOffset     *int64  `json:"end_offset"`
		Parents       []int32 `json:"parents"`
	} `json:"shards"`
}

// fetchLayout asks the admin API at addr for stream's shards and lineage.
func fetchLayout(ctx context.Context, hc *http.Client, addr, stream string) (*streamLayout, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/streams/"+url.PathEscape(stream), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: admin API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("client: admin API: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %q (admin API: %s)", ErrUnknownStream, stream, body)
	default:
		return nil, fmt.Errorf("client: admin API GET stream %q: %s: %s", stream, resp.Status, body)
	}
	var l streamLayout
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, fmt.Errorf("client: admin API: decode stream %q: %w", stream, err)
	}
	return &l, nil
}

// lineage decides which shards of a stream a Reader reads (the lineage
// gate of docs/design/resharding.md, on the client): a shard is read only
// once every parent has been read to its end offset, so one key's records
// come out in the order they were written across splits and merges. It
// is a pure state machine: the reader feeds it layouts (update) and read
// positions (advance) and asks what to add and drop (settle).
type lineage struct {
	shards map[int32]*lineageShard
}

type lineageShard struct {
	closed   bool
	end      int64 // end offset; meaningful when closed
	logStart int64
	parents  []int32

	assigned, done bool
	pos            int64 // next offset to read; meaningful when assigned
}

func newLineage() *lineage { return &lineage{shards: map[int32]*lineageShard{}} }

// update merges a fresh layout; what was learned by reading is kept.
func (g *lineage) update(l *streamLayout) {
	for _, s := range l.Shards {
		ls := g.shards[s.Shard]
		if ls == nil {
			ls = &lineageShard{}
			g.shards[s.Shard] = ls
		}
		ls.closed = s.State == "closed"
		if s.EndOffset != nil {
			ls.end = *s.EndOffset
		}
		ls.logStart, ls.parents = s.LogStart, s.Parents
	}
}

// advance records that the reader was given the record at offset (control
// records included, so that a shard ending in a transaction marker is seen
// to end).
func (g *lineage) advance(shard int32, offset int64) {
	if ls := g.shards[shard]; ls != nil && ls.assigned {
		ls.pos = max(ls.pos, offset+1)
	}
}

// settle assigns every shard whose parents are all read to their ends
// (from its log start: everything in a child was written after its parents
// ended) and retires every closed shard read to its end, until nothing
// changes. It returns the shards to start reading, at their offsets, and
// those to stop reading.
func (g *lineage) settle() (add map[int32]int64, drop []int32) {
	ids := make([]int32, 0, len(g.shards))
	for id := range g.shards {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	add = map[int32]int64{}
	for changed := true; changed; {
		changed = false
		for _, id := range ids {
			ls := g.shards[id]
			if !ls.assigned && g.parentsDone(ls) {
				ls.assigned, ls.pos, changed = true, ls.logStart, true
				add[id] = ls.logStart
			}
			if ls.assigned && !ls.done && ls.closed && ls.pos >= ls.end {
				ls.done, changed = true, true
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

func (g *lineage) parentsDone(ls *lineageShard) bool {
	for _, p := range ls.parents {
		// A parent the layout does not list cannot hold anything back.
		if ps := g.shards[p]; ps != nil && !ps.done {
			return false
		}
	}
	return true
}
