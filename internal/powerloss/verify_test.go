package powerloss

import (
	"fmt"
	"sort"

	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/group"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/txn"
)

// verify checks a freshly recovered engine against the model, then makes
// the model what was read back (all of it durable now), so the next round
// starts from there.
func (r *run) verify() {
	got := map[*streamModel][][]readRec{}
	starts := map[*streamModel][]int64{}
	for _, s := range r.streams {
		st := r.e.Stream(s.name)
		r.resolveStream(s, st)
		if s.status != live {
			continue
		}
		if len(st.Shards) != s.nShard || len(s.cur.shards) != s.nShard {
			r.failf("stream %s has %d shards after recovery, want %d", s.name, len(st.Shards), s.nShard)
			continue
		}
		for i := range s.nShard {
			recs, start, _ := r.verifyShard(s, st, i)
			got[s] = append(got[s], recs)
			starts[s] = append(starts[s], start)
		}
	}
	r.verifyTxns(starts)
	r.verifyOffsets()
	r.retryIdempotent(got)
	r.verifyRK()
	if len(r.failed) > 0 {
		return // the seed stops here
	}
	// Resync: what was read back is the model now.
	for s, shards := range got {
		s.inflight = map[string]bool{}
		s.resetKeys()
		for i, recs := range shards {
			old := s.cur.shards[i]
			sm := newShardModel()
			sm.ackStart, sm.maxStart = starts[s][i], starts[s][i]
			for _, rr := range recs {
				w := &written{rec: rec{key: rr.key, val: rr.val}}
				if o := old.recs[rr.off]; o != nil {
					w.txn = o.txn
				}
				sm.recs[rr.off] = w
			}
			s.cur.shards[i] = sm
			for _, rr := range recs {
				r.ack(s, i, rr.off, []*written{sm.recs[rr.off]})
			}
		}
	}
	r.writeAfterRecovery()
}

// resolveStream checks a stream's existence against the model and settles
// a create or delete the crash caught in flight.
func (r *run) resolveStream(s *streamModel, st *engine.Stream) {
	switch s.status {
	case live:
		if st == nil {
			r.failf("stream %s (id %d) was created (acknowledged) and is gone after recovery", s.name, s.cur.id)
			s.status, s.cur = absent, nil
		} else if st.ID != s.cur.id {
			r.failf("stream %s has id %d after recovery, want %d", s.name, st.ID, s.cur.id)
			s.cur.id = st.ID
		}
	case absent:
		if st != nil {
			r.failf("stream %s was deleted (acknowledged) and is back after recovery (id %d)", s.name, st.ID)
			s.status, s.cur = live, newGen(len(st.Shards))
			s.nShard, s.cur.id = len(st.Shards), st.ID
			s.resetKeys()
		}
	case createInDoubt:
		s.status, s.cur = absent, nil
		if st != nil {
			s.status, s.cur = live, s.next
			s.cur.id = st.ID
			s.resetKeys()
			if len(st.Shards) != s.nShard {
				r.failf("stream %s has %d shards after recovery, created with %d", s.name, len(st.Shards), s.nShard)
			}
		}
		s.next = nil
	case deleteInDoubt:
		switch {
		case st == nil:
			s.status, s.cur = absent, nil
		case st.ID != s.cur.id:
			r.failf("stream %s has id %d after recovery, want %d or none", s.name, st.ID, s.cur.id)
			s.status = live
			s.cur.id = st.ID
		default:
			s.status = live
		}
	}
}

