package engine

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/shard"
)

// timedBatch is batch() with its records' timestamps set to ts.
func timedBatch(ts time.Time, values ...string) []byte {
	b := batch(values...)
	ms := uint64(ts.UnixMilli())
	binary.BigEndian.PutUint64(b[27:], ms)
	binary.BigEndian.PutUint64(b[35:], ms)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestRetentionByTimeAndSize(t *testing.T) {
	old, now := time.Now().Add(-2*time.Hour), time.Now()
	for _, tc := range []struct {
		name      string
		configs   catalog.Configs
		wantStart shard.Offset
	}{
		// 10 old batches, then 10 new ones, 1 record each.
		{"time", catalog.Configs{"retention.ms": "3600000"}, 10},
		{"size", catalog.Configs{"retention.bytes": fmt.Sprint(5 * len(timedBatch(now, "v00")))}, 15},
		{"time and size", catalog.Configs{"retention.ms": "3600000", "retention.bytes": fmt.Sprint(3 * len(timedBatch(now, "v00")))}, 17},
		{"compact only", catalog.Configs{"cleanup.policy": "compact", "retention.ms": "1"}, 0},
		{"forever", catalog.Configs{"retention.ms": "-1"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := openEngine(t, dir)
			if _, err := e.CreateStream("s", 1, tc.configs, false); err != nil {
				t.Fatal(err)
			}
			st := e.Stream("s")
			for i := range 20 {
				ts := now
				if i < 10 {
					ts = old
				}
				_, _, end, err := e.Produce(st, st.Shards[0], timedBatch(ts, fmt.Sprintf("v%02d", i)), nil)
				if err != nil {
					t.Fatal(err)
				}
				e.WaitDurable(t.Context(), end)
			}
			if err := e.MoveNow(); err != nil { // some data in segment files too
				t.Fatal(err)
			}
			e.RetentionPass(t.Context())
			start, hw, _ := st.Shards[0].Offsets()
			if start != tc.wantStart || hw != 20 {
				t.Fatalf("log start %d, hw %d; want %d, 20", start, hw, tc.wantStart)
			}
			got := readAllFrom(t, e, "s", 0, start)
			if len(got) != 20-int(start) || (len(got) > 0 && got[0] != fmt.Sprintf("v%02d", start)) {
				t.Fatalf("read %v from the log start", got)
			}
			if _, err := st.Shards[0].Read(start-1, 1<<20, true); start > 0 && err == nil {
				t.Fatal("read below the log start succeeded")
			}
			// A crash right after: the log start holds, nothing kept is lost.
			crashed := t.TempDir()
			copyDir(t, dir, crashed)
			e.Close()
			e2 := openEngine(t, crashed)
			defer e2.Close()
			if s2, _, _ := e2.Stream("s").Shards[0].Offsets(); s2 != start {
				t.Fatalf("log start %d after crash, want %d", s2, start)
			}
			if got2 := readAllFrom(t, e2, "s", 0, start); fmt.Sprint(got2) != fmt.Sprint(got) {
				t.Fatalf("after crash read %v, want %v", got2, got)
			}
		})
	}
}

// TestRetentionRemovesSegmentFiles: files wholly below the log start go.
func TestRetentionRemovesSegmentFiles(t *testing.T) {
	e := openEngine(t, t.TempDir())
	defer e.Close()
	// 40 batches of ~2 KiB: the 64 KiB WAL segments roll, so the mover has
	// closed segments to move into 8 KB shard segments.
	e.CreateStream("s", 1, catalog.Configs{"segment.bytes": "8000", "retention.bytes": "12000"}, false)
	st := e.Stream("s")
	for i := range 40 {
		produce(t, e, "s", 0, fmt.Sprintf("%03d-%s", i, string(make([]byte, 2000))))
	}
	if err := e.MoveNow(); err != nil {
		t.Fatal(err)
	}
	before, _ := st.Shards[0].Segments()
	stats := e.RetentionPass(t.Context())
	after, bytes := st.Shards[0].Segments()
	if before < 4 || after >= before || stats.SegmentsBytes == 0 {
		t.Fatalf("segments %d -> %d (%d bytes left), freed %d", before, after, bytes, stats.SegmentsBytes)
	}
	start, _, _ := st.Shards[0].Offsets()
	if got := readAllFrom(t, e, "s", 0, start); len(got) != 40-int(start) {
		t.Fatalf("%d records readable from %d, want %d", len(got), start, 40-int(start))
	}
}

// readAllFrom is readAll starting at from.
func readAllFrom(t *testing.T, e *Engine, name string, shardID int, from shard.Offset) []string {
	t.Helper()
	all := []string{}
	sh := e.Stream(name).Shards[shardID]
	for off := from; ; {
		data, err := sh.Read(off, 1<<20, true)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(data) == 0 {
			return all
		}
		vals, next := decodeValues(t, data, off)
		all = append(all, vals...)
		off = next
	}
}
