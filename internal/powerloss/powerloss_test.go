package powerloss

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/vfs"
)

var (
	flagIters = flag.Int("powerloss.iters", 150, "seeds TestPowerLoss and TestFaultInjection run (TestPowerLossTimers a fifteenth)")
	flagSeed  = flag.Uint64("powerloss.seed", 0, "run only this seed (replays a failure)")
	flagFirst = flag.Uint64("powerloss.first", 1, "first seed of a run of -powerloss.iters seeds")
	flagTrace = flag.Bool("powerloss.trace", false, "print every seed's operations")
)

// seeds returns the seeds a test runs.
func seeds(n int) []uint64 {
	if *flagSeed != 0 {
		return []uint64{*flagSeed}
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = *flagFirst + uint64(i)
	}
	return out
}

// report fails t with a seed's failures, its last operations and the
// command that replays it.
func report(t *testing.T, name string, r *run) {
	t.Helper()
	if len(r.failed) == 0 && !*flagTrace {
		return
	}
	tail := r.trace
	if len(tail) > 40 && !*flagTrace {
		tail = tail[len(tail)-40:]
	}
	msg := fmt.Sprintf("seed %d:\n  %s\nlast operations:\n  %s\nreplay: go test ./internal/powerloss -run '%s$' -powerloss.seed=%d -v",
		r.seed, strings.Join(r.failed, "\n  "), strings.Join(tail, "\n  "), name, r.seed)
	if len(r.failed) == 0 {
		t.Log(msg)
		return
	}
	t.Error(msg)
}

// TestPowerLoss runs a seeded workload per seed and pulls the plug in two
// rounds: after a chosen operation, or while it is in flight. After each
// crash the engine recovers on what the disk kept and is checked against the
// model (see the package comment).
func TestPowerLoss(t *testing.T) {
	began := time.Now()
	failures := 0
	for _, seed := range seeds(*flagIters) {
		r := powerLoss(seed, false)
		report(t, "TestPowerLoss", r)
		if len(r.failed) > 0 {
			if failures++; failures >= 3 {
				t.Fatalf("stopping after %d failing seeds", failures)
			}
		}
	}
	t.Logf("%d seeds in %v", len(seeds(*flagIters)), time.Since(began).Round(time.Millisecond))
}

// TestPowerLossTimers is TestPowerLoss with the mover, retention and the
// cleaner on short timers, so they run beside the workload at moments no
// seed chooses.
func TestPowerLossTimers(t *testing.T) {
	for _, seed := range seeds(max(1, *flagIters/15)) {
		r := powerLoss(seed, true)
		report(t, "TestPowerLossTimers", r)
	}
}

func powerLoss(seed uint64, timer bool) *run {
	r := newRun(seed, timer)
	if err := r.open(vfs.Inject(r.mem, r.syncHook)); err != nil {
		r.failf("open: %v", err)
		return r
	}
	r.setup()
	for round := range 3 {
		n := 60 + r.rng.IntN(240)
		mode := r.rng.IntN(3)
		switch mode {
		case 0:
			r.note("-- round %d: %d operations, crash after the last", round, n)
		case 1:
			r.note("-- round %d: %d operations, crash during the last", round, n)
		case 2:
			r.note("-- round %d: %d operations, crash before an fsync of the last", round, n)
		}
		for i := range n {
			if i == n-1 && mode != 2 {
				break
			}
			if i == n-1 {
				// Within the operation: its first fsyncs are the
				// interesting ones (a transaction's prepare, a move's
				// segment data, a checkpoint's file).
				at := r.syncs.Load() + 1 + r.rng.Int64N(4)
				r.crashAt.Store(at)
				r.note("-- crash before fsync %d", at)
				r.criticalStep()
				break
			}
			r.step()
			if timer {
				time.Sleep(time.Millisecond)
			}
			if len(r.failed) > 0 {
				r.e.Close()
				return r
			}
			if r.clone.Load() != nil {
				break
			}
		}
		if mode == 2 && r.clone.Load() == nil {
			// The operation made fewer fsyncs: pull the plug now.
			r.crashAt.Store(0)
			r.crashing.Store(true)
			r.clone.CompareAndSwap(nil, r.pullPlug())
		}
		switch {
		case r.clone.Load() != nil:
			r.note("-- crashed before fsync %d", r.crashAt.Load())
			r.mem = r.clone.Swap(nil)
			r.crashAt.Store(0)
			r.crashing.Store(false)
			r.lenient = true
			r.e.Close()
		case mode == 1:
			wait := time.Duration(r.rng.IntN(2000)) * time.Microsecond
			r.crash(func() { r.step() }, wait)
		default:
			if r.rng.IntN(2) == 0 {
				// Slow fsyncs keep the records undurable for a while.
				r.slowSync.Store(true)
				r.opProduceRead()
			} else {
				r.step()
			}
			r.crashAt.Store(0)
			r.crash(nil)
			r.slowSync.Store(false)
		}
		if len(r.failed) > 0 {
			return r
		}
		r.lenient = false
		if err := r.open(vfs.Inject(r.mem, r.syncHook)); err != nil {
			r.failf("recover: %v", err)
			return r
		}
		r.verify()
		if len(r.failed) > 0 {
			r.e.Close()
			return r
		}
	}
	r.e.Close()
	return r
}

// crash pulls the plug: with op, while op runs in another goroutine (after
// wait); then it stops what is left of the old engine, whose disk now
// fails every call.
func (r *run) crash(op func(), wait ...time.Duration) {
	if op == nil {
		r.note("-- crash")
		r.mem = r.pullPlug()
	} else {
		r.note("-- crash during the next operation, after %v", wait[0])
		r.lenient = true
		done := make(chan struct{})
		go func() {
			defer close(done)
			op()
		}()
		time.Sleep(wait[0])
		r.mem = r.pullPlug()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			r.failf("%v", errHung)
			return
		}
	}
	r.lenient = true
	r.e.Close()
}
