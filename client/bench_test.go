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

// BenchmarkProduce compares the SDK producer with raw kgo on the same load:
// 1 KiB random records, async, to a stream of 1 or 16 shards, on one braid node,
// both idempotent with acks all, no compression, kgo's default linger and
// buffer. Run it briefly:
// go test -run '^$' -bench Produce -benchmem -benchtime 20000x
func BenchmarkProduce(b *testing.B) {
	s := startServer(b)
	value := make([]byte, 1024)
	rand.Read(value) // incompressible, as most payloads are once batched
	runs := 0
	newStream := func(b *testing.B, kind string, shards int32) string {
		runs++ // b.Run runs each sub-benchmark more than once
		name := fmt.Sprintf("bench-%s-%d", kind, runs)
		s.createStream(b, name, shards, nil)
		return name
	}

	// Warm the node up first (its log rolls, a spare segment is ready, the
	// page cache is in use): otherwise whichever side runs first pays for
	// the node's start.
	warmUp(b, s, newStream(b, "warmup", 1), value, 300<<10)

	for _, shards := range []int32{1, 16} {
		b.Run(fmt.Sprintf("shards=%d/sdk", shards), func(b *testing.B) { benchProduceSDK(b, s, newStream(b, "sdk", shards), value) })
		b.Run(fmt.Sprintf("shards=%d/kgo", shards), func(b *testing.B) { benchProduceKgo(b, s, newStream(b, "kgo", shards), value) })
	}
}

func benchProduceSDK(b *testing.B, s *server, stream string, value []byte) {
	p, err := client.NewProducer([]string{s.KafkaAddr})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Warm up: connections and producer id.
	if _, err := p.Produce(ctx, &client.Record{Stream: stream, Value: value}); err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	for range b.N {
		p.ProduceAsync(&client.Record{Stream: stream, Value: value}, func(_ client.Result, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if err := p.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d records failed", n)
	}
}

func benchProduceKgo(b *testing.B, s *server, stream string, value []byte) {
	// The SDK's defaults differ from kgo's in compression only (none,
	// not snappy): use the same here.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.KafkaAddr), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: stream, Value: value}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	for range b.N {
		cl.Produce(ctx, &kgo.Record{Topic: stream, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d records failed", n)
	}
}

// warmUp writes n records of value to stream with kgo and waits for them.
func warmUp(b *testing.B, s *server, stream string, value []byte, n int) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.KafkaAddr), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var failed atomic.Int64
	for range n {
		cl.Produce(ctx, &kgo.Record{Topic: stream, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil || failed.Load() > 0 {
		b.Fatalf("warm-up: %v, %d records failed", err, failed.Load())
	}
}
