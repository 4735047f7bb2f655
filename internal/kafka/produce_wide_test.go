package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/vfs"
)

// wideBatch is an uncompressed batch of n records for partition part, each
// value naming the partition, the request and the record, padded to size.
func wideBatch(part int32, req, n, size int) []byte {
	rb := kmsg.RecordBatch{Magic: 2, FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, LastOffsetDelta: int32(n - 1), NumRecords: int32(n)}
	for i := range n {
		v := make([]byte, size)
		copy(v, fmt.Sprintf("p%d/r%d/%d", part, req, i))
		rec := kmsg.Record{OffsetDelta: int32(i), Value: v}
		body := rec.AppendTo(nil)
		_, l := binary.Varint(body)
		rec.Length = int32(len(body) - l)
		rb.Records = rec.AppendTo(rb.Records)
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crcOf(b[21:]))
	return b
}

// TestProduceManyPartitions sends produce requests of 40 partitions of 64
// KiB each, large enough to be appended by two goroutines
// (produceSplit), with a bad batch, an unknown partition and a second
// stream in them, and checks every partition's answer, that what it
// acknowledges is durable when it comes, what reads back, and the
// per-stream metrics. Run with -race, it also covers the appends running
// side by side.
func TestProduceManyPartitions(t *testing.T) {
	const parts, recs, size, requests = 40, 16, 4 << 10, 6
	// Each fsync of the log takes 20 ms longer: an answer sent before
	// every batch of its request is durable shows as a high watermark
	// short of what the answer acknowledged.
	slowSync := vfs.Inject(vfs.Default, func(op vfs.Op, path string) error {
		if op == vfs.OpSync && strings.Contains(path, string(filepath.Separator)+"wal"+string(filepath.Separator)) {
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	})
	eng := openEngine(t, engine.Options{Dir: t.TempDir(), FS: slowSync})
	createStream(t, eng, "wide", parts)
	createStream(t, eng, "narrow", 1)
	s, cl := serve(t, eng)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const bad = 7 // this partition's batch has a wrong CRC in request 0
	for r := range requests {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		wide := kmsg.NewProduceRequestTopic()
		wide.Topic = "wide"
		for p := range int32(parts) {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = p, wideBatch(p, r, recs, size)
			if r == 0 && p == bad {
				rp.Records[len(rp.Records)-1] ^= 1
			}
			wide.Partitions = append(wide.Partitions, rp)
		}
		unknown := kmsg.NewProduceRequestTopicPartition()
		unknown.Partition, unknown.Records = parts+5, wideBatch(parts+5, r, 1, 10)
		wide.Partitions = append(wide.Partitions, unknown)
		narrow := kmsg.NewProduceRequestTopic()
		narrow.Topic = "narrow"
		np := kmsg.NewProduceRequestTopicPartition()
		np.Records = wideBatch(0, r, 3, 10)
		narrow.Partitions = append(narrow.Partitions, np)
		req.Topics = append(req.Topics, wide, narrow)

		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("request %d: %v", r, err)
		}
		if len(resp.Topics) != 2 || resp.Topics[0].Topic != "wide" || resp.Topics[1].Topic != "narrow" {
			t.Fatalf("request %d: answer for topics %+v", r, resp.Topics)
		}
		got := resp.Topics[0].Partitions
		if len(got) != parts+1 {
			t.Fatalf("request %d: %d partitions answered, want %d", r, len(got), parts+1)
		}
		for i, p := range got {
			wantCode, wantBase := int16(0), int64(r*recs)
			switch {
			case i == parts:
				wantCode, wantBase = kerr.UnknownTopicOrPartition.Code, -1
			case r == 0 && i == bad:
				wantCode, wantBase = kerr.CorruptMessage.Code, -1
			case i == bad:
				wantBase = int64((r - 1) * recs) // its first batch was refused
			}
			wantPart := int32(i)
			if i == parts {
				wantPart = parts + 5
			}
			if p.Partition != wantPart || p.ErrorCode != wantCode || p.BaseOffset != wantBase {
				t.Errorf("request %d, answer %d: partition %d, code %d, base %d; want partition %d, code %d, base %d",
					r, i, p.Partition, p.ErrorCode, p.BaseOffset, wantPart, wantCode, wantBase)
			}
			if p.ErrorCode == 0 {
				if hw := eng.Stream("wide").Shards[i].HighWatermark(); int64(hw) < p.BaseOffset+recs {
					t.Errorf("request %d, partition %d: answered with base %d before its %d records were durable (high watermark %d)",
						r, i, p.BaseOffset, recs, hw)
				}
			}
		}
		if n := resp.Topics[1].Partitions; len(n) != 1 || n[0].ErrorCode != 0 || n[0].BaseOffset != int64(r*3) {
			t.Errorf("request %d: narrow answered %+v, want base %d", r, n, r*3)
		}
	}

	// Every accepted batch reads back, in order, and nothing else.
	for p := range int32(parts) {
		want := []string{}
		for r := range requests {
			if r == 0 && p == bad {
				continue
			}
			for i := range recs {
				want = append(want, fmt.Sprintf("p%d/r%d/%d", p, r, i))
			}
		}
		data, err := eng.Stream("wide").Shards[p].Read(0, 8<<20, true)
		if err != nil {
			t.Fatalf("read partition %d: %v", p, err)
		}
		var got []string
		for len(data) > 0 {
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(data); err != nil {
				t.Fatalf("partition %d: decode batch: %v", p, err)
			}
			data = data[12+int(rb.Length):]
			for _, rec := range readRecords(t, rb.Records, int(rb.NumRecords)) {
				got = append(got, string(bytes.TrimRight(rec.Value, "\x00")))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("partition %d holds %v, want %v", p, got, want)
		}
	}

	// Every request was split (the narrow stream's batch rides along).
	if got := counterValue(t, s.opts.Metrics.splitProduces); got != requests {
		t.Errorf("braid_kafka_split_produce_requests_total = %v, want %d", got, requests)
	}

	// Metrics count per stream what was appended.
	if got, want := counterValue(t, s.opts.Metrics.ProducedRecords.WithLabelValues("wide")), float64((requests*parts-1)*recs); got != want {
		t.Errorf("braid_produced_records_total{stream=wide} = %v, want %v", got, want)
	}
	if got, want := counterValue(t, s.opts.Metrics.ProducedRecords.WithLabelValues("narrow")), float64(requests*3); got != want {
		t.Errorf("braid_produced_records_total{stream=narrow} = %v, want %v", got, want)
	}
}

// readRecords decodes n records from an uncompressed batch's records.
func readRecords(t *testing.T, b []byte, n int) []kmsg.Record {
	t.Helper()
	out := make([]kmsg.Record, 0, n)
	for range n {
		l, w := binary.Varint(b)
		if w <= 0 || int(l) > len(b)-w {
			t.Fatalf("bad record length")
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(b[:w+int(l)]); err != nil {
			t.Fatalf("decode record: %v", err)
		}
		out = append(out, rec)
		b = b[w+int(l):]
	}
	return out
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
