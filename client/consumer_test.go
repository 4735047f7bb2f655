package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/client"
)

// reshard calls POST /v1/streams/{stream}/{op} with body on the admin API
// and returns the stream's open shards after it.
func (s *server) reshard(tb testing.TB, stream, op, body string) []int32 {
	tb.Helper()
	resp, err := http.Post("http://"+s.HTTPAddr+"/v1/streams/"+stream+"/"+op, "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatalf("%s %s: %v", op, stream, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		tb.Fatalf("%s %s %s: %s: %s", op, stream, body, resp.Status, b)
	}
	var reply struct {
		Open []int32 `json:"open"`
	}
	if err := json.Unmarshal(b, &reply); err != nil {
		tb.Fatalf("%s reply %s: %v", op, b, err)
	}
	return reply.Open
}

// fastGroup makes a test's group see new shards and rebalances within a
// fraction of a second rather than the SDK's defaults (seconds).
var fastGroup = client.WithConsumerKgoOptions(
	kgo.MetadataMinAge(50*time.Millisecond), kgo.MetadataMaxAge(300*time.Millisecond),
	kgo.HeartbeatInterval(200*time.Millisecond), kgo.SessionTimeout(6*time.Second))

func newConsumer(t *testing.T, s *server, group string, streams []string, opts ...client.ConsumerOption) *client.Consumer {
	t.Helper()
	c, err := client.NewConsumer([]string{s.KafkaAddr}, group, streams, opts...)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

// waitFor polls cond every 20ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNoLeak fails t if more goroutines than before are left 5s later.
func checkNoLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines 5s after Close, %d before:\n%s",
				runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orderLog checks per-key order over everything handed to any consumer,
// in the order the handlers saw it: the first delivery of each key's
// records must follow the order they were acknowledged (record n of a key
// first seen only after record n-1); a record seen again (a duplicate
// after a rebalance, allowed by at-least-once) is fine.
type orderLog struct {
	mu    sync.Mutex
	next  map[string]int // per key: the next record never seen yet
	dups  int
	total int
	err   error
}

func newOrderLog() *orderLog { return &orderLog{next: map[string]int{}} }

// value encodes record n of key.
func value(key string, n int) []byte { return fmt.Appendf(nil, "%s/%d", key, n) }

func (l *orderLog) add(msgs []client.Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		key, ns, _ := strings.Cut(string(m.Value), "/")
		n, err := strconv.Atoi(ns)
		if err != nil || key != string(m.Key) {
			l.err = fmt.Errorf("bad record %q key %q at %s/%d/%d", m.Value, m.Key, m.Stream, m.Shard, m.Offset)
			continue
		}
		l.total++
		switch next := l.next[key]; {
		case n < next:
			l.dups++
		case n == next:
			l.next[key] = n + 1
		default:
			if l.err == nil {
				l.err = fmt.Errorf("key %s: record %d first seen before %d (shard %d offset %d)", key, n, next, m.Shard, m.Offset)
			}
		}
	}
}

// seenAll reports whether every acknowledged record was read, or an
// order error was found (no use waiting then).
func (l *orderLog) seenAll(acked map[string]int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return true
	}
	for k, n := range acked {
		if l.next[k] < n {
			return false
		}
	}
	return true
}

