package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/shard"
)

// batch builds an uncompressed RecordBatch v2 holding the given values,
// each keyed by itself (so it can go to compacted streams too).
func batch(values ...string) []byte { return buildTestBatch(true, values...) }

// batchNullKeys builds a batch whose records have values but no keys.
func batchNullKeys(values ...string) []byte { return buildTestBatch(false, values...) }

func buildTestBatch(keyed bool, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Value = []byte(v)
		if keyed {
			r.Key = []byte(v)
		}
		body := r.AppendTo(nil)[1:] // length varint of 0 is one byte
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	rb := kmsg.NewRecordBatch()
	rb.Magic, rb.LastOffsetDelta, rb.NumRecords = 2, int32(len(values)-1), int32(len(values))
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.Records = recs
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	raw := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

func openEngine(t *testing.T, dir string) *Engine {
	t.Helper()
	e, err := Open(Options{Dir: dir, WALSegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func produce(t *testing.T, e *Engine, name string, shardID int, values ...string) shard.Offset {
	t.Helper()
	st := e.Stream(name)
	base, _, end, err := e.Produce(st, st.Shards[shardID], batch(values...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.WaitDurable(context.Background(), end); err != nil {
		t.Fatal(err)
	}
	return base
}

// readAll returns every record value of a shard, checking offsets are dense.
func readAll(t *testing.T, e *Engine, name string, shardID int) []string {
	t.Helper()
	out := readAllFrom(t, e, name, shardID, 0)
	if len(out) == 0 {
		return nil
	}
	return out
}

// decodeValues returns the values of the records in data at or after from,
// checking that offsets are dense, and the offset after the last one.
func decodeValues(t *testing.T, data []byte, from shard.Offset) ([]string, shard.Offset) {
	t.Helper()
	var out []string
	off := from
	for len(data) > 0 {
		h, err := shard.Validate(data[:12+binary.BigEndian.Uint32(data[8:])])
		if err != nil {
			t.Fatalf("read back a bad batch at %d: %v", off, err)
		}
		var rb kmsg.RecordBatch
		rb.ReadFrom(data)
		recs := rb.Records
		for range h.NumRecords {
			n, k := binary.Varint(recs)
			var r kmsg.Record
			if err := r.ReadFrom(recs[:k+int(n)]); err != nil {
				t.Fatal(err)
			}
			recs = recs[k+int(n):]
			got := shard.Offset(h.BaseOffset + int64(r.OffsetDelta))
			if got < from {
				continue // a batch that starts before the read position
			}
			if got != off {
				t.Fatalf("record offset %d, want %d", got, off)
			}
			out = append(out, string(r.Value))
			off++
		}
		data = data[12+h.Length:]
	}
	return out, off
}

func TestMoveToSegmentsAndRecover(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	if _, err := e.CreateStream("s", 2, catalog.Configs{"segment.bytes": "100000"}, false); err != nil {
		t.Fatal(err)
	}
	var want [2][]string
	val := string(bytes.Repeat([]byte("x"), 900))
	for i := range 600 {
		v := fmt.Sprintf("%d-%s", i, val)
		produce(t, e, "s", i%2, v)
		want[i%2] = append(want[i%2], v)
	}
	walBefore := len(e.wal.SegmentStarts())
	if err := e.MoveNow(); err != nil {
		t.Fatal(err)
	}
	if after := len(e.wal.SegmentStarts()); walBefore < 5 || after != 1 {
		t.Fatalf("WAL segments %d before the move, %d after; want several, then only the active one", walBefore, after)
	}
	if n, _ := e.Stream("s").Shards[0].Segments(); n < 2 {
		t.Fatalf("shard 0 has %d segment files, want several (segment.bytes=100000)", n)
	}
	for s := range 2 {
		if got := readAll(t, e, "s", s); len(got) != len(want[s]) || got[299] != want[s][299] {
			t.Fatalf("shard %d after move: %d records", s, len(got))
		}
	}
	// More data after the move lands in the log again, and both survive.
	produce(t, e, "s", 0, "after-move")
	want[0] = append(want[0], "after-move")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEngine(t, dir)
	for s := range 2 {
		got := readAll(t, e, "s", s)
		if fmt.Sprint(got) != fmt.Sprint(want[s]) {
			t.Fatalf("shard %d after reopen: %d records, want %d", s, len(got), len(want[s]))
		}
	}
	e.Close()
}

// TestMoveWithoutCheckpointIsCutOff simulates a crash between copying into
// shard segments and writing the checkpoint: the old checkpoint still points
// into the log, so the extra segment bytes must be cut off and the data read
// from the log.
func TestMoveWithoutCheckpointIsCutOff(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	e.CreateStream("s", 1, nil, false)
	for i := range 200 {
		produce(t, e, "s", 0, fmt.Sprintf("v%d-%s", i, bytes.Repeat([]byte("y"), 700)))
	}
	if err := e.checkpoint(); err != nil {
		t.Fatal(err)
	}
	stale, _ := os.ReadFile(filepath.Join(dir, "checkpoint"))
	// Copy into segments without checkpointing or reclaiming.
	if _, err := e.Stream("s").Shards[0].MoveOut(e.wal.ActiveStart(), 1<<30, nil); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, e, "s", 0)
	e.Close()
	// The checkpoint as it was: the base then, and none of the deltas
	// written since (Close wrote one).
	os.WriteFile(filepath.Join(dir, "checkpoint"), stale, 0o644)
	removeCheckpointDeltas(t, dir)
	e = openEngine(t, dir)
	defer e.Close()
	if n, size := e.Stream("s").Shards[0].Segments(); n != 0 || size != 0 {
		t.Fatalf("unreferenced segment kept: %d files, %d bytes", n, size)
	}
	if got := readAll(t, e, "s", 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after recovery from a stale checkpoint: %d records, want %d", len(got), len(want))
	}
}

func TestDeleteRecordsSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	e.CreateStream("s", 1, nil, false)
	for i := range 10 {
		produce(t, e, "s", 0, fmt.Sprint(i))
	}
	sh := e.Stream("s").Shards[0]
	if _, err := e.DeleteRecords(context.Background(), sh, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.Read(3, 1<<20, true); err == nil {
		t.Fatal("read below the log start succeeded")
	}
	// No graceful close: reopen a copy of the directory as a crash would
	// leave it (the WAL frame is durable, the checkpoint is old).
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	e.Close()
	e2 := openEngine(t, crashed)
	defer e2.Close()
	start, hw, _ := e2.Stream("s").Shards[0].Offsets()
	if start != 4 || hw != 10 {
		t.Fatalf("after restart log start %d, hw %d; want 4, 10", start, hw)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		if info.Name() == "LOCK" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReclaimKeepsWALTheCheckpointNeeds: after a move has repointed the
// in-memory index but before its checkpoint is written, reclaiming the WAL
// must not delete what the checkpoint on disk still points at.
func TestReclaimKeepsWALTheCheckpointNeeds(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	e.CreateStream("s", 1, nil, false)
	for i := range 300 {
		produce(t, e, "s", 0, fmt.Sprintf("v%d-%s", i, bytes.Repeat([]byte("z"), 700)))
	}
	if err := e.checkpoint(); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, e, "s", 0)
	if _, err := e.Stream("s").Shards[0].MoveOut(e.wal.ActiveStart(), 1<<30, nil); err != nil {
		t.Fatal(err)
	}
	e.reclaimWAL()
	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	e.Close()
	e2 := openEngine(t, crashed)
	defer e2.Close()
	if got := readAll(t, e2, "s", 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after a crash between move and checkpoint: %d records, want %d", len(got), len(want))
	}
}

// TestRestartReplaysOnlyAfterCheckpoint: restart work is bounded by what was
// written since the last checkpoint, not by the data kept.
func TestRestartReplaysOnlyAfterCheckpoint(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	e.CreateStream("s", 4, nil, false)
	for i := range 2000 {
		produce(t, e, "s", i%4, fmt.Sprintf("before-%d", i))
	}
	if err := e.checkpoint(); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		produce(t, e, "s", i%4, fmt.Sprintf("after-%d", i))
	}
	crashed := t.TempDir()
	copyDir(t, dir, crashed) // as a crash leaves it: no closing checkpoint
	e.Close()
	e2 := openEngine(t, crashed)
	defer e2.Close()
	if rec := e2.Recovery(); rec.FramesReplayed != 7 {
		t.Fatalf("replayed %d frames after the checkpoint, want 7 (%+v)", rec.FramesReplayed, rec)
	}
	total := 0
	for s := range 4 {
		total += len(readAll(t, e2, "s", s))
	}
	if total != 2007 {
		t.Fatalf("%d records after restart, want 2007", total)
	}
}

// TestClosedShardRefusesWrites: a closed shard (after a split or merge) takes
// no more writes, with an error the Kafka door maps, and stays readable.
func TestClosedShardTakesNoRecords(t *testing.T) {
	e := openEngine(t, t.TempDir())
	defer e.Close()
	e.CreateStream("s", 1, nil, false)
	produce(t, e, "s", 0, "kept")
	if _, err := e.SplitShard(context.Background(), "s", 0, nil); err != nil {
		t.Fatal(err)
	}
	// A produce addressed to the closed shard is taken, but its records
	// go to a child (routed by key: each record's key is its value).
	if base := produce(t, e, "s", 0, "after"); base != -1 {
		t.Fatalf("produce to a closed shard answered base %d, want -1 (routed)", base)
	}
	if got := readAll(t, e, "s", 0); fmt.Sprint(got) != "[kept]" {
		t.Fatalf("closed shard reads %v, want [kept]", got)
	}
	if got := fmt.Sprint(readAll(t, e, "s", 1), readAll(t, e, "s", 2)); got != "[after] []" && got != "[] [after]" {
		t.Fatalf("children read %s, want the routed record in one of them", got)
	}
}

// removeCheckpointDeltas removes every checkpoint delta in dir, leaving the
// base alone.
func removeCheckpointDeltas(t *testing.T, dir string) {
	t.Helper()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range names {
		if _, _, ok := parseDeltaName(d.Name()); ok {
			if err := os.Remove(filepath.Join(dir, d.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
}
