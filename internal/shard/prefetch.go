package shard

import (
	"sort"

	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

// Read-ahead for catch-up reads. A consumer reading from disk fetches one
// response at a time: without help, each fetch waits for its batches to
// come off the device, then the device idles while the response is sent
// and the next fetch arrives. When a read had to go to disk, the shard asks
// the kernel (posix_fadvise WILLNEED) to start reading the batches that
// follow, up to prefetchAhead bytes past the reader, so that the next
// fetches find them in the page cache. The kernel's own read-ahead cannot
// do this as well: the shard's batches lie between other shards' frames in
// the log, and it sees only the file.

const (
	// prefetchAhead is how far past a disk read the shard asks for.
	prefetchAhead = 32 << 20
	// prefetchGap: two batches closer than this in the same file are
	// asked for in one range (the bytes between are other frames).
	prefetchGap = 256 << 10
)

// willNeeder is what a Log implements to take read-ahead hints.
type willNeeder interface {
	WillNeed(pos wal.Position, n int64)
}

// prefetch asks for the batches after a disk read that ended before next,
// in the background; at most one such request runs per shard.
func (s *Shard) prefetch(next Offset) {
	if !s.prefetching.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.prefetching.Store(false)
		for _, r := range s.prefetchRanges(next) {
			s.willNeed(r)
		}
	}()
}

// prefetchRanges returns the file ranges holding the uncached batches from
// next on, up to prefetchAhead bytes of batches past next, less those
// already asked for, and records them as asked for. The window of a
// reader moving forward always reaches the mark (it was set by the same
// reader's window further back); when it ends short of it, another reader
// (or a rewind) moved the mark, and it restarts at next.
func (s *Shard) prefetchRanges(next Offset) []Location {
	s.mu.RLock()
	defer s.mu.RUnlock()
	first := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].Last >= next })
	asked := Offset(s.prefetchedTo.Load())
	for range 2 {
		var out []Location
		var ahead int64
		to, reached := asked, false
		i := first
		for ; i < len(s.entries) && ahead < prefetchAhead; i++ {
			e := s.entries[i]
			ahead += int64(e.Loc.Size)
			if e.Base < asked {
				continue
			}
			reached = true
			to = e.Last + 1
			if e.data != nil {
				continue
			}
			if n := len(out); n > 0 {
				last := &out[n-1]
				end := last.Pos + wal.Position(last.Size)
				if last.Seg == e.Loc.Seg && e.Loc.Pos >= end && e.Loc.Pos-end < prefetchGap {
					last.Size = int32(e.Loc.Pos + wal.Position(e.Loc.Size) - last.Pos)
					continue
				}
			}
			out = append(out, e.Loc)
		}
		if !reached && i > first && s.entries[i-1].Last+1 < asked {
			asked = next // the mark is another reader's
			continue
		}
		if to > asked {
			s.prefetchedTo.Store(int64(to))
		}
		return out
	}
	return nil
}

// willNeed passes one range's hint to the file that holds it.
func (s *Shard) willNeed(loc Location) {
	if loc.Seg == InWAL {
		if w, ok := s.log.(willNeeder); ok {
			w.WillNeed(loc.Pos, int64(loc.Size))
		}
		return
	}
	segs := s.segsRO.Load()
	if segs == nil {
		return
	}
	i := sort.Search(len(*segs), func(i int) bool { return (*segs)[i].id >= loc.Seg })
	if i < len(*segs) && (*segs)[i].id == loc.Seg {
		vfs.WillNeed((*segs)[i].f, int64(loc.Pos), int64(loc.Size))
	}
}
