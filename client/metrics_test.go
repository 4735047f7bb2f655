package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braidstream/braid/client"
)

// hookLog records what hooks saw, and fails the test if one is called
// after Close returned.
type hookLog struct {
	t        *testing.T
	closed   atomic.Bool
	mu       sync.Mutex
	perShard map[int32]int
	records  int
	bytes    int
	errs     []error
	minLat   time.Duration
	commits  int
	failures int
}

func newHookLog(t *testing.T) *hookLog {
	return &hookLog{t: t, perShard: map[int32]int{}, minLat: time.Hour}
}

func (l *hookLog) call(name string) {
	if l.closed.Load() {
		l.t.Errorf("%s hook called after Close returned", name)
	}
}

func (l *hookLog) add(shard int32, n, bytes int, lat time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.perShard[shard] += n
	l.records += n
	l.bytes += bytes
	l.minLat = min(l.minLat, lat)
}

func (l *hookLog) producerHooks(stream string) client.ProducerHooks {
	return client.ProducerHooks{
		OnProduced: func(s string, shard int32, bytes int, lat time.Duration) {
			l.call("OnProduced")
			if s != stream {
				l.t.Errorf("OnProduced stream %q, want %q", s, stream)
			}
			l.add(shard, 1, bytes, lat)
		},
		OnProduceError: func(_ string, err error) {
			l.call("OnProduceError")
			l.mu.Lock()
			l.errs = append(l.errs, err)
			l.mu.Unlock()
		},
	}
}

