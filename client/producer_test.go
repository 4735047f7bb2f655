package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/braidstream/braid/client"
)

func newProducer(t *testing.T, s *server, opts ...client.ProducerOption) *client.Producer {
	t.Helper()
	p, err := client.NewProducer([]string{s.KafkaAddr}, opts...)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Sync produce returns only once the record is durable and says where it
// went; every record reads back, in order per key, with the exact bytes.
func TestProduceSyncReadsBack(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "orders", 3, nil)
	p := newProducer(t, s)
	ctx := ctxFor(t, 30*time.Second)

	const n = 150
	type pos struct {
		shard  int32
		offset int64
	}
	sent := make(map[pos]*client.Record, n)
	for i := range n {
		r := &client.Record{
			Stream:  "orders",
			Key:     fmt.Appendf(nil, "key-%d", i%7),
			Value:   fmt.Appendf(nil, "value-%d\x00\xff", i),
			Headers: []client.Header{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}},
		}
		res, err := p.Produce(ctx, r)
		if err != nil {
			t.Fatalf("Produce %d: %v", i, err)
		}
		if res.Stream != "orders" || res.Timestamp.IsZero() {
			t.Fatalf("Produce %d: result %+v", i, res)
		}
		if _, dup := sent[pos{res.Shard, res.Offset}]; dup {
			t.Fatalf("Produce %d: position %d/%d given twice", i, res.Shard, res.Offset)
		}
		sent[pos{res.Shard, res.Offset}] = r
	}

	got := s.readAll(t, "orders", n)
	if len(got) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}
	lastByKey := map[string]int{}
	for _, kr := range got {
		want, ok := sent[pos{kr.Partition, kr.Offset}]
		if !ok {
			t.Fatalf("read a record at %d/%d that Produce never reported", kr.Partition, kr.Offset)
		}
		if !bytes.Equal(kr.Key, want.Key) || !bytes.Equal(kr.Value, want.Value) ||
			len(kr.Headers) != 1 || kr.Headers[0].Key != "i" || !bytes.Equal(kr.Headers[0].Value, want.Headers[0].Value) {
			t.Fatalf("at %d/%d read key %q value %q headers %v, want %q %q %v",
				kr.Partition, kr.Offset, kr.Key, kr.Value, kr.Headers, want.Key, want.Value, want.Headers)
		}
		var i int
		fmt.Sscanf(string(want.Headers[0].Value), "%d", &i)
		if last, seen := lastByKey[string(kr.Key)]; seen && i <= last {
			t.Fatalf("key %s: record %d read after %d", kr.Key, i, last)
		}
		lastByKey[string(kr.Key)] = i
	}
}

// Every async callback runs exactly once, Flush waits for all of them, and
// every record is on the server exactly once.
func TestProduceAsyncEveryCallbackOnce(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "events", 2, nil)
	p := newProducer(t, s, client.WithLinger(5*time.Millisecond), client.WithCompression(client.CompressionZstd))

	const n = 3000
	var calls [n]atomic.Int32
	var failed atomic.Int32
	for i := range n {
		p.ProduceAsync(&client.Record{Stream: "events", Value: fmt.Appendf(nil, "%d", i)}, func(_ client.Result, err error) {
			if err != nil {
				t.Errorf("record %d: %v", i, err)
				failed.Add(1)
			}
			calls[i].Add(1)
		})
	}
	if err := p.Flush(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	for i := range n {
		if c := calls[i].Load(); c != 1 {
			t.Fatalf("after Flush, record %d's callback ran %d times, want 1", i, c)
		}
	}
	if err := p.Close(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i := range n {
		if c := calls[i].Load(); c != 1 {
			t.Fatalf("after Close, record %d's callback ran %d times, want 1", i, c)
		}
	}
	if end := s.endOffset(t, "events", 0) + s.endOffset(t, "events", 1); end != n {
		t.Fatalf("the stream holds %d records, want %d", end, n)
	}
	got := s.readAll(t, "events", n)
	seen := make(map[string]int, n)
	for _, kr := range got {
		seen[string(kr.Value)]++
	}
	for i := range n {
		if c := seen[fmt.Sprint(i)]; c != 1 {
			t.Fatalf("record %d is on the server %d times, want 1", i, c)
		}
	}
	if len(got) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}
}

// Close delivers what was buffered before it, even with a long linger.
func TestCloseFlushes(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "drain", 1, nil)
	p := newProducer(t, s, client.WithLinger(2*time.Second))
	const n = 100
	var ok atomic.Int32
	for i := range n {
		p.ProduceAsync(&client.Record{Stream: "drain", Value: fmt.Appendf(nil, "%d", i)}, func(_ client.Result, err error) {
			if err == nil {
				ok.Add(1)
			}
		})
	}
	if err := p.Close(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := ok.Load(); got != n {
		t.Fatalf("%d of %d records delivered when Close returned", got, n)
	}
	if end := s.endOffset(t, "drain", 0); end != n {
		t.Fatalf("stream end offset %d after Close, want %d", end, n)
	}
}

