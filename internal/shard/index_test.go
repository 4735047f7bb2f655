package shard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// TestIndexMatchesSlice runs random appends, seals, changes, front drops
// and resets on an index and on a plain array, and checks after each that
// every way of reading the index sees the array.
func TestIndexMatchesSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var x index
	var want []Entry
	next := Offset(0)
	newEntry := func() Entry {
		e := Entry{Base: next, Last: next + Offset(rng.IntN(40)), MaxTS: 1_700_000_000_000 + int64(rng.IntN(1000)) - 500}
		switch rng.IntN(20) {
		case 0: // a gap compaction left
			e.Base += Offset(rng.IntN(1000))
			e.Last = e.Base + Offset(rng.IntN(3))
		case 1: // extremes survive the deltas
			e.MaxTS = math.MinInt64 + int64(rng.IntN(3))
		case 2:
			e.MaxTS = math.MaxInt64
		}
		e.Loc = Location{Seg: int64(rng.IntN(3)) - 1, Pos: wal.Position(rng.Int64N(1 << 40)), Size: int32(61 + rng.IntN(1<<20))}
		if len(want) > 0 && rng.IntN(2) == 0 {
			p := want[len(want)-1]
			e.Loc = Location{Seg: p.Loc.Seg, Pos: p.Loc.Pos + wal.Position(p.Loc.Size), Size: int32(61 + rng.IntN(9000))}
		}
		if rng.IntN(50) == 0 {
			e.Loc.Size = math.MaxInt32
		}
		next = e.Last + 1
		return e
	}
	check := func(step int) {
		t.Helper()
		if x.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, x.len(), len(want))
		}
		if got := x.copyOut(0, x.len()); !slices.Equal(got, want) {
			t.Fatalf("step %d: entries differ (sealed %d of %d)", step, x.sealed(), len(want))
		}
		for range 5 {
			if len(want) == 0 {
				break
			}
			i := rng.IntN(len(want))
			if got := x.at(i); got != want[i] {
				t.Fatalf("step %d: at(%d) = %+v, want %+v", step, i, got, want[i])
			}
			n := 0
			for k, e := range x.from(i) {
				if k != i+n || e != want[k] {
					t.Fatalf("step %d: from(%d) yields %d %+v, want %d %+v", step, i, k, e, i+n, want[i+n])
				}
				if n++; n == 300 {
					break
				}
			}
			if n < 300 && i+n != len(want) {
				t.Fatalf("step %d: from(%d) stopped after %d of %d", step, i, n, len(want)-i)
			}
			off := want[i].Base + Offset(rng.IntN(int(want[i].Last-want[i].Base)+1))
			got := x.search(func(e *Entry) bool { return e.Last >= off })
			if got != i {
				t.Fatalf("step %d: search for offset %d = %d, want %d", step, off, got, i)
			}
		}
		if len(want) > 0 {
			i := rng.IntN(len(want))
			limit := want[rng.IntN(len(want))].Base + Offset(rng.IntN(3)) - 1
			var sum int64
			for _, e := range want[i:] {
				if e.Base < limit {
					sum += int64(e.Loc.Size)
				}
			}
			if got := x.bytesFrom(i, limit); got != sum {
				t.Fatalf("step %d: bytesFrom(%d, %d) = %d, want %d", step, i, limit, got, sum)
			}
		}
		if len(want) > 0 && step%8 == 0 { // a snapshot's slice, encoded and decoded, and joined
			i := rng.IntN(len(want))
			j := i + rng.IntN(len(want)-i+1)
			y := x.slice(i, j)
			checkSame(t, step, "slice", &y, want[i:j])
			z, rest, err := readIndex(appendIndex(nil, &y, nil))
			if err != nil || len(rest) != 0 {
				t.Fatalf("step %d: decode a slice: %v, %d bytes left", step, err, len(rest))
			}
			checkSame(t, step, "decoded slice", &z, want[i:j])
			w := x.slice(j, len(want))
			z.extend(&w)
			checkSame(t, step, "slices joined", &z, want[i:])
		}
		k := 0 // inFiles yields want's entries in files, in order
		x.inFiles(func(e Entry) {
			for k < len(want) && want[k].Loc.Seg == InWAL {
				k++
			}
			if k == len(want) || e != want[k] {
				t.Fatalf("step %d: inFiles yields %+v, want the entry at %d", step, e, k)
			}
			k++
		})
		for ; k < len(want); k++ {
			if want[k].Loc.Seg != InWAL {
				t.Fatalf("step %d: inFiles misses entry %d", step, k)
			}
		}
		files := map[int64]bool{}
		x.files(func(seg int64) { files[seg] = true })
		for _, e := range want {
			if !files[e.Loc.Seg] {
				t.Fatalf("step %d: files misses %d", step, e.Loc.Seg)
			}
		}
		for _, e := range want {
			delete(files, e.Loc.Seg)
		}
		if len(files) > 0 {
			t.Fatalf("step %d: files names %v, in no entry", step, files)
		}
		if got := x.search(func(e *Entry) bool { return e.Last >= next }); got != len(want) {
			t.Fatalf("step %d: search past the end = %d, want %d", step, got, len(want))
		}
		if got := x.search(func(*Entry) bool { return true }); got != 0 {
			t.Fatalf("step %d: search for the first = %d", step, got)
		}
		if len(want) > 0 { // true for entries dropped from the front too
			if got := x.search(func(e *Entry) bool { return e.Last >= want[0].Base-1 }); got != 0 {
				t.Fatalf("step %d: search for the offset before the first = %d", step, got)
			}
		}
	}
	for step := range 3000 {
		switch op := rng.IntN(100); {
		case op < 60:
			for range rng.IntN(200) {
				e := newEntry()
				x.add(e)
				want = append(want, e)
			}
		case op < 75:
			x.seal(rng.IntN(len(want) + 1))
		case op < 88 && len(want) > 0:
			i := rng.IntN(len(want))
			e := want[i]
			e.Loc = Location{Seg: rng.Int64N(100), Pos: wal.Position(rng.Int64N(1 << 30)), Size: int32(61 + rng.IntN(5000))}
			e.MaxTS = rng.Int64()
			x.update(i, i+1, func(p *Entry) { *p = e })
			want[i] = e
		case op < 93 && len(want) > 0: // a run repointed, as moves do
			i := rng.IntN(len(want))
			j := i + rng.IntN(len(want)-i+1)
			seg, pos := rng.Int64N(100), wal.Position(rng.Int64N(1<<30))
			next := i
			x.update(i, j, func(e *Entry) {
				e.Loc.Seg, e.Loc.Pos = seg, pos
				pos += wal.Position(e.Loc.Size)
				want[next] = *e
				next++
			})
			if next != j {
				t.Fatalf("step %d: update(%d, %d) changed %d entries", step, i, j, next-i)
			}
		case op < 99:
			n := rng.IntN(len(want)/3 + 2)
			x.dropFront(n)
			want = want[min(n, len(want)):]
		default:
			x.reset(want)
		}
		check(step)
	}
	if x.sealed() == 0 {
		t.Fatal("nothing was ever sealed")
	}
}

