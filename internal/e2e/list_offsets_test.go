package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestListOffsets checks earliest, latest, by-time and max-timestamp
// listings on a partition whose timestamps are not in offset order, and on
// an empty partition.
func TestListOffsets(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	adm := newAdmin(t, p)
	cl := newClient(t, p)
	const topic = "lo-times"
	createStream(t, ctx, adm, topic, 2, nil)

	t0 := time.UnixMilli(1_650_000_000_000)
	at := func(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// Offsets 0-7 one batch each; offset 4 jumps ahead in time.
	single := newProducer(t, p)
	for i, ms := range []int64{0, 10, 20, 30, 100, 40, 50, 60} {
		r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i)), Timestamp: at(ms)}
		produce(t, ctx, single, r)
		if r.Offset != int64(i) {
			t.Fatalf("record %d got offset %d", i, r.Offset)
		}
	}
	// Offsets 8-11 in one batch whose largest timestamp is inside it.
	batcher := newProducer(t, p, kgo.ManualFlushing())
	batch := []*kgo.Record{}
	for i, ms := range []int64{70, 200, 80, 90} {
		batch = append(batch, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(8 + i)), Timestamp: at(ms)})
	}
	errs := make(chan error, len(batch))
	for _, r := range batch {
		batcher.Produce(ctx, r, func(_ *kgo.Record, err error) { errs <- err })
	}
	if err := batcher.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	for range batch {
		if err := <-errs; err != nil {
			t.Fatalf("produce batch: %v", err)
		}
	}
	for i, r := range batch {
		if r.Offset != int64(8+i) {
			t.Fatalf("batch record %d got offset %d, want %d", i, r.Offset, 8+i)
		}
	}
	// Offset 12, after the maximum.
	produce(t, ctx, single, &kgo.Record{Topic: topic, Value: []byte("12"), Timestamp: at(95)})
	const end = 13

	t.Run("start-end", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		for _, c := range []struct {
			part       int32
			start, end int64
		}{{0, 0, end}, {1, 0, 0}} {
			if s, e := startEnd(t, ctx, adm, topic, c.part); s != c.start || e != c.end {
				t.Errorf("partition %d: start %d end %d, want %d and %d", c.part, s, e, c.start, c.end)
			}
		}
		// The raw answers agree.
		if r := listOffset(t, ctx, cl, topic, 0, -2); r.ErrorCode != 0 || r.Offset != 0 {
			t.Errorf("earliest: offset %d, %v", r.Offset, kerr.ErrorForCode(r.ErrorCode))
		}
		if r := listOffset(t, ctx, cl, topic, 0, -1); r.ErrorCode != 0 || r.Offset != end {
			t.Errorf("latest: offset %d, %v", r.Offset, kerr.ErrorForCode(r.ErrorCode))
		}
		// kgo refuses to ask for a partition it knows does not exist, so
		// ask on a bare connection.
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = 7, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp := dialRaw(t, p.KafkaAddr).request(req, 7).(*kmsg.ListOffsetsResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 ||
			resp.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("latest of partition 7 (of 2): %+v, want UNKNOWN_TOPIC_OR_PARTITION", resp.Topics)
		}
	})

	// ListOffsets by time answers the first offset, in log order, whose
	// timestamp is at or after the time asked for (Kafka scans batches from
	// its time index until one's max timestamp reaches the target).
	byTime := []struct {
		name   string
		target int64 // ms after t0
		offset int64
		ts     int64 // ms after t0
	}{
		{"before-everything", -1000, 0, 0},
		{"exact-first", 0, 0, 0},
		{"exact-second", 10, 1, 10},
		{"between", 15, 2, 20},
		{"exact-jump", 100, 4, 100},
		{"just-after-30", 35, 4, 100},
		{"behind-the-jump-45", 45, 4, 100},
		{"behind-the-jump-85", 85, 4, 100},
		{"after-jump-before-max", 101, 9, 200},
		{"exact-max-inside-batch", 200, 9, 200},
	}
	for _, c := range byTime {
		t.Run("after-milli/"+c.name, func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			lo, err := adm.ListOffsetsAfterMilli(ctx, at(c.target).UnixMilli(), topic)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := lo.Lookup(topic, 0)
			if !ok || got.Err != nil || got.Offset != c.offset || got.Timestamp != at(c.ts).UnixMilli() {
				t.Errorf("after t0%+dms: offset %d timestamp t0%+dms (found %v, err %v); want offset %d timestamp t0%+dms",
					c.target, got.Offset, got.Timestamp-t0.UnixMilli(), ok, got.Err, c.offset, c.ts)
			}
		})
	}

	t.Run("after-milli/after-everything", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		// Raw: Kafka answers offset -1, timestamp -1.
		if r := listOffset(t, ctx, cl, topic, 0, at(201).UnixMilli()); r.ErrorCode != 0 || r.Offset != -1 || r.Timestamp != -1 {
			t.Errorf("raw after everything: offset %d timestamp %d %v; want -1, -1", r.Offset, r.Timestamp, kerr.ErrorForCode(r.ErrorCode))
		}
		// kadm turns that into the end offset.
		lo, err := adm.ListOffsetsAfterMilli(ctx, at(201).UnixMilli(), topic)
		if err != nil {
			t.Fatal(err)
		}
		for part, want := range map[int32]int64{0: end, 1: 0} {
			if got, ok := lo.Lookup(topic, part); !ok || got.Err != nil || got.Offset != want {
				t.Errorf("partition %d after everything: %+v (found %v), want offset %d", part, got, ok, want)
			}
		}
		// An empty partition has nothing at any time.
		if r := listOffset(t, ctx, cl, topic, 1, t0.UnixMilli()); r.ErrorCode != 0 || r.Offset != -1 || r.Timestamp != -1 {
			t.Errorf("empty partition by time: offset %d timestamp %d %v; want -1, -1", r.Offset, r.Timestamp, kerr.ErrorForCode(r.ErrorCode))
		}
	})

	t.Run("max-timestamp", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		// The record with the largest timestamp is offset 9, in the middle
		// of the batch 8-11.
		if r := listOffset(t, ctx, cl, topic, 0, -3); r.ErrorCode != 0 || r.Offset != 9 || r.Timestamp != at(200).UnixMilli() {
			t.Errorf("max timestamp: offset %d timestamp t0%+dms %v; want offset 9 at t0+200ms",
				r.Offset, r.Timestamp-t0.UnixMilli(), kerr.ErrorForCode(r.ErrorCode))
		}
		if r := listOffset(t, ctx, cl, topic, 1, -3); r.ErrorCode != 0 || r.Offset != -1 || r.Timestamp != -1 {
			t.Errorf("max timestamp of an empty partition: offset %d timestamp %d %v; want -1, -1", r.Offset, r.Timestamp, kerr.ErrorForCode(r.ErrorCode))
		}
		lo, err := adm.ListMaxTimestampOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := lo.Lookup(topic, 0); !ok || got.Err != nil || got.Offset != 9 {
			t.Errorf("kadm ListMaxTimestampOffsets: %+v (found %v), want offset 9", got, ok)
		}
	})
}
