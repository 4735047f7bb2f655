package client_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/client"
)

// produceKeys writes n records of each of keys keys, records of one key
// one at a time (so written = acknowledged order), keys in parallel, and
// adds them to acked.
func produceKeys(t *testing.T, p *client.Producer, stream string, keys, n int, acked map[string]int) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for k := range keys {
		key := fmt.Sprintf("k%02d", k)
		from := acked[key]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from; i < from+n; i++ {
				if _, err := p.Produce(ctx, &client.Record{Stream: stream, Key: []byte(key), Value: value(key, i)}); err != nil {
					t.Errorf("produce %s/%d: %v", key, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for k := range keys {
		acked[fmt.Sprintf("k%02d", k)] += n
	}
}

// A Reader reads a whole stream in per-key order across a split and a
// merge made before it started (a backlog in parents and children) and a
// split made while it reads.
func TestReaderFollowsLineage(t *testing.T) {
	s := startServer(t)
	const stream = "lineage"
	s.createStream(t, stream, 2, map[string]string{"braid.routing": "key"})
	p := newProducer(t, s)
	acked := map[string]int{}
	produceKeys(t, p, stream, 16, 20, acked)
	s.reshard(t, stream, "split", `{"shard":0}`) // children 2, 3
	produceKeys(t, p, stream, 16, 20, acked)
	s.reshard(t, stream, "merge", `{"shards":[3,1]}`) // child 4
	produceKeys(t, p, stream, 16, 20, acked)

	before := runtime.NumGoroutine()
	r, err := client.NewReader([]string{s.KafkaAddr}, stream, client.WithReaderAdminAddr(s.HTTPAddr),
		client.WithMaxPollRecords(20), client.WithLineageRefresh(200*time.Millisecond),
		// Small fetches per shard: every shard with data shows up in
		// every fetch, so that without the lineage wait a child's
		// records would be handed out among its parent's.
		client.WithConsumerKgoOptions(kgo.FetchMaxPartitionBytes(256)))
	if err != nil {
		t.Fatal(err)
	}
	log := newOrderLog()
	ctx := ctxFor(t, 30*time.Second)
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, func(_ context.Context, msgs []client.Message) error {
			log.add(msgs)
			return nil
		})
	}()
	waitFor(t, 15*time.Second, "the backlog read", func() bool { return log.seenAll(acked) })
	s.reshard(t, stream, "split", `{"shard":4}`)
	produceKeys(t, p, stream, 16, 20, acked)
	waitFor(t, 15*time.Second, "records after the live split read", func() bool { return log.seenAll(acked) })
	log.mu.Lock()
	err, total, dups := log.err, log.total, log.dups
	log.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if dups != 0 {
		t.Errorf("%d duplicates; a Reader reads each record once", dups)
	}
	t.Logf("read %d records", total)
	if err := r.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run stopped by Close: %v, want nil", err)
	}
	if err := r.Close(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	checkNoLeak(t, before)
}

// NewReader refuses a missing admin address; Run reports an unknown
// stream.
func TestReaderMisuse(t *testing.T) {
	if _, err := client.NewReader([]string{"127.0.0.1:1"}, "s"); !errors.Is(err, client.ErrNoAdminAddr) {
		t.Fatalf("NewReader without admin address: %v, want ErrNoAdminAddr", err)
	}
	if _, err := client.NewReader([]string{"127.0.0.1:1"}, "s", client.WithReaderAdminAddr("nope")); err == nil {
		t.Fatal("NewReader with a bad admin address: no error")
	}
	s := startServer(t)
	r, err := client.NewReader([]string{s.KafkaAddr}, "missing", client.WithReaderAdminAddr(s.HTTPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	err = r.Run(ctxFor(t, 10*time.Second), func(context.Context, []client.Message) error { return nil })
	if !errors.Is(err, client.ErrUnknownStream) {
		t.Fatalf("Run on a missing stream: %v, want ErrUnknownStream", err)
	}
}
