package e2e

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestCommittedOffsets commits, fetches, lists, describes and deletes group
// offsets through kadm, and checks that acknowledged commits survive SIGKILL.
func TestCommittedOffsets(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	p.CreateStream(ctx, "off", 3, nil)
	adm := newAdmin(t, p)

	commit := func(group string, offs map[int32]int64, meta string) {
		t.Helper()
		var o kadm.Offsets
		for part, at := range offs {
			o.Add(kadm.Offset{Topic: "off", Partition: part, At: at, LeaderEpoch: -1, Metadata: meta})
		}
		resp, err := adm.CommitOffsets(ctx, group, o)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("commit %s: %v", group, err)
		}
	}
	check := func(adm *kadm.Client, group string, want map[int32]int64) {
		t.Helper()
		got, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatalf("fetch %s: %v", group, err)
		}
		if err := got.Error(); err != nil {
			t.Fatalf("fetch %s: %v", group, err)
		}
		n := 0
		got.Each(func(o kadm.OffsetResponse) {
			n++
			if o.Topic != "off" || want[o.Partition] != o.At || o.Metadata != "meta" {
				t.Errorf("%s: %s/%d at %d (%q), want %d", group, o.Topic, o.Partition, o.At, o.Metadata, want[o.Partition])
			}
		})
		if n != len(want) {
			t.Fatalf("%s: %d offsets, want %d", group, n, len(want))
		}
	}

	commit("g1", map[int32]int64{0: 5, 1: 7}, "meta")
	commit("g1", map[int32]int64{0: 9}, "meta")
	commit("g2", map[int32]int64{2: 3}, "meta")
	check(adm, "g1", map[int32]int64{0: 9, 1: 7})
	check(adm, "g2", map[int32]int64{2: 3})

	// A commit to a partition that does not exist is refused per partition.
	var bad kadm.Offsets
	bad.Add(kadm.Offset{Topic: "off", Partition: 9, At: 1})
	if resp, err := adm.CommitOffsets(ctx, "g1", bad); err != nil || resp.Error() == nil {
		t.Fatalf("commit to a missing partition: %v / %v, want UNKNOWN_TOPIC_OR_PARTITION", err, resp.Error())
	}

	listed, err := adm.ListGroups(ctx)
	if err != nil || len(listed.Groups()) != 2 {
		t.Fatalf("list groups: %v %v", listed.Groups(), err)
	}
	described, err := adm.DescribeGroups(ctx, "g1", "nope")
	if err != nil || described["g1"].State != "Empty" || described["nope"].State != "Dead" {
		t.Fatalf("describe: %+v %v", described, err)
	}

	// Acknowledged commits survive SIGKILL.
	p.Kill()
	p.Restart()
	adm2 := newAdmin(t, p)
	check(adm2, "g1", map[int32]int64{0: 9, 1: 7})

	resp, err := adm2.DeleteOffsets(ctx, "g1", kadm.TopicsSet{"off": {1: {}}})
	if err != nil || resp.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, resp.Error())
	}
	check(adm2, "g1", map[int32]int64{0: 9})
	dg, err := adm2.DeleteGroups(ctx, "g2", "never")
	if err != nil || dg["g2"].Err != nil || !kerrIs(dg["never"].Err, kerr.GroupIDNotFound) {
		t.Fatalf("delete groups: %+v %v", dg, err)
	}
	p.Kill()
	p.Restart()
	adm3 := newAdmin(t, p)
	check(adm3, "g1", map[int32]int64{0: 9})
	check(adm3, "g2", map[int32]int64{})
}

func kerrIs(err error, want *kerr.Error) bool {
	ke, ok := err.(*kerr.Error)
	return ok && ke.Code == want.Code
}

// TestGroupLagMetric: lag is the high watermark minus the committed offset.
func TestGroupLagMetric(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 20*time.Second)
	p.CreateStream(ctx, "lagged", 2, nil)
	prod := newProducer(t, p)
	for i := range 20 {
		prod.ProduceSync(ctx, &kgo.Record{Topic: "lagged", Partition: int32(i % 2), Value: []byte("x")})
	}
	var o kadm.Offsets
	o.Add(kadm.Offset{Topic: "lagged", Partition: 0, At: 5, LeaderEpoch: -1})
	o.Add(kadm.Offset{Topic: "lagged", Partition: 1, At: 10, LeaderEpoch: -1})
	if resp, err := newAdmin(t, p).CommitOffsets(ctx, "lg", o); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	// shard 0: 10 - 5; shard 1: 10 - 10.
	if lag := scrapeMetrics(t, ctx, p).must(t, "braid_group_lag_records", "group", "lg", "stream", "lagged"); lag != 5 {
		t.Fatalf("lag %v, want 5", lag)
	}
}
