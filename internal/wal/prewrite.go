package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/braidstream/braid/internal/vfs"
)

// Pre-writing keeps one spare segment ready whose blocks are written
// (zeros) and durable, so that the log overwrites blocks that already hold
// data instead of filling preallocated ones. On ext4 a write into
// preallocated space converts an unwritten extent, and every fdatasync
// must then write the inode as well as the data; into written blocks it
// writes the data alone. Measured on this project's disk at 100 MB/s of
// 512 KiB write+fdatasync: p50 1.9 ms, p99.9 13.8 ms, max 32 ms into a
// pre-written file against 3.3 ms, 110 ms and 370 ms into a preallocated
// one (docs/design/storage.md, "Latency"). Reclaimed segments (retention)
// are such spares already; pre-writing makes one when none is left, which
// is always the case while a stream keeps its data.
//
// A spare is written in the background, paced to be ready just before the
// active segment fills (in 0.9 of the time the last one took), so that it
// adds as little as it can to the device's queue in front of the log's
// fsyncs: written twice as fast, and synced every 8 MiB instead of every
// 1 MiB, it made produce p99 worse, not better. It runs only while the
// filesystem keeps prewriteMinFreeSegments segments free, so it never
// takes the space the log itself needs.

const (
	// prewriteSuffix names a spare being written; one left by a crash is
	// removed by Start.
	prewriteSuffix = ".prewrite"
	// prewriteChunk is one write of zeros; the file is made durable every
	// prewriteSyncEvery bytes, so that its writeback never queues more
	// than a log write's worth in front of the log's own fsyncs.
	prewriteChunk     = 1 << 20
	prewriteSyncEvery = 1 << 20
	// prewriteMinRate paces the first spare, before a segment fill time is
	// known, bytes per second.
	prewriteMinRate = 64 << 20
	// prewriteMinFreeSegments is the free space, in segments, below which
	// no spare is written.
	prewriteMinFreeSegments = 4
	// prewriteRetry is how long pre-writing waits after a failure.
	prewriteRetry = 10 * time.Second
)

var errPrewriteStopped = errors.New("wal: pre-writing stopped")

// Start begins the log's background work once its opener has accepted the
// recovered state: it removes the unfinished spares an earlier crash left
// (not before, so that a start refused after Open changes nothing on
// disk), with Options.Prewrite, starts keeping a spare ready, and with
// Options.PageCacheBytes, starts dropping the log behind it from the page
// cache (dropbehind.go). Call it at most once.
func (w *WAL) Start() {
	for _, path := range w.unfinished {
		if err := w.opts.FS.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.opts.Logger.Warn("wal: could not remove an unfinished spare segment", "path", path, "err", err)
		}
	}
	w.unfinished = nil
	if w.opts.Prewrite {
		// Kicked once: a spare is wanted from the start.
		w.prewrite.start(w.prewriter)
		w.prewrite.kick()
	}
	w.startDropper()
}

// prewriter keeps a spare ready: kicked (w.prewrite.kick) when a segment
// is created, it writes one if none is left. Stopped, it abandons a spare
// being written (its file removed).
func (w *WAL) prewriter() {
	var retry <-chan time.Time
	for {
		select {
		case <-w.prewrite.stopping:
			return
		case <-w.prewrite.kicks:
		case <-retry:
		}
		retry = nil
		w.segMu.RLock()
		need := len(w.spares) == 0
		w.segMu.RUnlock()
		if !need || !w.prewriteRoom() {
			continue
		}
		err := w.prewriteOne(w.prewriteRate())
		switch {
		case errors.Is(err, errPrewriteStopped):
			return
		case err != nil:
			w.opts.Logger.Warn("wal: could not pre-write a spare segment; the log uses preallocated ones meanwhile", "err", err, "retry_in", prewriteRetry)
			retry = time.After(prewriteRetry)
		}
	}
}

// prewriteRoom reports whether the filesystem has room for a spare beyond
// what the log may need. Filesystems other than the real one (tests) always
// have room.
func (w *WAL) prewriteRoom() bool {
	if w.opts.FS != vfs.Default {
		return true
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(w.opts.Dir, &st); err != nil {
		return false
	}
	return int64(st.Bavail)*st.Bsize >= prewriteMinFreeSegments*w.opts.SegmentBytes
}

// prewriteRate is the pace, in bytes per second, that has a spare ready in
// 0.9 of the time the last segment took to fill.
func (w *WAL) prewriteRate() float64 {
	fill := time.Duration(w.lastFill.Load())
	if fill <= 0 {
		return prewriteMinRate
	}
	return max(prewriteMinRate, float64(w.opts.SegmentBytes)/(fill*9/10).Seconds())
}

// openSpare creates a spare to pre-write, for direct I/O when the log
// uses it: zeros written through the page cache would cost the copy and
// the page allocation that the log's own direct writes avoid, and fill
// the cache with pages nobody reads.
func (w *WAL) openSpare(path string) (vfs.File, error) {
	flag := os.O_RDWR | os.O_CREATE | os.O_TRUNC
	if w.opts.DirectIO && !w.directOff.Load() && w.opts.SegmentBytes%blockSize == 0 {
		f, err := vfs.OpenDirect(w.opts.FS, path, flag, 0o644)
		if !errors.Is(err, vfs.ErrDirectUnsupported) {
			return f, err
		}
	}
	return w.opts.FS.OpenFile(path, flag, 0o644)
}

// prewriteOne writes a spare segment of zeros at about rate bytes per
// second, makes it durable and adds it to the spares.
func (w *WAL) prewriteOne(rate float64) (err error) {
	id := time.Now().UnixNano()
	tmp := filepath.Join(w.opts.Dir, fmt.Sprintf("%d%s", id, prewriteSuffix))
	f, err := w.openSpare(tmp)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			w.opts.Logger.Debug("wal: abandoned a spare being pre-written", "err", err)
			w.opts.FS.Remove(tmp)
		}
	}()
	zeros := vfs.AlignedBuffer(prewriteChunk)
	began := time.Now()
	var unsynced int64
	for off := int64(0); off < w.opts.SegmentBytes; {
		select {
		case <-w.prewrite.stopping:
			return errPrewriteStopped
		default:
		}
		n := min(int64(len(zeros)), w.opts.SegmentBytes-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			if errors.Is(err, syscall.EINVAL) {
				// A direct write refused as misaligned: the log's own
				// writes will be too; both go through the page cache.
				w.directOff.Store(true)
			}
			return fmt.Errorf("write: %w", err)
		}
		off += n
		if unsynced += n; unsynced >= prewriteSyncEvery {
			if err := f.Datasync(); err != nil {
				return fmt.Errorf("fdatasync: %w", err)
			}
			unsynced = 0
		}
		if due := began.Add(time.Duration(float64(off) / rate * float64(time.Second))); time.Until(due) > 0 {
			select {
			case <-w.prewrite.stopping:
				return errPrewriteStopped
			case <-time.After(time.Until(due)):
			}
		}
	}
	if err := f.Datasync(); err != nil {
		return fmt.Errorf("fdatasync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	name := filepath.Join(w.opts.Dir, fmt.Sprintf("prewritten-%d%s", id, spareSuffix))
	if err := w.opts.FS.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename: %w", err)
	}
	w.segMu.Lock()
	w.spares = append(w.spares, name)
	w.segMu.Unlock()
	w.opts.Logger.Debug("wal: pre-wrote a spare segment", "bytes", w.opts.SegmentBytes, "took", time.Since(began))
	return nil
}
