package crashtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestExactlyOnceThroughSIGKILL runs a consume-transform-produce pipeline
// (franz-go's GroupTransactSession, read_committed, offsets committed in the
// transaction) from stream "in" to stream "out" while an idempotent producer
// keeps writing "in" and the server is SIGKILLed at random moments. Every
// few transactions the pipeline aborts on purpose after its records reached
// the log. At the end:
//   - "in" holds every acknowledged input record, each once (idempotence);
//   - "out" read with read_committed holds every record of "in" exactly once;
//   - "out" read with read_uncommitted also holds the aborted copies, which a
//     read_committed reader never sees.
func TestExactlyOnceThroughSIGKILL(t *testing.T) {
	kills := killCount(t, "BRAID_EOS_KILLS", 8)
	proc := braidtest.Start(t, "--wal-segment-bytes", "1048576", "--checkpoint-interval", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const partitions = 3
	proc.CreateStream(ctx, "in", partitions, nil)
	proc.CreateStream(ctx, "out", partitions, nil)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	in := &inputLog{acked: map[string]bool{}, done: make(chan struct{}), quit: make(chan struct{})}
	wg.Go(func() { in.produce(ctx, t, proc, stop) })
	pipe := &pipeline{addr: proc.KafkaAddr, t: t}
	wg.Go(func() { pipe.run(ctx, stop) })

	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	for range kills {
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		proc.Kill()
		proc.Restart()
	}
	// Let the input settle, then let the pipeline drain it.
	in.stopAndWait(ctx, t)
	waitDrained(ctx, t, proc, partitions)
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}

	commits, aborts := pipe.commits.Load(), pipe.aborts.Load()
	t.Logf("%d kills; %d input records acknowledged; pipeline: %d transactions committed, %d aborted (%d on purpose), %d sessions",
		kills, len(in.acked), commits, aborts, pipe.deliberate.Load(), pipe.sessions.Load())
	if commits < int64(kills) || pipe.deliberate.Load() == 0 {
		t.Fatalf("the pipeline committed %d and deliberately aborted %d transactions: the load did not run", commits, pipe.deliberate.Load())
	}

	var inputs, committed, uncommitted []*kgo.Record
	for p := range int32(partitions) {
		inputs = append(inputs, proc.ReadPartition(ctx, "in", p, true)...)
		committed = append(committed, proc.ReadPartition(ctx, "out", p, true)...)
		uncommitted = append(uncommitted, proc.ReadPartition(ctx, "out", p, false)...)
	}
	want := counts(inputs)
	for v, n := range want {
		if n != 1 {
			t.Errorf("input %s stored %d times", v, n)
		}
	}
	for v := range in.acked {
		if want[v] == 0 {
			t.Errorf("acknowledged input %s is not in the stream", v)
		}
	}
	got := counts(committed)
	for v := range want {
		if got[v] != 1 {
			t.Errorf("read_committed: input %s is in the output %d times, want once", v, got[v])
		}
	}
	for v, n := range got {
		if want[v] == 0 {
			t.Errorf("read_committed: output %s (%d times) was never input", v, n)
		}
	}
	all := counts(uncommitted)
	extra := 0
	for v, n := range all {
		if n < got[v] {
			t.Errorf("read_uncommitted: %s seen %d times, fewer than read_committed's %d", v, n, got[v])
		}
		extra += n - got[v]
	}
	if extra == 0 {
		t.Errorf("read_uncommitted shows no aborted records after %d aborted transactions", aborts)
	}
	t.Logf("%d inputs; output: %d committed, %d more (aborted) visible to read_uncommitted", len(want), len(committed), extra)
}

func counts(rs []*kgo.Record) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[string(r.Value)]++
	}
	return m
}

// inputLog produces unique values to "in" with an idempotent producer and
// keeps those acknowledged.
type inputLog struct {
	mu    sync.Mutex
	acked map[string]bool
	done  chan struct{} // closed by produce when it returns
	quit  chan struct{} // closed to make produce flush and return
}

