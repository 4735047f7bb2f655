// Command produce-consume is a small, complete use of the Braid Go SDK: it
// creates a stream (if missing), produces records to it synchronously and
// asynchronously, then reads them back with a group Consumer and exits
// once it has seen them all, printing what the metrics hooks counted.
//
// Run it against a local node:
//
//	braid serve --data-dir /tmp/braid &
//	go -C client run ./examples/produce-consume -brokers 127.0.0.1:9092 -n 1000
//
// Run it again: the group resumes after what it committed, so it reads
// only the new records.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/braidstream/braid/client"
	"github.com/braidstream/braid/client/admin"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated host:port of Braid Kafka listeners")
	stream := flag.String("stream", "sdk-example", "stream to produce to and consume from")
	shards := flag.Int("shards", 4, "shards of the stream, if it is created")
	group := flag.String("group", "sdk-example", "consumer group")
	n := flag.Int("n", 100, "records to produce (half sync, half async)")
	timeout := flag.Duration("timeout", time.Minute, "give up after this long")
	flag.Parse()
	if *n < 1 || *shards < 1 {
		log.Fatal("-n and -shards must be at least 1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, strings.Split(*brokers, ","), *stream, int32(*shards), *group, *n); err != nil {
		fmt.Fprintln(os.Stderr, "produce-consume:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, seeds []string, stream string, shards int32, group string, n int) error {
	adm, err := admin.New(seeds, "")
	if err != nil {
		return err
	}
	defer adm.Close()
	if err := adm.CreateStream(ctx, stream, shards, nil); err != nil && !errors.Is(err, admin.ErrStreamExists) {
		return err
	}

	// Produce: the first half one at a time (each returns once durable),
	// the rest asynchronously, then Flush.
	p, err := client.NewProducer(seeds)
	if err != nil {
		return err
	}
	defer p.Close(context.Background())
	for i := range n / 2 {
		res, err := p.Produce(ctx, record(stream, i))
		if err != nil {
			return err
		}
		if i == 0 {
			fmt.Printf("first record: shard %d, offset %d\n", res.Shard, res.Offset)
		}
	}
	var failed atomic.Int64
	for i := n / 2; i < n; i++ {
		p.ProduceAsync(record(stream, i), func(_ client.Result, err error) {
			if err != nil && failed.Add(1) == 1 {
				log.Printf("async produce: %v", err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d records failed", f)
	}
	fmt.Printf("produced %d records\n", p.Stats().Produced)

	// Consume until n records were handled; the consumer commits them.
	var handled atomic.Int64
	c, err := client.NewConsumer(seeds, group, []string{stream}, client.WithConsumerHooks(client.ConsumerHooks{
		OnConsumed: func(_ string, _ int32, records, _ int, _ time.Duration) { handled.Add(int64(records)) },
	}))
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	err = c.Run(runCtx, func(_ context.Context, msgs []client.Message) error {
		// The hook counts after this returns: count here to stop.
		if handled.Load()+int64(len(msgs)) >= int64(n) {
			stop()
		}
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if err := c.Close(ctx); err != nil {
		return err
	}
	st := c.Stats()
	fmt.Printf("consumed %d records (%d bytes), %d commits\n", st.Consumed, st.ConsumedBytes, st.Commits)
	if st.Consumed < int64(n) {
		return fmt.Errorf("consumed %d records, want at least %d", st.Consumed, n)
	}
	return nil
}

func record(stream string, i int) *client.Record {
	return &client.Record{
		Stream: stream,
		Key:    fmt.Appendf(nil, "user-%d", i%10), // one key's records stay in order
		Value:  fmt.Appendf(nil, `{"n":%d}`, i),
	}
}
