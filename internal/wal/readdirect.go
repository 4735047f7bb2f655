package wal

import (
	"errors"
	"fmt"
	"os"

	"github.com/braidstream/braid/internal/vfs"
)

// Direct reads, for a shard's catch-up reader (shard/readahead.go). Read
// through the page cache, every byte of a catch-up read is copied into a
// page the cache allocates, and on this project's virtual machines that
// allocation is most of the cost: the device read 4 GB through the page
// cache at 579-715 MB/s and with O_DIRECT at 1.0-1.4 GB/s (dd, 1 MiB and
// 4 MiB reads, caches dropped). A direct read goes from the device into
// the caller's aligned buffer and leaves nothing in the cache.

// DirectReadPad is the room a ReadDirect buffer needs past the n bytes it
// reads: each segment's part is read in whole aligned blocks and moved
// down into place before the next.
const DirectReadPad = 3 * vfs.DirectAlign

// ReadDirect reads the log's bytes [pos, pos+n) past the page cache
// (O_DIRECT) into scratch, an aligned buffer (vfs.AlignedBuffer) of at
// least n+DirectReadPad bytes, and returns the part of scratch that holds
// them. A range across segment boundaries is read a segment at a time.
// Where the filesystem refuses direct reads (tests' in-memory files,
// tmpfs), it reads through the page cache instead. Like ReadAt, it holds
// segMu for reading across each read, so no segment it reads is reclaimed
// (and reused) under it.
func (w *WAL) ReadDirect(scratch []byte, pos Position, n int) ([]byte, error) {
	if end := pos + Position(n); n <= 0 || end > w.Written() {
		return nil, fmt.Errorf("wal: direct read [%d,%d) past written position %d", pos, end, w.Written())
	}
	if len(scratch) < n+DirectReadPad {
		return nil, fmt.Errorf("wal: direct read of %d bytes into a %d-byte buffer", n, len(scratch))
	}
	have := 0 // bytes of [pos, pos+n) in scratch[skip:]
	skip := 0
	for have < n {
		at := pos + Position(have)
		part, err := w.readDirectPart(scratch, have == 0, &skip, have, at, n-have)
		if err != nil {
			return nil, err
		}
		have += part
	}
	return scratch[skip : skip+n : skip+n], nil
}

// readDirectPart reads what the segment holding at holds of [at, at+n) to
// scratch[*skip+have:], and returns how many bytes that was. The first
// part sets *skip, where at lies in its first block.
func (w *WAL) readDirectPart(scratch []byte, first bool, skip *int, have int, at Position, n int) (int, error) {
	w.segMu.RLock()
	defer w.segMu.RUnlock()
	i, next := w.segmentAt(at)
	if i < 0 {
		return 0, fmt.Errorf("wal: position %d was removed", at)
	}
	seg := w.segs[i]
	n = int(min(Position(n), next-at))
	off := int64(at - seg.start)
	f := w.readDirectFile(seg)
	if f == nil {
		dst := scratch[*skip+have : *skip+have+n]
		if _, err := seg.f.ReadAt(dst, off); err != nil {
			return 0, fmt.Errorf("wal: read segment %s: %w", SegmentName(seg.start), err)
		}
		return n, nil
	}
	defer f.Close()
	// The first part lands where its lead puts it; a later one is read at
	// the first aligned index from its place on, then moved down.
	idx := 0
	if !first {
		idx = (*skip + have + vfs.DirectAlign - 1) &^ (vfs.DirectAlign - 1)
	}
	data, err := vfs.ReadAligned(f, scratch[idx:], off, n)
	if err != nil {
		return 0, fmt.Errorf("wal: direct read of segment %s: %w", SegmentName(seg.start), err)
	}
	if first {
		*skip = int(off & (vfs.DirectAlign - 1))
	} else {
		copy(scratch[*skip+have:], data)
	}
	return n, nil
}

// readDirectFile opens seg for direct reads, or returns nil where direct
// reads are unavailable (remembered after the first refusal). The caller
// closes it; segMu held for reading keeps seg's path its own.
func (w *WAL) readDirectFile(seg *segment) vfs.File {
	if w.readDirectOff.Load() {
		return nil
	}
	f, err := vfs.OpenDirect(w.opts.FS, seg.f.Name(), os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, vfs.ErrDirectUnsupported) {
			w.readDirectOff.Store(true)
			w.opts.Logger.Info("wal: direct reads unavailable; catch-up reads go through the page cache", "err", err)
		}
		return nil
	}
	return f
}