// checkSame checks that x holds want, read by copyOut, at and search.
func checkSame(t *testing.T, step int, what string, x *index, want []Entry) {
	t.Helper()
	if got := x.copyOut(0, x.len()); !slices.Equal(got, want) {
		t.Fatalf("step %d: %s: %d entries differ from %d", step, what, len(got), len(want))
	}
	for i := 0; i < len(want); i += 1 + len(want)/20 {
		if got := x.at(i); got != want[i] {
			t.Fatalf("step %d: %s: at(%d) = %+v, want %+v", step, what, i, got, want[i])
		}
		if got := x.search(func(e *Entry) bool { return e.Last >= want[i].Base }); got != i {
			t.Fatalf("step %d: %s: search for %d = %d, want %d", step, what, want[i].Base, got, i)
		}
	}
}

// TestIndexMemory checks what sealing is for: a long run of consecutive
// batches of a few records, adjacent in their files, costs a small part
// of the 48 bytes a plain entry takes.
func TestIndexMemory(t *testing.T) {
	var x index
	pos := wal.Position(0)
	ts := int64(1_700_000_000_000)
	for i := range 100_000 {
		size := int32(4000 + i%700)
		x.add(Entry{Base: Offset(5 * i), Last: Offset(5*i + 4), MaxTS: ts + int64(i/20), Loc: Location{Seg: int64(i / 20_000), Pos: pos, Size: size}})
		pos += wal.Position(size)
		if i%20_000 == 19_999 {
			pos = 0
		}
	}
	x.seal(x.len())
	perEntry := float64(x.memory()) / float64(x.len())
	t.Logf("%.1f bytes an entry sealed", perEntry)
	if perEntry > 12 {
		t.Fatalf("%.1f bytes an entry sealed, want at most 12", perEntry)
	}
	if got := x.at(77_777); got.Base != 5*77_777 || got.Loc.Seg != 3 {
		t.Fatalf("at(77777) = %+v", got)
	}
}

