package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/shard"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCheckpointChainMatchesWholeCheckpoint changes shards every way a
// checkpoint delta must follow (appends, DeleteRecords, moves into segment
// files, compaction, streams created and deleted), checkpoints after each
// round, and checks that the chain on disk (base and deltas) decodes to
// what a whole checkpoint of the engine would hold at that moment. Then a
// restart recovers from the chain and reads the same records.
func TestCheckpointChainMatchesWholeCheckpoint(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(Options{Dir: dir, WALSegmentBytes: 64 << 10, CleanerEvery: time.Hour, RetentionEvery: time.Hour, MoveAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()
	if _, err := e.CreateStream("p", 3, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateStream("c", 1, catalog.Configs{"cleanup.policy": "compact", "segment.bytes": "14"}, false); err != nil {
		t.Fatal(err)
	}
	// Many small batches: snapshots of hundreds of entries, packed in
	// groups, dropped from the middle of one.
	if _, err := e.CreateStream("m", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var deltas, wholeInDelta, changed, dropped int
	for round := range 40 {
		// Large enough that log segments fill and moves have work.
		for range 1 + rng.IntN(4) {
			produce(t, e, "p", rng.IntN(3), fmt.Sprintf("r%d-%d-%s", round, rng.IntN(1000), bytes.Repeat([]byte("v"), 3000)))
		}
		for range rng.IntN(40) {
			produce(t, e, "m", 0, fmt.Sprint(round))
		}
		st := e.Stream("c")
		key := fmt.Sprintf("k%d", rng.IntN(4))
		if _, _, end, err := e.Produce(st, st.Shards[0], keyedBatch(t, time.Now().Add(-48*time.Hour), kgo.NoCompression(), kv{key, val(fmt.Sprint(round))}), nil); err != nil {
			t.Fatal(err)
		} else if err := e.WaitDurable(context.Background(), end); err != nil {
			t.Fatal(err)
		}
		switch rng.IntN(6) {
		case 0: // entries leave the front
			sh := e.Stream("p").Shards[rng.IntN(3)]
			start, hw, _ := sh.Offsets()
			if rng.IntN(2) == 0 { // a few small batches, most often inside a group
				sh = e.Stream("m").Shards[0]
				start, _, _ = sh.Offsets()
				hw = start + shard.Offset(rng.IntN(60))
			}
			if hw > start {
				to := start + 1 + shard.Offset(rng.IntN(int(hw-start)))
				if rng.IntN(3) == 0 {
					to = hw // what the last checkpoint held and what followed
				}
				if _, err := e.DeleteRecords(context.Background(), sh, to); err != nil {
					t.Fatal(err)
				}
			}
		case 1: // entries repointed into segment files (MoveNow checkpoints too)
			if err := e.MoveNow(); err != nil {
				t.Fatal(err)
			}
		case 2: // entries rewritten
			e.CleanPass(context.Background(), true)
		case 3: // a shard appears, or goes
			if e.Stream("x") == nil {
				if _, err := e.CreateStream("x", 1, nil, false); err != nil {
					t.Fatal(err)
				}
				produce(t, e, "x", 0, "x")
			} else if err := e.DeleteStream("x"); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.checkpoint(); err != nil {
			t.Fatal(err)
		}
		got, err := loadCheckpoint(e.opts.FS, dir)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if got.deltas > 0 {
			deltas++
			w, c, d := deltaShardKinds(t, dir, got.chain, got.deltas)
			wholeInDelta += w
			changed += c
			dropped += d
		}
		want := map[shard.Key][]byte{}
		for _, st := range e.Streams() {
			for _, sh := range st.Shards {
				want[sh.Key()] = shard.AppendPlainSnapshot(nil, sh.Snapshot(got.replayFrom))
			}
		}
		if len(got.shards) != len(want) {
			t.Fatalf("round %d: the chain holds %d shards, the engine %d", round, len(got.shards), len(want))
		}
		for _, snap := range got.shards {
			// The plain encoding, which follows from the entries alone:
			// the chain's entries are sealed in other blocks.
			if enc := shard.AppendPlainSnapshot(nil, snap); !bytes.Equal(enc, want[snap.Key]) {
				t.Fatalf("round %d (after %d deltas): shard %s differs from a whole snapshot:\nchain %+v\nwhole %x\nchain %x",
					round, got.deltas, snap.Key, snap.Entries(), want[snap.Key], enc)
			}
		}
	}
	// The run must have exercised what it claims to: deltas that carry
	// changes, some dropping entries, and deltas that carry a rewritten
	// shard whole.
	if deltas < 10 || changed == 0 || dropped == 0 || wholeInDelta == 0 {
		t.Fatalf("%d rounds ended on a delta, %d shard changes (%d dropping entries) and %d whole shards in deltas: too little to check",
			deltas, changed, dropped, wholeInDelta)
	}
	want := map[string][]byte{}
	for _, st := range e.Streams() {
		for i, sh := range st.Shards {
			want[fmt.Sprint(st.Name, i)] = readBatches(t, sh)
		}
	}
	if n := e.Stream("m").Shards[0].Snapshot(e.DurablePosition()); n.Len() < 300 {
		t.Fatalf("the stream of small batches holds %d, too few to fill groups", n.Len())
	}
	// A crash, not a close: Close writes another delta. Then the same
	// chain as a Braid before packed snapshots wrote it.
	for _, legacy := range []bool{false, true} {
		crashed := t.TempDir()
		copyDir(t, dir, crashed)
		if legacy {
			toLegacyChain(t, crashed)
		}
		e2, err := Open(Options{Dir: crashed, WALSegmentBytes: 64 << 10, CleanerEvery: time.Hour, RetentionEvery: time.Hour, MoveAfter: time.Hour})
		if err != nil {
			t.Fatalf("legacy chain %v: %v", legacy, err)
		}
		if rec := e2.Recovery(); rec.CheckpointAt == 0 {
			t.Fatalf("legacy chain %v: recovery did not start from the checkpoint: %+v", legacy, rec)
		}
		for _, st := range e2.Streams() {
			for i, sh := range st.Shards {
				if got := readBatches(t, sh); !bytes.Equal(got, want[fmt.Sprint(st.Name, i)]) {
					t.Fatalf("legacy chain %v: after recovery, %s/%d holds %d bytes of batches, want %d", legacy, st.Name, i, len(got), len(want[fmt.Sprint(st.Name, i)]))
				}
			}
		}
		if err := e2.Close(); err != nil {
			t.Fatal(err)
		}
		if data, err := os.ReadFile(filepath.Join(crashed, checkpointName)); err != nil || string(data[:8]) != checkpointMagic {
			t.Fatalf("legacy chain %v: after a restart the base is %.8q (%v), want %s", legacy, data, err, checkpointMagic)
		}
	}
}

// toLegacyChain rewrites the checkpoint chain in dir as Braid wrote it
// before BRDCKPT4: a BRDCKPT3 base and BRDCKDL1 deltas, entries plain.
func toLegacyChain(t *testing.T, dir string) {
	t.Helper()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	rewritten := 0
	for _, d := range names {
		if _, _, delta := parseDeltaName(d.Name()); !delta && d.Name() != checkpointName {
			continue
		}
		path := filepath.Join(dir, d.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		if d.Name() == checkpointName {
			ck, err := decodeCheckpoint(data)
			if err != nil {
				t.Fatal(err)
			}
			out = encodeBase(ck, checkpointMagicV3, shard.AppendPlainSnapshot)
		} else {
			body := data[:len(data)-4]
			out = append([]byte(deltaMagicV1), body[8:32]...)
			rest := body[32:]
			for range binary.LittleEndian.Uint32(body[28:]) {
				kind := rest[0]
				n := 1
				if kind == deltaShardChange {
					n += 4
				}
				out, rest = append(out, rest[:n]...), rest[n:]
				snap, r, err := shard.ReadSnapshot(rest, shard.SnapshotPacked)
				if err != nil {
					t.Fatal(err)
				}
				out, rest = shard.AppendPlainSnapshot(out, snap), r
			}
			out = append(out, rest...) // offsets and transactions
			out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		rewritten++
	}
	if rewritten < 2 {
		t.Fatalf("%d checkpoint files rewritten, want a base and deltas", rewritten)
	}
}

// readBatches reads a shard from its log start to its end, gaps left by
// compaction included, and returns the batches as read.
func readBatches(t *testing.T, sh *shard.Shard) []byte {
	t.Helper()
	var all []byte
	off, _, _ := sh.Offsets()
	for {
		data, err := sh.Read(off, 1<<20, true)
		if err != nil {
			t.Fatalf("read %s at %d: %v", sh.Key(), off, err)
		}
		if len(data) == 0 {
			return all
		}
		all = append(all, data...)
		for len(data) > 0 {
			h, err := shard.ParseHeader(data)
			if err != nil {
				t.Fatal(err)
			}
			off = shard.Offset(h.BaseOffset+int64(h.LastOffsetDelta)) + 1
			data = data[12+h.Length:]
		}
	}
}

// deltaShardKinds counts the shards a delta holds whole and as changes,
// and the changes that drop entries.
func deltaShardKinds(t *testing.T, dir string, chain uint64, seq int) (whole, changes, drops int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, deltaName(chain, seq)))
	if err != nil {
		t.Fatal(err)
	}
	rest := data[32 : len(data)-4]
	for range int(binary.LittleEndian.Uint32(data[28:])) {
		kind := rest[0]
		rest = rest[1:]
		if kind == deltaShardChange {
			changes++
			if binary.LittleEndian.Uint32(rest) > 0 {
				drops++
			}
			rest = rest[4:]
		} else {
			whole++
		}
		_, r, err := shard.ReadSnapshot(rest, shard.SnapshotPacked)
		if err != nil {
			t.Fatal(err)
		}
		rest = r
	}
	return whole, changes, drops
}

// TestCheckpointDeltaCostFollowsChanges checks what deltas are for: with
// much retained and little written since, a delta is small, and the base
// is written again only once the deltas add up to it (or number
// maxCheckpointDeltas), removing the old chain's deltas.
func TestCheckpointDeltaCostFollowsChanges(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	defer e.Close()
	if _, err := e.CreateStream("s", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	// Packed, these alike batches take about 4 bytes each in the base:
	// enough of them that 64 deltas of one batch add up to less.
	for i := range 5000 {
		produce(t, e, "s", 0, fmt.Sprint(i))
	}
	if err := e.checkpoint(); err != nil {
		t.Fatal(err)
	}
	base, err := os.Stat(filepath.Join(dir, checkpointName))
	if err != nil {
		t.Fatal(err)
	}
	first := e.ckChain.id
	for i := range maxCheckpointDeltas {
		produce(t, e, "s", 0, fmt.Sprint("more", i))
		if err := e.checkpoint(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(dir, deltaName(first, i+1)))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > base.Size()/20 {
			t.Fatalf("delta %d of one new batch is %d bytes, the base of 5000 batches %d", i+1, fi.Size(), base.Size())
		}
	}
	produce(t, e, "s", 0, "last")
	if err := e.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if e.ckChain.id != first+1 || e.ckChain.deltas != 0 {
		t.Fatalf("after %d deltas the chain is %d with %d deltas, want a new base", maxCheckpointDeltas, e.ckChain.id, e.ckChain.deltas)
	}
	names, _ := os.ReadDir(dir)
	for _, d := range names {
		if _, _, ok := parseDeltaName(d.Name()); ok {
			t.Fatalf("delta %s of the old chain is still there", d.Name())
		}
	}
}

// TestCheckpointChainFaults opens data directories whose chain is damaged:
// a delta missing before another, or a delta with a flipped byte, is
// corruption (deltas are durable one by one, so no crash leaves either);
// a delta of an older chain, which a crash can leave behind a new base,
// is ignored.
func TestCheckpointChainFaults(t *testing.T) {
	dir := t.TempDir()
	e := openEngine(t, dir)
	if _, err := e.CreateStream("s", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		produce(t, e, "s", 0, fmt.Sprint(i))
	}
	e.ckptMu.Lock()
	e.ckChain.marks = nil // the next checkpoint is a base
	e.ckptMu.Unlock()
	for i := range 3 {
		produce(t, e, "s", 0, fmt.Sprint(i))
		if err := e.checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	chain := e.ckChain.id
	want := readAll(t, e, "s", 0)
	e.Close()
	if _, err := os.Stat(filepath.Join(dir, deltaName(chain, 3))); err != nil {
		t.Fatalf("want deltas 1-3 (two checkpoints and Close after the base): %v", err)
	}
	open := func(d string) error {
		e, err := Open(Options{Dir: d, WALSegmentBytes: 64 << 10})
		if err == nil {
			defer e.Close()
			if got := readAll(t, e, "s", 0); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("read %v, want %v", got, want)
			}
		}
		return err
	}
	t.Run("intact", func(t *testing.T) {
		d := t.TempDir()
		copyDir(t, dir, d)
		if err := open(d); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		d := t.TempDir()
		copyDir(t, dir, d)
		os.Remove(filepath.Join(d, deltaName(chain, 2)))
		if err := open(d); !errors.Is(err, ErrCorruptCheckpoint) {
			t.Fatalf("opened with delta 2 of 3 missing: %v", err)
		}
	})
	t.Run("flipped", func(t *testing.T) {
		d := t.TempDir()
		copyDir(t, dir, d)
		p := filepath.Join(d, deltaName(chain, 1))
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 1
		os.WriteFile(p, b, 0o644)
		if err := open(d); !errors.Is(err, ErrCorruptCheckpoint) {
			t.Fatalf("opened with a flipped byte in a delta: %v", err)
		}
	})
	t.Run("older chain", func(t *testing.T) {
		d := t.TempDir()
		copyDir(t, dir, d)
		b, _ := os.ReadFile(filepath.Join(d, deltaName(chain, 1)))
		// A delta naming an older chain would apply its changes to the
		// wrong base.
		os.WriteFile(filepath.Join(d, deltaName(chain-1, 1)), b, 0o644)
		os.WriteFile(filepath.Join(d, deltaName(chain-1, 4)), b, 0o644)
		if err := open(d); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCheckpointFromANewerVersion: a base in a format this version does
// not know, but a later one would write, is refused with an error that
// says so, not as a bare bad header.
func TestCheckpointFromANewerVersion(t *testing.T) {
	data := encodeCheckpoint(checkpointData{replayFrom: 7, chain: 1, offsets: []byte("[]"), txns: []byte("[]")})
	copy(data, "BRDCKPT9")
	_, err := decodeCheckpoint(data)
	if !errors.Is(err, ErrCorruptCheckpoint) || !strings.Contains(err.Error(), "newer than this version") {
		t.Fatalf("a BRDCKPT9 base: %v", err)
	}
	copy(data, "XRDCKPT4")
	if _, err := decodeCheckpoint(data); err == nil || strings.Contains(err.Error(), "newer") {
		t.Fatalf("a base with a bad header: %v", err)
	}
}
