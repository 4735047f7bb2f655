package wal

import (
	"fmt"
	"math"
	"sort"

	"github.com/braidstream/braid/internal/vfs"
)

// Reads of the log through the page cache, and the page cache hints for
// ranges of it (ReadDirect, past the page cache, is in readdirect.go).

// ReadAt fills p with the log's bytes starting at pos. The range must be
// written already and must not cross a segment boundary (a frame never does).
func (w *WAL) ReadAt(p []byte, pos Position) error {
	if end := pos + Position(len(p)); end > w.Written() {
		return fmt.Errorf("wal: read [%d,%d) past written position %d", pos, end, w.Written())
	}
	w.segMu.RLock()
	defer w.segMu.RUnlock()
	i, next := w.segmentAt(pos)
	if i < 0 {
		return fmt.Errorf("wal: position %d was removed", pos)
	}
	seg := w.segs[i]
	if pos+Position(len(p)) > next {
		return fmt.Errorf("wal: read at %d crosses a segment boundary", pos)
	}
	if _, err := seg.f.ReadAt(p, int64(pos-seg.start)); err != nil {
		return fmt.Errorf("wal: read segment %s: %w", SegmentName(seg.start), err)
	}
	return nil
}

// ReadRange fills p with the log's bytes starting at pos through the page
// cache, as ReadAt does, but across segment boundaries: a range of many
// frames, which the page cache mostly holds (ReadDirect is for ranges it
// does not).
func (w *WAL) ReadRange(p []byte, pos Position) error {
	if end := pos + Position(len(p)); end > w.Written() {
		return fmt.Errorf("wal: read [%d,%d) past written position %d", pos, end, w.Written())
	}
	w.segMu.RLock()
	defer w.segMu.RUnlock()
	for len(p) > 0 {
		i, next := w.segmentAt(pos)
		if i < 0 {
			return fmt.Errorf("wal: position %d was removed", pos)
		}
		seg, part := w.segs[i], p
		if pos+Position(len(part)) > next {
			part = part[:next-pos]
		}
		if _, err := seg.f.ReadAt(part, int64(pos-seg.start)); err != nil {
			return fmt.Errorf("wal: read segment %s: %w", SegmentName(seg.start), err)
		}
		p, pos = p[len(part):], pos+Position(len(part))
	}
	return nil
}

// WillNeed asks the kernel to start reading [pos, pos+n) into the page
// cache (see vfs.WillNeed); a range the log no longer holds, or one that
// crosses a segment boundary, is cut to what the segment at pos holds.
func (w *WAL) WillNeed(pos Position, n int64) {
	w.segMu.RLock()
	defer w.segMu.RUnlock()
	i, next := w.segmentAt(pos)
	if i < 0 {
		return
	}
	n = min(n, int64(next-pos))
	vfs.WillNeed(w.segs[i].f, int64(pos-w.segs[i].start), n)
}

// segmentAt returns the index in w.segs of the segment holding pos (-1
// when pos precedes the oldest) and where the segment after it starts (the
// largest position for the last). segMu held, or the log not yet shared.
func (w *WAL) segmentAt(pos Position) (i int, next Position) {
	i = sort.Search(len(w.segs), func(i int) bool { return w.segs[i].start > pos }) - 1
	next = math.MaxInt64
	if i+1 < len(w.segs) {
		next = w.segs[i+1].start
	}
	return i, next
}

// DontNeed tells the kernel that [pos, pos+n) of the log will not be read
// again soon, so that it drops the range's clean pages from the page cache
// (see vfs.DontNeed), in every segment the range crosses; what the log no
// longer holds is skipped.
func (w *WAL) DontNeed(pos Position, n int64) {
	w.segmentsIn(pos, pos+Position(n), func(seg *segment, start, end Position) {
		vfs.DontNeed(seg.f, int64(start-seg.start), int64(end-start))
	})
}

// Cached returns how many pages of [pos, pos+n) of the log are in the page
// cache and how many pages the range has, over every segment it crosses
// (see vfs.Cached); ok is false where that cannot be known.
func (w *WAL) Cached(pos Position, n int64) (cached, pages int64, ok bool) {
	ok = true
	w.segmentsIn(pos, pos+Position(n), func(seg *segment, start, end Position) {
		c, p, known := vfs.Cached(seg.f, int64(start-seg.start), int64(end-start))
		cached, pages, ok = cached+c, pages+p, ok && known
	})
	return cached, pages, ok
}