// verifyShard checks one shard's records, log start and high watermark.
func (r *run) verifyShard(s *streamModel, st *engine.Stream, i int) ([]readRec, int64, int64) {
	sh := st.Shards[i]
	sm := s.cur.shards[i]
	recs, start, hw, err := readShard(sh)
	if err != nil {
		r.failf("%s/%d: read after recovery: %v", s.name, i, err)
		return nil, start, hw
	}
	if start < sm.ackStart {
		r.failf("%s/%d: log start %d after recovery, below the acknowledged %d", s.name, i, start, sm.ackStart)
	}
	// (With retention on a timer, it moves the retention stream's start
	// at moments the model does not see.)
	if start > max(sm.maxStart, sm.ackStart) && !(r.timer && s.kind == kindRetention) {
		r.failf("%s/%d: log start %d after recovery, past anything asked (%d)", s.name, i, start, sm.maxStart)
	}
	at := map[int64]readRec{}
	byVal := map[string]int64{}
	lastOfKey := map[string]int64{}
	for _, rr := range recs {
		if prev, dup := byVal[rr.val]; dup {
			r.failf("%s/%d: %q at offsets %d and %d", s.name, i, short(rr.val), prev, rr.off)
		}
		byVal[rr.val] = rr.off
		at[rr.off] = rr
		if rr.key != "" {
			lastOfKey[rr.key] = max(lastOfKey[rr.key], rr.off)
		}
		w := sm.recs[rr.off]
		switch {
		case w == nil && s.inflight[rr.val]:
		case w == nil:
			r.failf("%s/%d: offset %d holds %q after recovery, never appended there", s.name, i, rr.off, short(rr.val))
		case w.val != rr.val:
			r.failf("%s/%d: offset %d holds %q after recovery, want %q", s.name, i, rr.off, short(rr.val), short(w.val))
		}
	}
	if s.kind == kindCompact {
		for k, off := range s.lastKey[i] {
			if off >= start && lastOfKey[k] < off {
				r.failf("%s/%d: key %s: latest acknowledged value at offset %d, latest after recovery at %d", s.name, i, k, off, lastOfKey[k])
			}
		}
	}
	offs := make([]int64, 0, len(sm.recs))
	for off := range sm.recs {
		offs = append(offs, off)
	}
	sort.Slice(offs, func(a, b int) bool { return offs[a] < offs[b] })
	lost := 0
	for _, off := range offs {
		w := sm.recs[off]
		if off < start || !(w.acked || w.seen) {
			continue
		}
		if _, ok := at[off]; ok {
			continue
		}
		if s.kind == kindCompact && w.key != "" && lastOfKey[w.key] > off {
			continue // replaced by a later value of its key
		}
		if lost++; lost <= 3 {
			why := "acknowledged"
			if !w.acked {
				why = "seen by a reader"
			}
			r.failf("%s/%d: %s record %q at offset %d is gone after recovery (log start %d, hw %d)", s.name, i, why, short(w.val), off, start, hw)
		}
	}
	if lost > 3 {
		r.failf("%s/%d: %d more lost records", s.name, i, lost-3)
	}
	return recs, start, hw
}

// verifyTxns re-initialises every transactional id (aborting what a crash
// left open, as a restarted client does), then checks what read_committed
// sees of each transaction.
func (r *run) verifyTxns(starts map[*streamModel][]int64) {
	s := r.stream(txnStream)
	st := r.e.Stream(txnStream)
	if st == nil {
		return
	}
	// Start-up completes every transaction a crash left prepared, before
	// anything is served.
	for _, rec := range r.e.Txns().List() {
		if rec.State == txn.PrepareCommit || rec.State == txn.PrepareAbort {
			r.failf("transaction of %s is still %s after recovery", rec.ID, rec.State)
		}
	}
	c, cancel := ctx()
	defer cancel()
	for _, p := range r.txns {
		if p.pid < 0 && len(p.all) == 0 {
			continue
		}
		res, err := r.e.Txns().InitProducerID(c, p.id, txnTimout, -1, -1)
		if err != nil {
			r.failf("init producer id %s after recovery: %v", p.id, err)
			continue
		}
		p.pid, p.epoch, p.seq, p.cur = res.PID, res.Epoch, map[int]int32{}, nil
	}
	visible := map[string]bool{}
	for i, sh := range st.Shards {
		vals, err := readCommitted(sh)
		if err != nil {
			r.failf("%s/%d: read_committed after recovery: %v", txnStream, i, err)
			return
		}
		for _, v := range vals {
			visible[v] = true
		}
		_, hw, _ := sh.Offsets()
		if lso := sh.LastStableOffset(); lso != hw {
			r.failf("%s/%d: last stable offset %d below hw %d with every transactional id re-initialised", txnStream, i, lso, hw)
		}
	}
	for _, p := range r.txns {
		for _, t := range p.all {
			var in, out []string
			for _, tr := range t.recs {
				if tr.off < starts[s][tr.shard] {
					continue
				}
				if visible[tr.val] {
					in = append(in, fmt.Sprintf("%d@%d", tr.shard, tr.off))
				} else {
					out = append(out, fmt.Sprintf("%d@%d", tr.shard, tr.off))
				}
			}
			switch t.state {
			case txnCommitted:
				if len(out) > 0 {
					r.failf("committed transaction of %s (pid %d): records %v not visible to read_committed", t.id, t.pid, out)
				}
			case txnAborted, txnOngoing:
				if len(in) > 0 {
					r.failf("transaction of %s (pid %d, %s): records %v visible to read_committed", t.id, t.pid, txnStateName(t.state), in)
				}
			case txnEnding:
				if len(in) > 0 && len(out) > 0 {
					r.failf("transaction of %s (pid %d) half visible: %v visible, %v not", t.id, t.pid, in, out)
				}
			}
		}
		p.all = nil
	}
}

