package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
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
	if c := testCompressor(codec); c != nil {
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

var (
	testCompressorsMu sync.Mutex
	testCompressors   = map[kgo.CompressionCodec]kgo.Compressor{}
)

// testCompressor returns one compressor per codec: a zstd encoder holds
// goroutines and memory until closed, so one per batch would pile up.
func testCompressor(codec kgo.CompressionCodec) kgo.Compressor {
	testCompressorsMu.Lock()
	defer testCompressorsMu.Unlock()
	c, ok := testCompressors[codec]
	if !ok {
		c, _ = kgo.DefaultCompressor(codec)
		testCompressors[codec] = c
	}
	return c
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

func TestCompactTombstonesLagAndHead(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	defer e.Close()
	old, now := time.Now().Add(-time.Hour), time.Now()
	if _, err := e.CreateStream("c", 1, catalog.Configs{"cleanup.policy": "compact", "segment.bytes": "14",
		"delete.retention.ms": "60000", "min.compaction.lag.ms": "600000"}, false); err != nil {
		t.Fatal(err)
	}
	st := e.Stream("c")
	for _, b := range []struct {
		ts   time.Time
		recs []kv
	}{
		{old, []kv{{"gone", val("v1")}}},   // 0
		{old, []kv{{"gone", nil}}},         // 1: an hour-old tombstone: removed with its key
		{old, []kv{{"young", val("v1")}}},  // 2
		{now, []kv{{"young", nil}}},        // 3: younger than min.compaction.lag.ms: not cleanable
		{old, []kv{{"after", val("old")}}}, // 4: behind a young batch, so not cleanable either
		{now, []kv{{"head", val("h")}}},    // 5
	} {
		if _, _, end, err := e.Produce(st, st.Shards[0], keyedBatch(t, b.ts, kgo.NoCompression(), b.recs...), nil); err != nil {
			t.Fatal(err)
		} else if err := e.WaitDurable(t.Context(), end); err != nil {
			t.Fatal(err)
		}
	}
	state := st.Shards[0].CleanState(*st.Compact, time.Now())
	if state.CleanEnd != 3 || !state.Due {
		t.Fatalf("clean state %+v, want the range to end at 3 (min lag) and be due", state)
	}
	e.CleanPass(t.Context(), false)
	want := []rec{{2, "young", "v1"}, {3, "young", "<nil>"}, {4, "after", "old"}, {5, "head", "h"}}
	if got := readRecords(t, e, "c", 0); !slices.Equal(got, want) {
		t.Fatalf("after cleaning: %v, want %v", got, want)
	}
	if state := st.Shards[0].CleanState(*st.Compact, time.Now()); state.Due || state.CleanedTo != 3 || state.LastCleaned.IsZero() {
		t.Fatalf("clean state after the pass %+v, want cleaned to 3 and not due", state)
	}
}

// TestCompactNeverCleansOpenTransactions: the last stable offset bounds the
// cleanable range, so records of a transaction still open stay, and so do
// later records of their keys' older versions.
func TestCompactLastStableOffsetBounds(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	defer e.Close()
	if _, err := e.CreateStream("c", 1, catalog.Configs{"cleanup.policy": "compact", "segment.bytes": "14"}, false); err != nil {
		t.Fatal(err)
	}
	st := e.Stream("c")
	sh := st.Shards[0]
	put := func(b []byte, inTxn func(int32, int64, int16, bool) error) {
		t.Helper()
		if _, _, end, err := e.Produce(st, sh, b, inTxn); err != nil {
			t.Fatal(err)
		} else if err := e.WaitDurable(t.Context(), end); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	put(keyedBatch(t, now, kgo.NoCompression(), kv{"k", val("1")}), nil) // 0
	tb := keyedBatch(t, now, kgo.NoCompression(), kv{"k", val("2")})     // 1: open transaction
	binary.BigEndian.PutUint16(tb[21:], 0x10)                            // transactional
	binary.BigEndian.PutUint64(tb[43:], 7)                               // producer id
	binary.BigEndian.PutUint16(tb[51:], 0)                               // epoch
	binary.BigEndian.PutUint32(tb[53:], 0)                               // sequence
	binary.BigEndian.PutUint32(tb[17:], crc32.Checksum(tb[21:], crc32.MakeTable(crc32.Castagnoli)))
	put(tb, func(int32, int64, int16, bool) error { return nil })
	put(keyedBatch(t, now, kgo.NoCompression(), kv{"k", val("3")}), nil) // 2
	put(keyedBatch(t, now, kgo.NoCompression(), kv{"z", val("4")}), nil) // 3: head
	if lso := sh.LastStableOffset(); lso != 1 {
		t.Fatalf("last stable offset %d, want 1", lso)
	}
	if state := sh.CleanState(*st.Compact, time.Now()); state.CleanEnd != 1 {
		t.Fatalf("clean end %d with a transaction open at 1, want 1", state.CleanEnd)
	}
	e.CleanPass(t.Context(), true)
	if got := readRecords(t, e, "c", 0); len(got) != 4 {
		t.Fatalf("cleaning below an open transaction removed records: %v", got)
	}
}
