package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/shard"
)

// kv is a record for keyedBatch; a nil value is a tombstone.
type kv struct {
	key   string
	value *string
}

func val(s string) *string { return &s }

// keyedBatch builds a RecordBatch v2 of keyed records with timestamp ts,
// compressed with codec (0 none).
func keyedBatch(t *testing.T, ts time.Time, codec kgo.CompressionCodec, recs ...kv) []byte {
	t.Helper()
	var raw []byte
	for i, r := range recs {
		rec := kmsg.NewRecord()
		rec.OffsetDelta, rec.Key = int32(i), []byte(r.key)
		if r.value != nil {
			rec.Value = []byte(*r.value)
		}
		body := rec.AppendTo(nil)[1:]
		raw = binary.AppendVarint(raw, int64(len(body)))
		raw = append(raw, body...)
	}
	rb := kmsg.NewRecordBatch()
	rb.Magic, rb.LastOffsetDelta, rb.NumRecords = 2, int32(len(recs)-1), int32(len(recs))
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.FirstTimestamp, rb.MaxTimestamp = ts.UnixMilli(), ts.UnixMilli()
	if c, _ := kgo.DefaultCompressor(codec); c != nil {
		out, used := c.Compress(new(bytes.Buffer), raw)
		raw = append([]byte(nil), out...)
		rb.Attributes = int16(used)
	}
	rb.Records = raw
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// rec is a record read back.
type rec struct {
	off   shard.Offset
	key   string
	value string // "<nil>" for a tombstone
}

func (r rec) String() string { return fmt.Sprintf("%d:%s=%s", r.off, r.key, r.value) }

// readRecords reads a whole shard with kgo's batch processing (any codec,
// gaps allowed) and returns its records.
func readRecords(t *testing.T, e *Engine, name string, shardID int) []rec {
	t.Helper()
	sh := e.Stream(name).Shards[shardID]
	var out []rec
	start, hw, _ := sh.Offsets()
	for pos := start; pos < hw; {
		data, err := sh.Read(pos, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		p := kmsg.NewFetchResponseTopicPartition()
		p.HighWatermark, p.RecordBatches = int64(hw), data
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Offset: int64(pos)}, &p, kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			t.Fatalf("read at %d: %v", pos, fp.Err)
		}
		for _, r := range fp.Records {
			v := string(r.Value)
			if r.Value == nil {
				v = "<nil>"
			}
			out = append(out, rec{shard.Offset(r.Offset), string(r.Key), v})
		}
		if shard.Offset(next) <= pos {
			t.Fatalf("no progress at %d", pos)
		}
		pos = shard.Offset(next)
	}
	return out
}

func TestCompactKeepsLatestPerKey(t *testing.T) {
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			dir := t.TempDir()
			e := openEngine(t, dir)
			// One batch per logical segment: only the last batch is the head.
			if _, err := e.CreateStream("c", 1, catalog.Configs{"cleanup.policy": "compact", "segment.bytes": "14"}, false); err != nil {
				t.Fatal(err)
			}
			st := e.Stream("c")
			now := time.Now()
			batches := [][]kv{
				{{"k1", val("a")}},                      // 0
				{{"k2", val("b")}, {"k1", val("c")}},    // 1-2
				{{"k3", val("d")}, {"k1", val("e")}},    // 3-4
				{{"k2", nil}},                           // 5: tombstone, kept (delete.retention.ms 1 day)
				{{"k5", val("g")}, {"k5", val("h")}},    // 6-7
				{{"k4", val("f")}, {"k1", val("late")}}, // 8-9: the head, never cleaned
			}
			for i, b := range batches {
				if _, _, end, err := e.Produce(st, st.Shards[0], keyedBatch(t, now, codec, b...), nil); err != nil {
					t.Fatal(err)
				} else if err := e.WaitDurable(t.Context(), end); err != nil {
					t.Fatal(err)
				}
				if i == 2 {
					if err := e.MoveNow(); err != nil { // some in segment files, some in the log
						t.Fatal(err)
					}
				}
			}
			stats := e.CleanPass(t.Context(), true)
			want := []rec{{3, "k3", "d"}, {4, "k1", "e"}, {5, "k2", "<nil>"}, {7, "k5", "h"}, {8, "k4", "f"}, {9, "k1", "late"}}
			if got := readRecords(t, e, "c", 0); !slices.Equal(got, want) {
				t.Fatalf("after cleaning: %v, want %v", got, want)
			}
			if stats.Batches != 5 || stats.Dropped != 2 || stats.Records != 8 || stats.Removed != 4 {
				t.Fatalf("stats %+v, want 5 batches (2 dropped), 8 records (4 removed)", stats)
			}
			// Offsets are kept: the end does not move, and a fetch inside a
			// gap starts at the next batch.
			if _, hw, _ := st.Shards[0].Offsets(); hw != 10 {
				t.Fatalf("high watermark %d, want 10", hw)
			}
			// A second pass has nothing to do.
			if again := e.CleanPass(t.Context(), true); again.Removed != 0 {
				t.Fatalf("second pass removed %d records", again.Removed)
			}
			// Recovery replays the compaction from the log (no checkpoint
			// since), then from a checkpoint.
			e.wal.Close()
			e.lock.Close()
			e2 := openEngine(t, dir)
			if got := readRecords(t, e2, "c", 0); !slices.Equal(got, want) {
				t.Fatalf("after replay: %v, want %v", got, want)
			}
			if err := e2.Close(); err != nil {
				t.Fatal(err)
			}
			e3 := openEngine(t, dir)
			defer e3.Close()
			if got := readRecords(t, e3, "c", 0); !slices.Equal(got, want) {
				t.Fatalf("after a clean restart: %v, want %v", got, want)
			}
		})
	}
}
