package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestRestartDurability writes 10k records across 4 partitions, stops the
// node gracefully, restarts it and reads everything back; offsets continue
// after the restart. Acknowledged records also survive SIGKILL.
func TestRestartDurability(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 90*time.Second)
	adm := newAdmin(t, p)
	const (
		topic = "rs-durable"
		parts = 4
		total = 10_000
	)
	createStream(t, ctx, adm, topic, parts, nil)

	base := time.UnixMilli(1_710_000_000_000)
	var want [parts][]*kgo.Record
	var all []*kgo.Record
	for i := range total {
		part := int32(i % parts)
		r := &kgo.Record{Topic: topic, Partition: part, Key: []byte(fmt.Sprintf("key-%05d", i)),
			Value: payload(uint64(i), 50+(i*131)%2000), Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
		switch {
		case i%97 == 0:
			r.Value = nil
		case i%89 == 0:
			r.Key = nil
		}
		if i%10 == 0 {
			r.Headers = []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(i))}, {Key: "empty", Value: []byte{}}}
		}
		want[part] = append(want[part], r)
		all = append(all, r)
	}
	prod := newProducer(t, p, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	produce(t, ctx, prod, all...)
	for part := range parts {
		for i, r := range want[part] {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d record %d got offset %d", part, i, r.Offset)
			}
		}
	}

	// checkAll reads every partition from the start and compares it with
	// want, then checks the end offsets.
	checkAll := func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		for part := range int32(parts) {
			got := consume(t, ctx, p, topic, part, kgo.NewOffset().AtStart(), len(want[part]))
			checkRecords(t, got, want[part], true)
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for part := range int32(parts) {
			if e, _ := ends.Lookup(topic, part); e.Err != nil || e.Offset != int64(len(want[part])) {
				t.Errorf("partition %d end offset %d (%v), want %d", part, e.Offset, e.Err, len(want[part]))
			}
		}
	}

	t.Run("before-restart", checkAll)

	if err := p.Stop(); err != nil {
		t.Fatalf("graceful stop returned %v, want exit 0", err)
	}
	p.Restart()
	t.Run("after-graceful-restart", checkAll)

	t.Run("offsets-continue", func(t *testing.T) {
		ctx := testCtx(t, 30*time.Second)
		prod := newProducer(t, p)
		var more []*kgo.Record
		for i := range 100 * parts {
			part := int32(i % parts)
			r := &kgo.Record{Topic: topic, Partition: part, Key: []byte(fmt.Sprintf("after-%d", i)), Value: payload(uint64(total+i), 300),
				Timestamp: base.Add(time.Hour + time.Duration(i)*time.Millisecond)}
			more = append(more, r)
		}
		produce(t, ctx, prod, more...)
		var added [parts][]*kgo.Record
		for _, r := range more {
			added[r.Partition] = append(added[r.Partition], r)
		}
		for part := range int32(parts) {
			old := int64(len(want[part]))
			for i, r := range added[part] {
				if r.Offset != old+int64(i) {
					t.Fatalf("partition %d: new record %d got offset %d, want %d", part, i, r.Offset, old+int64(i))
				}
			}
			got := consume(t, ctx, p, topic, part, kgo.NewOffset().At(old), len(added[part]))
			checkRecords(t, got, added[part], true)
			want[part] = append(want[part], added[part]...)
		}
	})

	if err := p.Stop(); err != nil {
		t.Fatalf("second graceful stop returned %v, want exit 0", err)
	}
	p.Restart()
	t.Run("after-second-restart", checkAll)

	// acks=all waits for the fsync and acks=1 for the write to the kernel:
	// either way an acknowledged record survives the process dying.
	for _, a := range []struct {
		name string
		acks kgo.Acks
	}{{"all", kgo.AllISRAcks()}, {"leader", kgo.LeaderAck()}} {
		ctx := testCtx(t, 30*time.Second)
		prod := newProducer(t, p, kgo.RequiredAcks(a.acks))
		var recs []*kgo.Record
		for i := range 200 {
			part := int32(i % parts)
			r := &kgo.Record{Topic: topic, Partition: part, Value: []byte(fmt.Sprintf("acks=%s %d", a.name, i)), Timestamp: base.Add(2 * time.Hour)}
			recs = append(recs, r)
		}
		produce(t, ctx, prod, recs...)
		for _, r := range recs {
			want[r.Partition] = append(want[r.Partition], r)
		}
		p.Kill()
		p.Restart()
		t.Run("after-sigkill/acks="+a.name, checkAll)
	}
}
