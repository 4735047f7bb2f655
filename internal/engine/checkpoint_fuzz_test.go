package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/group"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/txn"
)

// encodeCheckpoint writes ck as a base in the BRDCKPT4 format, as
// Engine.checkpoint does; TestEncodeCheckpointMatchesEngine keeps the two
// in step.
func encodeCheckpoint(ck checkpointData) []byte {
	return encodeBase(ck, checkpointMagic, shard.AppendSnapshot)
}

// encodeBase writes ck as a base with the given magic, each shard's
// snapshot written by appendSnap.
func encodeBase(ck checkpointData, magic string, appendSnap func([]byte, shard.Snapshot) []byte) []byte {
	buf := []byte(magic)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(ck.replayFrom))
	buf = binary.LittleEndian.AppendUint64(buf, ck.chain)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(ck.shards)))
	for _, snap := range ck.shards {
		buf = appendSnap(buf, snap)
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(ck.offsets)))
	buf = append(buf, ck.offsets...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(ck.txns)))
	buf = append(buf, ck.txns...)
	return binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

// sampleDir is a data directory with a compacted stream whose batches lie
// in a shard segment file, a checkpoint, committed offsets and an
// idempotent producer: built once, copied for each fuzz input.
var sampleDir struct {
	once sync.Once
	dir  string
	seg  string // the segment file, relative to dir
	err  error
}

// TestMain removes the sample directory, which outlives single tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if sampleDir.dir != "" {
		os.RemoveAll(sampleDir.dir)
	}
	os.Exit(code)
}

func buildSampleDir(t testing.TB) (dir, seg string) {
	sampleDir.once.Do(func() {
		dir, err := os.MkdirTemp("", "braid-fuzz-sample-")
		if err != nil {
			sampleDir.err = err
			return
		}
		sampleDir.dir = dir
		e, err := Open(Options{Dir: dir, WALSegmentBytes: 64 << 10})
		if err != nil {
			sampleDir.err = err
			return
		}
		defer e.Close()
		if _, err := e.CreateStream("s", 1, catalog.Configs{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01", "segment.bytes": "64"}, false); err != nil {
			sampleDir.err = err
			return
		}
		st := e.Stream("s")
		for _, vs := range [][]string{{"a", "b"}, {"a", "c"}, {"b"}} {
			_, _, end, err := e.Produce(st, st.Shards[0], batch(vs...), nil)
			if err == nil {
				err = e.WaitDurable(context.Background(), end)
			}
			if err != nil {
				sampleDir.err = err
				return
			}
		}
		if err := e.offsets.Commit(context.Background(), "g", map[group.TopicPartition]group.Commit{{Topic: "s"}: {Offset: 2}}); err != nil {
			sampleDir.err = err
			return
		}
		// Move everything durable, active WAL segment included, into a
		// segment file.
		if _, err := st.Shards[0].MoveOut(e.DurablePosition(), 1<<30, nil); err != nil {
			sampleDir.err = err
			return
		}
		if err := e.checkpoint(); err != nil {
			sampleDir.err = err
			return
		}
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(path, ".seg") {
				sampleDir.seg, _ = filepath.Rel(dir, path)
			}
			return err
		})
		if sampleDir.seg == "" {
			sampleDir.err = os.ErrNotExist
		}
	})
	if sampleDir.err != nil {
		t.Fatalf("build the sample data dir: %v", sampleDir.err)
	}
	return sampleDir.dir, sampleDir.seg
}

// TestEncodeCheckpointMatchesEngine checks the fuzz target's encoder
// against a checkpoint the engine wrote, byte for byte.
func TestEncodeCheckpointMatchesEngine(t *testing.T) {
	dir, _ := buildSampleDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := decodeCheckpoint(data)
	if err != nil {
		t.Fatal(err)
	}
	entries := 0
	for _, snap := range ck.shards {
		entries += snap.Len()
	}
	if entries == 0 || len(ck.offsets) < 10 {
		t.Fatalf("the sample checkpoint holds too little: %+v", ck)
	}
	// What it decoded is what the engine holds: the sample's shard, its
	// committed offset and an (empty) transaction state.
	var sample *shard.Snapshot
	for i := range ck.shards {
		if ck.shards[i].Len() > 0 {
			sample = &ck.shards[i]
		}
	}
	if sample == nil || sample.Len() != 3 || sample.Next != 5 {
		t.Fatalf("decoded shard snapshot %+v, want 3 batches up to offset 5", sample)
	}
	offs := group.NewOffsets()
	if err := offs.Restore(ck.offsets); err != nil {
		t.Fatalf("offsets section: %v", err)
	}
	if c := offs.Fetch("g")[group.TopicPartition{Topic: "s"}]; c.Offset != 2 {
		t.Fatalf("offsets section holds %+v for g, want offset 2", offs.Fetch("g"))
	}
	if err := txn.New(txn.Options{}).Restore(ck.txns); err != nil {
		t.Fatalf("transactions section: %v", err)
	}
	if got := encodeCheckpoint(ck); !bytes.Equal(got, data) {
		t.Fatalf("re-encoded checkpoint differs from the engine's (%d and %d bytes)", len(got), len(data))
	}
}

