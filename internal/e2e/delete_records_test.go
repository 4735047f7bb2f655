package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// deleteRecords runs kadm.DeleteRecords for one partition and returns its
// answer.
func deleteRecords(t testing.TB, ctx context.Context, adm *kadm.Client, topic string, part int32, to int64) kadm.DeleteRecordsResponse {
	t.Helper()
	os := make(kadm.Offsets)
	os.Add(kadm.Offset{Topic: topic, Partition: part, At: to})
	rs, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatalf("DeleteRecords %s/%d to %d: %v", topic, part, to, err)
	}
	r, ok := rs.Lookup(topic, part)
	if !ok {
		t.Fatalf("DeleteRecords %s/%d: no answer for the partition", topic, part)
	}
	return r
}

// TestDeleteRecords moves log start offsets and checks listings and fetches
// below and at the new start, before and after a graceful restart.
func TestDeleteRecords(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	const topic = "dr-stream"
	createStream(t, ctx, adm, topic, 2, nil)
	id := topicID(t, ctx, adm, topic)

	// Partition 0: offsets 0-4 one batch each, 5-9 in one batch.
	// Partition 1: offsets 0-4.
	base := time.UnixMilli(1_690_000_000_000)
	var p0, p1 []*kgo.Record
	single := newProducer(t, p)
	for i := range 5 {
		r := &kgo.Record{Topic: topic, Partition: 0, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("p0 record %d", i)),
			Timestamp: base.Add(time.Duration(i) * time.Second)}
		produce(t, ctx, single, r)
		p0 = append(p0, r)
	}
	batcher := newProducer(t, p, kgo.ManualFlushing())
	errs := make(chan error, 10)
	for i := 5; i < 10; i++ {
		r := &kgo.Record{Topic: topic, Partition: 0, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("p0 record %d", i)),
			Timestamp: base.Add(time.Duration(i) * time.Second)}
		batcher.Produce(ctx, r, func(_ *kgo.Record, err error) { errs <- err })
		p0 = append(p0, r)
	}
	if err := batcher.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		r := &kgo.Record{Topic: topic, Partition: 1, Value: []byte(fmt.Sprintf("p1 record %d", i)), Timestamp: base}
		p1 = append(p1, r)
	}
	produce(t, ctx, single, p1...)
	for i, r := range p0 {
		if r.Offset != int64(i) {
			t.Fatalf("p0 record %d got offset %d", i, r.Offset)
		}
	}

	// checkStart checks partition 0 starts at start: listings, raw fetches
	// just below and at the start, and kgo consumers.
	checkStart := func(t *testing.T, cl *kgo.Client, start int64) {
		ctx := testCtx(t, 20*time.Second)
		if s, e := startEnd(t, ctx, adm, topic, 0); s != start || e != 10 {
			t.Errorf("partition 0: start %d end %d, want %d and 10", s, e, start)
		}
		below := fetchRaw(t, ctx, cl, topic, id, 0, start-1)
		if below.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Errorf("fetch at %d, below the start %d: %v, want OFFSET_OUT_OF_RANGE", start-1, start, kerr.ErrorForCode(below.ErrorCode))
		}
		at := fetchRaw(t, ctx, cl, topic, id, 0, start)
		if at.ErrorCode != 0 || len(at.RecordBatches) == 0 || at.HighWatermark != 10 || at.LogStartOffset != start {
			t.Errorf("fetch at the start %d: %v, %d bytes, high watermark %d, log start %d", start, kerr.ErrorForCode(at.ErrorCode),
				len(at.RecordBatches), at.HighWatermark, at.LogStartOffset)
		}
		// An explicit offset at the start reads exactly what is left.
		got := consume(t, ctx, p, topic, 0, kgo.NewOffset().At(start), int(10-start))
		checkRecords(t, got, p0[start:], true)
		// Below the start, kgo gets OFFSET_OUT_OF_RANGE and, with its
		// default reset (the start), carries on from the log start.
		got = consume(t, ctx, p, topic, 0, kgo.NewOffset().At(start-1), int(10-start))
		checkRecords(t, got, p0[start:], true)
		// Without a reset policy it hands the error to the application.
		noReset := newClient(t, p, kgo.ConsumeResetOffset(kgo.NoResetOffset()),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(start - 1)}}))
		for {
			fs := noReset.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatal("no OFFSET_OUT_OF_RANGE error surfaced before the deadline")
			}
			if n := len(fs.Records()); n > 0 {
				t.Fatalf("consumer without reset below the start got %d records, first %s", n, describe(fs.Records()[0]))
			}
			if err := fs.Err(); err != nil {
				if !errors.Is(err, kerr.OffsetOutOfRange) {
					t.Fatalf("consumer without reset: %v, want OFFSET_OUT_OF_RANGE", err)
				}
				break
			}
		}
		noReset.Close()
		// A time before everything now maps to the start.
		lo, err := adm.ListOffsetsAfterMilli(ctx, base.Add(-time.Hour).UnixMilli(), topic)
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := lo.Lookup(topic, 0); r.Offset != start {
			t.Errorf("first offset after a time before everything: %d, want the start %d", r.Offset, start)
		}
	}

	cl := newClient(t, p)
	t.Run("delete-to-batch-boundary", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		if r := deleteRecords(t, ctx, adm, topic, 0, 3); r.Err != nil || r.LowWatermark != 3 {
			t.Fatalf("delete to 3: low watermark %d, %v", r.LowWatermark, r.Err)
		}
		checkStart(t, cl, 3)
		if s, e := startEnd(t, ctx, adm, topic, 1); s != 0 || e != 5 {
			t.Errorf("partition 1 changed: start %d end %d", s, e)
		}
	})

	t.Run("fetch-at-and-past-the-end", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		if r := fetchRaw(t, ctx, cl, topic, id, 0, 10); r.ErrorCode != 0 || len(r.RecordBatches) != 0 || r.HighWatermark != 10 {
			t.Errorf("fetch at the high watermark: %v, %d bytes, high watermark %d; want no error and nothing",
				kerr.ErrorForCode(r.ErrorCode), len(r.RecordBatches), r.HighWatermark)
		}
		if r := fetchRaw(t, ctx, cl, topic, id, 0, 11); r.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Errorf("fetch past the high watermark: %v, want OFFSET_OUT_OF_RANGE", kerr.ErrorForCode(r.ErrorCode))
		}
	})

	t.Run("delete-backwards-is-a-no-op", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		if r := deleteRecords(t, ctx, adm, topic, 0, 1); r.Err != nil || r.LowWatermark != 3 {
			t.Errorf("delete to 1 after 3: low watermark %d, %v; want 3 and no error", r.LowWatermark, r.Err)
		}
	})

	t.Run("delete-past-the-end-refused", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		if r := deleteRecords(t, ctx, adm, topic, 0, 11); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
			t.Errorf("delete to 11 of 10: low watermark %d, %v; want OFFSET_OUT_OF_RANGE", r.LowWatermark, r.Err)
		}
		if s, _ := startEnd(t, ctx, adm, topic, 0); s != 3 {
			t.Errorf("start moved to %d", s)
		}
	})

	t.Run("delete-unknown-partition", func(t *testing.T) {
		req := kmsg.NewPtrDeleteRecordsRequest()
		req.TimeoutMillis = 5000
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = 9, 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := dialRaw(t, p.KafkaAddr).request(req, 2).(*kmsg.DeleteRecordsResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 ||
			resp.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("delete in partition 9 of 2: %+v, want UNKNOWN_TOPIC_OR_PARTITION", resp.Topics)
		}
	})

	t.Run("delete-inside-a-batch", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		if r := deleteRecords(t, ctx, adm, topic, 0, 7); r.Err != nil || r.LowWatermark != 7 {
			t.Fatalf("delete to 7: low watermark %d, %v", r.LowWatermark, r.Err)
		}
		checkStart(t, cl, 7)
	})

	t.Run("delete-to-high-watermark", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		if r := deleteRecords(t, ctx, adm, topic, 1, -1); r.Err != nil || r.LowWatermark != 5 {
			t.Fatalf("delete partition 1 to the high watermark (-1): low watermark %d, %v; want 5", r.LowWatermark, r.Err)
		}
		if s, e := startEnd(t, ctx, adm, topic, 1); s != 5 || e != 5 {
			t.Errorf("partition 1: start %d end %d, want 5 and 5", s, e)
		}
	})

	if err := p.Stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	p.Restart()

	t.Run("after-restart", func(t *testing.T) {
		cl := newClient(t, p)
		checkStart(t, cl, 7)
		ctx := testCtx(t, 10*time.Second)
		if s, e := startEnd(t, ctx, adm, topic, 1); s != 5 || e != 5 {
			t.Errorf("partition 1 after restart: start %d end %d, want 5 and 5", s, e)
		}
		r := &kgo.Record{Topic: topic, Partition: 0, Value: []byte("after restart")}
		produce(t, ctx, newProducer(t, p), r)
		if r.Offset != 10 {
			t.Errorf("first record after restart got offset %d, want 10", r.Offset)
		}
	})
}
