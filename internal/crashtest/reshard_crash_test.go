package crashtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/server"
)

// TestSIGKILLDuringReshards kills the server while a key-routed stream is
// split, merged and scaled under idempotent keyed load, and checks
// (docs/design/resharding.md, "The reshard protocol"):
//
//   - after every restart the layout is a valid one, and the last
//     acknowledged one or that plus the reshard in flight at the kill:
//     open ranges tile the hash-key space, every closed shard's children
//     exist, no closed shard is shorter than its recorded end offset;
//   - at the end, every acknowledged record is present exactly once over
//     all shards (closed ones included), in a shard whose range owns its
//     key, and each key's records, read parents before children, are in
//     the order they were produced.
//
// The producers address fixed partitions with keys that mostly live
// elsewhere, so nearly every batch is routed (one WAL frame for all its
// parts), and they keep running across the kills: their clients retry
// what the kill left unanswered once the server is back, so the sequence
// state of routed batches must survive the crash for no record to be
// written twice.
func TestSIGKILLDuringReshards(t *testing.T) {
	kills := killCount(t, "BRAID_RESHARD_KILLS", 6)
	proc := braidtest.Start(t, "--wal-segment-bytes", "1048576", "--checkpoint-interval", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const stream = "rk"
	routing := "key"
	proc.CreateStream(ctx, stream, 2, map[string]*string{"braid.routing": &routing})

	lay := layoutOf(t, proc, stream)
	led := &keyLedger{acked: map[string]bool{}, failed: map[string]int{}}
	prodCtx, stopProducers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	const producers = 3
	clients := make([]*kgo.Client, producers)
	for p := range producers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(proc.KafkaAddr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(2*time.Millisecond),
			kgo.MaxBufferedRecords(200), kgo.RecordDeliveryTimeout(40*time.Second),
			kgo.RetryTimeout(40*time.Second), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		clients[p] = cl
		wg.Add(1)
		go func() {
			defer wg.Done()
			produceKeyed(prodCtx, cl, stream, p, led)
		}()
	}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()

	res := newResender(t, ctx, proc, stream)
	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	var reshards, refused atomic.Int64
	var perRound []int       // acknowledged records after each round
	caught, survived := 0, 0 // kills during a reshard; reshards the kill caught that survived it
	for round := range kills {
		// The producers are writing before anything is resharded or
		// killed: every round runs under load.
		waitProgress(t, led, 50, round)
		// Reshard in a loop; kill the node a random moment after one of
		// the requests went out, so most kills land inside a reshard.
		posted := make(chan struct{}, 1)
		stop := make(chan struct{})
		done := make(chan reshardOutcome, 1)
		go func() {
			done <- reshardLoop(proc, stream, lay, rand.New(rand.NewPCG(uint64(round), rng.Uint64())), posted, stop, &reshards, &refused)
		}()
		res.send(t, ctx, proc, led)
		for range 1 + rng.IntN(6) {
			<-posted
		}
		time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
		proc.Kill()
		close(stop)
		out := <-done
		proc.Restart()
		res.resend(t, ctx, proc)
		got := layoutOf(t, proc, stream)
		if checkLayout(t, got, out.acked, out.inFlight) {
			survived++
		}
		if out.inFlight {
			caught++
		}
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
		lay = got
		led.mu.Lock()
		perRound = append(perRound, len(led.acked))
		led.mu.Unlock()
	}
	// Let the producers run against the final layout a moment, then
	// settle every record: acknowledged or failed.
	time.Sleep(100 * time.Millisecond)
	stopProducers()
	wg.Wait()
	for _, cl := range clients {
		fctx, fcancel := context.WithTimeout(ctx, 45*time.Second)
		if err := cl.Flush(fctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
		fcancel()
	}
	verifyKeyed(t, ctx, proc, stream, layoutOf(t, proc, stream), led)
	led.mu.Lock()
	n := len(led.acked)
	t.Logf("produce errors: %v; acknowledged after each round: %v", led.failed, perRound)
	led.mu.Unlock()
	if reshards.Load() < int64(kills) || n < 200 {
		t.Fatalf("%d reshards acknowledged, %d records acknowledged: the load did not run", reshards.Load(), n)
	}
	t.Logf("%d kills (%d during a reshard, %d of those kept the new layout), %d reshards acknowledged (%d refused), %d acknowledged records verified, %d shards",
		kills, caught, survived, reshards.Load(), refused.Load(), n, len(layoutOf(t, proc, stream).Shards))
}

// waitProgress waits until the kgo producers have had n more records
// acknowledged.
func waitProgress(t *testing.T, led *keyLedger, n, round int) {
	t.Helper()
	count := func() int {
		led.mu.Lock()
		defer led.mu.Unlock()
		return led.kgo
	}
	from := count()
	deadline := time.Now().Add(15 * time.Second)
	for count() < from+n {
		if time.Now().After(deadline) {
			t.Fatalf("round %d: the producers had %d records acknowledged in 15 s, want %d", round, count()-from, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// keyLedger holds the values the producers were told are durable; a value
// is "<key>#<sequence of the key>".
type keyLedger struct {
	mu     sync.Mutex
	acked  map[string]bool
	failed map[string]int // produce errors (other than the test's own stop) by text
	kgo    int            // records the kgo producers had acknowledged
}

// produceKeyed writes keyed records to partition p%2 until ctx ends; each
// of the producer's 24 keys gets values numbered from 0 in order.
func produceKeyed(ctx context.Context, cl *kgo.Client, stream string, p int, led *keyLedger) {
	seq := make([]int, 24)
	for i := 0; ctx.Err() == nil; i++ {
		k := i % len(seq)
		key := fmt.Sprintf("p%d-k%d", p, k)
		val := fmt.Sprintf("%s#%d", key, seq[k])
		seq[k]++
		r := &kgo.Record{Topic: stream, Partition: int32(p % 2), Key: []byte(key),
			Value: []byte(val + ";" + strings.Repeat("v", 40+(i*31)%400))}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			led.mu.Lock()
			defer led.mu.Unlock()
			if err == nil {
				led.acked[val] = true
				led.kgo++
			} else if ctx.Err() == nil {
				led.failed[err.Error()]++
			}
		})
	}
}

type reshardOutcome struct {
	acked    server.StreamState // the layout after the last acknowledged reshard
	inFlight bool               // a reshard request got no answer
}

// reshardLoop splits, merges and scales the stream until stop, signalling
// posted before each request.
func reshardLoop(proc *braidtest.Proc, stream string, lay server.StreamState, rng *rand.Rand,
	posted chan<- struct{}, stop <-chan struct{}, ok, refused *atomic.Int64) reshardOutcome {
	out := reshardOutcome{acked: lay}
	for {
		select {
		case <-stop:
			return out
		default:
		}
		open := openByRange(out.acked)
		op, body := "scale", map[string]any{"shards": 1 + rng.IntN(6)}
		switch k := rng.IntN(10); {
		case k < 4 && len(open) < 8:
			op, body = "split", map[string]any{"shard": open[rng.IntN(len(open))].Shard}
		case k < 7 && len(open) > 1:
			i := rng.IntN(len(open) - 1)
			op, body = "merge", map[string]any{"shards": []int32{open[i].Shard, open[i+1].Shard}}
		}
		select {
		case posted <- struct{}{}:
		default:
		}
		var reply server.ReshardReply
		out.inFlight = true
		status, err := proc.PostJSON("/v1/streams/"+stream+"/"+op, body, &reply)
		if err != nil || status >= 500 {
			// The kill caught it: either layout may have survived. Nothing
			// more is sent.
			<-stop
			return out
		}
		out.inFlight = false
		if status != 200 {
			refused.Add(1)
			continue
		}
		ok.Add(1)
		out.acked = stateOf(reply.Shards)
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
	}
}

// stateOf is the lineage part of a layout, as a reshard's reply gives it.
func stateOf(shards []catalog.Shard) server.StreamState {
	var st server.StreamState
	for _, sh := range shards {
		s := server.ShardState{Shard: int32(sh.ID), Range: sh.Range, State: sh.State, Parents: sh.Parents, Children: sh.Children}
		if sh.State == catalog.ShardClosed {
			end := sh.EndOffset
			s.EndOffset = &end
		}
		st.Shards = append(st.Shards, s)
	}
	return st
}

func layoutOf(t *testing.T, proc *braidtest.Proc, stream string) server.StreamState {
	t.Helper()
	var st server.StreamState
	if status, err := proc.GetJSON("/v1/streams/"+stream, &st); err != nil || status != 200 {
		t.Fatalf("GET stream %s: %d %v", stream, status, err)
	}
	return st
}

// openByRange lists the open shards by range start.
func openByRange(st server.StreamState) []server.ShardState {
	var open []server.ShardState
	for _, sh := range st.Shards {
		if sh.State == catalog.ShardOpen && sh.Range != nil {
			open = append(open, sh)
		}
	}
	sort.Slice(open, func(i, j int) bool { return open[i].Range.Start.Less(open[j].Range.Start) })
	return open
}

// checkLayout checks a layout read after a restart: valid on its own, and
// the acknowledged layout before the kill, or that plus one reshard when
// one was in flight. It reports whether the layout changed.
func checkLayout(t *testing.T, got, before server.StreamState, inFlight bool) bool {
	t.Helper()
	open := openByRange(got)
	var next catalog.HashKey
	for i, sh := range open {
		if sh.Range.Start != next {
			t.Errorf("open shard %d starts at %s, want %s: open ranges do not tile the key space", sh.Shard, sh.Range.Start, next)
		}
		if sh.Range.End.Less(sh.Range.Start) {
			t.Errorf("open shard %d: range %s..%s is empty", sh.Shard, sh.Range.Start, sh.Range.End)
		}
		if i == len(open)-1 && sh.Range.End != catalog.MaxHashKey {
			t.Errorf("last open shard %d ends at %s, want 2^128-1", sh.Shard, sh.Range.End)
		}
		next = addOne(sh.Range.End)
	}
	for i, sh := range got.Shards {
		if sh.Shard != int32(i) {
			t.Errorf("shard %d listed at index %d", sh.Shard, i)
		}
		for _, par := range sh.Parents {
			if par >= catalog.ShardID(sh.Shard) {
				t.Errorf("shard %d has parent %d, not an older shard", sh.Shard, par)
			}
		}
		if sh.State != catalog.ShardClosed {
			if len(sh.Children) > 0 || sh.EndOffset != nil {
				t.Errorf("open shard %d has children %v / end offset %v", sh.Shard, sh.Children, sh.EndOffset)
			}
			continue
		}
		if sh.EndOffset == nil {
			t.Errorf("closed shard %d has no end offset", sh.Shard)
		} else if sh.HighWatermark < *sh.EndOffset {
			t.Errorf("closed shard %d ends at %d, shorter than its recorded end offset %d", sh.Shard, sh.HighWatermark, *sh.EndOffset)
		}
		if len(sh.Children) == 0 {
			t.Errorf("closed shard %d has no children", sh.Shard)
		}
		for _, c := range sh.Children {
			if int(c) >= len(got.Shards) || !slices.Contains(got.Shards[c].Parents, catalog.ShardID(sh.Shard)) {
				t.Errorf("closed shard %d: child %d missing or does not name it as parent", sh.Shard, c)
			}
		}
	}
	// Against what was acknowledged before the kill.
	if len(got.Shards) < len(before.Shards) {
		t.Fatalf("%d shards after restart, %d acknowledged before the kill", len(got.Shards), len(before.Shards))
	}
	changed := false
	for i, b := range before.Shards {
		g := got.Shards[i]
		if fmt.Sprint(g.Range) != fmt.Sprint(b.Range) {
			t.Errorf("shard %d: range %v after restart, %v before", i, g.Range, b.Range)
		}
		switch {
		case b.State == catalog.ShardClosed:
			if g.State != catalog.ShardClosed || *g.EndOffset != *b.EndOffset || fmt.Sprint(g.Children) != fmt.Sprint(b.Children) {
				t.Errorf("closed shard %d: %s end %v children %v after restart; closed at %d with %v before",
					i, g.State, g.EndOffset, g.Children, *b.EndOffset, b.Children)
			}
		case g.State == catalog.ShardClosed:
			changed = true
			for _, c := range g.Children {
				if int(c) < len(before.Shards) {
					t.Errorf("shard %d closed by the reshard in flight into shard %d, which existed before", i, c)
				}
			}
		}
	}
	if changed || len(got.Shards) > len(before.Shards) {
		if !inFlight {
			t.Errorf("layout changed across a kill with no reshard in flight: %d shards, %d before", len(got.Shards), len(before.Shards))
		}
		if !changed {
			t.Errorf("shards %d.. added with no shard closed", len(before.Shards))
		}
	}
	return changed
}

func addOne(k catalog.HashKey) catalog.HashKey {
	if k.Lo == ^uint64(0) {
		return catalog.HashKey{Hi: k.Hi + 1}
	}
	return catalog.HashKey{Hi: k.Hi, Lo: k.Lo + 1}
}

// verifyKeyed reads every shard and checks the acknowledged records against
// the ledger: each present once, in a shard owning its key, and each key's
// values in order when shards are read parents first.
func verifyKeyed(t *testing.T, ctx context.Context, proc *braidtest.Proc, stream string, lay server.StreamState, led *keyLedger) {
	t.Helper()
	type seen struct {
		shard int32
		off   int64
		seq   int
	}
	byKey := map[string][]seen{}
	total := 0
	for _, sh := range lay.Shards { // by id: parents before children
		for _, r := range proc.ReadPartition(ctx, stream, sh.Shard, false) {
			val, _, _ := strings.Cut(string(r.Value), ";")
			key, n, ok := strings.Cut(val, "#")
			seq, err := strconv.Atoi(n)
			if !ok || err != nil || key != string(r.Key) {
				t.Fatalf("shard %d offset %d: record key %q value %q is not one the test wrote", sh.Shard, r.Offset, r.Key, val)
			}
			if sh.Range == nil || !sh.Range.Contains(engine.HashKeyOf(r.Key)) {
				t.Errorf("shard %d offset %d: key %s does not hash into the shard's range", sh.Shard, r.Offset, key)
			}
			byKey[key] = append(byKey[key], seen{sh.Shard, r.Offset, seq})
			total++
		}
	}
	led.mu.Lock()
	defer led.mu.Unlock()
	present := map[string]int{}
	for key, recs := range byKey {
		for i, s := range recs {
			present[fmt.Sprintf("%s#%d", key, s.seq)]++
			if i > 0 && s.seq <= recs[i-1].seq {
				p := recs[i-1]
				what := "out of order"
				if s.seq == p.seq {
					what = "written twice"
				}
				t.Errorf("key %s: value %d at %d/%d after value %d at %d/%d (parents read first): %s",
					key, s.seq, s.shard, s.off, p.seq, p.shard, p.off, what)
			}
		}
	}
	missing := 0
	for val := range led.acked {
		if present[val] == 0 {
			if missing++; missing <= 5 {
				t.Errorf("acknowledged record %s is missing", val)
			}
		}
	}
	if missing > 5 {
		t.Errorf("%d more acknowledged records missing", missing-5)
	}
	t.Logf("read %d records from %d shards; %d acknowledged", total, len(lay.Shards), len(led.acked))
}
