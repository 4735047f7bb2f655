package kafka

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/engine"
)

// TestProduceHoldsTheTailOnlyWhileItIsRead: produced batches are held in
// memory only on partitions a consumer reads at their end; elsewhere the
// node copies nothing, and a later reader gets every record from the log.
func TestProduceHoldsTheTailOnlyWhileItIsRead(t *testing.T) {
	eng := openEngine(t, engine.Options{Dir: t.TempDir()})
	createStream(t, eng, "t", 2)
	_, seed := serve(t, eng)
	addr := seed.OptValue(kgo.SeedBrokers).([]string)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shards := eng.Stream("t").Shards
	held := func(p int) int64 {
		_, _, cached := shards[p].Stats()
		return cached
	}
	value := func(p int32, i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%d-%d ", p, i)), 100) }
	sent := 0
	produce := func(n int) {
		t.Helper()
		for range n {
			for p := range int32(2) {
				r := &kgo.Record{Topic: "t", Partition: p, Value: value(p, sent)}
				if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			sent++
		}
	}

	produce(5)
	if held(0) != 0 || held(1) != 0 {
		t.Fatalf("nobody reads: %d and %d bytes held", held(0), held(1))
	}

	// A consumer at the end of partition 1.
	tail, err := kgo.NewClient(kgo.SeedBrokers(addr...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {1: kgo.NewOffset().AtEnd()}}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Close()
	got := make(chan *kgo.Record, 100)
	go func() {
		for ctx.Err() == nil {
			fs := tail.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { got <- r })
		}
	}()
	for i := 0; !shards[1].CachesTail(); i++ {
		if i == 300 {
			t.Fatal("a consumer waiting at the end of partition 1 did not make it hold its tail")
		}
		time.Sleep(10 * time.Millisecond)
	}
	first := sent
	produce(3)
	if held(0) != 0 || held(1) == 0 {
		t.Fatalf("partition 1 read at its end: %d bytes held on 0, %d on 1; want none, some", held(0), held(1))
	}
	for i := first; i < sent; i++ {
		select {
		case r := <-got:
			if !bytes.Equal(r.Value, value(1, i)) || r.Offset != int64(i) {
				t.Fatalf("the consumer at the end got offset %d %.20q, want offset %d %.20q", r.Offset, r.Value, i, value(1, i))
			}
		case <-ctx.Done():
			t.Fatal("the consumer at the end did not get the records produced")
		}
	}

	// Everything, held or not, reads back.
	for p := range int32(2) {
		all, err := kgo.NewClient(kgo.SeedBrokers(addr...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {p: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < sent; {
			fs := all.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if !bytes.Equal(r.Value, value(p, i)) {
					t.Fatalf("partition %d offset %d: %.20q, want %.20q", p, r.Offset, r.Value, value(p, i))
				}
				i++
			})
		}
		all.Close()
	}
}
