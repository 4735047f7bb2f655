package powerloss

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// Elastic shards under power loss (docs/design/resharding.md): stream rk
// routes by key and is split, merged and scaled while keyed batches are
// addressed to shards that mostly do not own their keys (closed ones
// included), so most batches are routed: cut into one part per owner and
// written as one WAL frame with a sequence note for the shard addressed.
//
// The model keeps the layout last acknowledged and, per value, the shard
// that owned its key (or, for a null key, took it) when it was written.
// After a crash it checks:
//
//   - the layout is the acknowledged one, or, when a reshard was in flight,
//     that one or a valid successor; never a mix (open ranges tile the key
//     space, a closed shard's children exist and name it, no closed shard
//     is shorter than its recorded end offset);
//   - every value is where the model expects it and at most once, every
//     acknowledged value is there, and a batch is there whole or not at
//     all (a routed batch is one frame);
//   - a resend of the last idempotent batch is answered as a duplicate if
//     the batch survived (the note of a routed batch replayed or restored
//     from a checkpoint), and taken if it did not (no note of a frame the
//     crash took back).
//
// Acknowledged idempotent batches are also resent across a reshard that
// may close the shard they were addressed to: still a duplicate.

const rkStream = "rk"

// rkMaxShards stops resharding once the stream has this many shards (open
// and closed): every shard costs a read per recovery.
const rkMaxShards = 48

type rkModel struct {
	id      catalog.StreamID
	lay     []catalog.Shard // the layout acknowledged, or read back
	inDoubt bool            // a reshard got no answer
	vals    map[string]*rkVal
	batches []*rkBatch
	// The idempotent producer: pid < 0 until the first batch; seq is the
	// next sequence per shard addressed; last is the last batch sent.
	pid   int64
	seq   map[int32]int32
	last  *rkBatch
	stuck bool
}

type rkBatch struct {
	addr  int32
	seq   int32 // -1: not idempotent
	recs  []rec
	acked bool
}

type rkVal struct {
	shard int32 // where the model expects the value
	batch *rkBatch
}

func (r *run) setupRK() {
	cs, err := r.e.CreateStream(rkStream, 2, catalog.Configs{catalog.RoutingConfig: "key"}, false)
	if err != nil {
		r.failf("create %s: %v", rkStream, err)
		return
	}
	r.rk = &rkModel{id: cs.ID, lay: cloneShards(cs.Shards), vals: map[string]*rkVal{}, pid: -1, seq: map[int32]int32{}}
}

func cloneShards(in []catalog.Shard) []catalog.Shard {
	out := make([]catalog.Shard, len(in))
	for i, sh := range in {
		out[i] = sh
		out[i].Parents, out[i].Children = slices.Clone(sh.Parents), slices.Clone(sh.Children)
		if sh.Range != nil {
			rg := *sh.Range
			out[i].Range = &rg
		}
	}
	return out
}

// rkDest is the shard a record addressed to addr lands in under layout
// lay: the open owner of its key's hash; without a key, addr if open, else
// the open shard owning the start of addr's range.
func rkDest(lay []catalog.Shard, addr int32, key string) int32 {
	k := lay[addr].Range.Start
	if key != "" {
		k = engine.HashKeyOf([]byte(key))
	} else if lay[addr].State == catalog.ShardOpen {
		return addr
	}
	for _, sh := range lay {
		if sh.State == catalog.ShardOpen && sh.Range.Contains(k) {
			return int32(sh.ID)
		}
	}
	return -1
}

func (r *run) rkStream() *engine.Stream {
	st := r.e.Stream(rkStream)
	if st == nil || st.ID != r.rk.id {
		if !r.lenient && !r.crashing.Load() {
			r.failf("stream %s (id %d) missing from the engine", rkStream, r.rk.id)
		}
		return nil
	}
	return st
}

