package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// mixedRecords returns records for topic/part covering the shapes a Kafka
// record can take: keyed and unkeyed, empty key, headers (with duplicate
// keys, empty and null values), null and empty values, and sizes from one
// byte to ~900 KB. Timestamps are explicit, one ms apart from base.
func mixedRecords(topic string, part int32, base time.Time) []*kgo.Record {
	recs := []*kgo.Record{
		{Key: []byte("k-0"), Value: []byte("hello"), Headers: []kgo.RecordHeader{
			{Key: "h1", Value: []byte("v1")}, {Key: "h2", Value: []byte{}}, {Key: "h1", Value: []byte("dup")}, {Key: "h-null", Value: nil},
		}},
		{Key: nil, Value: []byte("unkeyed")},
		{Key: []byte("null-value"), Value: nil},
		{Key: []byte("empty-value"), Value: []byte{}},
		{Key: []byte{}, Value: []byte("empty key")},
		{Key: nil, Value: nil, Headers: []kgo.RecordHeader{{Key: "only-headers", Value: []byte("x")}}},
		{Key: []byte{0, 0xff, 0x7f, 0x80}, Value: []byte{0}},
	}
	for i, size := range []int{100, 10 << 10, 100 << 10, 500 << 10, 900 << 10, 1, 4 << 10} {
		r := &kgo.Record{Value: payload(uint64(100+i), size)}
		if i%2 == 0 {
			r.Key = []byte(fmt.Sprintf("sized-%d", size))
			r.Headers = []kgo.RecordHeader{{Key: "size", Value: []byte(fmt.Sprint(size))}}
		}
		recs = append(recs, r)
	}
	recs = append(recs,
		&kgo.Record{Key: []byte("after-big"), Value: []byte("small again"), Headers: []kgo.RecordHeader{{Key: "", Value: []byte("empty header key")}}},
		&kgo.Record{Key: []byte("last"), Value: payload(7, 3000)},
	)
	for i, r := range recs {
		r.Topic, r.Partition = topic, part
		r.Timestamp = base.Add(time.Duration(i) * time.Millisecond)
	}
	return recs
}

var codecs = []struct {
	name  string
	codec kgo.CompressionCodec
	attr  uint8 // the batch attribute the codec sets
}{
	{"none", kgo.NoCompression(), 0},
	{"gzip", kgo.GzipCompression(), 1},
	{"snappy", kgo.SnappyCompression(), 2},
	{"lz4", kgo.Lz4Compression(), 3},
	{"zstd", kgo.ZstdCompression(), 4},
}

