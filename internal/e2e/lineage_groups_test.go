package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// The lineage gate end to end: consumer groups (classic range and
// cooperative-sticky, and KIP-848) read a key-routed stream while it is
// split and merged, and each key's records reach the group in the order
// they were acknowledged.

// groupKinds are the group protocols the gate must hold for.
var groupKinds = []struct {
	name string
	opts []kgo.Opt
}{
	{"range", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}},
	{"cooperative-sticky", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
	{"kip848", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer()}},
}

// keyOrder checks, as records arrive, that a key's record n is first read
// only after records 0..n-1 of that key were: a record read twice (at least
// once delivery across a rebalance) is counted, not taken for disorder.
type keyOrder struct {
	mu    sync.Mutex
	next  map[string]int
	seen  map[string]map[int]bool
	fresh int
	dups  int
	bad   []string
}

func newKeyOrder() *keyOrder {
	return &keyOrder{next: map[string]int{}, seen: map[string]map[int]bool{}}
}

func (o *keyOrder) add(r *kgo.Record) {
	key, seqText, _ := strings.Cut(string(r.Value), ":")
	seq, err := strconv.Atoi(seqText)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil || key != string(r.Key) {
		o.bad = append(o.bad, fmt.Sprintf("record %q with key %q", r.Value, r.Key))
		return
	}
	if o.seen[key] == nil {
		o.seen[key] = map[int]bool{}
	}
	if o.seen[key][seq] {
		o.dups++
		return
	}
	o.seen[key][seq] = true
	o.fresh++
	if seq != o.next[key] && len(o.bad) < 10 {
		o.bad = append(o.bad, fmt.Sprintf("key %s: record %d read (shard %d offset %d) before record %d", key, seq, r.Partition, r.Offset, o.next[key]))
	}
	for o.seen[key][o.next[key]] {
		o.next[key]++
	}
}

func (o *keyOrder) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.fresh
}

// keyedProducer produces rounds of one record per key, each round
// acknowledged before the next, with an idempotent producer.
type keyedProducer struct {
	cl   *kgo.Client
	keys int
	seq  int
}

func newKeyedProducer(t *testing.T, p *braidtest.Proc, stream string, keys int) *keyedProducer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.KafkaAddr), kgo.DefaultProduceTopic(stream),
		kgo.RetryTimeout(15*time.Second), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &keyedProducer{cl: cl, keys: keys}
}

func (kp *keyedProducer) rounds(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for range n {
		var recs []*kgo.Record
		for k := range kp.keys {
			key := fmt.Sprintf("k%02d", k)
			recs = append(recs, &kgo.Record{Key: []byte(key), Value: []byte(fmt.Sprintf("%s:%d", key, kp.seq))})
		}
		if err := kp.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce round %d: %v", kp.seq, err)
		}
		kp.seq++
	}
}