// opRK writes a keyed batch to a random shard of rk (open or closed):
// idempotent at acks=all, or plain at acks -1, 1 or 0. An acknowledged
// idempotent batch is sometimes resent after a reshard.
func (r *run) opRK(acks int) {
	m := r.rk
	st := r.rkStream()
	if st == nil {
		return
	}
	idem := acks == -1 && r.rng.IntN(2) == 0 && !m.stuck
	b := &rkBatch{addr: int32(r.rng.IntN(len(m.lay))), seq: -1}
	for range 1 + r.rng.IntN(5) {
		r.uid++
		rc := rec{val: fmt.Sprintf("rk#%d#%s", r.uid, strings.Repeat("r", 10+r.rng.IntN(300)))}
		if r.rng.IntN(6) > 0 {
			rc.key = fmt.Sprintf("q%d", r.rng.IntN(40))
		}
		b.recs = append(b.recs, rc)
		m.vals[rc.val] = &rkVal{shard: rkDest(m.lay, b.addr, rc.key), batch: b}
	}
	m.batches = append(m.batches, b)
	pid := int64(-1)
	if idem {
		if m.pid < 0 {
			id, err := r.e.NewProducerID()
			if err != nil {
				r.unexpected("new producer id", err)
				return
			}
			m.pid = id
		}
		pid, b.seq = m.pid, m.seq[b.addr]
		m.last, m.stuck = b, true
	}
	r.note("rk produce to %d acks=%d idempotent=%v seq=%d n=%d", b.addr, acks, idem, b.seq, len(b.recs))
	raw := buildBatch(b.recs, pid, 0, b.seq, false)
	_, n, end, err := r.e.Produce(st, st.Shards[b.addr], raw, nil)
	if err != nil {
		r.unexpected("rk produce", err)
		return
	}
	if n != len(b.recs) {
		r.failf("rk produce to %d seq %d: %d records taken, want %d", b.addr, b.seq, n, len(b.recs))
	}
	if idem {
		m.seq[b.addr] += int32(len(b.recs))
	}
	c, cancel := ctx()
	defer cancel()
	switch acks {
	case -1:
		if err := r.e.WaitDurable(c, end); err != nil {
			r.unexpected("rk produce: wait durable", err)
			return
		}
		b.acked = true
	case 1:
		if err := r.e.WaitWritten(c, end); err != nil {
			r.unexpected("rk produce: wait written", err)
		}
		return
	default:
		return
	}
	if !idem {
		return
	}
	m.stuck = false
	if r.rng.IntN(4) > 0 {
		return
	}
	// The client did not get the answer and resends, while the stream is
	// resharded under it.
	if !r.opReshard() {
		return
	}
	if st = r.rkStream(); st == nil {
		return
	}
	r.note("rk resend of seq %d to %d", b.seq, b.addr)
	_, n, _, err = r.e.Produce(st, st.Shards[b.addr], raw, nil)
	if err != nil {
		r.unexpected("rk resend", err)
		return
	}
	if n != 0 {
		r.failf("rk resend of acknowledged idempotent batch to %d seq %d after a reshard: %d records taken again, want a duplicate", b.addr, b.seq, n)
	}
}

// opReshard splits, merges or scales rk; it reports whether the change
// was acknowledged.
func (r *run) opReshard() bool {
	m := r.rk
	if len(m.lay) >= rkMaxShards {
		return false
	}
	var open []catalog.Shard
	for _, sh := range m.lay {
		if sh.State == catalog.ShardOpen {
			open = append(open, sh)
		}
	}
	sort.Slice(open, func(i, j int) bool { return open[i].Range.Start.Less(open[j].Range.Start) })
	c, cancel := ctx()
	defer cancel()
	m.inDoubt = true
	var res *engine.ReshardResult
	var err error
	switch k := r.rng.IntN(5); {
	case k < 2 && len(open) < 6:
		id := open[r.rng.IntN(len(open))].ID
		r.note("rk split %d", id)
		res, err = r.e.SplitShard(c, rkStream, id, nil)
	case k < 4 && len(open) > 1:
		i := r.rng.IntN(len(open) - 1)
		r.note("rk merge %d %d", open[i].ID, open[i+1].ID)
		res, err = r.e.MergeShards(c, rkStream, open[i].ID, open[i+1].ID)
	default:
		n := 1 + r.rng.IntN(4)
		r.note("rk scale to %d", n)
		res, err = r.e.ScaleStream(c, rkStream, n)
	}
	if err != nil {
		r.unexpected("rk reshard", err)
		return false
	}
	m.lay, m.inDoubt = cloneShards(res.Stream.Shards), false
	return true
}

