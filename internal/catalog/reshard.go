package catalog

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"time"
)

// ErrInvalidReshard refuses a split, merge or scale that does not apply to
// the stream as it is; nothing is changed.
var ErrInvalidReshard = errors.New("catalog: invalid reshard")

// DefaultMaxShards is the default of braid.shards.max: the most open shards
// a scale may ask for.
const DefaultMaxShards = 1024

// Reshard is a planned change of a stream's layout: the shards it closes
// and the shards it adds. Added shards that are also in Closes are
// intermediate steps of a scale plan, created and closed in one change.
type Reshard struct {
	Stream string
	// Closes are the open shards of the stream the change closes.
	Closes []ShardID
	// Adds are the new shards, ids allotted, with parents and ranges.
	Adds []Shard
	// Ops lists the change as splits and merges, for logs and replies.
	Ops []ReshardOp
}

// ReshardOp is one split or merge of a plan.
type ReshardOp struct {
	Kind     string    `json:"op"` // "split" or "merge"
	Parents  []ShardID `json:"parents"`
	Children []ShardID `json:"children"`
}

// PlanSplit plans splitting open shard id at hash key at (nil: the middle of
// its range). at must lie in the range and not be its start, so that both
// children own at least one key.
func (c *Catalog) PlanSplit(name string, id ShardID, at *HashKey) (*Reshard, error) {
	s, err := c.reshardable(name)
	if err != nil {
		return nil, err
	}
	p := &planner{s: s.clone(), r: &Reshard{Stream: name}}
	sh, err := p.open(id)
	if err != nil {
		return nil, err
	}
	k := middle(*sh.Range)
	if at != nil {
		k = *at
	}
	if !sh.Range.Contains(k) || k == sh.Range.Start {
		return nil, fmt.Errorf("%w: hash key %s does not split shard %d of %q: it must be above the range's start %s and at most its end %s",
			ErrInvalidReshard, k, id, name, sh.Range.Start, sh.Range.End)
	}
	p.split(id, k)
	return p.r, nil
}

// PlanMerge plans merging open shards a and b, whose ranges must be
// adjacent, into one.
func (c *Catalog) PlanMerge(name string, a, b ShardID) (*Reshard, error) {
	s, err := c.reshardable(name)
	if err != nil {
		return nil, err
	}
	if a == b {
		return nil, fmt.Errorf("%w: cannot merge shard %d of %q with itself", ErrInvalidReshard, a, name)
	}
	p := &planner{s: s.clone(), r: &Reshard{Stream: name}}
	sa, err := p.open(a)
	if err != nil {
		return nil, err
	}
	sb, err := p.open(b)
	if err != nil {
		return nil, err
	}
	lo, hi := sa, sb
	if hi.Range.Start.Less(lo.Range.Start) {
		lo, hi = hi, lo
	}
	if add(lo.Range.End, HashKey{0, 1}) != hi.Range.Start || lo.Range.End == MaxHashKey {
		return nil, fmt.Errorf("%w: shards %d (%s-%s) and %d (%s-%s) of %q are not adjacent",
			ErrInvalidReshard, a, sa.Range.Start, sa.Range.End, b, sb.Range.Start, sb.Range.End, name)
	}
	p.merge(lo.ID, hi.ID)
	return p.r, nil
}

// PlanScale plans the splits and merges that leave the stream with n open
// shards over even ranges (SplitEvenly(n)). Every open shard that straddles
// a cut point of the even layout is split there, then the pieces inside
// each even range are merged, lowest first. A stream already so laid out
// gets an empty plan.
func (c *Catalog) PlanScale(name string, n int, maxShards int) (*Reshard, error) {
	s, err := c.reshardable(name)
	if err != nil {
		return nil, err
	}
	if n < 1 || n > maxShards {
		return nil, fmt.Errorf("%w: cannot scale %q to %d shards: the target must be 1 to %d (braid.shards.max)", ErrInvalidShards, name, n, maxShards)
	}
	p := &planner{s: s.clone(), r: &Reshard{Stream: name}}
	target := SplitEvenly(n)
	// Splits: at each target range's start, cut the open shard that holds
	// it strictly inside.
	for _, t := range target[1:] {
		for _, sh := range p.openRanged() {
			if sh.Range.Contains(t.Start) && sh.Range.Start != t.Start {
				p.split(sh.ID, t.Start)
				break
			}
		}
	}
	// Merges: fold the pieces of each target range together, left to right.
	for _, t := range target {
		for {
			var in []Shard
			for _, sh := range p.openRanged() {
				if !sh.Range.Start.Less(t.Start) && !t.End.Less(sh.Range.End) {
					in = append(in, sh)
				}
			}
			if len(in) < 2 {
				break
			}
			sort.Slice(in, func(i, j int) bool { return in[i].Range.Start.Less(in[j].Range.Start) })
			p.merge(in[0].ID, in[1].ID)
		}
	}
	return p.r, nil
}

// reshardable returns the named stream if its layout may change.
func (c *Catalog) reshardable(name string) (*Stream, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownStream, name)
	}
	if s.Internal {
		return nil, fmt.Errorf("%w: %q cannot be resharded", ErrInternalStream, name)
	}
	return s, nil
}