// After Close every call returns ErrClosed, and nothing more is written.
func TestClosedProducer(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "closed", 1, nil)
	p := newProducer(t, s)
	ctx := ctxFor(t, 10*time.Second)
	if _, err := p.Produce(ctx, &client.Record{Stream: "closed", Value: []byte("before")}); err != nil {
		t.Fatalf("Produce: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := p.Produce(ctx, &client.Record{Stream: "closed", Value: []byte("after")}); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Produce after Close: %v, want ErrClosed", err)
	}
	var calls int
	var asyncErr error
	p.ProduceAsync(&client.Record{Stream: "closed", Value: []byte("after")}, func(_ client.Result, err error) { calls++; asyncErr = err })
	if calls != 1 || !errors.Is(asyncErr, client.ErrClosed) {
		t.Errorf("ProduceAsync after Close: %d calls, err %v; want 1 call with ErrClosed", calls, asyncErr)
	}
	if err := p.Flush(ctx); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Flush after Close: %v, want ErrClosed", err)
	}
	if err := p.Close(ctx); !errors.Is(err, client.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if end := s.endOffset(t, "closed", 0); end != 1 {
		t.Errorf("end offset %d, want 1", end)
	}
}

// Bad records are refused before anything is sent (no server needed).
func TestBadRecords(t *testing.T) {
	p, err := client.NewProducer([]string{"127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := ctxFor(t, 5*time.Second)
	for _, tc := range []struct {
		name string
		rec  *client.Record
		want error
	}{
		{"nil", nil, client.ErrNilRecord},
		{"no stream", &client.Record{Value: []byte("v")}, client.ErrNoStream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.Produce(ctx, tc.rec); !errors.Is(err, tc.want) {
				t.Errorf("Produce: %v, want %v", err, tc.want)
			}
			calls := 0
			p.ProduceAsync(tc.rec, func(_ client.Result, err error) {
				calls++
				if !errors.Is(err, tc.want) {
					t.Errorf("ProduceAsync: %v, want %v", err, tc.want)
				}
			})
			if calls != 1 {
				t.Errorf("ProduceAsync called back %d times, want 1", calls)
			}
		})
	}
}

// Bad options are refused by NewProducer with a clear error.
func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		seeds []string
		opt   client.ProducerOption
	}{
		{"no seeds", nil, client.WithLinger(0)},
		{"compression", []string{"127.0.0.1:1"}, client.WithCompression("brotli")},
		{"linger", []string{"127.0.0.1:1"}, client.WithLinger(-time.Second)},
		{"max records", []string{"127.0.0.1:1"}, client.WithMaxBufferedRecords(0)},
		{"max bytes", []string{"127.0.0.1:1"}, client.WithMaxBufferedBytes(-1)},
		{"batch bytes", []string{"127.0.0.1:1"}, client.WithBatchMaxBytes(0)},
		{"delivery timeout", []string{"127.0.0.1:1"}, client.WithDeliveryTimeout(0)},
		{"acks", []string{"127.0.0.1:1"}, client.WithoutIdempotence(-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := client.NewProducer(tc.seeds, tc.opt); err == nil {
				p.Close(context.Background())
				t.Fatal("NewProducer accepted a bad option")
			}
		})
	}
}

// A record over the stream's max.message.bytes fails with ErrRecordTooLarge
// and is not written.
func TestRecordTooLarge(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "small", 1, map[string]string{"max.message.bytes": "1024"})
	p := newProducer(t, s)
	ctx := ctxFor(t, 20*time.Second)
	_, err := p.Produce(ctx, &client.Record{Stream: "small", Value: make([]byte, 4096)})
	if !errors.Is(err, client.ErrRecordTooLarge) || !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("Produce of 4 KiB to a 1 KiB stream: %v, want ErrRecordTooLarge wrapping MessageTooLarge", err)
	}
	var pe *client.ProduceError
	if !errors.As(err, &pe) || pe.Stream != "small" {
		t.Fatalf("error %v is not a *ProduceError for stream small", err)
	}
	res, err := p.Produce(ctx, &client.Record{Stream: "small", Value: []byte("fits")})
	if err != nil || res.Offset != 0 {
		t.Fatalf("small record after the refused one: offset %d, %v; want offset 0 (nothing written before)", res.Offset, err)
	}
}

// Braid does not create streams on produce (--auto-create-topics is off by
// default): producing to a missing stream fails with ErrUnknownStream.
func TestUnknownStream(t *testing.T) {
	s := startServer(t)
	p := newProducer(t, s)
	_, err := p.Produce(ctxFor(t, 30*time.Second), &client.Record{Stream: "missing", Value: []byte("v")})
	if !errors.Is(err, client.ErrUnknownStream) || !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("Produce to a missing stream: %v, want ErrUnknownStream", err)
	}
}