func txnStateName(s txnState) string {
	return [...]string{"ongoing", "ending", "committed", "aborted"}[s]
}

// readCommitted returns the values a read_committed reader gets from a
// shard, dropping aborted transactions' records.
func readCommitted(sh *shard.Shard) ([]string, error) {
	start, _, _ := sh.Offsets()
	lso := sh.LastStableOffset()
	var aborted []shard.AbortedTxn
	var batches []readBatch
	from := start
	for from < lso {
		data, ab, _, err := sh.ReadCommitted(from, 256<<10, true)
		if err != nil {
			return nil, err
		}
		if len(data) == 0 {
			break
		}
		aborted = append(aborted, ab...)
		bs, err := decodeBatches(data)
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			if b.last() >= int64(from) {
				batches = append(batches, b)
			}
			from = shard.Offset(b.last() + 1)
		}
	}
	var out []string
	for _, b := range batches {
		if b.h.Attributes&attrControl != 0 {
			continue
		}
		if b.h.Attributes&attrTransactional != 0 && isAborted(aborted, b.h.ProducerID, b.h.BaseOffset) {
			continue
		}
		for _, rr := range b.recs {
			out = append(out, rr.val)
		}
	}
	return out, nil
}

func isAborted(aborted []shard.AbortedTxn, pid, off int64) bool {
	for _, a := range aborted {
		if a.ProducerID == pid && int64(a.First) <= off && off <= int64(a.Last) {
			return true
		}
	}
	return false
}

// verifyOffsets checks every group's committed offsets against the model.
func (r *run) verifyOffsets() {
	groups := map[string]bool{txnGroup: true, "g0": true, "g1": true}
	for _, g := range r.e.Offsets().Groups() {
		if !groups[g] {
			r.failf("group %s holds offsets after recovery; none was ever committed", g)
		}
	}
	for _, s := range r.streams {
		for g := range groups {
			fetched := r.e.Offsets().Fetch(g)
			for tp, cm := range fetched {
				if tp.Topic != s.name {
					continue
				}
				if s.status != live {
					// Kafka removes a deleted topic's offsets, so that a
					// stream recreated later does not inherit them.
					r.failf("group %s holds offset %d for %s/%d, a deleted stream", g, cm.Offset, tp.Topic, tp.Partition)
					continue
				}
				m := s.cur.commits[groupPart{g, tp.Partition}]
				switch {
				case m == nil:
					r.failf("group %s offset %s/%d = %d, but none was committed to this life of the stream (id %d): inherited", g, tp.Topic, tp.Partition, cm.Offset, s.cur.id)
				case cm.Offset != m.acked && !m.later[cm.Offset] && !m.anytime[cm.Offset]:
					why := ""
					if m.acked < 0 && s.name != txnStream {
						why = "; inherited from an earlier life?"
					}
					r.failf("group %s offset %s/%d = %d after recovery; the last acknowledged commit was %d, later ones %v%s",
						g, tp.Topic, tp.Partition, cm.Offset, m.acked, keys(m.later), why)
				}
			}
			if s.status != live {
				continue
			}
			for gp, m := range s.cur.commits {
				if gp.group != g || m.acked < 0 {
					continue
				}
				if _, ok := fetched[groupTP(s.name, gp.part)]; !ok {
					r.failf("group %s offset %s/%d: acknowledged %d, none after recovery", g, s.name, gp.part, m.acked)
				}
			}
			// Resync.
			for gp := range s.cur.commits {
				if gp.group == g {
					delete(s.cur.commits, gp)
				}
			}
			for tp, cm := range fetched {
				if tp.Topic == s.name {
					m := newCommit()
					m.acked = cm.Offset
					s.cur.commits[groupPart{g, tp.Partition}] = m
				}
			}
		}
	}
}

