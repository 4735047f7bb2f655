package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// groupConsumer is one kgo group member that records what it consumed.
type groupConsumer struct {
	cl   *kgo.Client
	mu   sync.Mutex
	seen map[string]int
	done chan struct{}
}

func startGroupConsumer(t *testing.T, ctx context.Context, p *braidtest.Proc, group, stream string, opts ...kgo.Opt) *groupConsumer {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(p.KafkaAddr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(stream),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(300 * time.Millisecond),
		kgo.AutoCommitInterval(200 * time.Millisecond)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	gc := &groupConsumer{cl: cl, seen: map[string]int{}, done: make(chan struct{})}
	go func() {
		defer close(gc.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				gc.mu.Lock()
				gc.seen[string(r.Value)]++
				gc.mu.Unlock()
			})
		}
	}()
	return gc
}

func (gc *groupConsumer) stop() {
	gc.cl.Close() // leaves the group; commits what was consumed
	<-gc.done
}

func union(cs ...*groupConsumer) map[string]int {
	out := map[string]int{}
	for _, c := range cs {
		c.mu.Lock()
		for k, v := range c.seen {
			out[k] += v
		}
		c.mu.Unlock()
	}
	return out
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsumerGroupKgo: three members share a stream; when one leaves, the
// others take over its shards and nothing is skipped; committed offsets end
// at the end of every shard.
func TestConsumerGroupKgo(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	const stream, parts = "grp", 6
	p.CreateStream(ctx, stream, parts, nil)
	prod := newClient(t, p, kgo.DefaultProduceTopic(stream))
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%05d", i))}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 3000)

	cs := []*groupConsumer{
		startGroupConsumer(t, ctx, p, "g", stream),
		startGroupConsumer(t, ctx, p, "g", stream),
		startGroupConsumer(t, ctx, p, "g", stream),
	}
	adm := newAdmin(t, p)
	waitFor(t, ctx, "three stable members each owning shards", func() bool {
		d, err := adm.DescribeGroups(ctx, "g")
		if err != nil || d["g"].State != "Stable" || len(d["g"].Members) != 3 {
			return false
		}
		for _, m := range d["g"].Members {
			ca, ok := m.Assigned.AsConsumer()
			if !ok || len(ca.Topics) == 0 || len(ca.Topics[0].Partitions) == 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, ctx, "all 3000 records consumed", func() bool { return len(union(cs...)) == 3000 })
	if m := scrapeMetrics(t, ctx, p).must(t, "braid_group_members", "group", "g"); m != 3 {
		t.Fatalf("braid_group_members{group=g} = %v, want 3", m)
	}

	cs[0].stop()
	produce(3000, 4000)
	waitFor(t, ctx, "the remaining members consuming the leaver's shards", func() bool { return len(union(cs...)) == 4000 })
	for i := range 4000 {
		if union(cs...)[fmt.Sprintf("v%05d", i)] == 0 {
			t.Fatalf("record %d never consumed", i)
		}
	}
	cs[1].stop()
	cs[2].stop()

	ends, _ := adm.ListEndOffsets(ctx, stream)
	committed, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		c, ok := committed.Lookup(stream, e.Partition)
		if !ok || c.At != e.Offset {
			t.Errorf("shard %d: committed %d, end %d", e.Partition, c.At, e.Offset)
		}
	})
	if lag := scrapeMetrics(t, ctx, p).must(t, "braid_group_lag_records", "group", "g", "stream", stream); lag != 0 {
		t.Fatalf("braid_group_lag_records = %v after everything was consumed and committed, want 0", lag)
	}
	d, _ := adm.DescribeGroups(ctx, "g")
	if d["g"].State != "Empty" {
		t.Fatalf("group is %s after every member left, want Empty", d["g"].State)
	}
}
