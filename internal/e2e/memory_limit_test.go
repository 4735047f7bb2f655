package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestMemoryLimitFollowsIndex: on its default memory limit, a node raises
// the limit by what its shard indexes hold (they grow with what is
// retained), and /metrics shows the limit it runs under.
func TestMemoryLimitFollowsIndex(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	createStream(t, ctx, newAdmin(t, p), "m", 8, nil)
	cl := newProducer(t, p, kgo.DefaultProduceTopic("m"))
	for i := range 2000 {
		cl.Produce(ctx, &kgo.Record{Key: []byte{byte(i)}, Value: []byte("v")}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	index := p.MetricSum(ctx, "braid_shard_index_bytes")
	if index <= 0 {
		t.Fatalf("the shard indexes hold %v bytes after 2000 records", index)
	}
	const base = 256<<20 + 768<<20 // --cache-bytes' default + the headroom
	deadline := time.Now().Add(20 * time.Second)
	for {
		limit := p.MetricSum(ctx, "braid_memory_limit_bytes")
		if limit == base+index {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("memory limit %v after 20 s, want %v (the default %d + the indexes' %v)", limit, base+index, base, index)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(p.Logs(), "the shard indexes") {
		t.Fatalf("the start-up log does not say the limit follows the indexes")
	}
}