// Per-key order through a split, a merge and a scale under load: the SDK
// producer writes 24 keys (one record in flight per key, so the order of
// acknowledgement is the order of writing), two SDK consumers in one group
// read while the stream is resharded; every acknowledged record is read,
// and no key's record is first seen before an earlier one of that key.
func TestConsumerGroupOrderThroughReshards(t *testing.T) {
	s := startServer(t, "--group-initial-rebalance-delay", "100ms")
	const stream = "orders"
	s.createStream(t, stream, 2, map[string]string{"braid.routing": "key"})
	p := newProducer(t, s)

	log := newOrderLog()
	handler := func(ctx context.Context, msgs []client.Message) error {
		log.add(msgs)
		return nil
	}
	runCtx, stopRun := context.WithTimeout(context.Background(), 60*time.Second)
	defer stopRun()
	start := time.Now()
	var running sync.WaitGroup
	var assigned [2]atomic.Int64
	const keys = 24
	prodCtx := ctxFor(t, 60*time.Second)
	acked := map[string]int{}
	var ackMu sync.Mutex
	stop := make(chan struct{})
	var producing sync.WaitGroup
	for k := range keys {
		key := fmt.Sprintf("k%02d", k)
		producing.Add(1)
		go func() {
			defer producing.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := p.Produce(prodCtx, &client.Record{Stream: stream, Key: []byte(key), Value: value(key, n)})
				if err != nil {
					t.Errorf("produce %s/%d: %v", key, n, err)
					return
				}
				ackMu.Lock()
				acked[key] = n + 1
				ackMu.Unlock()
			}
		}()
	}

	ackedNow := func() int {
		ackMu.Lock()
		defer ackMu.Unlock()
		sum := 0
		for _, n := range acked {
			sum += n
		}
		return sum
	}
	// Reshard only once records flow, and leave each layout some load.
	step := func(what string, do func()) {
		base := ackedNow()
		waitFor(t, 10*time.Second, "records acknowledged before "+what, func() bool { return ackedNow() >= base+300 })
		do()
		t.Logf("%v: %s at %d acknowledged", time.Since(start).Round(time.Millisecond), what, ackedNow())
	}
	startConsumers := func() {
		for i := range 2 {
			c := newConsumer(t, s, "g-order", []string{stream}, fastGroup, client.WithMaxPollRecords(20),
				client.WithOnAssigned(func(_ context.Context, a client.Shards) {
					assigned[i].Add(int64(len(a[stream])))
					t.Logf("%v: consumer %d assigned %v", time.Since(start).Round(time.Millisecond), i, a[stream])
				}))
			running.Add(1)
			go func() {
				defer running.Done()
				if err := c.Run(runCtx, handler); !errors.Is(err, context.Canceled) {
					t.Errorf("consumer %d Run: %v", i, err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := c.Close(ctx); err != nil {
					t.Errorf("consumer %d Close: %v", i, err)
				}
			}()
		}
	}

	var open, merged []int32
	step("split", func() { open = s.reshard(t, stream, "split", `{"shard":0}`) })
	// The consumers join with a backlog in the split's parent and
	// children, and read in small batches: without the lineage gate the
	// children's records would be handed out among the parent's.
	startConsumers()
	// Shard 0's children are 2 (its lower half) and 3 (its upper half,
	// adjacent to shard 1).
	if !slices.Equal(open, []int32{1, 2, 3}) {
		t.Fatalf("open after split: %v", open)
	}
	step("merge", func() { merged = s.reshard(t, stream, "merge", `{"shards":[3,1]}`) })
	step("scale", func() { s.reshard(t, stream, "scale", `{"shards":3}`) })
	step("stop", func() {})
	close(stop)
	producing.Wait()
	t.Logf("acknowledged %d records; open after merge %v", ackedNow(), merged)

	ackMu.Lock()
	want := maps(acked)
	ackMu.Unlock()
	waitFor(t, 30*time.Second, "every acknowledged record read", func() bool { return log.seenAll(want) })
	log.mu.Lock()
	err, total, dups := log.err, log.total, log.dups
	log.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v: all read", time.Since(start).Round(time.Millisecond))
	stopRun()
	running.Wait()
	t.Logf("%v: consumers closed", time.Since(start).Round(time.Millisecond))
	t.Logf("read %d records, %d duplicates; shards assigned: %d and %d", total, dups, assigned[0].Load(), assigned[1].Load())
	if assigned[0].Load() == 0 || assigned[1].Load() == 0 {
		t.Errorf("a consumer was never assigned a shard: %d, %d", assigned[0].Load(), assigned[1].Load())
	}
}

func maps(m map[string]int) map[string]int {
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// produceN writes records 0..n-1 of key to stream and waits for them.
func produceN(t *testing.T, p *client.Producer, stream, key string, from, n int) {
	t.Helper()
	ctx := ctxFor(t, 20*time.Second)
	for i := from; i < from+n; i++ {
		if _, err := p.Produce(ctx, &client.Record{Stream: stream, Key: []byte(key), Value: value(key, i)}); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
}

// committed returns group's committed offset for stream's shard (-1: none).
func (s *server) committed(tb testing.TB, group, stream string, shard int32) int64 {
	tb.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = stream, []int32{shard}
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, s.reader(tb))
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		tb.Fatalf("offset fetch: %v", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition == shard {
				return p.Offset
			}
		}
	}
	return -1
}

// firstOffset runs a new member of group until its first batch and
// returns that batch's first offset.
func firstOffset(t *testing.T, s *server, group, stream string) int64 {
	t.Helper()
	c := newConsumer(t, s, group, []string{stream}, fastGroup, client.WithMaxPollRecords(10))
	ctx, stop := context.WithCancel(ctxFor(t, 20*time.Second))
	var first int64 = -1
	c.Run(ctx, func(_ context.Context, msgs []client.Message) error {
		first = msgs[0].Offset
		stop()
		return errors.New("only looking")
	})
	if err := c.Close(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return first
}

// At least once: a batch whose handler failed is not committed, by Close
// or otherwise. Run returns a *HandlerError wrapping the handler's error;
// Run again hands the same records out again; a member that takes over
// after Close starts right after the last batch a handler returned from.
func TestConsumerCommitsOnlyHandled(t *testing.T) {
	s := startServer(t, "--group-initial-rebalance-delay", "0")
	const stream = "alo"
	s.createStream(t, stream, 1, nil)
	p := newProducer(t, s)
	produceN(t, p, stream, "k", 0, 30)
	ctx := ctxFor(t, 30*time.Second)
	boom := errors.New("boom")
	failAt := func(at int64, seen *[]int64) client.Handler {
		return func(_ context.Context, msgs []client.Message) error {
			if msgs[0].Offset >= at {
				for _, m := range msgs {
					*seen = append(*seen, m.Offset)
				}
				return boom
			}
			return nil
		}
	}

	// While a handler runs, its batch is not committed, however many
	// commit intervals pass: 0-9 handled, 10-19 held in the handler.
	c := newConsumer(t, s, "g-alo", []string{stream}, fastGroup, client.WithMaxPollRecords(10),
		client.WithCommitInterval(100*time.Millisecond))
	holding, release := make(chan struct{}), make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() {
		ran <- c.Run(runCtx, func(_ context.Context, msgs []client.Message) error {
			if msgs[0].Offset == 10 {
				close(holding)
				<-release
				stop()
			}
			return nil
		})
	}()
	<-holding
	waitFor(t, 5*time.Second, "offset 10 committed", func() bool { return s.committed(t, "g-alo", stream, 0) == 10 })
	time.Sleep(500 * time.Millisecond) // five commit intervals
	if got := s.committed(t, "g-alo", stream, 0); got != 10 {
		t.Fatalf("committed %d while the handler of 10-19 runs, want 10", got)
	}
	close(release)
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := s.committed(t, "g-alo", stream, 0); got != 20 {
		t.Fatalf("committed %d after Close, want 20", got)
	}
	produceN(t, p, stream, "k", 30, 10)

	// 20-29 handled, 30-39 failed; Close commits 30.
	c = newConsumer(t, s, "g-alo", []string{stream}, fastGroup, client.WithMaxPollRecords(10))
	var failed []int64
	err := c.Run(ctx, failAt(30, &failed))
	var he *client.HandlerError
	if !errors.As(err, &he) || !errors.Is(err, boom) {
		t.Fatalf("Run after a failing handler: %v, want a *HandlerError wrapping boom", err)
	}
	if len(failed) == 0 || failed[0] != 30 {
		t.Fatalf("failed batch %v, want one starting at 30", failed)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := firstOffset(t, s, "g-alo", stream); got != 30 {
		t.Fatalf("after Close the group resumed at offset %d, want 30 (the batch whose handler failed)", got)
	}

	// Run again on the same consumer: the failed batch comes back first.
	c = newConsumer(t, s, "g-alo", []string{stream}, fastGroup, client.WithMaxPollRecords(10))
	failed = nil
	if err := c.Run(ctx, failAt(30, &failed)); !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want boom", err)
	}
	var again []int64
	runCtx, stop = context.WithCancel(ctx)
	err = c.Run(runCtx, func(_ context.Context, msgs []client.Message) error {
		if again == nil {
			for _, m := range msgs {
				again = append(again, m.Offset)
			}
		}
		if msgs[len(msgs)-1].Offset >= 39 {
			stop() // handled up to 39
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("second Run: %v, want context.Canceled", err)
	}
	if !slices.Equal(again, failed) {
		t.Fatalf("second Run began with %v, want the failed batch %v again", again, failed)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	produceN(t, p, stream, "k", 40, 10)
	if got := firstOffset(t, s, "g-alo", stream); got != 40 {
		t.Fatalf("after Close the group resumed at offset %d, want 40 (just after the last handled batch)", got)
	}
}

// Misuse gets clear errors: bad arguments and options at NewConsumer, a
// nil handler, Run while running, Run/Commit/Close after Close.
func TestConsumerMisuse(t *testing.T) {
	seeds := []string{"127.0.0.1:1"}
	for _, tc := range []struct {
		name    string
		seeds   []string
		group   string
		streams []string
		opt     client.ConsumerOption
	}{
		{"no seeds", nil, "g", []string{"s"}, nil},
		{"no group", seeds, "", []string{"s"}, nil},
		{"no streams", seeds, "g", nil, nil},
		{"empty stream", seeds, "g", []string{"s", ""}, nil},
		{"zero poll", seeds, "g", []string{"s"}, client.WithMaxPollRecords(0)},
		{"zero fetches", seeds, "g", []string{"s"}, client.WithMaxConcurrentFetches(0)},
		{"huge fetch", seeds, "g", []string{"s"}, client.WithFetchMaxBytes(1 << 30)},
		{"short interval", seeds, "g", []string{"s"}, client.WithCommitInterval(50 * time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []client.ConsumerOption
			if tc.opt != nil {
				opts = append(opts, tc.opt)
			}
			c, err := client.NewConsumer(tc.seeds, tc.group, tc.streams, opts...)
			if err == nil || c != nil {
				t.Fatalf("NewConsumer: %v, %v; want an error", c, err)
			}
		})
	}

	s := startServer(t)
	s.createStream(t, "misuse", 1, nil)
	produceN(t, newProducer(t, s), "misuse", "k", 0, 1)
	before := runtime.NumGoroutine()
	c, err := client.NewConsumer([]string{s.KafkaAddr}, "g-misuse", []string{"misuse"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 20*time.Second)
	if err := c.Run(ctx, nil); err == nil {
		t.Fatal("Run with a nil handler: no error")
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- c.Run(runCtx, func(context.Context, []client.Message) error {
			once.Do(func() { close(started) })
			return nil
		})
	}()
	<-started
	if err := c.Run(ctx, func(context.Context, []client.Message) error { return nil }); !errors.Is(err, client.ErrRunning) {
		t.Fatalf("Run while running: %v, want ErrRunning", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run stopped by Close: %v, want nil", err)
	}
	for name, err := range map[string]error{
		"Run":    c.Run(ctx, func(context.Context, []client.Message) error { return nil }),
		"Commit": c.Commit(ctx),
		"Close":  c.Close(ctx),
	} {
		if !errors.Is(err, client.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		} else if strings.Contains(err.Error(), "producer") {
			t.Errorf("%s after Close: %q names the producer, on a Consumer", name, err)
		}
	}
	checkNoLeak(t, before)
}

// WithManualCommit: nothing is committed until Commit, however long the
// consumer runs; Commit commits what was handled; Close commits the rest
// and reports the revoked shards.
func TestConsumerManualCommit(t *testing.T) {
	s := startServer(t, "--group-initial-rebalance-delay", "0")
	const stream = "manual"
	s.createStream(t, stream, 1, nil)
	p := newProducer(t, s)
	produceN(t, p, stream, "k", 0, 20)
	var revoked atomic.Value
	c := newConsumer(t, s, "g-manual", []string{stream}, fastGroup, client.WithManualCommit(),
		client.WithCommitInterval(100*time.Millisecond), // ignored under manual commit
		client.WithOnRevoked(func(_ context.Context, r client.Shards) { revoked.Store(r) }))
	ctx := ctxFor(t, 30*time.Second)
	var handled atomic.Int64
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() {
		ran <- c.Run(runCtx, func(_ context.Context, msgs []client.Message) error {
			handled.Store(msgs[len(msgs)-1].Offset + 1)
			return nil
		})
	}()
	waitFor(t, 10*time.Second, "20 records handled", func() bool { return handled.Load() == 20 })
	time.Sleep(500 * time.Millisecond) // five would-be commit intervals
	if got := s.committed(t, "g-manual", stream, 0); got != -1 {
		t.Fatalf("committed %d before Commit under WithManualCommit", got)
	}
	if err := c.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if got := s.committed(t, "g-manual", stream, 0); got != 20 {
		t.Fatalf("committed %d after Commit, want 20", got)
	}
	produceN(t, p, stream, "k", 20, 5)
	waitFor(t, 10*time.Second, "25 records handled", func() bool { return handled.Load() == 25 })
	stop()
	<-ran
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := s.committed(t, "g-manual", stream, 0); got != 25 {
		t.Fatalf("committed %d after Close, want 25", got)
	}
	if r, _ := revoked.Load().(client.Shards); !slices.Equal(r[stream], []int32{0}) {
		t.Fatalf("revoked on Close: %v, want %s: [0]", r, stream)
	}
}

// fetchedBytes counts the record batch bytes a client has fetched.
type fetchedBytes struct{ n *atomic.Int64 }

func (f fetchedBytes) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	f.n.Add(int64(m.CompressedBytes))
}

// Backpressure: while the handler is busy, the consumer fetches about
// WithMaxConcurrentFetches × WithFetchMaxBytes ahead, not the stream.
func TestConsumerReadAheadBounded(t *testing.T) {
	s := startServer(t, "--group-initial-rebalance-delay", "0")
	const stream = "backlog"
	s.createStream(t, stream, 8, nil)
	p := newProducer(t, s)
	value := make([]byte, 1024)
	ctx := ctxFor(t, 30*time.Second)
	const n = 8000 // 8 MiB over 8 shards
	for i := range n {
		p.ProduceAsync(&client.Record{Stream: stream, Key: fmt.Appendf(nil, "%d", i), Value: value}, nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var fetched atomic.Int64
	c := newConsumer(t, s, "g-backlog", []string{stream}, fastGroup,
		client.WithFetchMaxBytes(128<<10), client.WithMaxConcurrentFetches(1), client.WithMaxPollRecords(10),
		client.WithConsumerKgoOptions(kgo.WithHooks(fetchedBytes{&fetched})))
	busy, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var handled atomic.Int64
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() {
		ran <- c.Run(runCtx, func(_ context.Context, msgs []client.Message) error {
			once.Do(func() { close(busy); <-release })
			if handled.Add(int64(len(msgs))) >= n {
				stop()
			}
			return nil
		})
	}()
	<-busy
	time.Sleep(time.Second) // time enough to fetch everything, were it unbounded
	ahead := fetched.Load()
	close(release)
	t.Logf("fetched %d KiB ahead of a busy handler (stream: %d KiB)", ahead>>10, n)
	if ahead > 2<<20 {
		t.Errorf("fetched %d KiB ahead of a busy handler; want one fetch: 128 KiB, or one batch when larger (at most 2 MiB)", ahead>>10)
	}
	<-ran
	if handled.Load() < n {
		t.Errorf("handled %d of %d", handled.Load(), n)
	}
}
