package e2e

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// faultProxy forwards Kafka connections to a broker and breaks them on
// purpose: every dropEvery-th response frame is swallowed and the connection
// closed (the broker did the work, the client never hears of it), and every
// cutEvery-th request is cut off mid-frame.
type faultProxy struct {
	ln        net.Listener
	target    string
	dropEvery int64
	cutEvery  int64
	enabled   atomic.Bool // off: forward everything
	responses atomic.Int64
	requests  atomic.Int64
	drops     atomic.Int64
	cuts      atomic.Int64
	wg        sync.WaitGroup
}

func newFaultProxy(t *testing.T, dropEvery, cutEvery int64) *faultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fp := &faultProxy{ln: ln, dropEvery: dropEvery, cutEvery: cutEvery}
	t.Cleanup(func() { ln.Close(); fp.wg.Wait() })
	return fp
}

func (fp *faultProxy) serve() {
	for {
		c, err := fp.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", fp.target)
		if err != nil {
			c.Close()
			continue
		}
		produces := &sync.Map{} // correlation ids of produce requests on this connection
		fp.wg.Add(2)
		go fp.pipe(c, s, produces, true)
		go fp.pipe(s, c, produces, false)
	}
}

// pipe copies whole frames from src to dst. Only produce traffic is broken:
// every cutEvery-th produce request is cut off mid-frame, and every
// dropEvery-th produce response is swallowed with the connection closed.
func (fp *faultProxy) pipe(src, dst net.Conn, produces *sync.Map, requests bool) {
	defer fp.wg.Done()
	defer src.Close()
	defer dst.Close()
	var size [4]byte
	for {
		if _, err := io.ReadFull(src, size[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(src, body); err != nil || len(body) < 8 {
			return
		}
		if requests {
			if binary.BigEndian.Uint16(body) == 0 { // Produce
				produces.Store(binary.BigEndian.Uint32(body[4:]), true)
				if fp.enabled.Load() && fp.requests.Add(1)%fp.cutEvery == 0 {
					fp.cuts.Add(1)
					dst.Write(size[:])
					dst.Write(body[:len(body)/2])
					return
				}
			}
		} else if _, ok := produces.LoadAndDelete(binary.BigEndian.Uint32(body)); ok {
			if fp.enabled.Load() && fp.responses.Add(1)%fp.dropEvery == 0 {
				fp.drops.Add(1)
				return
			}
		}
		if _, err := dst.Write(append(size[:], body...)); err != nil {
			return
		}
	}
}

// TestIdempotentProduceThroughFaults: an idempotent kgo producer whose
// connections are broken mid-request and whose acknowledgements are lost
// retries, and the stream holds every record exactly once, in order.
func TestIdempotentProduceThroughFaults(t *testing.T) {
	fp := newFaultProxy(t, 7, 11)
	p := braidtest.Start(t, "--advertised-kafka-addr", fp.ln.Addr().String())
	fp.target = p.KafkaAddr
	go fp.serve()
	ctx := testCtx(t, 60*time.Second)
	const stream, partitions, n = "idem-faults", 3, 6000
	p.CreateStream(ctx, stream, partitions, nil)

	cl, err := kgo.NewClient(kgo.SeedBrokers(fp.ln.Addr().String()), kgo.DefaultProduceTopic(stream),
		kgo.ProducerLinger(time.Millisecond), kgo.ProducerBatchMaxBytes(4096), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }),
		kgo.RecordDeliveryTimeout(45*time.Second), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fp.enabled.Store(true)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range n {
		wg.Add(1)
		r := &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%50)), Value: []byte(fmt.Sprintf("%06d%0200d", i, 0))}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	fp.enabled.Store(false)
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d records failed despite retries", f)
	}
	if fp.drops.Load() == 0 || fp.cuts.Load() == 0 {
		t.Fatalf("the proxy broke nothing (%d drops, %d cuts): the test tested nothing", fp.drops.Load(), fp.cuts.Load())
	}

	seen := map[string]int{}
	last := map[int32]map[string]string{} // partition -> key -> last value
	consumer := newClient(t, p, kgo.ConsumeTopics(stream), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for total := 0; total < n; {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read back %d of %d records", total, n)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			total++
			v := string(r.Value[:6])
			seen[v]++
			if last[r.Partition] == nil {
				last[r.Partition] = map[string]string{}
			}
			if prev := last[r.Partition][string(r.Key)]; prev >= v {
				t.Errorf("partition %d key %s: %s after %s", r.Partition, r.Key, v, prev)
			}
			last[r.Partition][string(r.Key)] = v
		})
	}
	for i := range n {
		if c := seen[fmt.Sprintf("%06d", i)]; c != 1 {
			t.Fatalf("record %06d stored %d times", i, c)
		}
	}
	t.Logf("%d records exactly once through %d dropped responses and %d cut requests", n, fp.drops.Load(), fp.cuts.Load())
}

// TestDescribeProducers: kgo's default (idempotent) producer shows up with
// its last sequence in DescribeProducers.
func TestDescribeProducers(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 20*time.Second)
	p.CreateStream(ctx, "dp", 1, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.KafkaAddr), kgo.DefaultProduceTopic("dp"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	described, err := kadm.NewClient(cl).DescribeProducers(ctx, kadm.TopicsSet{"dp": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	described.EachProducer(func(ps kadm.DescribedProducer) {
		n++
		if ps.ProducerID < 0 || ps.LastSequence != 9 || ps.CurrentTxnStartOffset != -1 {
			t.Errorf("producer %+v, want a producer id, last sequence 9, no open transaction", ps)
		}
	})
	if n != 1 {
		t.Fatalf("%d producers described, want 1", n)
	}
}