// orderedMember is a group member that reads slowly (so that it lags
// behind the reshards) and feeds what it reads to a keyOrder. Rebalances
// wait until what a poll returned is recorded, and autocommit commits it
// before shards are given up.
func startOrderedMember(t *testing.T, ctx context.Context, p *braidtest.Proc, group, stream string, o *keyOrder, opts ...kgo.Opt) func() {
	all := append([]kgo.Opt{kgo.SeedBrokers(p.KafkaAddr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(stream),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.FetchMaxPartitionBytes(2 << 10), kgo.MetadataMinAge(100 * time.Millisecond), kgo.MetadataMaxAge(300 * time.Millisecond),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.AutoCommitInterval(100 * time.Millisecond), kgo.BlockRebalanceOnPoll()}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollRecords(ctx, 40)
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(o.add)
			cl.AllowRebalance()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cl.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

func reshard(t *testing.T, p *braidtest.Proc, stream, op string, body any) {
	t.Helper()
	var r reshardReply
	if status, err := p.PostJSON("/v1/streams/"+stream+"/"+op, body, &r); err != nil || status != 200 {
		t.Fatalf("%s %v: status %d (%v) %+v", op, body, status, err, r)
	}
}

// TestLineageGroupOrder: two members of a group read a key-routed stream
// that is split and merged while they lag behind; every record is read and
// each key's records arrive in order, for every group protocol.
func TestLineageGroupOrder(t *testing.T) {
	for _, kind := range groupKinds {
		t.Run(kind.name, func(t *testing.T) {
			p := braidtest.Start(t)
			ctx := testCtx(t, 20*time.Second)
			const stream, keys, rounds = "ord", 16, 25
			p.CreateStream(ctx, stream, 2, map[string]*string{"braid.routing": ptr("key")})
			kp := newKeyedProducer(t, p, stream, keys)
			o := newKeyOrder()

			kp.rounds(t, ctx, rounds)
			reshard(t, p, stream, "split", map[string]any{"shard": 0}) // 0 -> 2, 3
			kp.rounds(t, ctx, rounds)
			// The members start behind: the parents hold records they have
			// not read while the children already hold later ones.
			members := []func(){
				startOrderedMember(t, ctx, p, "ord-g", stream, o, kind.opts...),
				startOrderedMember(t, ctx, p, "ord-g", stream, o, kind.opts...),
			}
			reshard(t, p, stream, "split", map[string]any{"shard": 1}) // 1 -> 4, 5
			kp.rounds(t, ctx, rounds)
			reshard(t, p, stream, "merge", map[string]any{"shards": []int{2, 3}}) // 2, 3 -> 6
			kp.rounds(t, ctx, rounds)
			reshard(t, p, stream, "split", map[string]any{"shard": 6}) // 6 -> 7, 8
			kp.rounds(t, ctx, rounds)

			total := keys * kp.seq
			waitFor(t, ctx, fmt.Sprintf("all %d records read", total), func() bool { return o.count() == total })
			for _, stop := range members {
				stop()
			}
			o.mu.Lock()
			defer o.mu.Unlock()
			for _, b := range o.bad {
				t.Error(b)
			}
			t.Logf("%d records read in key order, %d read twice", o.fresh, o.dups)
		})
	}
}

// TestLineageChildHeldUntilCommit: a member that has read a split parent
// to its end is not handed the children until the group has committed the
// parent's end offset; a commit short of the end releases nothing, the
// commit of the end does, and the member then reads the children.
//
// The restart variant kills and restarts the node while the children are
// held back: the group's target is computed again through the gate, so the
// commit still releases them. (The classic protocol's restart is
// TestLineageHeldAcrossRestart: a kgo member may lose its session to the
// restart and rejoin, which would not exercise the durable state.)
func TestLineageChildHeldUntilCommit(t *testing.T) {
	type variant struct {
		name    string
		opts    []kgo.Opt
		restart bool
	}
	variants := []variant{
		{groupKinds[0].name, groupKinds[0].opts, false},
		{groupKinds[2].name, groupKinds[2].opts, false},
		{groupKinds[2].name + " after restart", groupKinds[2].opts, true},
	}
	for _, kind := range variants {
		t.Run(kind.name, func(t *testing.T) {
			p := braidtest.Start(t)
			ctx := testCtx(t, 20*time.Second)
			const stream = "held"
			p.CreateStream(ctx, stream, 1, map[string]*string{"braid.routing": ptr("key")})
			kp := newKeyedProducer(t, p, stream, 4)
			kp.rounds(t, ctx, 10) // 40 records in shard 0
			reshard(t, p, stream, "split", map[string]any{"shard": 0})
			kp.rounds(t, ctx, 10) // 40 records in shards 1 and 2

			cl, ownedNow := startHeldMember(t, p, stream, kind.opts...)

			for _, r := range pollN(t, ctx, cl, 40) {
				if r.Partition != 0 {
					t.Fatalf("read %s from shard %d before the parent was committed", r.Value, r.Partition)
				}
			}
			pollNothing(t, cl, 1500*time.Millisecond)
			if got := ownedNow(); got != "map[0:true]" {
				t.Fatalf("owns %s with the parent read but not committed, want only shard 0", got)
			}

			if kind.restart {
				p.Kill()
				p.Restart()
				// The client saw the node go away: errors from then (a
				// refused dial) are expected for a moment, records are not.
				pollNoRecords(t, cl, time.Second)
			}
			// A commit short of the parent's end holds the children back.
			short := map[string]map[int32]kgo.EpochOffset{stream: {0: {Epoch: -1, Offset: 39}}}
			var commitErr error
			cl.CommitOffsetsSync(ctx, short, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				if err == nil {
					err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
				}
				commitErr = err
			})
			if commitErr != nil {
				t.Fatalf("commit 39: %v", commitErr)
			}
			pollNothing(t, cl, 1500*time.Millisecond)
			if got := ownedNow(); got != "map[0:true]" {
				t.Fatalf("owns %s with the parent committed short of its end, want only shard 0", got)
			}

			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit the parent's end: %v", err)
			}
			start := time.Now()
			for _, r := range pollN(t, ctx, cl, 40) {
				if r.Partition == 0 {
					t.Fatalf("read %s from the parent again", r.Value)
				}
			}
			t.Logf("children read %v after the commit of the parent's end; owns %s", time.Since(start).Round(time.Millisecond), ownedNow())
		})
	}
}

// startHeldMember starts a group member that commits only when told and
// reports the shards it owns.
func startHeldMember(t *testing.T, p *braidtest.Proc, stream string, extra ...kgo.Opt) (*kgo.Client, func() string) {
	t.Helper()
	var mu sync.Mutex
	owned := map[int32]bool{}
	opts := append([]kgo.Opt{kgo.SeedBrokers(p.KafkaAddr), kgo.ConsumerGroup("held-g"), kgo.ConsumeTopics(stream),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.MetadataMinAge(100 * time.Millisecond), kgo.MetadataMaxAge(300 * time.Millisecond),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, part := range m[stream] {
				owned[part] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, part := range m[stream] {
				delete(owned, part)
			}
		}),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprint(owned)
	}
}

// TestLineageTransactionalParent: a parent whose log ends with a committed
// transaction's marker and an aborted transaction is drained once the
// group has read its last committed record: a read_committed client
// commits the offset after that record, short of the high watermark, and
// the markers and aborted records after it are nothing left to read.
func TestLineageTransactionalParent(t *testing.T) {
	for _, kind := range []struct {
		name string
		opts []kgo.Opt
	}{groupKinds[0], groupKinds[2]} {
		t.Run(kind.name, func(t *testing.T) {
			p := braidtest.Start(t)
			ctx := testCtx(t, 20*time.Second)
			const stream = "txparent"
			p.CreateStream(ctx, stream, 1, map[string]*string{"braid.routing": ptr("key")})
			tx, err := kgo.NewClient(kgo.SeedBrokers(p.KafkaAddr), kgo.DefaultProduceTopic(stream),
				kgo.TransactionalID("txparent"), kgo.RetryTimeout(15*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			for _, commit := range []bool{true, false} {
				if err := tx.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				for i := range 10 {
					key := fmt.Sprintf("k%02d", i%4)
					if err := tx.ProduceSync(ctx, &kgo.Record{Key: []byte(key), Value: []byte(fmt.Sprintf("%s:%d:%v", key, i, commit))}).FirstErr(); err != nil {
						t.Fatalf("transactional produce: %v", err)
					}
				}
				if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
					t.Fatal(err)
				}
			}
			reshard(t, p, stream, "split", map[string]any{"shard": 0})
			kp := newKeyedProducer(t, p, stream, 4)
			kp.rounds(t, ctx, 5) // 20 records in shards 1 and 2

			cl, ownedNow := startHeldMember(t, p, stream, append([]kgo.Opt{kgo.FetchIsolationLevel(kgo.ReadCommitted())}, kind.opts...)...)
			for _, r := range pollN(t, ctx, cl, 10) {
				if r.Partition != 0 || !strings.HasSuffix(string(r.Value), ":true") {
					t.Fatalf("read %s from shard %d, want the committed transaction's records from shard 0", r.Value, r.Partition)
				}
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatal(err)
			}
			if got := committed(t, ctx, cl, "held-g")[stream][0]; got != 10 {
				t.Fatalf("committed %d on the parent, want 10 (after its last committed record)", got)
			}
			for _, r := range pollN(t, ctx, cl, 20) {
				if r.Partition == 0 {
					t.Fatalf("read %s from the parent again", r.Value)
				}
			}
			if got := ownedNow(); got != "map[0:true 1:true 2:true]" {
				t.Fatalf("owns %s, want the parent and both children", got)
			}
		})
	}
}

// pollNoRecords polls cl for d and fails if any record arrives; fetch
// errors are logged, not failed on.
func pollNoRecords(t *testing.T, cl *kgo.Client, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(topic string, part int32, err error) {
			if ctx.Err() == nil {
				t.Logf("fetch %s/%d after the restart: %v", topic, part, err)
			}
		})
		if recs := fs.Records(); len(recs) > 0 {
			t.Fatalf("got %d records where none were expected, first: %s", len(recs), describe(recs[0]))
		}
	}
}

