package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/engine"
)

// TestAutoscaleSkewedLoad: autoscale, turned on with braid stream alter,
// splits the shard that takes a hot key range and, once the load stops,
// merges the shards back down to the minimum; the open shard count never
// leaves [min, max], every decision is counted in /metrics and logged, and
// every acknowledged record is readable.
func TestAutoscaleSkewedLoad(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "as", 2, map[string]*string{"braid.routing": ptr("key")})
	alter := func(kv ...string) cliResult {
		args := []string{"stream", "alter", "as"}
		for _, c := range kv {
			args = append(args, "--config", c)
		}
		return runCLI(t, ctx, "", nil, append(args, "--brokers", p.KafkaAddr)...)
	}
	// Each config is valid alone; together they are not.
	if r := alter("braid.autoscale.enable=true", "braid.autoscale.min.shards=5", "braid.autoscale.max.shards=4"); r.code == 0 ||
		!strings.Contains(r.stderr, "braid.autoscale.min.shards (5) is above braid.autoscale.max.shards (4)") {
		t.Fatalf("alter with min > max: want a clear refusal; %s", r)
	}
	const minShards, maxShards, threshold = 2, 4, 40_000
	if r := alter("braid.autoscale.enable=true", fmt.Sprintf("braid.autoscale.min.shards=%d", minShards),
		fmt.Sprintf("braid.autoscale.max.shards=%d", maxShards), fmt.Sprintf("braid.autoscale.split.bytes.per.sec=%d", threshold),
		"braid.autoscale.window.ms=2000", "braid.autoscale.max.changes.per.minute=20"); r.code != 0 {
		t.Fatalf("alter: %s", r)
	}

	// Watch the open shard count through the admin API all along.
	var mu sync.Mutex
	lo, hi, open := 1<<30, 0, 0
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			var st streamState
			if status, err := p.GetJSON("/v1/streams/as", &st); err == nil && status == 200 {
				n := 0
				for _, sh := range st.Shards {
					if sh.State == "open" {
						n++
					}
				}
				mu.Lock()
				lo, hi, open = min(lo, n), max(hi, n), n
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	openNow := func() int { mu.Lock(); defer mu.Unlock(); return open }
	waitOpen := func(want int, within time.Duration, what string) {
		t.Helper()
		deadline := time.Now().Add(within)
		for openNow() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d open shards after %v, want %d", what, openNow(), within, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// 64 keys whose MD5 falls in shard 0's half of the hash space, about
	// 400 KB/s in all: 10x the threshold for shard 0, 2.5x for a quarter.
	var keys [][]byte
	for i := 0; len(keys) < 64; i++ {
		k := fmt.Appendf(nil, "hot-%d", i)
		if engine.HashKeyOf(k).Hi < 1<<63 {
			keys = append(keys, k)
		}
	}
	cl := newClient(t, p)
	var ackMu sync.Mutex
	acked := map[string]bool{}
	failed := 0
	var inflight sync.WaitGroup
	n := 0
	load := func(d time.Duration) {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			<-tick.C
			for range 40 {
				// Incompressible: the rates are of bytes as stored, and
				// kgo compresses batches.
				val := fmt.Appendf(nil, "v%06d-%x", n, randomBytes(uint64(n), 500))
				rec := &kgo.Record{Topic: "as", Key: keys[n%len(keys)], Value: val}
				n++
				inflight.Add(1)
				cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
					defer inflight.Done()
					ackMu.Lock()
					defer ackMu.Unlock()
					if err != nil {
						failed++
						return
					}
					acked[string(r.Value)] = true
				})
			}
		}
	}
	began := time.Now()
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		// Load until the hot half has split to the maximum, and 3 s
		// longer (the new shards are judged), to see that it goes no
		// further.
		load(2 * time.Second)
		for openNow() < maxShards && time.Since(began) < 20*time.Second {
			load(500 * time.Millisecond)
		}
		load(3 * time.Second)
	}()
	<-loaded
	inflight.Wait()
	if got := openNow(); got != maxShards {
		t.Fatalf("under load: %d open shards after %v, want %d (the maximum)", got, time.Since(began), maxShards)
	}
	t.Logf("split to %d shards under load in %v", maxShards, time.Since(began))
	stopped := time.Now()
	waitOpen(minShards, 15*time.Second, "after the load stopped")
	t.Logf("merged back to %d shards %v after the load stopped", minShards, time.Since(stopped))
	// Stays there: the merged shards are judged cold after a window, and
	// the minimum holds.
	time.Sleep(5 * time.Second)
	stopWatch()
	<-watched
	if lo < minShards || hi > maxShards {
		t.Fatalf("open shard count went from %d to %d, outside [%d, %d]", lo, hi, minShards, maxShards)
	}

	// Every decision is counted, and the counts match the lineage.
	var st streamState
	if status, err := p.GetJSON("/v1/streams/as", &st); err != nil || status != 200 {
		t.Fatalf("GET stream: %d %v", status, err)
	}
	splits, merges := 0, 0
	for _, sh := range st.Shards {
		if len(sh.Children) == 2 {
			splits++
		}
		if len(sh.Parents) == 2 {
			merges++
		}
	}
	m := scrapeMetrics(t, ctx, p)
	if got := m.must(t, "braid_autoscale_decisions_total", "stream", "as", "op", "split"); int(got) != splits || splits < 2 {
		t.Errorf("split decisions counted %v, lineage shows %d (want at least 2)", got, splits)
	}
	if got := m.must(t, "braid_autoscale_decisions_total", "stream", "as", "op", "merge"); int(got) != merges || merges < 1 {
		t.Errorf("merge decisions counted %v, lineage shows %d (want at least 1)", got, merges)
	}
	if got := m.must(t, "braid_reshards_total", "stream", "as", "op", "autoscale"); int(got) != splits+merges {
		t.Errorf("braid_reshards_total{op=autoscale} %v, want %d", got, splits+merges)
	}
	logs := p.Logs()
	if n := strings.Count(logs, "autoscale: split"); n != splits {
		t.Errorf("%d split decisions logged, %d made", n, splits)
	}
	if n := strings.Count(logs, "autoscale: merge"); n != merges {
		t.Errorf("%d merge decisions logged, %d made", n, merges)
	}
	if !strings.Contains(logs, "bytes_per_sec") {
		t.Errorf("decision logs carry no rates")
	}
	if !strings.Contains(logs, `msg="autoscale: hot shard not split"`) || !strings.Contains(logs, `reason="at max"`) {
		t.Errorf("no log says that a hot shard was left unsplit at the maximum")
	}

	// Every acknowledged record is in some shard, closed or open.
	found := map[string]bool{}
	for _, sh := range st.Shards {
		for _, r := range p.ReadPartition(ctx, "as", sh.Shard, false) {
			found[string(r.Value)] = true
		}
	}
	missing := 0
	for v := range acked {
		if !found[v] {
			missing++
		}
	}
	if missing > 0 || len(acked) == 0 {
		t.Fatalf("%d of %d acknowledged records not readable (%d produces failed)", missing, len(acked), failed)
	}
	t.Logf("%d records acknowledged and read back, %d failed; %d splits, %d merges", len(acked), failed, splits, merges)
}
