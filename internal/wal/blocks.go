package wal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/braidstream/braid/internal/vfs"
)

// The flusher writes whole, aligned 4 KiB blocks (vfs.DirectAlign), so
// that the active segment can be written with O_DIRECT (Options.DirectIO):
// the log's bytes then go from the flusher's buffer to the device without
// a copy into the page cache. Measured on this project's machines, that
// copy (with the page allocation behind it) took 40% of both cores at 285
// MB/s of one-partition produce, and produce p99 fell from 47-67 ms to 9-16
// ms without it (docs/design/storage.md, "Direct I/O for the log").
//
// A group commit rarely ends on a block boundary. Its last, partial block
// is kept in memory (the head); the next group commit starts by writing
// that block again, now with more frames in it. The bytes of the block
// that were already durable are written again unchanged, so a power loss
// during the rewrite leaves them as they were whichever of the old and new
// sector contents survives, the same as the page cache's writeback of a
// partially written page. The rest of the last block is zeros, which is
// what preallocated or pre-written space past the log's end holds anyway;
// recovery reads zeros past the last frame as the log's end, as before.
//
// With Options.DirectIO the flusher always writes blocks, also where the
// direct handle is unavailable (the in-memory filesystem of the crash
// tests, tmpfs on older kernels, a refused open) and the blocks go through
// the page cache: the crash tests cover the block writes that way. Without
// it, each group commit is written as it is, through the page cache, as
// before: the block writes cost a copy into the aligned buffer.

const (
	// blockSize is the unit of the flusher's writes.
	blockSize = vfs.DirectAlign
	// stageBytes bounds the aligned buffer a group commit is copied
	// through: a larger commit is written in several writes.
	stageBytes = 4 << 20
)

// directFile returns seg's direct handle, opening it on first use, or nil
// when direct I/O is off, unavailable, or was refused once.
func (w *WAL) directFile(seg *segment) vfs.File {
	if !w.opts.DirectIO || w.directOff.Load() {
		return nil
	}
	if seg.direct == nil {
		f, err := vfs.OpenDirect(w.opts.FS, seg.f.Name(), os.O_WRONLY, 0)
		if err != nil {
			w.directOff.Store(true)
			level := w.opts.Logger.Warn
			if errors.Is(err, vfs.ErrDirectUnsupported) {
				level = w.opts.Logger.Info
			}
			level("wal: direct I/O unavailable; the log is written through the page cache", "err", err)
			return nil
		}
		seg.direct = f
	}
	return seg.direct
}

// writeBlocks writes buf at offset at of seg in whole aligned blocks: the
// block holding at starts with the head kept from the last write (or read
// back from the file after a restart), and the last block is padded with
// zeros.
func (w *WAL) writeBlocks(seg *segment, buf []byte, at int64) error {
	if w.stage == nil {
		w.stage = vfs.AlignedBuffer(stageBytes)
		w.head = make([]byte, blockSize) // copied from, never written from
	}
	off := at &^ (blockSize - 1)
	h := int(at - off)
	if h > 0 {
		if w.headSeg == seg && w.headOff == off && w.headLen >= h {
			copy(w.stage, w.head[:h])
		} else if n, err := seg.f.ReadAt(w.stage[:h], off); n < h {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read the log's last block: %w", err)
		}
	}
	for {
		n := copy(w.stage[h:], buf)
		buf = buf[n:]
		fill := h + n
		size := (fill + blockSize - 1) &^ (blockSize - 1)
		clear(w.stage[fill:size])
		if err := w.writeAt(seg, w.stage[:size], off); err != nil {
			return err
		}
		if len(buf) == 0 {
			// Keep the last, partial block for the next write.
			last := fill &^ (blockSize - 1)
			w.headSeg, w.headOff, w.headLen = seg, off+int64(last), fill-last
			copy(w.head, w.stage[last:fill])
			return nil
		}
		off += int64(size)
		h = 0
	}
}

// writeAt writes one aligned piece, through the direct handle when there
// is one. A direct write the filesystem refuses as misaligned (a device
// with larger blocks) turns direct I/O off for good and goes through the
// page cache.
func (w *WAL) writeAt(seg *segment, p []byte, off int64) error {
	if d := w.directFile(seg); d != nil {
		_, err := d.WriteAt(p, off)
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		w.opts.Logger.Warn("wal: a direct write was refused; the log is written through the page cache from now on", "err", err)
		w.directOff.Store(true)
		seg.closeDirect()
	}
	_, err := seg.f.WriteAt(p, off)
	return err
}

// closeDirect closes the segment's direct handle, if it has one.
func (s *segment) closeDirect() {
	if s.direct != nil {
		s.direct.Close()
		s.direct = nil
	}
}

// close closes both of the segment's handles.
func (s *segment) close() error {
	s.closeDirect()
	return s.f.Close()
}