func (in *inputLog) produce(ctx context.Context, t *testing.T, proc *braidtest.Proc, stop <-chan struct{}) {
	defer close(in.done)
	cl, err := kgo.NewClient(kgo.SeedBrokers(proc.KafkaAddr), kgo.DefaultProduceTopic("in"),
		kgo.ProducerLinger(2*time.Millisecond), kgo.RecordDeliveryTimeout(60*time.Second))
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-in.quit:
			fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			if err := cl.Flush(fctx); err != nil {
				t.Errorf("input producer: flush: %v", err)
			}
			return
		default:
		}
		v := fmt.Sprintf("in-%06d", i)
		cl.Produce(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
			if err == nil {
				in.mu.Lock()
				in.acked[v] = true
				in.mu.Unlock()
			}
		})
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // about 10,000 records/s
		}
	}
}

func (in *inputLog) stopAndWait(ctx context.Context, t *testing.T) {
	close(in.quit)
	select {
	case <-in.done:
	case <-ctx.Done():
		t.Fatalf("input producer did not finish")
	}
}

// pipeline copies "in" to "out" in transactions, partition to partition,
// through server restarts: a session that fails is closed and a new one
// with the same transactional id takes over, as an application would.
type pipeline struct {
	addr string
	t    *testing.T

	commits, aborts, deliberate, sessions atomic.Int64
}

func (p *pipeline) run(ctx context.Context, stop <-chan struct{}) {
	for ctx.Err() == nil {
		select {
		case <-stop:
			return
		default:
		}
		p.session(ctx, stop)
	}
}

// session runs one GroupTransactSession until it fails or stop closes.
func (p *pipeline) session(ctx context.Context, stop <-chan struct{}) {
	p.sessions.Add(1)
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(p.addr),
		kgo.TransactionalID("eos-pipeline"),
		kgo.TransactionTimeout(10*time.Second),
		kgo.ConsumerGroup("eos"),
		kgo.ConsumeTopics("in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.SessionTimeout(10*time.Second),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.RetryTimeout(20*time.Second),
	)
	if err != nil {
		p.t.Errorf("transact session: %v", err)
		return
	}
	defer sess.Close()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := sess.PollRecords(pctx, 500)
		cancel()
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				fetchErr = err
			}
		})
		if fetchErr != nil {
			p.t.Logf("pipeline: fetch: %v; new session", fetchErr)
			return
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			p.t.Logf("pipeline: begin: %v; new session", err)
			return
		}
		for _, r := range recs {
			sess.Produce(ctx, &kgo.Record{Topic: "out", Partition: r.Partition, Key: r.Key, Value: r.Value}, nil)
		}
		abort := n%9 == 4
		if abort {
			// Make sure the records are in the log before aborting, so
			// there is aborted data for read_uncommitted to see.
			if err := sess.Client().Flush(ctx); err != nil {
				p.t.Logf("pipeline: flush: %v", err)
			}
		}
		ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
		committed, err := sess.End(ectx, kgo.TransactionEndTry(!abort))
		cancel()
		switch {
		case committed:
			p.commits.Add(1)
		case abort && err == nil:
			p.aborts.Add(1)
			p.deliberate.Add(1)
		default:
			p.aborts.Add(1)
		}
		if err != nil {
			p.t.Logf("pipeline: end transaction: %v; new session", err)
			return
		}
	}
}

// waitDrained waits until group "eos" has committed, stably, the end of
// every partition of "in".
func waitDrained(ctx context.Context, t *testing.T, proc *braidtest.Proc, partitions int32) {
	t.Helper()
	adm := proc.Admin()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(ctx, "in")
		if err == nil {
			var offs kadm.OffsetResponses
			if offs, err = adm.FetchOffsets(ctx, "eos"); err == nil {
				drained := true
				for p := range partitions {
					end, _ := ends.Lookup("in", p)
					o, ok := offs.Lookup("in", p)
					if !ok || o.Err != nil || o.At < end.Offset {
						drained = false
					}
				}
				if drained {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline did not drain \"in\" within 90 s (last error %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
