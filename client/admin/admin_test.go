package admin_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/client/admin"
)

func newAdmin(t *testing.T) (*admin.Client, string, context.Context) {
	t.Helper()
	kafka, httpAddr := startServer(t)
	adm, err := admin.New([]string{kafka}, httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adm.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return adm, kafka, ctx
}

// Create, describe, alter, list and delete a stream against a real node,
// with the typed errors of each.
func TestStreamLifecycle(t *testing.T) {
	adm, _, ctx := newAdmin(t)
	if err := adm.CreateStream(ctx, "orders", 4, map[string]string{"retention.ms": "3600000"}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := adm.CreateStream(ctx, "orders", 4, nil); !errors.Is(err, admin.ErrStreamExists) {
		t.Fatalf("create twice: %v, want ErrStreamExists", err)
	}
	if err := adm.CreateStream(ctx, "bad", 0, nil); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("create with 0 shards: %v, want ErrInvalid", err)
	}
	if err := adm.CreateStream(ctx, "bad", 2, map[string]string{"braid.routing": "sideways"}); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("create with a bad config: %v, want ErrInvalid", err)
	}

	st, err := adm.DescribeStream(ctx, "orders")
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if st.Routing != "key" || len(st.Shards) != 4 || len(st.Open()) != 4 {
		t.Fatalf("describe: %+v, want 4 open shards with key routing", st)
	}
	// The ranges tile the key space in order.
	next := new(big.Int)
	for _, sh := range st.Shards {
		if sh.Range == nil || sh.Range.Start.Cmp(next) != 0 {
			t.Fatalf("shard %d range %+v does not start at %v", sh.ID, sh.Range, next)
		}
		next = new(big.Int).Add(sh.Range.End, big.NewInt(1))
	}
	if want := new(big.Int).Lsh(big.NewInt(1), 128); next.Cmp(want) != 0 {
		t.Fatalf("ranges end at %v, want 2^128", next)
	}

	if err := adm.AlterStream(ctx, "orders", map[string]string{"retention.ms": "7200000"}); err != nil {
		t.Fatalf("alter: %v", err)
	}
	cfgs, err := adm.StreamConfigs(ctx, "orders")
	if err != nil || cfgs["retention.ms"] != "7200000" || cfgs["braid.routing"] != "key" {
		t.Fatalf("configs after alter: %v, %v", cfgs, err)
	}
	if err := adm.AlterStream(ctx, "orders", map[string]string{"braid.routing": "sideways"}); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("alter with a bad value: %v, want ErrInvalid", err)
	}
	if cfgs, _ := adm.StreamConfigs(ctx, "orders"); cfgs["braid.routing"] != "key" {
		t.Fatalf("a refused alter changed braid.routing to %q", cfgs["braid.routing"])
	}
	if err := adm.AlterStream(ctx, "nope", map[string]string{"retention.ms": "1"}); !errors.Is(err, admin.ErrUnknownStream) {
		t.Fatalf("alter unknown: %v, want ErrUnknownStream", err)
	}
	if _, err := adm.DescribeStream(ctx, "nope"); !errors.Is(err, admin.ErrUnknownStream) {
		t.Fatalf("describe unknown: %v, want ErrUnknownStream", err)
	}

	if err := adm.CreateStream(ctx, "clicks", 1, nil); err != nil {
		t.Fatal(err)
	}
	names, err := adm.ListStreams(ctx)
	if err != nil || !slices.Equal(names, []string{"clicks", "orders"}) {
		t.Fatalf("list: %v, %v", names, err)
	}
	if err := adm.DeleteStream(ctx, "clicks"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := adm.DeleteStream(ctx, "clicks"); !errors.Is(err, admin.ErrUnknownStream) {
		t.Fatalf("delete twice: %v, want ErrUnknownStream", err)
	}
	if names, _ := adm.ListStreams(ctx); !slices.Equal(names, []string{"orders"}) {
		t.Fatalf("list after delete: %v", names)
	}
}

