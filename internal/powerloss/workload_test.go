package powerloss

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/group"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/txn"
	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

const (
	dataDir   = "/data"
	txnStream = "s"
	txnGroup  = "gt"
	txnTimout = 600000 // ms: transactions never time out within a run
	opTimeout = 10 * time.Second
)

// run is one seed's workload, its engine and its model.
type run struct {
	seed  uint64
	plugs atomic.Uint64 // pullPlug calls, which seed the pages a torn one keeps
	rng   *rand.Rand
	mem   *vfs.MemFS // the machine's disk
	fs    vfs.FS     // what the engine uses: mem, or mem behind an injector
	e     *engine.Engine
	timer bool // background mover, retention and cleaner on short timers
	// walSegment is the WAL segment size (default 256 KiB): smaller, more
	// closed log for the mover.
	walSegment int64

	streams []*streamModel
	txns    []*txnProducer
	idem    map[string]*idemProducer
	rk      *rkModel // the key-routed stream that is resharded
	uid     int
	commit  int64 // last group commit value handed out (values only grow)

	// lenient: errors from the engine are expected (the plug was pulled
	// during the op, or faults are being injected); otherwise any error is
	// a failure in itself.
	lenient bool

	// Crashing at the n-th fsync: syncHook counts fsyncs (of files and
	// directories) and pulls the plug just before number crashAt, from
	// whichever goroutine makes it; clone is then what the disk kept.
	syncs, crashAt atomic.Int64
	crashing       atomic.Bool // set just before the plug is pulled
	// slowSync makes every fsync take a while, so that writes wait for
	// durability longer and a crash catches more of them unsynced.
	slowSync atomic.Bool
	clone    atomic.Pointer[vfs.MemFS]

	trace  []string
	failed []string
}

func newRun(seed uint64, timer bool) *run {
	return &run{seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), mem: vfs.NewMemFS(),
		idem: map[string]*idemProducer{}, timer: timer}
}

func (r *run) failf(format string, args ...any) {
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}

func (r *run) note(format string, args ...any) {
	r.trace = append(r.trace, fmt.Sprintf(format, args...))
}

// unexpected reports an engine error where none is allowed.
func (r *run) unexpected(what string, err error) {
	if !r.lenient && !r.crashing.Load() {
		r.failf("%s: unexpected error: %v", what, err)
	}
}

func (r *run) options(fs vfs.FS) engine.Options {
	o := engine.Options{
		FS: fs, Dir: dataDir, WALSegmentBytes: 256 << 10, CheckpointBytes: 96 << 10,
		CheckpointEvery: time.Hour, CacheBytes: 64 << 10,
		MoveAfterBytes: 1 << 40, MoveAfter: time.Hour, RetentionEvery: time.Hour, CleanerEvery: time.Hour,
		TxnMaxTimeout: time.Hour,
		// Half the seeds write the log in whole blocks, as
		// --wal-direct-io does (through the page cache here: the
		// in-memory filesystem has no direct I/O).
		WALDirectIO: r.seed%2 == 1,
	}
	if r.walSegment > 0 {
		o.WALSegmentBytes = r.walSegment
	}
	if r.timer {
		o.MoveAfterBytes, o.RetentionEvery, o.CleanerEvery = 64<<10, 7*time.Millisecond, 11*time.Millisecond
	}
	return o
}

// syncHook is an injector that fails nothing: it pulls the plug just
// before the crashAt-th fsync.
func (r *run) syncHook(op vfs.Op, path string) error {
	if op != vfs.OpSync && op != vfs.OpSyncDir {
		return nil
	}
	if r.slowSync.Load() && strings.HasPrefix(path, dataDir+"/wal/") {
		time.Sleep(100 * time.Microsecond)
	}
	if n := r.syncs.Add(1); n == r.crashAt.Load() {
		r.crashing.Store(true)
		r.clone.Store(r.pullPlug())
	}
	return nil
}