// FuzzDecodeCheckpoint decodes garbage as a checkpoint file. With fixCRC
// the input gets a valid checksum, so the fuzzer reaches the sections
// behind it (a writer bug, not a disk error, would produce those). The
// decoder returns an error or a checkpoint, never panics, and what it
// decodes from a BRDCKPT4 file encodes back to the same checkpoint.
func FuzzDecodeCheckpoint(f *testing.F) {
	dir, _ := buildSampleDir(f)
	real, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real, false)
	f.Add(real[:len(real)-4], true)
	empty := encodeCheckpoint(checkpointData{replayFrom: 7, chain: 1, offsets: []byte("[]"), txns: []byte("[]")})
	f.Add(empty[:len(empty)-4], true)
	v1 := append([]byte(checkpointMagicV1), make([]byte, 16)...)
	f.Add(v1, true)
	f.Fuzz(func(t *testing.T, data []byte, fixCRC bool) {
		if fixCRC {
			data = binary.LittleEndian.AppendUint32(bytes.Clone(data), crc32.Checksum(data, castagnoli))
		}
		ck, err := decodeCheckpoint(data)
		if err != nil {
			return
		}
		ck.oldestWAL()
		if string(data[:8]) != checkpointMagic {
			return
		}
		again, err := decodeCheckpoint(encodeCheckpoint(ck))
		if err != nil {
			t.Fatalf("re-reading an encoded checkpoint: %v", err)
		}
		if !reflect.DeepEqual(again, ck) {
			t.Fatalf("checkpoint changed in a round trip:\n%+v\n%+v", ck, again)
		}
	})
}

// FuzzApplyCheckpointDelta applies garbage as a delta to the sample
// data directory's base checkpoint (with fixCRC, with a valid checksum, so
// the fuzzer reaches the shard records behind it). It returns an error or
// a checkpoint, never panics, and what it applies leaves every shard's
// entries ascending.
func FuzzApplyCheckpointDelta(f *testing.F) {
	dir, _ := buildSampleDir(f)
	baseData, err := os.ReadFile(filepath.Join(dir, checkpointName))
	if err != nil {
		f.Fatal(err)
	}
	base, err := decodeCheckpoint(baseData)
	if err != nil {
		f.Fatal(err)
	}
	// Close wrote a delta after the sample's checkpoint.
	delta, err := os.ReadFile(filepath.Join(dir, deltaName(base.chain, 1)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(delta, false)
	f.Add(delta[:len(delta)-4], true)
	f.Fuzz(func(t *testing.T, data []byte, fixCRC bool) {
		if fixCRC {
			data = binary.LittleEndian.AppendUint32(bytes.Clone(data), crc32.Checksum(data, castagnoli))
		}
		ck := base
		ck.shards = slices.Clone(base.shards)
		if err := ck.applyDelta(data, 1); err != nil {
			return
		}
		ck.oldestWAL()
		for _, snap := range ck.shards {
			es := snap.Entries()
			for i := 1; i < len(es); i++ {
				if es[i].Base <= es[i-1].Last {
					t.Fatalf("shard %s: entry %d at %d follows one ending at %d", snap.Key, i, es[i].Base, es[i-1].Last)
				}
			}
		}
	})
}

// FuzzSegmentFile replaces the bytes of a shard segment file, as a disk
// or a bug might, and opens the node on it. Opening may fail; if it does
// not, reading the shard (both isolation levels), the time index (ListOffsets
// by time and max timestamp), producer state and a compaction pass over the
// garbage must return errors, not panic.
func FuzzSegmentFile(f *testing.F) {
	dir, seg := buildSampleDir(f)
	orig, err := os.ReadFile(filepath.Join(dir, seg))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(orig)
	f.Add(orig[:len(orig)/2])
	flipped := bytes.Clone(orig)
	flipped[len(flipped)-1] ^= 0xff
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		copyDir(t, dir, d)
		if err := os.WriteFile(filepath.Join(d, seg), data, 0o644); err != nil {
			t.Fatal(err)
		}
		e, err := Open(Options{Dir: d, WALSegmentBytes: 64 << 10, CleanerEvery: time.Hour, RetentionEvery: time.Hour, MoveAfter: time.Hour})
		if err != nil {
			return
		}
		defer e.Close()
		sh := e.Stream("s").Shards[0]
		for from := shard.Offset(0); from < 6; from++ {
			sh.Read(from, 1<<20, true)
			sh.ReadCommitted(from, 1<<20, true)
		}
		for _, ts := range []int64{-1, 0, time.Now().UnixMilli(), 1 << 62} {
			sh.OffsetForTime(ts)
		}
		sh.MaxTimestamp()
		sh.Producers()
		e.CleanPass(context.Background(), true)
	})
}

// FuzzCheckpointRecovery starts the node on a checkpoint with a valid
// checksum but garbage inside (what a writer bug would leave): Open either
// refuses it with an error or recovers, and then reading every shard, the
// time index and the groups' offsets must not panic.
func FuzzCheckpointRecovery(f *testing.F) {
	dir, _ := buildSampleDir(f)
	real, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(real[:len(real)-4])
	f.Fuzz(func(t *testing.T, body []byte) {
		d := t.TempDir()
		copyDir(t, dir, d)
		data := binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
		if err := os.WriteFile(filepath.Join(d, "checkpoint"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		e, err := Open(Options{Dir: d, WALSegmentBytes: 64 << 10, CleanerEvery: time.Hour, RetentionEvery: time.Hour, MoveAfter: time.Hour})
		if err != nil {
			return
		}
		defer e.Close()
		for _, st := range e.Streams() {
			for _, sh := range st.Shards {
				start, hw, _ := sh.Offsets()
				for from := start; from <= min(hw, start+4); from++ {
					sh.Read(from, 1<<20, true)
					sh.ReadCommitted(from, 1<<20, true)
				}
				sh.OffsetForTime(0)
				sh.MaxTimestamp()
			}
		}
		for _, g := range e.Offsets().Groups() {
			e.Offsets().Fetch(g)
		}
		e.Txns().List()
	})
}
