package e2e

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestRetentionByTime: records older than retention.ms (set at runtime)
// leave the stream, fetching below the new start is out of range, newer
// records stay, and the start survives a SIGKILL.
func TestRetentionByTime(t *testing.T) {
	p := braidtest.Start(t, "--retention-check-interval", "100ms")
	ctx := testCtx(t, 30*time.Second)
	p.CreateStream(ctx, "ret", 1, nil)
	prod := newProducer(t, p)
	old := time.Now().Add(-3 * time.Hour)
	for i := range 30 {
		ts := time.Now()
		if i < 20 {
			ts = old
		}
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "ret", Partition: 0, Value: []byte{byte(i)}, Timestamp: ts}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := newAdmin(t, p)
	start := func(adm *kadm.Client) int64 {
		s, err := adm.ListStartOffsets(ctx, "ret")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := s.Lookup("ret", 0)
		return o.Offset
	}
	if got := start(adm); got != 0 {
		t.Fatalf("start %d before retention is set, want 0 (default retention is 7 days)", got)
	}
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("3600000")}}, "ret")
	if err != nil || resp[0].Err != nil {
		t.Fatalf("alter: %v %v", err, resp)
	}
	waitFor(t, ctx, "retention to move the log start to 20", func() bool { return start(adm) == 20 })

	consumer := newClient(t, p, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"ret": {0: kgo.NewOffset().AtStart()}}))
	var got []byte
	for len(got) < 10 {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %v", got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r.Value[0]) })
	}
	if got[0] != 20 || len(got) != 10 {
		t.Fatalf("after retention read %v, want 20..29", got)
	}
	// The pass counts what it trimmed once it has gone through every
	// shard, after the log start it moved was visible.
	waitFor(t, ctx, "braid_retention_trimmed_shards_total to count the trim", func() bool {
		return scrapeMetrics(t, ctx, p).must(t, "braid_retention_trimmed_shards_total") >= 1
	})
	p.Kill()
	p.Restart()
	if got := start(newAdmin(t, p)); got != 20 {
		t.Fatalf("log start %d after SIGKILL, want 20", got)
	}
}
