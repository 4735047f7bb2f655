package client_test

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/client"
)

const routedMetric = "braid_routed_batches_total"

// keyedLoad produces n keyed records (keys key-0..key-keys-1, the value is
// the key's sequence number) asynchronously, a few at a time, and returns
// the number of failures.
func keyedLoad(t *testing.T, p *client.Producer, stream string, keys, from, n int, pace time.Duration) int64 {
	t.Helper()
	var failed atomic.Int64
	var first sync.Once
	for i := from; i < from+n; i++ {
		k := i % keys
		rec := &client.Record{Stream: stream, Key: fmt.Appendf(nil, "key-%d", k), Value: strconv.AppendInt(nil, int64(i/keys), 10)}
		p.ProduceAsync(rec, func(_ client.Result, err error) {
			if err != nil {
				failed.Add(1)
				first.Do(func() { t.Errorf("record %d: %v", i, err) })
			}
		})
		if pace > 0 && i%50 == 0 {
			time.Sleep(pace)
		}
	}
	if err := p.Flush(ctxFor(t, 60*time.Second)); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return failed.Load()
}

// checkKeyOrder reads back every record and checks that each key's
// sequence numbers come 0, 1, 2, ... when its shards are read parents
// first (a key's shards form one line of descent, and children have
// higher ids than their parents).
func checkKeyOrder(t *testing.T, s *server, stream string, keys, total int) {
	t.Helper()
	recs := s.readAll(t, stream, total)
	if len(recs) != total {
		t.Fatalf("read %d records, want %d", len(recs), total)
	}
	byKey := map[string][]*kgo.Record{}
	for _, r := range recs {
		byKey[string(r.Key)] = append(byKey[string(r.Key)], r)
	}
	for k, rs := range byKey {
		slices.SortFunc(rs, func(a, b *kgo.Record) int {
			if a.Partition != b.Partition {
				return int(a.Partition - b.Partition)
			}
			return int(a.Offset - b.Offset)
		})
		for i, r := range rs {
			if got := string(r.Value); got != strconv.Itoa(i) {
				t.Fatalf("key %s: record %d (shard %d offset %d) holds %s: per-key order broken", k, i, r.Partition, r.Offset, got)
			}
		}
	}
}

// With WithAdminAddr the producer sends each keyed record straight to the
// shard owning MD5(key) and follows splits and merges: the server routes no
// batch outside the reshard windows, only a few within them, and every
// key's records read back in order. kgo's own partitioner, on the same
// load, has nearly every batch routed.
func TestRoutingFollowsReshards(t *testing.T) {
	n := startNode(t)
	n.createStream(t, "rk", 2, map[string]string{"braid.routing": "key"})
	const keys = 64
	p := newProducer(t, n.server, client.WithAdminAddr(n.HTTPAddr),
		client.WithLayoutRefreshInterval(200*time.Millisecond), client.WithLinger(25*time.Millisecond))

	// Steady: not one routed batch.
	keyedLoad(t, p, "rk", keys, 0, 3000, 0)
	if r := n.metric(t, routedMetric); r != 0 {
		t.Fatalf("%v batches routed by the server with the SDK's partitioner before any reshard, want 0", r)
	}

	// Reshards under load: split 0 (-> 2, 3), split 1 (-> 4, 5), merge 3
	// and 4 (-> 6), split 2 (-> 7, 8), split 6 (-> 9, 10). The linger is
	// long enough that, at a layout switch, records for a key's old and
	// new shard would share a produce request (whose partitions kgo
	// orders at random) if the producer did not wait for the old ones.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, op := range []struct {
			path string
			body any
		}{
			{"/v1/streams/rk/split", map[string]any{"shard": 0}},
			{"/v1/streams/rk/split", map[string]any{"shard": 1}},
			{"/v1/streams/rk/merge", map[string]any{"shards": []int{3, 4}}},
			{"/v1/streams/rk/split", map[string]any{"shard": 2}},
			{"/v1/streams/rk/split", map[string]any{"shard": 6}},
		} {
			time.Sleep(300 * time.Millisecond)
			n.post(t, op.path, op.body)
		}
	}()
	keyedLoad(t, p, "rk", keys, 3000, 12000, 4*time.Millisecond)
	<-done
	during := n.metric(t, routedMetric)
	t.Logf("batches routed during 5 reshards: %v", during)
	// Each reshard may catch the batches in flight and those sent before
	// the producer's next refresh (at most a refresh interval); bounded.
	if during > 250 {
		t.Errorf("%v batches routed during 5 reshards, want at most 250", during)
	}

	// Settled: the producer has the new layout; nothing routed again.
	time.Sleep(time.Second)
	keyedLoad(t, p, "rk", keys, 15000, 1000, 0)
	settled := n.metric(t, routedMetric)
	keyedLoad(t, p, "rk", keys, 16000, 3000, 0)
	if after := n.metric(t, routedMetric); after != settled {
		t.Errorf("%v batches routed after the reshards settled, want 0", after-settled)
	}
	t.Logf("%v: load done", time.Now().Format(time.TimeOnly))
	checkKeyOrder(t, n.server, "rk", keys, 19000)
	t.Logf("%v: order checked", time.Now().Format(time.TimeOnly))

	// One record per batch (sync produce): with the SDK's partitioner
	// none is routed; with kgo's default one (murmur2 over all 11 shards,
	// 6 of them closed) nearly all are.
	ctx := ctxFor(t, 60*time.Second)
	raw := newProducer(t, n.server)
	for _, c := range []struct {
		name string
		p    *client.Producer
	}{{"sdk", p}, {"kgo", raw}} {
		before := n.metric(t, routedMetric)
		for i := range 200 {
			rec := &client.Record{Stream: "rk", Key: fmt.Appendf(nil, "sync-%s-%d", c.name, i), Value: []byte("0")}
			if _, err := c.p.Produce(ctx, rec); err != nil {
				t.Fatalf("%s: produce: %v", c.name, err)
			}
		}
		routed := n.metric(t, routedMetric) - before
		t.Logf("%s partitioner: %v of 200 one-record batches routed", c.name, routed)
		if c.name == "sdk" && routed != 0 {
			t.Errorf("SDK partitioner: %v of 200 batches routed, want 0", routed)
		}
		if c.name == "kgo" && routed < 100 {
			t.Errorf("kgo's partitioner: only %v of 200 batches routed; does the metric see routing?", routed)
		}
	}
}

// Without WithAdminAddr nothing changes: kgo's partitioner chooses and the
// server routes keyed records of a key-routed stream.
func TestRoutingOffByDefault(t *testing.T) {
	n := startNode(t)
	n.createStream(t, "plain", 4, map[string]string{"braid.routing": "key"})
	p := newProducer(t, n.server)
	if f := keyedLoad(t, p, "plain", 16, 0, 500, 0); f != 0 {
		t.Fatalf("%d failures", f)
	}
	if r := n.metric(t, routedMetric); r == 0 {
		t.Fatalf("no batch routed by the server: is the SDK routing without an admin address?")
	}
}
