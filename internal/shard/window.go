package shard

import (
	"fmt"
	"sync/atomic"

	"github.com/braidstream/braid/internal/wal"
)

// Log windows, for a consumer of many shards reading past the page cache.
// Its shards' batches lie between each other's in the log: read shard by
// shard, each fetch answer is thousands of small reads scattered over
// gigabytes of log, and each byte read costs a page the page cache
// allocates. The fetch that serves such a consumer (kafka's fetch window)
// instead reads one range of the log, from the earliest next batch of its
// shards, with one read (ReadLogWindow), and asks each shard for the
// batches it has in that range (PlanLog): the answer then holds what the
// range holds, and the next answer goes on where it ended, so the consumer
// reads the log front to back. A read whose batches all lie in the window
// copies them from it, with no system call.

// A LogWindow is a range of the log in memory: Data holds the log's bytes
// from Pos on.
type LogWindow struct {
	Pos  wal.Position
	Data []byte
}

// End is the log position after the window's last byte.
func (w *LogWindow) End() wal.Position { return w.Pos + wal.Position(len(w.Data)) }

// bytes returns the window's copy of the batch at loc, or nil when the
// batch is not in the log or not wholly in the window.
func (w *LogWindow) bytes(loc Location) []byte {
	if loc.Seg != InWAL || loc.Pos < w.Pos || loc.Pos+wal.Position(loc.Size) > w.End() {
		return nil
	}
	at := loc.Pos - w.Pos
	return w.Data[at : at+wal.Position(loc.Size)]
}

// readWindowBytes counts the bytes of batches reads copied from windows.
var readWindowBytes atomic.Int64

// ReadWindowBytes returns the bytes of batches that reads took from log
// windows (a consumer of many shards reading past the page cache).
func ReadWindowBytes() int64 { return readWindowBytes.Load() }

// readWindowCached counts the bytes of windows read through the page cache.
var readWindowCached atomic.Int64

// ReadWindowCachedBytes returns the bytes of windows read through the page
// cache since the process started (ReadLogWindow).
func ReadWindowCachedBytes() int64 { return readWindowCached.Load() }

// NextInLog returns where the batch holding offset from lies in the log;
// false if it is in the tail cache or a shard segment file (read as
// before: a window holds neither), or there is none below the high
// watermark.
func (s *Shard) NextInLog(from Offset) (Location, bool) {
	hw := s.HighWatermark()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if from < s.logStart || from >= hw {
		return Location{}, false
	}
	i := s.findLocked(from)
	if i == s.idx.len() {
		return Location{}, false
	}
	e := s.idx.at(i)
	if e.Last >= hw || s.dataLocked(i) != nil || e.Loc.Seg != InWAL {
		return Location{}, false
	}
	return e.Loc, true
}

// InLogBefore returns the bytes of the batches a read from `from` of at
// most maxBytes would return that lie in the log wholly before end, the
// run of them up to the first that does not (or is in the tail cache, or
// past the high watermark: a read up to the last stable offset returns a
// prefix of it), how many batches that is, and the log position after the
// last of them.
func (s *Shard) InLogBefore(from Offset, end wal.Position, maxBytes int) (n, batches int, last wal.Position) {
	hw := s.HighWatermark()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if from < s.logStart || from >= hw {
		return 0, 0, 0
	}
	for i, e := range s.idx.from(s.findLocked(from)) {
		if e.Last >= hw || s.dataLocked(i) != nil || e.Loc.Seg != InWAL || e.Loc.Pos+wal.Position(e.Loc.Size) > end || n+int(e.Loc.Size) > maxBytes {
			break
		}
		n += int(e.Loc.Size)
		batches++
		last = e.Loc.Pos + wal.Position(e.Loc.Size)
	}
	return n, batches, last
}

// ReadLogWindow reads the log's bytes [pos, pos+n), as far as the log is
// written, into scratch, an aligned buffer of at least n+wal.DirectReadPad
// bytes, and returns the window they make: through the page cache when it
// holds at least half of the range's pages (wal.ReadRange), else with one
// direct read past it (wal.ReadDirect). cached says which. From memory
// one read of the range costs a copy, where the partitions' own reads
// would cost a system call (and a read-ahead hint) per batch.
func (s *Shard) ReadLogWindow(scratch []byte, pos wal.Position, n int) (win *LogWindow, cached bool, err error) {
	dl, ok := s.log.(directLog)
	if !ok {
		return nil, false, fmt.Errorf("shard %s: the log takes no window reads", s.key)
	}
	if w := dl.Written(); pos+wal.Position(n) > w {
		n = int(w - pos)
	}
	if n <= 0 {
		return nil, false, fmt.Errorf("shard %s: a window read from %d, past the log's end", s.key, pos)
	}
	if c, pages, ok := dl.Cached(pos, int64(n)); !ok || 2*c < pages {
		data, err := dl.ReadDirect(scratch, pos, n)
		if err != nil {
			return nil, false, err
		}
		return &LogWindow{Pos: pos, Data: data}, false, nil
	}
	if err := dl.ReadRange(scratch[:n], pos); err != nil {
		return nil, false, err
	}
	readWindowCached.Add(int64(n))
	return &LogWindow{Pos: pos, Data: scratch[:n:n]}, true, nil
}

// LogCached reports how many of the pages of the log's bytes [pos,
// pos+n) the page cache holds; ok is false where that cannot be told.
func (s *Shard) LogCached(pos wal.Position, n int64) (cached, pages int64, ok bool) {
	if c, is := s.log.(cacheStater); is {
		return c.Cached(pos, n)
	}
	return 0, 0, false
}

// serveWindow returns pick's batches copied from win (or the tail cache),
// and the offset after them, or false when one of them is not in it.
func serveWindow(alloc Alloc, win *LogWindow, pick []ref, total int) ([]byte, Offset, bool) {
	if win == nil {
		return nil, 0, false
	}
	for _, e := range pick {
		if e.data == nil && win.bytes(e.Loc) == nil {
			return nil, 0, false
		}
	}
	out := alloc.get(total)
	n := 0
	for _, e := range pick {
		if e.data != nil {
			out = append(out, e.data...)
			continue
		}
		b := win.bytes(e.Loc)
		out = append(out, b...)
		n += len(b)
	}
	readWindowBytes.Add(int64(n))
	return out, pick[len(pick)-1].Last + 1, true
}