// rkCritical leaves writes to rk undurable (acks=0) and reshards at once:
// the reshard's own fsyncs (the log up to the parents' last frames, then
// the catalog) are where the crash falls.
// Slow log fsyncs keep those writes undurable while the catalog's
// fsyncs go ahead, so a catalog saved before the wait would be caught.
func (r *run) rkCritical() {
	r.slowSync.Store(true)
	defer r.slowSync.Store(false)
	m := r.rk
	r.opRK(0)
	b := m.batches[len(m.batches)-1]
	to := m.vals[b.recs[0].val].shard
	if len(m.lay) >= rkMaxShards || to < 0 || r.rng.IntN(3) == 0 {
		r.opReshard()
		return
	}
	// Close the shard the first record went to.
	c, cancel := ctx()
	defer cancel()
	m.inDoubt = true
	r.note("rk split %d", to)
	res, err := r.e.SplitShard(c, rkStream, catalog.ShardID(to), nil)
	if err != nil {
		r.unexpected("rk split", err)
		return
	}
	m.lay, m.inDoubt = cloneShards(res.Stream.Shards), false
}

// verifyRK checks rk after a recovery (see the comment at the top), then
// makes what was read back the model.
func (r *run) verifyRK() {
	m := r.rk
	st := r.e.Stream(rkStream)
	if st == nil || st.ID != m.id {
		r.failf("stream %s (id %d) is gone after recovery", rkStream, m.id)
		return
	}
	got := cloneShards(st.Stream.Shards)
	r.checkRKLayout(got, st)
	where := map[string]int32{}
	for i, sh := range st.Shards {
		recs, _, _, err := readShard(sh)
		if err != nil {
			r.failf("%s/%d: read after recovery: %v", rkStream, i, err)
			return
		}
		for _, rr := range recs {
			v := m.vals[rr.val]
			switch {
			case v == nil:
				r.failf("%s/%d: offset %d holds %q, never written", rkStream, i, rr.off, short(rr.val))
			case v.shard != int32(i):
				r.failf("%s/%d: offset %d holds %q (key %q, addressed to %d), which belongs in shard %d",
					rkStream, i, rr.off, short(rr.val), rr.key, v.batch.addr, v.shard)
			}
			if prev, dup := where[rr.val]; dup {
				r.failf("%s: %q in shard %d and again in shard %d at %d", rkStream, short(rr.val), prev, i, rr.off)
			}
			where[rr.val] = int32(i)
		}
	}
	lost := 0
	for _, b := range m.batches {
		var in, out []string
		for _, rc := range b.recs {
			if _, ok := where[rc.val]; ok {
				in = append(in, short(rc.val))
			} else {
				out = append(out, short(rc.val))
			}
		}
		if b.acked && len(out) > 0 {
			if lost++; lost <= 3 {
				r.failf("%s: acknowledged batch to %d (seq %d): %v gone after recovery", rkStream, b.addr, b.seq, out)
			}
		}
		if len(in) > 0 && len(out) > 0 {
			r.failf("%s: batch to %d (seq %d) half there after recovery: %v present, %v not", rkStream, b.addr, b.seq, in, out)
		}
	}
	r.resendRK(st, where)
	if len(r.failed) > 0 {
		return
	}
	// Resync: what was read back is durable; the rest is gone for good.
	kept := m.batches[:0]
	for _, b := range m.batches {
		if _, ok := where[b.recs[0].val]; ok {
			b.acked = true
			kept = append(kept, b)
		} else {
			for _, rc := range b.recs {
				delete(m.vals, rc.val)
			}
		}
	}
	m.batches = kept
	m.lay, m.inDoubt = got, false
	m.pid, m.seq, m.last, m.stuck = -1, map[int32]int32{}, nil, false
	// The recovered node takes routed writes.
	lenient := r.lenient
	r.opRK(-1)
	r.lenient = lenient
}

// resendRK resends the producer's last batch, as a client that got no
// answer does: a duplicate if it survived, taken anew if not.
func (r *run) resendRK(st *engine.Stream, where map[string]int32) {
	m := r.rk
	b := m.last
	if b == nil {
		return
	}
	_, there := where[b.recs[0].val]
	r.note("rk resend of seq %d to %d after recovery (there: %v)", b.seq, b.addr, there)
	_, n, end, err := r.e.Produce(st, st.Shards[b.addr], buildBatch(b.recs, m.pid, 0, b.seq, false), nil)
	if err != nil {
		r.failf("%s: resend of idempotent batch to %d seq %d after recovery: %v (batch there: %v)", rkStream, b.addr, b.seq, err, there)
		return
	}
	if there {
		if n != 0 {
			r.failf("%s: resend of idempotent batch to %d seq %d after recovery: %d records taken again, want a duplicate", rkStream, b.addr, b.seq, n)
		}
		return
	}
	if n != len(b.recs) {
		r.failf("%s: resend of lost idempotent batch to %d seq %d after recovery: %d records taken, want %d (answered as a duplicate of a batch the crash took back?)",
			rkStream, b.addr, b.seq, n, len(b.recs))
		return
	}
	c, cancel := ctx()
	defer cancel()
	if err := r.e.WaitDurable(c, end); err != nil {
		r.failf("%s: resend after recovery: wait durable: %v", rkStream, err)
		return
	}
	// It went where the recovered layout sends it.
	lay := st.Stream.Shards
	for _, rc := range b.recs {
		v := m.vals[rc.val]
		v.shard = rkDest(lay, b.addr, rc.key)
		where[rc.val] = v.shard
	}
	b.acked = true
}