// TestProduceConsume produces every kind of record with every codec and
// reads it back whole, from the start, from the middle and from the end.
func TestProduceConsume(t *testing.T) {
	p := braidtest.Start(t)
	adm := newAdmin(t, p)
	base := time.UnixMilli(1_700_000_000_000)

	for _, c := range codecs {
		t.Run("codec="+c.name, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			topic := "pc-codec-" + c.name
			createStream(t, ctx, adm, topic, 1, nil)
			prod := newProducer(t, p, kgo.ProducerBatchCompression(c.codec), kgo.RequiredAcks(kgo.AllISRAcks()))
			recs := mixedRecords(topic, 0, base)
			produce(t, ctx, prod, recs...)
			for i, r := range recs {
				if r.Offset != int64(i) {
					t.Fatalf("record %d was given offset %d", i, r.Offset)
				}
			}

			t.Run("from-start", func(t *testing.T) {
				got := consume(t, ctx, p, topic, 0, kgo.NewOffset().AtStart(), len(recs))
				checkRecords(t, got, recs, true)
				// The big compressible records must come in batches of the
				// codec they were produced with.
				for i, r := range got {
					if len(r.Value) >= 100<<10 && r.Attrs.CompressionType() != c.attr {
						t.Errorf("record %d (%d bytes) in a batch with codec %d, want %d", i, len(r.Value), r.Attrs.CompressionType(), c.attr)
					}
					if r.Attrs.TimestampType() != 0 {
						t.Errorf("record %d has timestamp type %d, want 0 (CreateTime)", i, r.Attrs.TimestampType())
					}
				}
			})

			t.Run("small-fetch-limits", func(t *testing.T) {
				// Limits far below the record sizes: the first batch of a
				// response comes whole anyway (KIP-74), so reading progresses.
				got := consume(t, ctx, p, topic, 0, kgo.NewOffset().AtStart(), len(recs),
					kgo.FetchMaxBytes(1000), kgo.FetchMaxPartitionBytes(500))
				checkRecords(t, got, recs, true)
			})

			t.Run("from-middle", func(t *testing.T) {
				for _, at := range []int{1, len(recs) / 2, 11, len(recs) - 1} { // 11 is the ~900 KB record
					got := consume(t, ctx, p, topic, 0, kgo.NewOffset().At(int64(at)), len(recs)-at)
					checkRecords(t, got, recs[at:], true)
				}
			})

			t.Run("from-end", func(t *testing.T) {
				seen := newFetchSeen()
				cl := newClient(t, p, kgo.WithHooks(seen), kgo.FetchMaxWait(100*time.Millisecond),
					kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtEnd()}}))
				// Until a fetch has come back the end offset may not be
				// resolved; nothing may arrive meanwhile.
				for waiting := true; waiting; {
					select {
					case <-seen.ch:
						waiting = false
					case <-ctx.Done():
						t.Fatal("no fetch response before the deadline")
					default:
						pollNothing(t, cl, 100*time.Millisecond)
					}
				}
				pollNothing(t, cl, 300*time.Millisecond)
				more := []*kgo.Record{
					{Topic: topic, Key: []byte("new-1"), Value: []byte("after the end"), Timestamp: base.Add(time.Hour)},
					{Topic: topic, Key: nil, Value: payload(9, 50<<10), Timestamp: base.Add(time.Hour + time.Millisecond),
						Headers: []kgo.RecordHeader{{Key: "late", Value: []byte("yes")}}},
				}
				produce(t, ctx, prod, more...)
				got := pollN(t, ctx, cl, len(more))
				if more[0].Offset != int64(len(recs)) || more[1].Offset != int64(len(recs)+1) {
					t.Errorf("new records got offsets %d, %d; want %d, %d", more[0].Offset, more[1].Offset, len(recs), len(recs)+1)
				}
				checkRecords(t, got, more, true)
				pollNothing(t, cl, 200*time.Millisecond)
			})
		})
	}

	acks := []struct {
		name  string
		acks  kgo.Acks
		codec kgo.CompressionCodec
	}{
		{"all", kgo.AllISRAcks(), kgo.Lz4Compression()},
		{"leader", kgo.LeaderAck(), kgo.SnappyCompression()},
		{"none", kgo.NoAck(), kgo.ZstdCompression()},
	}
	for _, a := range acks {
		t.Run("acks="+a.name, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			topic := "pc-acks-" + a.name
			createStream(t, ctx, adm, topic, 2, nil)
			prod := newProducer(t, p, kgo.RequiredAcks(a.acks), kgo.ProducerBatchCompression(a.codec))
			var want [2][]*kgo.Record
			var all []*kgo.Record
			for i := range 200 {
				part := int32(i % 2)
				r := &kgo.Record{Topic: topic, Partition: part, Key: []byte(fmt.Sprintf("key-%d", i)),
					Value: payload(uint64(i), 10+i*37), Timestamp: base.Add(time.Duration(i) * time.Second)}
				if i%7 == 0 {
					r.Value = nil
				}
				if i%5 == 0 {
					r.Headers = []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}}
				}
				want[part] = append(want[part], r)
				all = append(all, r)
			}
			produce(t, ctx, prod, all...)
			for part := range int32(2) {
				for i, r := range want[part] {
					if a.name != "none" && r.Offset != int64(i) {
						t.Fatalf("partition %d record %d was given offset %d", part, i, r.Offset)
					}
					r.Offset = int64(i) // acks=0: the broker tells nothing
				}
				// acks=0: the records only have to show up eventually.
				got := consume(t, ctx, p, topic, part, kgo.NewOffset().AtStart(), len(want[part]))
				checkRecords(t, got, want[part], true)
			}
		})
	}
}