// planner builds a Reshard on a working copy of the stream.
type planner struct {
	s *Stream
	r *Reshard
}

func (p *planner) open(id ShardID) (Shard, error) {
	if id < 0 || int(id) >= len(p.s.Shards) {
		return Shard{}, fmt.Errorf("%w: shard %d of %q (it has shards 0 to %d)", ErrUnknownShard, id, p.s.Name, len(p.s.Shards)-1)
	}
	sh := p.s.Shards[id]
	if sh.State != ShardOpen {
		return Shard{}, fmt.Errorf("%w: shard %d of %q was closed by an earlier split or merge; reshard its children %v instead", ErrShardClosed, id, p.s.Name, sh.Children)
	}
	if sh.Range == nil {
		return Shard{}, fmt.Errorf("%w: shard %d of %q owns no hash range (it was added as a Kafka partition)", ErrInvalidReshard, id, p.s.Name)
	}
	return sh, nil
}

func (p *planner) openRanged() []Shard {
	var out []Shard
	for _, sh := range p.s.Shards {
		if sh.State == ShardOpen && sh.Range != nil {
			out = append(out, sh)
		}
	}
	return out
}

// close marks a shard closed in the working copy and records it: a shard
// that was open before the plan goes into Closes, one the plan added is
// updated among Adds.
func (p *planner) close(id ShardID, children []ShardID) {
	sh := &p.s.Shards[id]
	sh.State, sh.Children = ShardClosed, children
	for i := range p.r.Adds {
		if p.r.Adds[i].ID == id {
			p.r.Adds[i] = *sh
			return
		}
	}
	p.r.Closes = append(p.r.Closes, id)
}

func (p *planner) addChild(r HashRange, parents ...ShardID) ShardID {
	id := ShardID(len(p.s.Shards))
	sh := Shard{ID: id, Range: &r, Parents: parents, State: ShardOpen}
	p.s.Shards = append(p.s.Shards, sh)
	p.r.Adds = append(p.r.Adds, sh)
	return id
}

func (p *planner) split(id ShardID, at HashKey) {
	r := *p.s.Shards[id].Range
	c1 := p.addChild(HashRange{Start: r.Start, End: sub1(at)}, id)
	c2 := p.addChild(HashRange{Start: at, End: r.End}, id)
	p.close(id, []ShardID{c1, c2})
	p.r.Ops = append(p.r.Ops, ReshardOp{Kind: "split", Parents: []ShardID{id}, Children: []ShardID{c1, c2}})
}

// merge merges lo and hi, lo's range just below hi's.
func (p *planner) merge(lo, hi ShardID) {
	r := HashRange{Start: p.s.Shards[lo].Range.Start, End: p.s.Shards[hi].Range.End}
	c := p.addChild(r, lo, hi)
	p.close(lo, []ShardID{c})
	p.close(hi, []ShardID{c})
	p.r.Ops = append(p.r.Ops, ReshardOp{Kind: "merge", Parents: []ShardID{lo, hi}, Children: []ShardID{c}})
}

func middle(r HashRange) HashKey {
	w := new(big.Int).Sub(r.End.big(), r.Start.big())
	w.Add(w, big.NewInt(1)).Rsh(w, 1)
	return fromBig(w.Add(w, r.Start.big()))
}

// ApplyReshard saves a planned change: the shards in r.Closes are closed
// at the end offsets given (every one must be given), r.Adds are added.
// It fails, changing nothing, if the stream changed since the plan.
func (c *Catalog) ApplyReshard(r *Reshard, ends map[ShardID]int64) (*Stream, error) {
	now := time.Now().UnixMilli()
	return c.update(r.Stream, func(s *Stream) error {
		if len(r.Adds) > 0 && len(s.Shards) != int(r.Adds[0].ID) {
			return fmt.Errorf("%w: %q changed since the reshard was planned", ErrInvalidReshard, r.Stream)
		}
		for _, id := range r.Closes {
			sh := &s.Shards[id]
			if sh.State != ShardOpen {
				return fmt.Errorf("%w: shard %d of %q is no longer open", ErrInvalidReshard, id, r.Stream)
			}
			end, ok := ends[id]
			if !ok {
				return fmt.Errorf("catalog: reshard of %q: no end offset for shard %d", r.Stream, id)
			}
			sh.State, sh.EndOffset, sh.ClosedMs = ShardClosed, end, now
		}
		for _, a := range r.Adds {
			a.Parents, a.Children = slices.Clone(a.Parents), slices.Clone(a.Children)
			a.CreatedMs = now
			if a.State == ShardClosed { // an intermediate step of a scale
				a.ClosedMs = now
			}
			s.Shards = append(s.Shards, a)
		}
		// Children of the closed shards, now that every id exists.
		for _, a := range r.Adds {
			for _, par := range a.Parents {
				if !slices.Contains(s.Shards[par].Children, a.ID) {
					s.Shards[par].Children = append(s.Shards[par].Children, a.ID)
				}
			}
		}
		return nil
	}, false)
}

// Owner returns the open shard whose range holds k, or -1.
func (s *Stream) Owner(k HashKey) ShardID {
	for _, sh := range s.Shards {
		if sh.State == ShardOpen && sh.Range != nil && sh.Range.Contains(k) {
			return sh.ID
		}
	}
	return -1
}