// Producer hooks and Stats count exactly what the server holds: sync,
// async and ProduceBatch records, once each, with their bytes and a
// positive latency; failed records count as errors with the caller's
// error; and nothing is reported once Close has returned.
func TestProducerMetrics(t *testing.T) {
	s := startServer(t)
	const stream = "metered"
	s.createStream(t, stream, 2, nil)
	l := newHookLog(t)
	p, err := client.NewProducer([]string{s.KafkaAddr}, client.WithProducerHooks(l.producerHooks(stream)),
		client.WithBatchMaxBytes(4096))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 30*time.Second)

	wantBytes := 0
	rec := func(i int) *client.Record {
		r := &client.Record{Stream: stream, Key: fmt.Appendf(nil, "k%d", i%5), Value: fmt.Appendf(nil, "value-%d", i),
			Headers: []client.Header{{Key: "h", Value: []byte("x")}}}
		wantBytes += len(r.Key) + len(r.Value) + 2
		return r
	}
	const nSync, nAsync, nBatch = 20, 30, 4
	for i := range nSync {
		if _, err := p.Produce(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range nAsync {
		p.ProduceAsync(rec(nSync+i), nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	batch := make([]*client.Record, nBatch)
	for i := range batch {
		batch[i] = rec(nSync + nAsync + i)
	}
	if _, err := p.ProduceBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	// Too large for a batch: fails at once, after the hand-off.
	_, tooLarge := p.Produce(ctx, &client.Record{Stream: stream, Value: make([]byte, 8192)})
	if !errors.Is(tooLarge, client.ErrRecordTooLarge) {
		t.Fatalf("large record: %v, want ErrRecordTooLarge", tooLarge)
	}
	// Refused before the hand-off: not counted.
	if _, err := p.Produce(ctx, nil); !errors.Is(err, client.ErrNilRecord) {
		t.Fatalf("nil record: %v", err)
	}

	const total = nSync + nAsync + nBatch
	st := p.Stats()
	l.mu.Lock()
	if l.records != total || l.bytes != wantBytes {
		t.Errorf("OnProduced saw %d records, %d bytes; want %d, %d", l.records, l.bytes, total, wantBytes)
	}
	for shard := range int32(2) {
		end := s.endOffset(t, stream, shard)
		// A committed batch also writes a transaction marker per shard.
		if got := int64(l.perShard[shard]); got != end && got != end-1 {
			t.Errorf("shard %d: OnProduced saw %d records, the shard ends at %d", shard, got, end)
		}
	}
	if l.minLat <= 0 {
		t.Errorf("smallest latency %v, want > 0", l.minLat)
	}
	if len(l.errs) != 1 || !errors.Is(l.errs[0], client.ErrRecordTooLarge) {
		t.Errorf("OnProduceError saw %v, want one ErrRecordTooLarge", l.errs)
	}
	l.mu.Unlock()
	if st.Produced != total || st.ProducedBytes != int64(wantBytes) || st.Errors != 1 {
		t.Errorf("Stats %+v: want Produced %d, ProducedBytes %d, Errors 1", st, total, wantBytes)
	}
	if st.BufferedRecords != 0 || st.BufferedBytes != 0 {
		t.Errorf("Stats after Flush: %d records, %d bytes buffered, want 0", st.BufferedRecords, st.BufferedBytes)
	}

	// Records in flight when Close is called are reported before it
	// returns, never after.
	for i := range 50 {
		p.ProduceAsync(rec(total+i), nil)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	l.closed.Store(true)
	p.ProduceAsync(rec(0), nil)
	p.ProduceBatch(ctx, []*client.Record{rec(0)})
	time.Sleep(100 * time.Millisecond)
	if st := p.Stats(); st.Produced+st.Errors != total+1+50 {
		t.Errorf("Stats after Close %+v: want Produced+Errors %d", st, total+1+50)
	}
}

// Consumer hooks and Stats count what the handler returned nil for, per
// shard, with bytes and handler latency; handler errors and commits are
// counted; nothing is reported after Close returned.
func TestConsumerMetrics(t *testing.T) {
	s := startServer(t, "--group-initial-rebalance-delay", "0")
	const stream = "metered-in"
	s.createStream(t, stream, 2, nil)
	p := newProducer(t, s)
	ctx := ctxFor(t, 30*time.Second)
	const n = 40
	wantBytes := 0
	for i := range n {
		r := &client.Record{Stream: stream, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
		wantBytes += len(r.Key) + len(r.Value)
		if _, err := p.Produce(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	l := newHookLog(t)
	var handlerErrs atomic.Int64
	hooks := client.ConsumerHooks{
		OnConsumed: func(s string, shard int32, records, bytes int, lat time.Duration) {
			l.call("OnConsumed")
			if s != stream {
				t.Errorf("OnConsumed stream %q", s)
			}
			l.add(shard, records, bytes, lat)
		},
		OnHandlerError: func(records int, err error) {
			l.call("OnHandlerError")
			if records < 1 || err == nil {
				t.Errorf("OnHandlerError(%d, %v)", records, err)
			}
			handlerErrs.Add(1)
		},
		OnCommit: func(err error) {
			l.call("OnCommit")
			l.mu.Lock()
			l.commits++
			if err != nil {
				l.failures++
			}
			l.mu.Unlock()
		},
	}
	c := newConsumer(t, s, "g-metered", []string{stream}, fastGroup, client.WithConsumerHooks(hooks),
		client.WithManualCommit(), client.WithMaxPollRecords(7))

	// The first batch fails once; it is handed out again.
	var failed atomic.Bool
	var handled atomic.Int64
	boom := errors.New("boom")
	handler := func(_ context.Context, msgs []client.Message) error {
		time.Sleep(time.Millisecond) // a handler latency the clock can see
		if failed.CompareAndSwap(false, true) {
			return boom
		}
		handled.Add(int64(len(msgs)))
		return nil
	}
	if err := c.Run(ctx, handler); !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want boom", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- c.Run(runCtx, handler) }()
	waitFor(t, 20*time.Second, "all records handled", func() bool { return handled.Load() >= n })
	stop()
	<-ran
	if err := c.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	st := c.Stats()
	l.mu.Lock()
	if l.records != n || l.bytes != wantBytes {
		t.Errorf("OnConsumed saw %d records, %d bytes; want %d, %d", l.records, l.bytes, n, wantBytes)
	}
	for shard := range int32(2) {
		if got, end := int64(l.perShard[shard]), s.endOffset(t, stream, shard); got != end {
			t.Errorf("shard %d: OnConsumed saw %d records, the shard ends at %d", shard, got, end)
		}
	}
	if l.minLat <= 0 {
		t.Errorf("smallest handler latency %v, want > 0", l.minLat)
	}
	if l.commits < 1 || l.failures != 0 {
		t.Errorf("OnCommit: %d commits, %d failed; want at least 1, 0 failed", l.commits, l.failures)
	}
	commits := l.commits
	l.mu.Unlock()
	if handlerErrs.Load() != 1 {
		t.Errorf("OnHandlerError called %d times, want 1", handlerErrs.Load())
	}
	if st.Consumed != n || st.ConsumedBytes != int64(wantBytes) || st.HandlerErrors != 1 ||
		st.Commits != int64(commits) || st.CommitErrors != 0 {
		t.Errorf("Stats %+v: want Consumed %d, ConsumedBytes %d, HandlerErrors 1, Commits %d", st, n, wantBytes, commits)
	}
	if got := s.committed(t, "g-metered", stream, 0) + s.committed(t, "g-metered", stream, 1); got != n {
		t.Errorf("committed offsets sum to %d, want %d", got, n)
	}

	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	l.closed.Store(true)
	time.Sleep(200 * time.Millisecond)
}

// A Close that gives up (its ctx ends) while records are stuck on a dead
// node still returns only after the last hook: the records fail with
// ErrClosed, and their hooks run before Close returns or not at all.
func TestProducerHooksStopAtClose(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "stuck", 4, nil)
	l := newHookLog(t)
	var calls atomic.Int64
	hooks := l.producerHooks("stuck")
	onErr := hooks.OnProduceError
	hooks.OnProduceError = func(stream string, err error) {
		calls.Add(1)
		time.Sleep(time.Millisecond) // hooks still running when Close gives up
		onErr(stream, err)
	}
	p, err := client.NewProducer([]string{s.KafkaAddr}, client.WithProducerHooks(hooks))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 30*time.Second)
	if _, err := p.Produce(ctx, &client.Record{Stream: "stuck", Value: []byte("warm")}); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	for i := range 500 {
		p.ProduceAsync(&client.Record{Stream: "stuck", Key: fmt.Appendf(nil, "%d", i), Value: []byte("v")}, nil)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	p.Close(closeCtx)
	l.closed.Store(true)
	time.Sleep(500 * time.Millisecond)
	t.Logf("%d error hooks ran", calls.Load())
}