// Split, merge and scale through the admin API change the layout that
// DescribeStream reports; refused requests are ErrInvalid and change
// nothing.
func TestReshard(t *testing.T) {
	adm, _, ctx := newAdmin(t)
	if err := adm.CreateStream(ctx, "rs", 2, nil); err != nil {
		t.Fatal(err)
	}
	r, err := adm.Split(ctx, "rs", 0, nil)
	if err != nil || !slices.Equal(r.Closed, []int32{0}) {
		t.Fatalf("split: %+v, %v", r, err)
	}
	st, _ := adm.DescribeStream(ctx, "rs")
	if !slices.Equal(st.Open(), []int32{1, 2, 3}) || st.Shards[0].State != admin.ShardClosed ||
		!slices.Equal(st.Shards[2].Parents, []int32{0}) || !slices.Equal(st.Shards[0].Children, []int32{2, 3}) {
		t.Fatalf("after split: %+v", st)
	}
	// A split point: at the start of shard 1's range is refused.
	if _, err := adm.Split(ctx, "rs", 1, st.Shards[1].Range.Start); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("split at the range start: %v, want ErrInvalid", err)
	}
	if _, err := adm.Split(ctx, "rs", 0, nil); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("split a closed shard: %v, want ErrInvalid", err)
	}
	if _, err := adm.Merge(ctx, "rs", 2, 1); !errors.Is(err, admin.ErrInvalid) {
		t.Fatalf("merge of non-adjacent shards: %v, want ErrInvalid", err)
	}
	if _, err := adm.Merge(ctx, "rs", 3, 1); err != nil {
		t.Fatalf("merge: %v", err)
	}
	st, _ = adm.DescribeStream(ctx, "rs")
	if !slices.Equal(st.Open(), []int32{2, 4}) {
		t.Fatalf("after merge: open %v", st.Open())
	}
	if _, err := adm.Scale(ctx, "rs", 4); err != nil {
		t.Fatalf("scale: %v", err)
	}
	st, _ = adm.DescribeStream(ctx, "rs")
	if len(st.Open()) != 4 {
		t.Fatalf("after scale: open %v", st.Open())
	}
	if _, err := adm.Scale(ctx, "nope", 4); !errors.Is(err, admin.ErrUnknownStream) {
		t.Fatalf("scale unknown: %v, want ErrUnknownStream", err)
	}
	noHTTP, err := admin.New([]string{"127.0.0.1:1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer noHTTP.Close()
	if _, err := noHTTP.DescribeStream(ctx, "rs"); !errors.Is(err, admin.ErrNoAdminAddr) {
		t.Fatalf("describe without an admin address: %v, want ErrNoAdminAddr", err)
	}
}

// ListGroups and DescribeGroup report a group's committed positions and
// its lag per shard.
func TestGroups(t *testing.T) {
	adm, kafka, ctx := newAdmin(t)
	if err := adm.CreateStream(ctx, "g", 2, nil); err != nil {
		t.Fatal(err)
	}
	pr, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.DefaultProduceTopic("g"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	for i := range 10 {
		// 6 records to shard 0, 4 to shard 1.
		r := &kgo.Record{Value: fmt.Appendf(nil, "%d", i), Partition: int32(i % 5 / 3)}
		if err := pr.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Commit offsets 4 on shard 0 and 1 on shard 1: lags 2 and 3.
	cons, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("g"))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	offs := map[string]map[int32]kgo.EpochOffset{"g": {0: {Epoch: -1, Offset: 4}, 1: {Epoch: -1, Offset: 1}}}
	var cerr error
	done := make(chan struct{})
	cons.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
		cerr = err
		close(done)
	})
	<-done
	if cerr != nil {
		t.Fatalf("commit: %v", cerr)
	}
	cons.Close()

	gs, err := adm.ListGroups(ctx)
	if err != nil || len(gs) != 1 || gs[0].Name != "readers" {
		t.Fatalf("list groups: %+v, %v", gs, err)
	}
	g, err := adm.DescribeGroup(ctx, "readers")
	if err != nil {
		t.Fatalf("describe group: %v", err)
	}
	lag := map[int32]int64{}
	for _, l := range g.Lag {
		lag[l.Shard] = l.Lag
	}
	if lag[0] != 2 || lag[1] != 3 || g.TotalLag != 5 {
		t.Fatalf("lag %v total %d, want shard 0: 2, shard 1: 3, total 5 (%+v)", lag, g.TotalLag, g)
	}
	if _, err := adm.DescribeGroup(ctx, "nobody"); !errors.Is(err, admin.ErrUnknownGroup) {
		t.Fatalf("describe unknown group: %v, want ErrUnknownGroup", err)
	}
}