// retryIdempotent resends each idempotent producer's last batch, as a
// client that got no answer does: it must be answered as a duplicate at its
// offset if it survived, and appended anew if it did not.
func (r *run) retryIdempotent(got map[*streamModel][][]readRec) {
	for name, p := range r.idem {
		b := p.last
		s := r.stream(name)
		if b == nil || s.status != live || s.cur != b.gen || len(got[s]) <= b.shard {
			continue
		}
		st := r.e.Stream(name)
		// Where the batch is: compaction may have removed some of its
		// records, or all of them.
		where := int64(-1)
		if b.acked {
			where = b.base
		}
		for _, rr := range got[s][b.shard] {
			for i, rc := range b.recs {
				if rr.val == rc.val {
					where = rr.off - int64(i)
				}
			}
		}
		if where < 0 && s.kind == kindCompact && b.base >= 0 {
			continue // either answer is right
		}
		start, _, _ := st.Shards[b.shard].Offsets()
		if b.base >= 0 && b.base < int64(start) {
			continue
		}
		base, n, end, err := r.e.Produce(st, st.Shards[b.shard], buildBatch(b.recs, p.pid, 0, b.seq, false), nil)
		if err != nil {
			r.failf("retry of idempotent batch %s/%d seq %d after recovery: %v (it is at %d)", name, b.shard, b.seq, err, where)
			continue
		}
		if where >= 0 {
			if n != 0 || int64(base) != where {
				r.failf("retry of idempotent batch %s/%d seq %d after recovery: base %d with %d new records, want the duplicate at %d",
					name, b.shard, b.seq, base, n, where)
			}
			continue
		}
		if n != len(b.recs) {
			r.failf("retry of lost idempotent batch %s/%d seq %d after recovery: %d records taken, want %d", name, b.shard, b.seq, n, len(b.recs))
			continue
		}
		c, cancel := ctx()
		err = r.e.WaitDurable(c, end)
		cancel()
		if err != nil {
			r.failf("retry of idempotent batch after recovery: wait durable: %v", err)
			continue
		}
		for i, rc := range b.recs {
			got[s][b.shard] = append(got[s][b.shard], readRec{off: int64(base) + int64(i), key: rc.key, val: rc.val})
		}
	}
	r.idem = map[string]*idemProducer{}
}

// writeAfterRecovery checks the recovered engine takes writes, above every
// offset handed out before.
func (r *run) writeAfterRecovery() {
	for _, s := range r.streams {
		if s.status != live {
			continue
		}
		st := r.e.Stream(s.name)
		for i, sm := range s.cur.shards {
			top := int64(-1)
			for off := range sm.recs {
				top = max(top, off)
			}
			recs := r.records(s, 1)
			base, _, end, err := r.e.Produce(st, st.Shards[i], buildBatch(recs, -1, 0, 0, false), nil)
			if err == nil {
				c, cancel := ctx()
				err = r.e.WaitDurable(c, end)
				cancel()
			}
			if err != nil {
				r.failf("%s/%d: write after recovery: %v", s.name, i, err)
				continue
			}
			if int64(base) <= top {
				r.failf("%s/%d: write after recovery at offset %d, at or below %d handed out before", s.name, i, base, top)
			}
			r.ack(s, i, int64(base), r.record(s, s.cur, i, int64(base), recs, nil))
		}
	}
}

func groupTP(topic string, part int32) group.TopicPartition {
	return group.TopicPartition{Topic: topic, Partition: part}
}

func keys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
