package client_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/client"
)

// upper is the pipeline under test: each input becomes one output with the
// value upper-cased, keyed as the input. It is slow (a pause per batch) so
// that a kill lands in the middle of a run.
func upper(ctx context.Context, in []client.Message) ([]*client.Record, error) {
	out := make([]*client.Record, len(in))
	for i, m := range in {
		out[i] = &client.Record{Stream: "eos-out", Key: m.Key, Value: bytes.ToUpper(m.Value)}
	}
	select {
	case <-time.After(20 * time.Millisecond):
	case <-ctx.Done():
	}
	return out, nil
}

// stallAfter, in a pipeline process, holds the acknowledgement of the
// n-th output batch written and says so on stdout: a SIGKILL then finds a
// transaction open with output written.
type stallAfter struct{ n *atomic.Int64 }

func (s stallAfter) OnProduceBatchWritten(kgo.BrokerMetadata, string, int32, kgo.ProduceBatchMetrics) {
	if s.n.Add(-1) == 0 {
		fmt.Println("written")
		time.Sleep(time.Minute)
	}
}

func newUpper(tb testing.TB, kafka string, opts ...client.ConsumerOption) *client.Transformer {
	tr, err := client.NewTransformer([]string{kafka}, "g-eos", []string{"eos-in"}, "eos-upper", upper, append([]client.ConsumerOption{
		client.WithMaxPollRecords(20),
		// A restarted instance takes its predecessor's place in the
		// group at once (static membership, KIP-345), as it takes its
		// place as a transactional producer.
		client.WithConsumerKgoOptions(kgo.InstanceID("eos-upper"), kgo.SessionTimeout(6*time.Second),
			kgo.HeartbeatInterval(200*time.Millisecond), kgo.MetadataMinAge(50*time.Millisecond))}, opts...)...)
	if err != nil {
		tb.Fatalf("NewTransformer: %v", err)
	}
	return tr
}

// TestTransformerProcess is not a test: TestTransformerExactlyOnce runs
// the test binary again with BRAID_EOS_KAFKA set to run a pipeline in a
// process of its own, which it then SIGKILLs.
func TestTransformerProcess(t *testing.T) {
	kafka := os.Getenv("BRAID_EOS_KAFKA")
	if kafka == "" {
		t.Skip("run by TestTransformerExactlyOnce")
	}
	var n atomic.Int64
	n.Store(5)
	tr := newUpper(t, kafka, client.WithConsumerKgoOptions(kgo.WithHooks(stallAfter{&n})))
	fmt.Println("running")
	// Bounded, in case the test that runs it dies without killing it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr.Run(ctx)
}

// committedValues reads stream with read_committed until it has been
// quiet for quiet, and returns the values.
func (s *server) committedValues(tb testing.TB, stream string, quiet time.Duration) []string {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.KafkaAddr), kgo.ConsumeTopics(stream), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), quiet)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)); n++ })
		if n == 0 {
			return got
		}
	}
}

// Exactly once through abrupt stops: N inputs go through the pipeline,
// which runs in a separate process SIGKILLed twice mid-run (each time
// with output of an open transaction written), then in this process to
// the end; read committed, the output holds every input's output exactly
// once.
func TestTransformerExactlyOnce(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "eos-in", 2, nil)
	s.createStream(t, "eos-out", 2, nil)
	p := newProducer(t, s)
	const n = 600
	ctx := ctxFor(t, 60*time.Second)
	for i := range n {
		p.ProduceAsync(&client.Record{Stream: "eos-in", Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "in-%04d", i)}, func(_ client.Result, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	lookup := s.reader(t)
	outEnd := func() int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "eos-out"
		for shard := range int32(2) {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = shard, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, lookup)
		if err != nil {
			t.Fatalf("list offsets: %v", err)
		}
		var sum int64
		for _, rp := range resp.Topics[0].Partitions {
			sum += rp.Offset
		}
		return sum
	}
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTransformerProcess$", "-test.v")
		cmd.Env = append(os.Environ(), "BRAID_EOS_KAFKA="+s.KafkaAddr)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() }) // if the test ends before the SIGKILL below
		written := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if sc.Text() == "written" {
					written <- true
				}
			}
			close(written)
		}()
		select {
		case ok := <-written:
			if !ok {
				t.Fatalf("round %d: the pipeline process ended before writing output", round)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: the pipeline process wrote no output in 20s", round)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		t.Logf("round %d: killed in a transaction with output written; %d output offsets", round, outEnd())
	}

	before := runtime.NumGoroutine()
	tr := newUpper(t, s.KafkaAddr)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tr.Run(runCtx) }()
	var got []string
	waitFor(t, 30*time.Second, "every input's output committed", func() bool {
		got = s.committedValues(t, "eos-out", 300*time.Millisecond)
		t.Logf("%d committed, %d offsets", len(got), outEnd())
		return len(got) >= n
	})
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if err := tr.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkNoLeak(t, before)
	got = s.committedValues(t, "eos-out", 500*time.Millisecond)
	count := map[string]int{}
	for _, v := range got {
		count[v]++
	}
	for i := range n {
		want := fmt.Sprintf("IN-%04d", i)
		if count[want] != 1 {
			t.Errorf("output %s committed %d times, want once", want, count[want])
		}
	}
	if len(got) != n {
		t.Errorf("%d outputs committed for %d inputs", len(got), n)
	}
	// The kills caught transactions with output written (stallAfter).
	all := s.readAll(t, "eos-out", n+1)
	t.Logf("%d committed outputs; %d written in all (read uncommitted, aborted included)", len(got), len(all))
	if len(all) <= n {
		t.Errorf("no aborted output: the kills found no transaction open with output written")
	}
}