// checkRKLayout checks the recovered layout: valid, and the acknowledged
// one or (with a reshard in doubt) a successor of it.
func (r *run) checkRKLayout(got []catalog.Shard, st *engine.Stream) {
	m := r.rk
	var open []catalog.Shard
	for i, sh := range got {
		if sh.ID != catalog.ShardID(i) || sh.Range == nil {
			r.failf("%s: shard %d at index %d, range %v", rkStream, sh.ID, i, sh.Range)
			return
		}
		if sh.State == catalog.ShardOpen {
			open = append(open, sh)
			continue
		}
		_, hw, _ := st.Shards[i].Offsets()
		if int64(hw) < sh.EndOffset {
			r.failf("%s/%d: closed at end offset %d, holds only up to %d after recovery", rkStream, i, sh.EndOffset, hw)
		}
		if len(sh.Children) == 0 {
			r.failf("%s/%d: closed without children", rkStream, i)
		}
		for _, c := range sh.Children {
			if int(c) >= len(got) || !slices.Contains(got[c].Parents, sh.ID) {
				r.failf("%s/%d: child %d missing or does not name it", rkStream, i, c)
			}
		}
	}
	sort.Slice(open, func(i, j int) bool { return open[i].Range.Start.Less(open[j].Range.Start) })
	next, tiled := catalog.HashKey{}, len(open) > 0
	for i, sh := range open {
		if sh.Range.Start != next || sh.Range.End.Less(sh.Range.Start) {
			tiled = false
		}
		if i == len(open)-1 && sh.Range.End != catalog.MaxHashKey {
			tiled = false
		}
		next = catalog.HashKey{Hi: sh.Range.End.Hi, Lo: sh.Range.End.Lo + 1}
		if next.Lo == 0 {
			next.Hi++
		}
	}
	if !tiled {
		r.failf("%s: open shards' ranges do not tile the key space after recovery: %v", rkStream, layoutString(got))
	}
	if len(got) < len(m.lay) {
		r.failf("%s: %d shards after recovery, %d acknowledged: %v", rkStream, len(got), len(m.lay), layoutString(got))
		return
	}
	changed := false
	for i, want := range m.lay {
		g := got[i]
		if *g.Range != *want.Range || !slices.Equal(g.Parents, want.Parents) {
			r.failf("%s/%d: range %v parents %v after recovery, acknowledged %v %v", rkStream, i, *g.Range, g.Parents, *want.Range, want.Parents)
		}
		switch {
		case want.State == catalog.ShardClosed:
			if g.State != catalog.ShardClosed || g.EndOffset != want.EndOffset || !slices.Equal(g.Children, want.Children) {
				r.failf("%s/%d: %s at %d children %v after recovery, acknowledged closed at %d with %v",
					rkStream, i, g.State, g.EndOffset, g.Children, want.EndOffset, want.Children)
			}
		case g.State == catalog.ShardClosed:
			changed = true
			for _, c := range g.Children {
				if int(c) < len(m.lay) {
					r.failf("%s/%d: closed into shard %d, which the acknowledged layout already had", rkStream, i, c)
				}
			}
		}
	}
	grown := len(got) > len(m.lay)
	if (changed || grown) && !m.inDoubt {
		r.failf("%s: layout after recovery is not the acknowledged one, and no reshard was in doubt: %v, want %v", rkStream, layoutString(got), layoutString(m.lay))
	}
	if changed != grown {
		r.failf("%s: a mix of layouts after recovery (shards closed: %v, shards added: %v): %v", rkStream, changed, grown, layoutString(got))
	}
}

func layoutString(lay []catalog.Shard) string {
	var b strings.Builder
	for _, sh := range lay {
		fmt.Fprintf(&b, "[%d %s p%v c%v end %d] ", sh.ID, sh.State, sh.Parents, sh.Children, sh.EndOffset)
	}
	return b.String()
}