func BenchmarkIndexSearchSealed(b *testing.B) {
	var x index
	for i := range 1_000_000 {
		x.add(Entry{Base: Offset(5 * i), Last: Offset(5*i + 4), MaxTS: int64(i), Loc: Location{Pos: wal.Position(4096 * i), Size: 4096}})
	}
	x.seal(x.len())
	b.ResetTimer()
	for i := range b.N {
		off := Offset((i * 7919) % 5_000_000)
		if k := x.search(func(e *Entry) bool { return e.Last >= off }); k != int(off/5) {
			b.Fatalf("search %d = %d", off, k)
		}
	}
}

// entriesOf returns a copy of s's index entries (the caller keeps the
// index from changing meanwhile).
func entriesOf(s *Shard) []Entry { return s.idx.copyOut(0, s.idx.len()) }

// TestSealedIndexThroughTheShard drives a shard whose batches were moved
// out of the log, so that most of its index is sealed, through what reads
// and changes it: reads from every offset, a checkpoint's snapshot restored
// into a new shard, a log start moved into the middle of a block, and a
// compaction pass; each must see the batches the shard was given.
func TestSealedIndexThroughTheShard(t *testing.T) {
	const n = 1000
	s, w := newTailShard(t, 0)
	var end wal.Position
	lastOf := map[string]Offset{} // each key's last record
	for i := range n {
		keys := []string{fmt.Sprintf("k%d", i%50)}
		if i%7 == 0 {
			keys = append(keys, fmt.Sprintf("k%d", (i+1)%50)) // two records
		}
		r := appendKeys(t, s, keys...)
		for j, k := range keys {
			lastOf[k] = r.Base + Offset(j)
		}
		end = r.End
	}
	if err := w.WaitDurable(context.Background(), end); err != nil {
		t.Fatal(err)
	}
	_, hw, next := s.Offsets()
	before, err := s.Read(0, 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.MoveOut(w.Written(), 16<<10, nil); err != nil {
		t.Fatal(err)
	}
	if segs, _ := s.Segments(); segs < 3 {
		t.Fatalf("%d segment files, want several", segs)
	}
	if got := s.idx.sealed(); got < n-blockLen {
		t.Fatalf("%d of %d entries sealed after moving them all out", got, n)
	}
	// The recent part's array (up to two blocks' worth) aside.
	if perEntry := (s.IndexBytes() - int64(cap(s.idx.recent))*48) / int64(s.idx.sealed()); perEntry > 12 {
		t.Fatalf("the index holds %d bytes an entry sealed", perEntry)
	}

	// readAll checks that every read from every offset returns the batch
	// holding it, as it was before the move.
	readAll := func(when string, s *Shard, from Offset) {
		t.Helper()
		whole, err := s.Read(from, 1<<30, true)
		if err != nil {
			t.Fatalf("%s: read from %d: %v", when, from, err)
		}
		if !bytes.HasSuffix(before, whole) || len(whole) == 0 {
			t.Fatalf("%s: reading from %d returns %d bytes, not the end of the %d written", when, from, len(whole), len(before))
		}
		for off := from; off < hw; off++ {
			b, err := s.Read(off, 1, true)
			if err != nil {
				t.Fatalf("%s: read at %d: %v", when, off, err)
			}
			h, err := ParseHeader(b)
			if err != nil || Offset(h.BaseOffset) > off || Offset(h.BaseOffset)+Offset(h.LastOffsetDelta) < off || !bytes.Contains(before, b) {
				t.Fatalf("%s: read at %d returns the batch at %d (%v)", when, off, h.BaseOffset, err)
			}
		}
	}
	readAll("moved out", s, 0)

	// A checkpoint's snapshot, encoded and decoded, restored into a new
	// shard on the same files.
	snap, _, err := ReadSnapshot(AppendSnapshot(nil, s.Snapshot(end)), SnapshotPacked)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Next != next || snap.Len() != n {
		t.Fatalf("snapshot holds %d entries up to %d, want %d up to %d", snap.Len(), snap.Next, n, next)
	}
	r := New(s.Key(), w, 0, nil, s.dir)
	r.Restore(snap)
	if err := r.OpenSegments(); err != nil {
		t.Fatal(err)
	}
	if r.idx.sealed() < n-blockLen || !slices.Equal(entriesOf(r), entriesOf(s)) {
		t.Fatalf("restored: %d sealed, entries equal %v", r.idx.sealed(), slices.Equal(entriesOf(r), entriesOf(s)))
	}
	readAll("restored", r, 0)

	// The log start in the middle of a block, with a checkpoint taken
	// before: the next one's change drops entries from inside a group.
	_, _, _, _, mark := s.SnapshotSince(end, CheckpointMark{})
	start := entriesOf(s)[3*blockLen+blockLen/2].Base
	if _, _, err := s.DeleteRecords(start); err != nil {
		t.Fatal(err)
	}
	change, drop, full, _, _ := s.SnapshotSince(end, mark)
	if full || drop != 3*blockLen+blockLen/2 {
		t.Fatalf("after the log start moved, the change is full %v, drops %d", full, drop)
	}
	for _, whole := range []bool{false, true} {
		got := snap
		if whole { // the whole snapshot, its first block cut by the drop
			got = s.Snapshot(end)
		} else if err := got.ApplyChange(change, drop); err != nil {
			t.Fatal(err)
		}
		got, _, err = ReadSnapshot(AppendSnapshot(nil, got), SnapshotPacked)
		if err != nil || !slices.Equal(got.Entries(), entriesOf(s)) {
			t.Fatalf("snapshot after the log start moved (whole %v): %v, entries equal %v", whole, err, slices.Equal(got.Entries(), entriesOf(s)))
		}
	}
	if es := entriesOf(s); es[0].Last < start || es[0].Base > start {
		t.Fatalf("after the log start moved to %d the first entry holds %d-%d", start, es[0].Base, es[0].Last)
	}
	if _, err := s.Read(start-1, 1, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the log start: %v", err)
	}
	readAll("log start moved", s, start)

	// Compaction rewrites the sealed entries: each key's last record stays.
	p := CompactPolicy{SegmentBytes: 4 << 10, SegmentMs: 1 << 50, MinDirtyRatio: 0.01}
	stats, cend, err := s.Compact(p, time.Now(), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDurable(context.Background(), cend); err != nil {
		t.Fatal(err)
	}
	if stats.Dropped == 0 {
		t.Fatalf("compaction dropped nothing: %+v", stats)
	}
	es := entriesOf(s)
	for i := 1; i < len(es); i++ {
		if es[i].Base <= es[i-1].Last {
			t.Fatalf("entries out of order after compaction: %+v then %+v", es[i-1], es[i])
		}
	}
	if len(es) != n-(3*blockLen+blockLen/2)-stats.Dropped {
		t.Fatalf("%d entries after compaction dropped %d", len(es), stats.Dropped)
	}
	after, err := s.Read(start, 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	batches := 0
	for b, prev := after, Offset(-1); len(b) > 0; batches++ {
		h, err := ParseHeader(b)
		if err != nil || len(b) < 12+int(h.Length) || Offset(h.BaseOffset) <= prev {
			t.Fatalf("batch %d after compaction: at %d after %d (%v)", batches, h.BaseOffset, prev, err)
		}
		prev = Offset(h.BaseOffset) + Offset(h.LastOffsetDelta)
		b = b[12+int(h.Length):]
	}
	if batches != len(es) {
		t.Fatalf("a read after compaction returns %d batches of %d", batches, len(es))
	}
	for k, off := range lastOf {
		b, err := s.Read(off, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		if h, _ := ParseHeader(b); Offset(h.BaseOffset) > off || Offset(h.BaseOffset)+Offset(h.LastOffsetDelta) < off {
			t.Fatalf("key %s's last record at %d is gone after compaction (read returns %d-%d)", k, off, h.BaseOffset, h.BaseOffset+int64(h.LastOffsetDelta))
		}
	}
}

// BenchmarkIndexRetentionWalk: what a retention pass walks in a shard of a
// million sealed entries (sizes below the high watermark, files referred
// to), against a walk that decodes every entry.
func BenchmarkIndexRetentionWalk(b *testing.B) {
	var x index
	for i := range 1_000_000 {
		x.add(Entry{Base: Offset(5 * i), Last: Offset(5*i + 4), MaxTS: int64(i), Loc: Location{Seg: int64(i / 100_000), Pos: wal.Position(4096 * (i % 100_000)), Size: 4096}})
	}
	x.seal(x.len())
	b.Run("blocks", func(b *testing.B) {
		for range b.N {
			files := map[int64]bool{}
			x.files(func(seg int64) { files[seg] = true })
			if x.bytesFrom(0, 5*999_990) != 4096*999_990 || len(files) != 10 {
				b.Fatal("wrong walk")
			}
		}
	})
	b.Run("decoded", func(b *testing.B) {
		for range b.N {
			files := map[int64]bool{}
			var n int64
			for _, e := range x.from(0) {
				files[e.Loc.Seg] = true
				if e.Base < 5*999_990 {
					n += int64(e.Loc.Size)
				}
			}
			if n != 4096*999_990 || len(files) != 10 {
				b.Fatal("wrong walk")
			}
		}
	})
}

// cleanStateByEntries is cleanStateLocked as it was before it took sealed
// blocks whole: every entry decoded and looked at.
func cleanStateByEntries(s *Shard, p CompactPolicy, now time.Time, hw Offset) (CleanState, int) {
	st := CleanState{CleanedTo: max(s.cleanedTo, s.logStart), LastCleaned: s.lastCleaned}
	if s.idx.len() == 0 {
		return st, 0
	}
	head := 0
	var segBytes int64
	segFirstTS := s.idx.at(0).MaxTS
	for i, e := range s.idx.from(0) {
		if i > 0 && (segBytes >= p.SegmentBytes || e.MaxTS-segFirstTS >= p.SegmentMs) {
			head, segBytes, segFirstTS = i, 0, e.MaxTS
		}
		segBytes += int64(e.Loc.Size)
	}
	limit := min(s.lsoLocked(hw), hw)
	minLagCut, maxLagCut := now.UnixMilli()-p.MinLagMs, now.UnixMilli()-p.MaxLagMs
	k, overdue := 0, false
	for i, e := range s.idx.from(0) {
		if i >= head || e.Last >= limit || e.MaxTS > minLagCut {
			break
		}
		k, st.CleanEnd = i+1, e.Last+1
		st.TotalBytes += int64(e.Loc.Size)
		if e.Last >= st.CleanedTo {
			st.DirtyBytes += int64(e.Loc.Size)
			overdue = overdue || p.MaxLagMs > 0 && e.MaxTS < maxLagCut
		}
	}
	st.Due = st.DirtyBytes > 0 && (st.DirtyRatio() >= p.MinDirtyRatio || overdue)
	return st, k
}

// sealedShard returns a shard whose index holds n batches of about 4 KB,
// timestamps a millisecond apart (if jumpy, jumping back now and then,
// rarely to the least int64, and in some shards for good from a block on),
// sealed but for the last few.
func sealedShard(rng *rand.Rand, n int, jumpy bool) *Shard {
	s := New(Key{}, nil, 0, nil, "")
	ts, pos, next := int64(1_700_000_000_000), wal.Position(0), Offset(0)
	wrapAt := -1 // where timestamps fall to near the least int64, at a block's start
	if jumpy && rng.IntN(3) == 0 {
		wrapAt = n / 2 / blockLen * blockLen
	}
	for i := range n {
		if i == wrapAt {
			ts = math.MinInt64 + 1000
		}
		size := int32(4000 + rng.IntN(800))
		ts += int64(rng.IntN(3))
		if jumpy && rng.IntN(500) == 0 {
			ts -= int64(rng.IntN(100_000))
		}
		e := Entry{Base: next, Last: next + Offset(rng.IntN(8)), MaxTS: ts, Loc: Location{Seg: InWAL, Pos: pos, Size: size}}
		if jumpy && rng.IntN(3000) == 0 { // differences from it wrap around
			e.MaxTS = math.MinInt64 + int64(rng.IntN(3))
		}
		s.idx.add(e)
		next, pos = e.Last+1+Offset(rng.IntN(2)), pos+wal.Position(size)
	}
	s.idx.seal(n - rng.IntN(200))
	return s
}

// TestCleanStateMatchesEntryWalk: taking sealed blocks whole changes no
// answer of the cleaner's state, for policies whose segment, lag and
// cleaned-to bounds fall anywhere, inside blocks and between them.
func TestCleanStateMatchesEntryWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 300 {
		s := sealedShard(rng, 1+rng.IntN(3000), round%2 == 0)
		es := entriesOf(s)
		last := es[len(es)-1]
		pick := func() Entry { return es[rng.IntN(len(es))] }
		p := CompactPolicy{SegmentBytes: 1 << 40, SegmentMs: 1 << 50, MinDirtyRatio: rng.Float64()}
		if rng.IntN(2) == 0 {
			p.MinDirtyRatio = 2 // due only when overdue
		}
		if rng.IntN(2) == 0 {
			p.SegmentBytes = int64(rng.IntN(len(es)*5000 + 1))
		}
		if rng.IntN(2) == 0 {
			p.SegmentMs = int64(rng.IntN(int(max(last.MaxTS-es[0].MaxTS, 0)) + 10))
		}
		now := time.UnixMilli(last.MaxTS + int64(rng.IntN(100)))
		if rng.IntN(2) == 0 {
			p.MinLagMs = now.UnixMilli() - pick().MaxTS
		}
		if rng.IntN(2) == 0 {
			p.MaxLagMs = now.UnixMilli() - pick().MaxTS
		}
		if rng.IntN(3) > 0 {
			s.cleanedTo = pick().Base + Offset(rng.IntN(3))
		}
		hw := last.Last + 1
		if rng.IntN(3) == 0 {
			hw = pick().Last
		}
		got, gotK := s.cleanStateLocked(p, now, hw)
		want, wantK := cleanStateByEntries(s, p, now, hw)
		if got != want || gotK != wantK {
			t.Fatalf("round %d (%d entries, %+v, cleaned to %d, hw %d):\n got %+v, %d\nwant %+v, %d", round, len(es), p, s.cleanedTo, hw, got, gotK, want, wantK)
		}
	}
}

// BenchmarkCleanState: one cleaner look at a shard of a million sealed
// batches, nothing due (the usual case between passes), by blocks and by
// entries.
func BenchmarkCleanState(b *testing.B) {
	s := sealedShard(rand.New(rand.NewPCG(5, 6)), 1_000_000, false)
	p := CompactPolicy{SegmentBytes: 1 << 30, SegmentMs: 7 * 24 * 3600 * 1000, MinDirtyRatio: 0.5}
	now := time.UnixMilli(s.idx.last().MaxTS)
	hw := s.idx.last().Last + 1
	s.cleanedTo = s.idx.at(900_000).Base
	for _, c := range []struct {
		name string
		fn   func(*Shard, CompactPolicy, time.Time, Offset) (CleanState, int)
	}{{"blocks", (*Shard).cleanStateLocked}, {"entries", cleanStateByEntries}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				c.fn(s, p, now, hw)
			}
		})
	}
}