// stallOnce holds the acknowledgement of the n-th output batch for d and
// closes stalled when it starts to.
type stallOnce struct {
	n       *atomic.Int64
	d       time.Duration
	stalled chan struct{}
}

func (s stallOnce) OnProduceBatchWritten(kgo.BrokerMetadata, string, int32, kgo.ProduceBatchMetrics) {
	if s.n.Add(-1) == 0 {
		close(s.stalled)
		time.Sleep(s.d)
	}
}

// Exactly once through a node crash: the node is SIGKILLed while the
// pipeline has a transaction open with output written, and restarted on
// the same data. A Transformer whose Run then fails is closed and
// replaced by a new one with the same transactional id, as documented;
// read committed, the output holds every input's output exactly once.
func TestTransformerServerKilled(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "eos-in", 2, nil)
	s.createStream(t, "eos-out", 2, nil)
	p := newProducer(t, s)
	const n = 400
	ctx := ctxFor(t, 90*time.Second)
	for i := range n {
		if _, err := p.Produce(ctx, &client.Record{Stream: "eos-in", Key: fmt.Appendf(nil, "k%d", i%7), Value: fmt.Appendf(nil, "in-%04d", i)}); err != nil {
			t.Fatal(err)
		}
	}

	var left atomic.Int64
	left.Store(4)
	stalled := make(chan struct{})
	hook := client.WithConsumerKgoOptions(kgo.WithHooks(stallOnce{&left, time.Second, stalled}))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runs := make(chan error, 1)
	go func() {
		restarts := 0
		for {
			tr := newUpper(t, s.KafkaAddr, hook)
			err := tr.Run(runCtx)
			tr.Close(context.Background())
			if runCtx.Err() != nil {
				runs <- nil
				return
			}
			restarts++
			t.Logf("Run: %v; a new Transformer (%d)", err, restarts)
			if restarts > 10 {
				runs <- fmt.Errorf("more than 10 restarts, last: %w", err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	select {
	case <-stalled:
	case <-time.After(20 * time.Second):
		t.Fatal("no output batch written in 20s")
	}
	s.Restart(t)
	t.Log("node restarted with a transaction open")

	var got []string
	waitFor(t, 45*time.Second, "every input's output committed", func() bool {
		got = s.committedValues(t, "eos-out", 300*time.Millisecond)
		return len(got) >= n
	})
	stop()
	if err := <-runs; err != nil {
		t.Fatal(err)
	}
	got = s.committedValues(t, "eos-out", 500*time.Millisecond)
	count := map[string]int{}
	for _, v := range got {
		count[v]++
	}
	for i := range n {
		if v := fmt.Sprintf("IN-%04d", i); count[v] != 1 {
			t.Errorf("output %s committed %d times, want once", v, count[v])
		}
	}
	if len(got) != n {
		t.Errorf("%d outputs committed for %d inputs", len(got), n)
	}
}

// Misuse: NewTransformer refuses a missing transactional id, func or
// stream; Run after Close returns ErrClosed.
func TestTransformerMisuse(t *testing.T) {
	seeds := []string{"127.0.0.1:1"}
	if _, err := client.NewTransformer(seeds, "g", []string{"in"}, "", upper); err == nil {
		t.Error("empty transactional id: no error")
	}
	if _, err := client.NewTransformer(seeds, "g", []string{"in"}, "id", nil); err == nil {
		t.Error("nil func: no error")
	}
	if _, err := client.NewTransformer(seeds, "g", nil, "id", upper); err == nil {
		t.Error("no input streams: no error")
	}
	before := runtime.NumGoroutine()
	tr, err := client.NewTransformer(seeds, "g", []string{"in"}, "id", upper)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tr.Run(context.Background()); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
	if err := tr.Close(context.Background()); !errors.Is(err, client.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	checkNoLeak(t, before)
}