// TestLineageHeldAcrossRestart: a classic group's held-back shards are
// durable. The leader assigns a split parent and its children; the member
// gets only the parent; the node is killed and restarted; a commit short
// of the parent's end changes nothing, the commit of the end starts a
// rebalance, and the next assignment holds the children, user data kept.
func TestLineageHeldAcrossRestart(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 20*time.Second)
	const stream, group = "held", "held-raw"
	p.CreateStream(ctx, stream, 1, map[string]*string{"braid.routing": ptr("key")})
	kp := newKeyedProducer(t, p, stream, 4)
	kp.rounds(t, ctx, 10) // 40 records in shard 0
	reshard(t, p, stream, "split", map[string]any{"shard": 0})

	cl := newClient(t, p)
	assignAll := func(m classicMember) []int32 {
		t.Helper()
		a := kmsg.NewConsumerMemberAssignment()
		a.Version, a.UserData = 1, []byte("user data")
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic, at.Partitions = stream, []int32{0, 1, 2}
		a.Topics = append(a.Topics, at)
		b, code := syncGroup(t, ctx, cl, m, map[string][]byte{m.id: a.AppendTo(nil)})
		if code != 0 {
			t.Fatalf("sync: %v", kerr.ErrorForCode(code))
		}
		got := kmsg.NewConsumerMemberAssignment()
		if err := got.ReadFrom(b); err != nil {
			t.Fatalf("decode the assignment: %v", err)
		}
		if got.Version != 1 || string(got.UserData) != "user data" || len(got.Topics) != 1 || got.Topics[0].Topic != stream {
			t.Fatalf("assignment %+v, want version 1, the user data and one stream", got)
		}
		return got.Topics[0].Partitions
	}
	m := mustJoin(t, ctx, cl, group, "", stream)
	if got := assignAll(m); fmt.Sprint(got) != "[0]" {
		t.Fatalf("assigned %v with the parent not drained, want [0]", got)
	}

	p.Kill()
	p.Restart()
	if code := commit(t, ctx, cl, group, m.id, m.generation, stream, 0, 39, ""); code != 0 {
		t.Fatalf("commit 39 after the restart: %v", kerr.ErrorForCode(code))
	}
	time.Sleep(300 * time.Millisecond) // several of the coordinator's ticks
	if code := heartbeat(t, ctx, cl, m); code != 0 {
		t.Fatalf("heartbeat with the parent committed short of its end: %v", kerr.ErrorForCode(code))
	}
	if code := commit(t, ctx, cl, group, m.id, m.generation, stream, 0, 40, ""); code != 0 {
		t.Fatalf("commit 40: %v", kerr.ErrorForCode(code))
	}
	waitFor(t, ctx, "a rebalance once the parent is drained", func() bool {
		return heartbeat(t, ctx, cl, m) == kerr.RebalanceInProgress.Code
	})
	m2, code, err := joinGroup(ctx, cl, group, m.id, "", 10*time.Second, stream)
	if err != nil || code != 0 {
		t.Fatalf("rejoin: %v %v", kerr.ErrorForCode(code), err)
	}
	if got := assignAll(m2); fmt.Sprint(got) != "[0 1 2]" {
		t.Fatalf("assigned %v after the parent was drained, want [0 1 2]", got)
	}
}