// pullPlug is r.mem.CrashClone, except that on odd seeds the power loss
// also keeps about half of the pages written since each file's last sync,
// picked by the seed: the kernel writes dirty pages back in any order and
// at any time, so unacknowledged writes may reach the disk in part, out of
// order, before their fsync.
func (r *run) pullPlug() *vfs.MemFS {
	if r.seed%2 == 0 {
		return r.mem.CrashClone()
	}
	pick := rand.New(rand.NewPCG(r.seed, r.plugs.Add(1)))
	return r.mem.CrashCloneTorn(func(string, int64) bool { return pick.IntN(2) == 0 })
}

func (r *run) open(fs vfs.FS) error {
	r.fs = fs
	e, err := engine.Open(r.options(fs))
	if err != nil {
		return err
	}
	r.e = e
	return nil
}

// setup creates the streams every run has; c0 and c1 come and go.
func (r *run) setup() {
	for _, s := range []*streamModel{
		{name: txnStream, kind: kindPlain, nShard: 3},
		{name: "kv", kind: kindCompact, nShard: 2},
		{name: "ret", kind: kindRetention, nShard: 1},
		{name: "c0", kind: kindPlain, nShard: 1 + r.rng.IntN(2)},
		{name: "c1", kind: kindPlain, nShard: 1 + r.rng.IntN(2)},
	} {
		s.inflight = map[string]bool{}
		r.streams = append(r.streams, s)
		if s.name == "c0" || s.name == "c1" {
			continue
		}
		cs, err := r.e.CreateStream(s.name, s.nShard, s.configs(), false)
		if err != nil {
			r.failf("create %s: %v", s.name, err)
			return
		}
		s.status, s.cur = live, newGen(s.nShard)
		s.cur.id = cs.ID
		s.resetKeys()
	}
	r.setupRK()
	for i := range 3 {
		r.txns = append(r.txns, &txnProducer{id: fmt.Sprintf("tx%d", i), pid: -1, seq: map[int]int32{}})
	}
}

func (s *streamModel) resetKeys() {
	s.lastKey = make([]map[string]int64, s.nShard)
	for i := range s.lastKey {
		s.lastKey[i] = map[string]int64{}
	}
}

func (r *run) stream(name string) *streamModel {
	for _, s := range r.streams {
		if s.name == name {
			return s
		}
	}
	return nil
}