// A cancelled context ends Produce with context.Canceled, and the record is
// not written.
func TestCancelledContext(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "cancel", 1, nil)
	p := newProducer(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Produce(ctx, &client.Record{Stream: "cancel", Value: []byte("v")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Produce with a cancelled ctx: %v, want context.Canceled", err)
	}
	if err := p.Flush(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if end := s.endOffset(t, "cancel", 0); end != 0 {
		t.Fatalf("end offset %d after a cancelled Produce, want 0", end)
	}
}

// When the server dies, records fail with ErrDeliveryTimeout once the
// delivery timeout passes: reported to both sync and async callers.
func TestDeliveryTimeoutServerKilled(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "doomed", 1, nil)
	p := newProducer(t, s, client.WithDeliveryTimeout(2*time.Second))
	ctx := ctxFor(t, 30*time.Second)
	if _, err := p.Produce(ctx, &client.Record{Stream: "doomed", Value: []byte("ok")}); err != nil {
		t.Fatalf("Produce before kill: %v", err)
	}
	s.Kill()

	asyncErr := make(chan error, 2)
	p.ProduceAsync(&client.Record{Stream: "doomed", Value: []byte("async")}, func(_ client.Result, err error) { asyncErr <- err })
	began := time.Now()
	_, err := p.Produce(ctx, &client.Record{Stream: "doomed", Value: []byte("sync")})
	if !errors.Is(err, client.ErrDeliveryTimeout) {
		t.Fatalf("sync Produce to a dead server: %v, want ErrDeliveryTimeout", err)
	}
	took := time.Since(began)
	t.Logf("sync Produce failed after %v", took)
	if took < 2*time.Second {
		t.Fatalf("sync Produce failed after %v, before the 2s delivery timeout", took)
	}
	select {
	case err := <-asyncErr:
		if !errors.Is(err, client.ErrDeliveryTimeout) {
			t.Fatalf("async callback: %v, want ErrDeliveryTimeout", err)
		}
	case <-ctx.Done():
		t.Fatal("async callback never ran")
	}
}

// Close leaves no goroutine of the producer behind.
func TestNoGoroutineLeak(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "leak", 1, nil)
	before := runtime.NumGoroutine()
	p, err := client.NewProducer([]string{s.KafkaAddr})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ctx := ctxFor(t, 20*time.Second)
	for i := range 50 {
		wg.Add(1)
		p.ProduceAsync(&client.Record{Stream: "leak", Value: fmt.Appendf(nil, "%d", i)}, func(client.Result, error) { wg.Done() })
	}
	if _, err := p.Produce(ctx, &client.Record{Stream: "leak", Value: []byte("sync")}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if during := runtime.NumGoroutine(); during <= before {
		t.Fatalf("goroutines %d while producing, %d before: the check cannot see the producer's", during, before)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines 5s after Close, %d before NewProducer:\n%s",
				runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The buffer bound holds: with WithMaxBufferedRecords(1) and the first
// record stuck (the node is gone), ProduceAsync blocks; Close with a short
// ctx does not hang on it, and both records fail with ErrClosed, each
// callback once.
func TestBufferBoundAndCloseUnblocks(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "bound", 1, nil)
	p, err := client.NewProducer([]string{s.KafkaAddr}, client.WithMaxBufferedRecords(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Produce(ctxFor(t, 10*time.Second), &client.Record{Stream: "bound", Value: []byte("ok")}); err != nil {
		t.Fatalf("Produce: %v", err)
	}
	s.Kill()

	var calls [2]atomic.Int32
	errs := make(chan error, 4)
	cb := func(i int) func(client.Result, error) {
		return func(_ client.Result, err error) { calls[i].Add(1); errs <- err }
	}
	p.ProduceAsync(&client.Record{Stream: "bound", Value: []byte("stuck")}, cb(0))
	returned := make(chan struct{})
	go func() {
		p.ProduceAsync(&client.Record{Stream: "bound", Value: []byte("blocked")}, cb(1))
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("ProduceAsync returned with the buffer full")
	case <-time.After(300 * time.Millisecond):
	}

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		closed <- p.Close(ctx)
	}()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close with undeliverable records: %v, want DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung on a caller blocked on the full buffer")
	}
	<-returned
	for range 2 {
		if err := <-errs; !errors.Is(err, client.ErrClosed) {
			t.Errorf("record failed with %v, want ErrClosed", err)
		}
	}
	time.Sleep(50 * time.Millisecond) // a second call would come now
	for i := range calls {
		if c := calls[i].Load(); c != 1 {
			t.Errorf("callback %d ran %d times, want 1", i, c)
		}
	}
}

// Produce returns promptly when its ctx ends, even while the record cannot
// be delivered (the node is gone), with an error matching ctx.Err().
func TestProduceReturnsAtDeadline(t *testing.T) {
	s := startServer(t)
	s.createStream(t, "late", 1, nil)
	p := newProducer(t, s)
	if _, err := p.Produce(ctxFor(t, 10*time.Second), &client.Record{Stream: "late", Value: []byte("ok")}); err != nil {
		t.Fatalf("Produce: %v", err)
	}
	s.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := p.Produce(ctx, &client.Record{Stream: "late", Value: []byte("late")})
	took := time.Since(began)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Produce past its deadline: %v, want DeadlineExceeded", err)
	}
	if took > 800*time.Millisecond {
		t.Fatalf("Produce with a 300ms deadline returned after %v", took)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	p.Close(ctx) // nothing can be delivered: do not wait
}
