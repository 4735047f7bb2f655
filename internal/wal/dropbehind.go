package wal

import "github.com/braidstream/braid/internal/vfs"

// Drop-behind: with Options.PageCacheBytes, the log keeps only that much of
// its most recent data in the page cache and drops older durable data from
// it (posix_fadvise DONTNEED). Left to the kernel, the cache grows with
// every byte written until memory is full, and each page it grows into is
// fresh memory. On this project's virtual machines memory the guest freed
// or never touched is handed back to the host, and touching it again costs
// about 3 s of system time per GB written: 8 GiB written in 1 MiB writes
// took 26 s of system time at 280 MB/s, against 3.5 s at 1,200 MB/s with
// all but the last GiB dropped behind the writer, whose pages the next
// writes then reuse (docs/design/storage.md, "The log's page cache").
// Readers of data older than the window read it from the device.

// dropStep is how much the window must have moved before the dropper runs
// (a quarter of the window if that is less): one fadvise call per segment
// per step.
const dropStep = 64 << 20

// dropAlign is the largest folio the page cache makes of a file's pages
// (a huge page on x86-64).
const dropAlign = 2 << 20

// startDropper starts the goroutine that drops the log's pages behind the
// window, when Options.PageCacheBytes asks for one.
func (w *WAL) startDropper() {
	if w.opts.PageCacheBytes <= 0 {
		return
	}
	w.segMu.RLock()
	from := w.segs[0].start
	w.segMu.RUnlock()
	w.drop.start(func() { w.dropper(from) })
}

// dropper drops [dropped, durable-window) from the page cache each time it
// has grown by dropStep; it is kicked (w.drop.kick) whenever the durable
// position moves.
func (w *WAL) dropper(dropped Position) {
	step := Position(min(dropStep, max(w.opts.PageCacheBytes/4, 4<<10)))
	for {
		select {
		case <-w.drop.stopping:
			return
		case <-w.drop.kicks:
		}
		to := Position(w.durable.Load() - w.opts.PageCacheBytes)
		if to-dropped < step {
			continue
		}
		w.dropRange(dropped, to)
		if w.opts.OnDrop != nil {
			w.opts.OnDrop(int64(to - dropped))
		}
		dropped = to
	}
}

// dropRange drops the log's pages in [from, to) from the page cache,
// segment by segment.
func (w *WAL) dropRange(from, to Position) {
	w.segmentsIn(from, to, func(seg *segment, start, end Position) {
		// The kernel drops only the folios wholly inside the range, and
		// a file's folios reach 2 MiB: a folio across the last call's end
		// is dropped by this one, which starts that far back.
		off := int64(start-seg.start) &^ (dropAlign - 1)
		vfs.DontNeed(seg.f, off, int64(end-seg.start)-off)
	})
}

// segmentsIn calls fn with each segment's part [start, end) of [from, to).
// It holds segMu for reading, so that no segment is closed under fn.
func (w *WAL) segmentsIn(from, to Position, fn func(seg *segment, start, end Position)) {
	w.segMu.RLock()
	defer w.segMu.RUnlock()
	// From the segment holding from (a log retaining much has hundreds).
	first, _ := w.segmentAt(from)
	for i := max(first, 0); i < len(w.segs) && w.segs[i].start < to; i++ {
		seg, end := w.segs[i], to
		if i+1 < len(w.segs) {
			end = min(end, w.segs[i+1].start)
		}
		if start := max(from, seg.start); start < end {
			fn(seg, start, end)
		}
	}
}