// pickLive returns a random live stream (kinds filtered by ok), or nil.
func (r *run) pickLive(ok func(*streamModel) bool) *streamModel {
	var c []*streamModel
	for _, s := range r.streams {
		if s.status == live && (ok == nil || ok(s)) {
			c = append(c, s)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[r.rng.IntN(len(c))]
}

func (r *run) records(s *streamModel, n int) []rec {
	out := make([]rec, n)
	for i := range out {
		r.uid++
		pad := strings.Repeat("x", 20+r.rng.IntN(1200))
		out[i].val = fmt.Sprintf("%s#%d#%s", s.name, r.uid, pad)
		if s.kind == kindCompact {
			out[i].key = fmt.Sprintf("k%d", r.rng.IntN(12))
		} else if r.rng.IntN(2) == 0 {
			out[i].key = fmt.Sprintf("u%d", r.uid)
		}
	}
	return out
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// engineStream returns the engine's stream for a live model stream, and
// reports a live stream the engine lacks.
func (r *run) engineStream(s *streamModel) *engine.Stream {
	st := r.e.Stream(s.name)
	if st == nil || st.ID != s.cur.id {
		if !r.lenient && !r.crashing.Load() {
			r.failf("live stream %s (id %d) missing from the engine", s.name, s.cur.id)
		}
		return nil
	}
	return st
}

// record notes recs appended at base on one shard of s's current life.
func (r *run) record(s *streamModel, g *gen, shardID int, base int64, recs []rec, t *txnModel) []*written {
	out := make([]*written, len(recs))
	for i, rc := range recs {
		w := &written{rec: rc, txn: t}
		if old := g.shards[shardID].recs[base+int64(i)]; old != nil {
			r.failf("%s/%d: offset %d handed out twice (%q, then %q)", s.name, shardID, base+int64(i), old.val, rc.val)
		}
		g.shards[shardID].recs[base+int64(i)] = w
		delete(s.inflight, rc.val)
		out[i] = w
		if t != nil {
			t.recs = append(t.recs, txnRec{shard: shardID, off: base + int64(i), val: rc.val})
		}
	}
	return out
}

func (r *run) ack(s *streamModel, shardID int, base int64, ws []*written) {
	for i, w := range ws {
		w.acked = true
		if s.kind == kindCompact && w.key != "" {
			off := base + int64(i)
			if off > s.lastKey[shardID][w.key] {
				s.lastKey[shardID][w.key] = off
			}
		}
	}
}

// opProduce writes a plain batch at acks -1, 1 or 0.
func (r *run) opProduce() {
	s := r.pickLive(nil)
	if s == nil {
		return
	}
	st := r.engineStream(s)
	if st == nil {
		return
	}
	acks := []int{-1, -1, 1, 0}[r.rng.IntN(4)]
	shardID := r.rng.IntN(s.nShard)
	recs := r.records(s, 1+r.rng.IntN(4))
	r.note("produce %s/%d acks=%d n=%d", s.name, shardID, acks, len(recs))
	for _, rc := range recs {
		s.inflight[rc.val] = true
	}
	g := s.cur
	base, _, end, err := r.e.Produce(st, st.Shards[shardID], buildBatch(recs, -1, 0, 0, false), nil)
	if err != nil {
		r.unexpected("produce", err)
		return
	}
	ws := r.record(s, g, shardID, int64(base), recs, nil)
	c, cancel := ctx()
	defer cancel()
	switch acks {
	case -1:
		if err := r.e.WaitDurable(c, end); err != nil {
			r.unexpected("produce: wait durable", err)
			return
		}
		r.ack(s, shardID, int64(base), ws)
	case 1:
		if err := r.e.WaitWritten(c, end); err != nil {
			r.unexpected("produce: wait written", err)
		}
	}
}

// opIdempotent writes an idempotent batch at acks=all, sometimes followed by
// a retry that must be answered as a duplicate.
func (r *run) opIdempotent() {
	s := r.pickLive(func(s *streamModel) bool { return s.name != "c0" && s.name != "c1" })
	if s == nil {
		return
	}
	st := r.engineStream(s)
	if st == nil {
		return
	}
	p := r.idem[s.name]
	if p == nil {
		pid, err := r.e.NewProducerID()
		if err != nil {
			r.unexpected("new producer id", err)
			return
		}
		p = &idemProducer{pid: pid, seq: map[int]int32{}}
		r.idem[s.name] = p
	}
	if p.stuck {
		return // a client resends its unanswered batch before anything new
	}
	shardID := r.rng.IntN(s.nShard)
	recs := r.records(s, 1+r.rng.IntN(3))
	b := &idemBatch{shard: shardID, seq: p.seq[shardID], recs: recs, base: -1, gen: s.cur}
	p.last = b
	r.note("idempotent %s/%d pid=%d seq=%d n=%d", s.name, shardID, p.pid, b.seq, len(recs))
	for _, rc := range recs {
		s.inflight[rc.val] = true
	}
	raw := buildBatch(recs, p.pid, 0, b.seq, false)
	p.stuck = true
	base, n, end, err := r.e.Produce(st, st.Shards[shardID], raw, nil)
	if err != nil {
		r.unexpected("idempotent produce", err)
		return
	}
	if n != len(recs) {
		r.failf("idempotent produce %s/%d seq %d: %d records taken, want %d", s.name, shardID, b.seq, n, len(recs))
	}
	b.base = int64(base)
	p.seq[shardID] += int32(len(recs))
	ws := r.record(s, b.gen, shardID, int64(base), recs, nil)
	c, cancel := ctx()
	defer cancel()
	if err := r.e.WaitDurable(c, end); err != nil {
		r.unexpected("idempotent produce: wait durable", err)
		return
	}
	r.ack(s, shardID, int64(base), ws)
	b.acked, p.stuck = true, false
	if r.rng.IntN(4) == 0 {
		again, n, _, err := r.e.Produce(st, st.Shards[shardID], raw, nil)
		if err != nil {
			r.unexpected("idempotent retry", err)
			return
		}
		if n != 0 || again != base {
			r.failf("idempotent retry %s/%d seq %d: base %d with %d new records, want the duplicate at %d", s.name, shardID, b.seq, again, n, base)
		}
	}
}

// opTxn moves one transactional id a step: init, produce, commit offsets,
// or end.
func (r *run) opTxn() {
	p := r.txns[r.rng.IntN(len(r.txns))]
	s := r.stream(txnStream)
	st := r.engineStream(s)
	if st == nil {
		return
	}
	c, cancel := ctx()
	defer cancel()
	if p.pid < 0 {
		r.note("init %s", p.id)
		res, err := r.e.Txns().InitProducerID(c, p.id, txnTimout, -1, -1)
		if err != nil {
			r.unexpected("init producer id", err)
			return
		}
		p.pid, p.epoch, p.seq = res.PID, res.Epoch, map[int]int32{}
		return
	}
	if p.cur == nil {
		p.cur = &txnModel{id: p.id, pid: p.pid, state: txnOngoing, offsets: map[groupPart]int64{}}
		p.all = append(p.all, p.cur)
	}
	t := p.cur
	switch k := r.rng.IntN(10); {
	case k < 6 || len(t.recs) == 0 && len(t.offsets) == 0:
		shardID := r.rng.IntN(s.nShard)
		implicit := r.rng.IntN(2) == 0
		tp := txn.Partition{Topic: txnStream, Partition: int32(shardID)}
		r.note("txn produce %s %s/%d implicit=%v", p.id, txnStream, shardID, implicit)
		if !implicit {
			res, err := r.e.Txns().AddPartitions(c, p.id, p.pid, p.epoch, []txn.Partition{tp})
			if err == nil {
				err = res[tp]
			}
			if err != nil {
				r.unexpected("add partitions", err)
				p.pid = -1
				return
			}
		}
		recs := r.records(s, 1+r.rng.IntN(3))
		for _, rc := range recs {
			s.inflight[rc.val] = true
		}
		raw := buildBatch(recs, p.pid, p.epoch, p.seq[shardID], true)
		var base shard.Offset
		var end wal.Position
		var err error
		r.e.Txns().Produce(p.id, implicit, func(inTxn func(txn.Partition, int64, int16, bool) error) {
			base, _, end, err = r.e.Produce(st, st.Shards[shardID], raw, func(sh int32, pid int64, epoch int16, add bool) error {
				return inTxn(txn.Partition{Topic: tp.Topic, Partition: sh}, pid, epoch, add)
			})
		})
		if err != nil {
			r.unexpected("txn produce", err)
			p.pid = -1
			return
		}
		p.seq[shardID] += int32(len(recs))
		ws := r.record(s, s.cur, shardID, int64(base), recs, t)
		if err := r.e.WaitDurable(c, end); err != nil {
			r.unexpected("txn produce: wait durable", err)
			return
		}
		r.ack(s, shardID, int64(base), ws)
	case k < 8:
		part := int32(r.rng.IntN(s.nShard))
		r.commit++
		v := r.commit
		gp := groupPart{txnGroup, part}
		cm := s.cur.commits[gp]
		if cm == nil {
			cm = newCommit()
			s.cur.commits[gp] = cm
		}
		t.offsets[gp] = v
		implicit := r.rng.IntN(2) == 0
		r.note("txn offset commit %s %s %s/%d=%d implicit=%v", p.id, txnGroup, txnStream, part, v, implicit)
		if !implicit {
			if err := r.e.Txns().AddGroup(c, p.id, p.pid, p.epoch, txnGroup); err != nil {
				r.unexpected("add group", err)
				p.pid = -1
				return
			}
		}
		commits := map[group.TopicPartition]group.Commit{{Topic: txnStream, Partition: part}: {Offset: v, LeaderEpoch: -1}}
		err := r.e.Txns().CommitOffsets(p.id, p.pid, p.epoch, txnGroup, implicit, func() error {
			return r.e.Offsets().TxnCommit(c, txnGroup, p.pid, commits)
		})
		if err != nil {
			r.unexpected("txn offset commit", err)
			p.pid = -1
		}
	default:
		r.endTxn(c, p, s)
	}
}

// endTxn commits or aborts p's open transaction.
func (r *run) endTxn(c context.Context, p *txnProducer, s *streamModel) {
	t := p.cur
	commit := r.rng.IntN(10) < 7
	bump := r.rng.IntN(2) == 0
	r.note("end txn %s commit=%v bump=%v (%d records, %d offsets)", p.id, commit, bump, len(t.recs), len(t.offsets))
	t.state, t.commit = txnEnding, commit
	if commit {
		for gp, v := range t.offsets {
			s.cur.commits[gp].later[v] = true
		}
	}
	res, err := r.e.Txns().EndTxn(c, p.id, p.pid, p.epoch, commit, bump)
	if err != nil {
		r.unexpected("end txn", err)
		p.pid, p.cur = -1, nil
		for gp, v := range t.offsets {
			s.cur.commits[gp].anytime[v] = commit
		}
		return
	}
	p.cur = nil
	if res.PID != p.pid || res.Epoch != p.epoch {
		p.pid, p.epoch, p.seq = res.PID, res.Epoch, map[int]int32{}
	}
	r.settle(t, commit)
}

// settle applies an acknowledged transaction end to the model.
func (r *run) settle(t *txnModel, commit bool) {
	s := r.stream(txnStream)
	if commit {
		t.state = txnCommitted
	} else {
		t.state = txnAborted
	}
	if commit {
		for gp, v := range t.offsets {
			s.cur.commits[gp].ack(v)
		}
	}
}

// opCommit commits a group offset.
func (r *run) opCommit() {
	s := r.pickLive(nil)
	if s == nil {
		return
	}
	gp := groupPart{fmt.Sprintf("g%d", r.rng.IntN(2)), int32(r.rng.IntN(s.nShard))}
	r.commit++
	v := r.commit
	cm := s.cur.commits[gp]
	if cm == nil {
		cm = newCommit()
		s.cur.commits[gp] = cm
	}
	cm.later[v] = true
	r.note("commit %s %s/%d=%d", gp.group, s.name, gp.part, v)
	c, cancel := ctx()
	defer cancel()
	err := r.e.Offsets().Commit(c, gp.group, map[group.TopicPartition]group.Commit{{Topic: s.name, Partition: gp.part}: {Offset: v, LeaderEpoch: -1}})
	if err != nil {
		r.unexpected("offset commit", err)
		cm.anytime[v] = true
		return
	}
	cm.ack(v)
}

// opDeleteRecords moves a log start forward.
func (r *run) opDeleteRecords() {
	s := r.pickLive(func(s *streamModel) bool { return s.kind == kindPlain })
	if s == nil {
		return
	}
	st := r.engineStream(s)
	if st == nil {
		return
	}
	shardID := r.rng.IntN(s.nShard)
	sh := st.Shards[shardID]
	start, hw, _ := sh.Offsets()
	to := int64(start) + r.rng.Int64N(int64(hw-start)/2+1)
	sm := s.cur.shards[shardID]
	sm.maxStart = max(sm.maxStart, to)
	r.note("delete records %s/%d to %d (start %d, hw %d)", s.name, shardID, to, start, hw)
	c, cancel := ctx()
	defer cancel()
	if _, err := r.e.DeleteRecords(c, sh, shard.Offset(to)); err != nil {
		r.unexpected("delete records", err)
		return
	}
	sm.ackStart = max(sm.ackStart, to)
}

// opRetention runs a retention pass; the retention stream's log start as
// of a successful pass is acknowledged.
func (r *run) opRetention() {
	s := r.stream("ret")
	st := r.engineStream(s)
	if st == nil {
		return
	}
	sh := st.Shards[0]
	_, hw, _ := sh.Offsets()
	sm := s.cur.shards[0]
	sm.maxStart = max(sm.maxStart, int64(hw))
	c, cancel := ctx()
	defer cancel()
	stats := r.e.RetentionPass(c)
	start, _, _ := sh.Offsets()
	r.note("retention: %d shards trimmed, ret start %d", stats.ShardsTrimmed, start)
	// Only the retention stream has a limit, so a trimmed shard is its.
	if stats.ShardsTrimmed == 1 {
		sm.ackStart = max(sm.ackStart, int64(start))
	}
}

func (r *run) opMove() {
	r.note("move")
	if err := r.e.MoveNow(); err != nil {
		r.unexpected("move", err)
	}
}

func (r *run) opClean() {
	c, cancel := ctx()
	defer cancel()
	stats := r.e.CleanPass(c, true)
	r.note("clean: %d batches, %d records removed", stats.Batches, stats.Removed)
}

// opCreateDelete creates or deletes c0 or c1.
func (r *run) opCreateDelete() {
	s := r.stream(fmt.Sprintf("c%d", r.rng.IntN(2)))
	switch s.status {
	case absent:
		s.nShard = 1 + r.rng.IntN(2)
		s.status, s.next = createInDoubt, newGen(s.nShard)
		r.note("create %s (%d shards)", s.name, s.nShard)
		cs, err := r.e.CreateStream(s.name, s.nShard, s.configs(), false)
		if err != nil {
			r.unexpected("create stream", err)
			return
		}
		s.status, s.cur, s.next = live, s.next, nil
		s.cur.id = cs.ID
		s.resetKeys()
	case live:
		s.status = deleteInDoubt
		r.note("delete %s", s.name)
		if err := r.e.DeleteStream(s.name); err != nil {
			r.unexpected("delete stream", err)
			return
		}
		s.status, s.cur = absent, nil
	}
}

// opProduceRead writes at acks=0 or 1 and reads the shard straight after:
// a reader must not see the records before they are durable.
func (r *run) opProduceRead() {
	s := r.pickLive(nil)
	if s == nil {
		return
	}
	st := r.engineStream(s)
	if st == nil {
		return
	}
	shardID := r.rng.IntN(s.nShard)
	acks := r.rng.IntN(2)
	recs := r.records(s, 1+r.rng.IntN(3))
	r.note("produce %s/%d acks=%d n=%d, then read it", s.name, shardID, acks, len(recs))
	for _, rc := range recs {
		s.inflight[rc.val] = true
	}
	g := s.cur
	base, _, end, err := r.e.Produce(st, st.Shards[shardID], buildBatch(recs, -1, 0, 0, false), nil)
	if err != nil {
		r.unexpected("produce", err)
		return
	}
	r.record(s, g, shardID, int64(base), recs, nil)
	if acks == 1 {
		c, cancel := ctx()
		defer cancel()
		if err := r.e.WaitWritten(c, end); err != nil {
			r.unexpected("produce: wait written", err)
			return
		}
	}
	r.readInto(s, st, shardID)
}

// opRead reads a shard through the fetch path from its log start to its
// high watermark and marks what it saw.
func (r *run) opRead() {
	s := r.pickLive(nil)
	if s == nil {
		return
	}
	st := r.engineStream(s)
	if st == nil {
		return
	}
	shardID := r.rng.IntN(s.nShard)
	r.note("read %s/%d", s.name, shardID)
	r.readInto(s, st, shardID)
}

// readInto reads a shard and marks what it saw.
func (r *run) readInto(s *streamModel, st *engine.Stream, shardID int) {
	g := s.cur
	recs, _, _, err := readShard(st.Shards[shardID])
	if err != nil {
		r.unexpected("read", err)
		return
	}
	for _, rr := range recs {
		w := g.shards[shardID].recs[rr.off]
		switch {
		case w == nil && s.inflight[rr.val]:
			// appended by an op the crash caught; the model learns its
			// offset after recovery.
		case w == nil:
			r.failf("read %s/%d: offset %d holds %q, which was never appended there", s.name, shardID, rr.off, short(rr.val))
		case w.val != rr.val:
			r.failf("read %s/%d: offset %d holds %q, want %q", s.name, shardID, rr.off, short(rr.val), short(w.val))
		default:
			w.seen = true
		}
	}
}

// readShard reads a shard from its log start to its high watermark (data
// records only: control batches are skipped).
func readShard(sh *shard.Shard) ([]readRec, int64, int64, error) {
	start, hw, _ := sh.Offsets()
	var out []readRec
	from := start
	for from < hw {
		data, err := sh.Read(from, 256<<10, true)
		if err != nil {
			return nil, 0, 0, err
		}
		if len(data) == 0 {
			break
		}
		batches, err := decodeBatches(data)
		if err != nil {
			return nil, 0, 0, err
		}
		for _, b := range batches {
			if b.h.Attributes&attrControl == 0 {
				for _, rr := range b.recs {
					if rr.off >= int64(from) {
						out = append(out, rr)
					}
				}
			}
			from = shard.Offset(b.last() + 1)
		}
	}
	return out, int64(start), int64(hw), nil
}

func short(v string) string {
	if i := strings.LastIndexByte(v, '#'); i > 0 {
		return v[:i]
	}
	return v
}

// step runs one random operation.
func (r *run) step() {
	switch k := r.rng.IntN(110); {
	case k >= 108:
		r.opReshard()
	case k >= 100:
		r.opRK([]int{-1, -1, 1, 0}[r.rng.IntN(4)])
	case k < 30:
		r.opProduce()
	case k < 42:
		r.opIdempotent()
	case k < 60:
		r.opTxn()
	case k < 68:
		r.opCommit()
	case k < 73:
		r.opDeleteRecords()
	case k < 77:
		r.opRetention()
	case k < 82:
		r.opMove()
	case k < 86:
		r.opClean()
	case k < 90:
		r.opCreateDelete()
	default:
		r.opRead()
	}
}

// criticalStep runs an operation whose own writes a crash should cut
// through: ending a transaction, a move, a cleaning or retention pass,
// DeleteRecords, a stream created or deleted, a group commit, a reshard.
func (r *run) criticalStep() {
	switch r.rng.IntN(9) {
	case 8:
		r.rkCritical()
	case 0, 1:
		for _, i := range r.rng.Perm(len(r.txns)) {
			p := r.txns[i]
			if p.pid >= 0 && p.cur != nil && (len(p.cur.recs) > 0 || len(p.cur.offsets) > 0) {
				c, cancel := ctx()
				defer cancel()
				r.endTxn(c, p, r.stream(txnStream))
				return
			}
		}
		r.opTxn()
	case 2:
		r.opMove()
	case 3:
		r.opClean()
	case 4:
		r.opRetention()
	case 5:
		r.opDeleteRecords()
	case 6:
		r.opCreateDelete()
	default:
		r.opCommit()
	}
}

var errHung = errors.New("operation still running 20 s after the crash")
