package shard

import (
	"reflect"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// TestIndexEntryHoldsNoPointer: the index grows with every retained batch;
// an entry with a pointer would make the collector scan all of it.
func TestIndexEntryHoldsNoPointer(t *testing.T) {
	var walk func(reflect.Type) bool
	walk = func(typ reflect.Type) bool {
		switch typ.Kind() {
		case reflect.Struct:
			for i := range typ.NumField() {
				if walk(typ.Field(i).Type) {
					return true
				}
			}
			return false
		case reflect.Array:
			return walk(typ.Elem())
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
			return false
		}
		return true
	}
	if walk(reflect.TypeFor[Entry]()) {
		t.Fatal("shard.Entry holds a pointer")
	}
	if n := reflect.TypeFor[Entry]().Size(); n > 48 {
		t.Fatalf("shard.Entry is %d bytes, want at most 48", n)
	}
}

// TestTailCacheFollowsTheIndex: the tail cache's bytes stay paired with
// their index entries through evictions, a log-start move, a compaction
// and an idle drop, and reads return each batch's own bytes.
func TestTailCacheFollowsTheIndex(t *testing.T) {
	size := len(seedBatch("k00"))
	s, w := newTailShard(t, 6*size)
	check := func(when string, wantCached int) {
		t.Helper()
		s.mu.RLock()
		defer s.mu.RUnlock()
		es := entriesOf(s)
		if len(s.tail) != len(es)-s.cacheFrom {
			t.Fatalf("%s: %d cached slots for %d entries from %d", when, len(s.tail), len(es), s.cacheFrom)
		}
		var sum int64
		n := 0
		for i := s.cacheFrom; i < len(es); i++ {
			b := s.dataLocked(i)
			if b == nil {
				continue
			}
			n++
			sum += int64(len(b))
			if h, err := ParseHeader(b); err != nil || Offset(h.BaseOffset) != es[i].Base {
				t.Fatalf("%s: entry at offset %d caches the batch at %d (%v)", when, es[i].Base, h.BaseOffset, err)
			}
		}
		if sum != s.cached || n != wantCached {
			t.Fatalf("%s: %d batches of %d bytes cached, counted %d bytes; want %d batches", when, n, sum, s.cached, wantCached)
		}
		checkWindowLocked(t, when, s)
	}
	var last AppendResult
	for i := range 20 {
		last = appendKeys(t, s, string([]byte{'k', '0' + byte(i/10), '0' + byte(i%10)}))
	}
	check("after 20 appends", 6)
	if err := w.WaitDurable(t.Context(), last.End); err != nil {
		t.Fatal(err)
	}
	s.hw.Store(int64(s.next))

	if _, _, err := s.DeleteRecords(12); err != nil {
		t.Fatal(err)
	}
	check("after the log start moved", 6)

	// A compaction that removes one cached batch and repoints another
	// (to where it is: the cache lets go of it all the same).
	s.mu.Lock()
	s.applyCompactLocked([]compactChange{{base: 16, loc: Location{Size: -1}}, {base: 17, loc: entriesOf(s)[5].Loc}})
	s.mu.Unlock()
	check("after a compaction", 4)
	readBases(t, s, 12, 12, 13, 14, 15, 17, 18, 19)

	if _, _, err := s.DeleteRecords(18); err != nil {
		t.Fatal(err)
	}
	check("after the log start moved into the cache", 2)
	readBases(t, s, 18, 18, 19)

	if s.DropCacheIfIdle(0) == 0 {
		t.Fatal("an idle drop freed nothing")
	}
	check("after an idle drop", 0)
	appendKeys(t, s, "k20")
	check("after an append to an emptied cache", 1)
}

// newTailShard returns a shard whose tail cache holds limit bytes, on a
// log of its own, closed when the test ends.
func newTailShard(t *testing.T, limit int) (*Shard, *wal.WAL) {
	t.Helper()
	w, err := wal.Open(wal.Options{Dir: t.TempDir()}, 0, func(wal.Position, wal.Kind, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return New(Key{Stream: 1}, w, int64(limit), nil, t.TempDir()), w
}

// checkWindowLocked checks that the tail window's byte count is its
// entries' and within the cache limit (mu held).
func checkWindowLocked(t *testing.T, when string, s *Shard) {
	t.Helper()
	var window int64
	for _, e := range entriesOf(s)[s.cacheFrom:] {
		window += int64(e.Loc.Size)
	}
	if window != s.window || window > s.cacheLimit {
		t.Fatalf("%s: tail window of %d entries holds %d bytes, counted %d (limit %d)", when, len(entriesOf(s))-s.cacheFrom, window, s.window, s.cacheLimit)
	}
}

// TestTailCacheOnlyWhileTheTailIsRead: appends hold their bytes only while
// a reader reads in the tail window or at its end, up to tailReadTTL after
// the last such read; the window follows the appends either way, and
// reads return each batch's own bytes, held or not.
func TestTailCacheOnlyWhileTheTailIsRead(t *testing.T) {
	size := len(seedBatch("k00"))
	s, w := newTailShard(t, 4*size)
	n := 0
	put := func(count int) {
		t.Helper()
		var last AppendResult
		for range count {
			b := seedBatch(string([]byte{'k', '0' + byte(n/10), '0' + byte(n%10)}))
			n++
			h, err := Validate(b)
			if err != nil {
				t.Fatal(err)
			}
			// As the engine does.
			if last, err = s.Append(b, h, -1, s.CachesTail()); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WaitDurable(t.Context(), last.End); err != nil {
			t.Fatal(err)
		}
		s.hw.Store(int64(s.next))
	}
	held := func(when string, want int) {
		t.Helper()
		s.mu.RLock()
		defer s.mu.RUnlock()
		checkWindowLocked(t, when, s)
		if s.cached != int64(want*size) {
			t.Fatalf("%s: %d bytes held, want %d batches (%d bytes)", when, s.cached, want, want*size)
		}
	}
	all := func() []int64 {
		var bases []int64
		for i := range n {
			bases = append(bases, int64(i))
		}
		return bases
	}

	put(6)
	held("nobody read", 0)
	readBases(t, s, 0, all()...)
	readBases(t, s, 1, all()[1:]...)
	if s.CachesTail() {
		t.Fatal("reads before the tail window (offsets 0 and 1 of 2 to 5) made the shard hold its tail")
	}
	put(1)
	held("after reads before the window", 0)

	readBases(t, s, 4, 4, 5, 6)
	put(2)
	held("after a read in the window", 2)
	readBases(t, s, 0, all()...)

	s.tailRead.Store(time.Now().Add(-tailReadTTL).UnixNano())
	put(3)
	held("past tailReadTTL after the last read in the window", 1)
	readBases(t, s, 0, all()...)

	// A reader caught up, at the end of the log, reads the tail too.
	readBases(t, s, Offset(n))
	put(2)
	held("after a read at the end", 2)
	readBases(t, s, 0, all()...)
}

// readBases reads s from offset from and checks the base offsets of the
// batches returned.
func readBases(t *testing.T, s *Shard, from Offset, want ...int64) {
	t.Helper()
	b, err := s.Read(from, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 && len(want) == 0 {
		return
	}
	batches, err := SplitBatches(b)
	if err != nil {
		t.Fatal(err)
	}
	var bases []int64
	for _, b := range batches {
		h, err := ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, h.BaseOffset)
	}
	if !reflect.DeepEqual(bases, want) {
		t.Fatalf("read from %d returned batches at %v, want %v", from, bases, want)
	}
}
