package powerloss

import (
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/braidstream/braid/internal/vfs"
)

// fault is a class of filesystem failure the error-injection test drives.
type fault struct {
	name string
	op   vfs.Op
	err  error
}

var faults = []fault{
	{"EIO on fsync", vfs.OpSync, syscall.EIO},
	{"ENOSPC on write", vfs.OpWrite, syscall.ENOSPC},
	{"ENOSPC on preallocate", vfs.OpPreallocate, syscall.ENOSPC},
	{"EIO on rename", vfs.OpRename, syscall.EIO},
	{"EIO on directory sync", vfs.OpSyncDir, syscall.EIO},
}

// TestFaultInjection runs the power-loss workload on a filesystem that, from
// a random operation on, fails one kind of call under one directory (always,
// or only the first few times). While faulted, the engine must keep serving
// every acknowledged record and, when the write-ahead log cannot write or
// fsync, refuse acks=all writes. Then the plug is pulled and a recovery
// without faults must pass the model check: nothing was acknowledged that
// was not durable.
func TestFaultInjection(t *testing.T) {
	for _, seed := range seeds(*flagIters) {
		r := faultRun(seed)
		report(t, "TestFaultInjection", r)
	}
}

func faultRun(seed uint64) *run {
	r := newRun(seed, false)
	r.walSegment = 64 << 10 // the faulted phase is short: give it moves to make
	f := faults[r.rng.IntN(len(faults))]
	prefix := []string{dataDir + "/wal/", dataDir + "/shards/", dataDir + "/"}[r.rng.IntN(3)]
	if f.op == vfs.OpRename || f.op == vfs.OpPreallocate {
		prefix = dataDir + "/" // renames: catalog and checkpoint; preallocation: the log
	}
	persistent := r.rng.IntN(3) > 0
	var armed atomic.Bool
	var left atomic.Int64 // failures left for a transient fault
	left.Store(1 + r.rng.Int64N(3))
	var fired atomic.Int64
	inj := func(op vfs.Op, path string) error {
		if !armed.Load() || op != f.op || !strings.HasPrefix(path, prefix) {
			return nil
		}
		if !persistent && left.Add(-1) < 0 {
			return nil
		}
		fired.Add(1)
		return f.err
	}
	if err := r.open(vfs.Inject(r.mem, inj)); err != nil {
		r.failf("open: %v", err)
		return r
	}
	r.setup()
	before, during := 30+r.rng.IntN(150), 20+r.rng.IntN(80)
	for range before {
		r.step()
	}
	if len(r.failed) > 0 {
		r.e.Close()
		return r
	}
	r.note("-- faults on: %s under %s (persistent %v)", f.name, prefix, persistent)
	armed.Store(true)
	r.lenient = true
	for range during {
		r.step()
	}
	r.checkReadable()
	// The log cannot write or fsync: acks=all must be refused.
	if persistent && (f.op == vfs.OpSync || f.op == vfs.OpWrite) && prefix != dataDir+"/shards/" {
		r.probeRefused(f.name)
	}
	r.note("-- %d calls failed; crash", fired.Load())
	r.mem = r.pullPlug()
	r.e.Close()
	r.lenient = false
	if len(r.failed) > 0 {
		return r
	}
	if err := r.open(r.mem); err != nil {
		r.failf("recover without faults: %v", err)
		return r
	}
	r.verify()
	r.e.Close()
	return r
}

// checkReadable reads every live shard and checks that each acknowledged
// record is served with its bytes.
func (r *run) checkReadable() {
	for _, s := range r.streams {
		if s.status != live {
			continue
		}
		st := r.e.Stream(s.name)
		if st == nil || st.ID != s.cur.id {
			r.failf("while faulted: live stream %s missing", s.name)
			continue
		}
		for i, sm := range s.cur.shards {
			recs, start, _, err := readShard(st.Shards[i])
			if err != nil {
				r.failf("while faulted: read %s/%d: %v", s.name, i, err)
				continue
			}
			at := map[int64]string{}
			for _, rr := range recs {
				at[rr.off] = rr.val
			}
			for off, w := range sm.recs {
				if !w.acked || off < start {
					continue
				}
				if v, ok := at[off]; !ok || v != w.val {
					if s.kind == kindCompact && !ok {
						continue // compaction may have replaced it; checked after recovery
					}
					r.failf("while faulted: %s/%d: acknowledged record %q at %d reads as %q", s.name, i, short(w.val), off, short(v))
				}
			}
		}
	}
}

// probeRefused checks that an acks=all produce is not acknowledged.
func (r *run) probeRefused(fault string) {
	s := r.stream(txnStream)
	st := r.e.Stream(txnStream)
	recs := r.records(s, 1)
	s.inflight[recs[0].val] = true
	base, _, end, err := r.e.Produce(st, st.Shards[0], buildBatch(recs, -1, 0, 0, false), nil)
	if err != nil {
		r.note("probe refused: %v", err)
		return
	}
	r.record(s, s.cur, 0, int64(base), recs, nil)
	c, cancel := ctx()
	defer cancel()
	if err := r.e.WaitDurable(c, end); err == nil {
		r.failf("with %s on the log, an acks=all write was acknowledged", fault)
	} else {
		r.note("probe refused: %v", err)
	}
}
