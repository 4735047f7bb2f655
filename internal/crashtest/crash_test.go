package crashtest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

type acked struct {
	key, value []byte
	header     []byte
}

type ledger struct {
	mu   sync.Mutex
	recs map[int32]map[int64]acked // partition -> offset -> record
	n    int
}

func (l *ledger) add(r *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.recs[r.Partition]
	if p == nil {
		p = map[int64]acked{}
		l.recs[r.Partition] = p
	}
	if prev, dup := p[r.Offset]; dup {
		panic(fmt.Sprintf("offset %d/%d acknowledged twice (%q and %q)", r.Partition, r.Offset, prev.value, r.Value))
	}
	p[r.Offset] = acked{key: r.Key, value: r.Value, header: r.Headers[0].Value}
	l.n++
}

// TestSIGKILLLosesNoAcknowledgedRecord kills the server at random moments
// under acks=all load, at least 20 times, and checks every acknowledged
// record after each restart; then half as many times with the log written
// through O_DIRECT (--wal-direct-io), whose group commits rewrite the last
// block of the one before.
func TestSIGKILLLosesNoAcknowledgedRecord(t *testing.T) {
	kills := killCount(t, "BRAID_CRASH_KILLS", 20)
	t.Run("page-cache", func(t *testing.T) { killAndVerify(t, kills, narrowLoad) })
	t.Run("direct-io", func(t *testing.T) { killAndVerify(t, max(kills/2, 1), narrowLoad, "--wal-direct-io") })
	t.Run("many-partitions", func(t *testing.T) { killAndVerify(t, max(kills/4, 1), wideLoad) })
}

// crashLoad shapes the producers' requests.
type crashLoad struct {
	partitions int32
	linger     time.Duration
	flushEvery int // records a producer sends between flushes
	// manual: records are sent only by the flushes, all of a producer's
	// buffered batches in one request.
	manual bool
	// split: the node must have appended some requests on two goroutines
	// (braid_kafka_split_produce_requests_total).
	split bool
}

var (
	narrowLoad = crashLoad{partitions: 4, linger: time.Millisecond, flushEvery: 64}
	// wideLoad sends requests of 32 partitions, each 4,096 records
	// flushed together: about 700 KB once compressed (franz-go's default
	// codec; the values repeat), which the node appends on two goroutines.
	wideLoad = crashLoad{partitions: 32, linger: time.Millisecond, flushEvery: 4096, manual: true, split: true}
)

func killAndVerify(t *testing.T, kills int, ld crashLoad, flags ...string) {
	// Small WAL segments and frequent checkpoints, so kills land during
	// segment rolls and checkpoint writes too.
	proc := braidtest.Start(t, append([]string{"--wal-segment-bytes", "1048576", "--checkpoint-interval", "1s"}, flags...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const stream = "crash"
	proc.CreateStream(ctx, stream, ld.partitions, nil)

	led := &ledger{recs: map[int32]map[int64]acked{}}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	split := 0.0 // the node's count is lost at each kill: read just before
	beforeKill := func() {
		if ld.split {
			split += proc.MetricSum(ctx, "braid_kafka_split_produce_requests_total")
		}
	}
	for round := range kills {
		produceUntilKilled(t, ctx, proc, stream, round, led, ld, time.Duration(30+rng.IntN(250))*time.Millisecond, beforeKill)
		proc.Restart()
		verify(t, ctx, proc, stream, ld.partitions, led)
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
	}
	if led.n < kills*10 {
		t.Fatalf("only %d records acknowledged over %d rounds: the load did not run", led.n, kills)
	}
	if ld.split && split == 0 {
		t.Fatalf("no produce request was appended by two goroutines: the load did not test them")
	}
	t.Logf("%d kills, %d acknowledged records verified after each (%.0f split requests)", kills, led.n, split)
}

// produceUntilKilled runs producers, SIGKILLs the server after the given
// time, and records every acknowledged record in the ledger.
func produceUntilKilled(t *testing.T, ctx context.Context, proc *braidtest.Proc, stream string, round int, led *ledger, ld crashLoad, after time.Duration, beforeKill func()) {
	const producers = 3
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for p := range producers {
		opts := []kgo.Opt{kgo.SeedBrokers(proc.KafkaAddr), kgo.DisableIdempotentWrite(),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(ld.linger),
			kgo.RecordRetries(0), kgo.RequestRetries(0), kgo.ProduceRequestTimeout(5 * time.Second),
			kgo.RecordDeliveryTimeout(5 * time.Second)}
		if ld.manual {
			opts = append(opts, kgo.ManualFlushing())
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("r%d-p%d-%d", round, p, i)
				size := 10 + (i*7919)%3000
				val := bytes.Repeat([]byte(id+";"), size/len(id)+1)
				r := &kgo.Record{Topic: stream, Key: []byte(id), Value: val,
					Headers: []kgo.RecordHeader{{Key: "id", Value: []byte(id)}}}
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					if err == nil {
						led.add(r)
					}
				})
				if i%ld.flushEvery == ld.flushEvery-1 {
					// Keep the buffer small so records are acknowledged (or
					// fail) close to when the kill happens.
					cl.Flush(ctx)
				}
			}
		}()
	}
	time.Sleep(after)
	beforeKill()
	proc.Kill()
	close(stop)
	wg.Wait()
}

// verify reads every shard from its start and checks that every
// acknowledged record is at its offset with its content, and that offsets
// are dense.
func verify(t *testing.T, ctx context.Context, proc *braidtest.Proc, stream string, partitions int32, led *ledger) {
	t.Helper()
	ends, err := proc.Admin().ListEndOffsets(ctx, stream)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	led.mu.Lock()
	defer led.mu.Unlock()
	offsets := map[string]map[int32]kgo.Offset{stream: {}}
	want := map[int32]int64{}
	for p := range partitions {
		end, _ := ends.Lookup(stream, p)
		offsets[stream][p] = kgo.NewOffset().At(0)
		want[p] = end.Offset
		for off := range led.recs[p] {
			if off >= end.Offset {
				t.Errorf("partition %d: acknowledged offset %d is at or past the end %d after restart", p, off, end.Offset)
			}
		}
	}
	cl := proc.Client(kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(100*time.Millisecond))
	next := map[int32]int64{}
	deadline, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for remaining(next, want) {
		fs := cl.PollFetches(deadline)
		if deadline.Err() != nil {
			t.Fatalf("verify: timed out reading back; at %v of %v", next, want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("verify: fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d follows %d: hole or reorder", r.Partition, r.Offset, next[r.Partition]-1)
			}
			next[r.Partition] = r.Offset + 1
			a, ok := led.recs[r.Partition][r.Offset]
			if !ok {
				return // not acknowledged (in flight at the kill): may or may not be there
			}
			if !bytes.Equal(a.key, r.Key) || !bytes.Equal(a.value, r.Value) || len(r.Headers) != 1 || !bytes.Equal(r.Headers[0].Value, a.header) {
				t.Fatalf("partition %d offset %d: read key %q (%d value bytes), acknowledged %q (%d bytes)",
					r.Partition, r.Offset, r.Key, len(r.Value), a.key, len(a.value))
			}
		})
	}
}

func remaining(next, want map[int32]int64) bool {
	for p, w := range want {
		if next[p] < w {
			return true
		}
	}
	return false
}
