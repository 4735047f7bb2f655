package client_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/client"
)

// BenchmarkConsume compares the SDK's group Consumer with a raw kgo group
// consumer reading the same kind of data: b.N random 1 KiB records
// already in a stream of 1 or 16 shards (produced before the timer runs).
// The timer starts when the first batch arrives (the group join is not
// measured) and stops when b.N records were handed out. Both read from
// the start; the SDK with its defaults (read_committed, commit after the
// handler, bounded read-ahead), kgo with its own. Run it briefly:
// go test -run '^$' -bench Consume -benchmem -benchtime 20000x
func BenchmarkConsume(b *testing.B) {
	s := startServer(b, "--group-initial-rebalance-delay", "0")
	value := make([]byte, 1024)
	rand.Read(value)
	runs := 0
	fill := func(b *testing.B, shards int32) string {
		runs++
		name := fmt.Sprintf("consume-%d", runs)
		s.createStream(b, name, shards, nil)
		p, err := client.NewProducer([]string{s.KafkaAddr})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		defer p.Close(ctx)
		var failed atomic.Int64
		for i := range b.N {
			// Keys spread records over the shards.
			p.ProduceAsync(&client.Record{Stream: name, Key: fmt.Appendf(nil, "%d", i), Value: value}, func(_ client.Result, err error) {
				if err != nil {
					failed.Add(1)
				}
			})
		}
		if err := p.Flush(ctx); err != nil || failed.Load() > 0 {
			b.Fatalf("fill: %v, %d failed", err, failed.Load())
		}
		return name
	}

	for _, shards := range []int32{1, 16} {
		b.Run(fmt.Sprintf("shards=%d/sdk", shards), func(b *testing.B) {
			stream := fill(b, shards)
			c, err := client.NewConsumer([]string{s.KafkaAddr}, "g-"+stream, []string{stream})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			first, done := make(chan struct{}), make(chan struct{})
			var n atomic.Int64
			go c.Run(ctx, func(_ context.Context, msgs []client.Message) error {
				if n.Load() == 0 {
					close(first)
				}
				if n.Add(int64(len(msgs))) >= int64(b.N) && n.Load()-int64(len(msgs)) < int64(b.N) {
					close(done)
				}
				return nil
			})
			<-first
			b.SetBytes(int64(len(value)))
			b.ResetTimer()
			<-done
			b.StopTimer()
			c.Close(ctx)
		})

		b.Run(fmt.Sprintf("shards=%d/kgo", shards), func(b *testing.B) {
			stream := fill(b, shards)
			cl, err := kgo.NewClient(kgo.SeedBrokers(s.KafkaAddr), kgo.ConsumerGroup("g-"+stream),
				kgo.ConsumeTopics(stream), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			n := 0
			for n == 0 && ctx.Err() == nil {
				n += len(cl.PollRecords(ctx, 1000).Records())
			}
			b.SetBytes(int64(len(value)))
			b.ResetTimer()
			for n < b.N && ctx.Err() == nil {
				n += len(cl.PollRecords(ctx, 1000).Records())
			}
			b.StopTimer()
		})
	}
}
