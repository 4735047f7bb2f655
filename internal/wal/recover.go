package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/braidstream/braid/internal/vfs"
)

// CorruptError describes damage recovery found in the log: a frame that
// fails its checks where the log cannot simply have been torn by a crash,
// because valid data written later follows it (in a later write unit or a
// later segment). It wraps ErrCorrupt.
type CorruptError struct {
	Dir     string
	Segment string   // file name
	Offset  Position // in the file
	Pos     Position // in the log
	Reason  string   // what is wrong with the frame
	// Why it is not a torn tail.
	Evidence string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt log: %s at byte %d of %s (log position %d): %s, so it is not a torn tail. "+
		"Nothing was changed on disk; `braid repair` reports what cutting the log there would lose and does it",
		e.Reason, e.Offset, filepath.Join(e.Dir, e.Segment), e.Pos, e.Evidence)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// recover scans from `from` to the end, replaying valid frames, and returns
// the position just past the last valid frame. Only a torn tail is cut off:
// a bad frame at the very end of the newest segment, with no later write
// unit after it. Any other bad frame is a *CorruptError and nothing on disk
// is changed.
func (w *WAL) recover(from Position, replay Replay) (Position, error) {
	if len(w.segs) == 0 {
		if err := w.createSegment(from); err != nil {
			return 0, err
		}
		return from, nil
	}
	end, bad, err := w.scan(from, replay)
	if err != nil {
		return 0, err
	}
	if bad != nil {
		return 0, bad
	}
	last := len(w.segs) - 1
	return end, w.cutAfter(last, end)
}

// scan replays frames from `from` and returns the end of the valid log, or
// the damage that stops it from being trusted.
func (w *WAL) scan(from Position, replay Replay) (Position, *CorruptError, error) {
	first, _ := w.segmentAt(from)
	if first < 0 {
		return 0, nil, fmt.Errorf("%w: replay position %d precedes the oldest segment %d", ErrCorrupt, from, w.segs[0].start)
	}
	pos := from
	for i := first; i < len(w.segs); i++ {
		seg := w.segs[i]
		if i > first && seg.start != pos {
			return pos, &CorruptError{Dir: w.opts.Dir, Segment: SegmentName(seg.start), Pos: pos,
				Reason:   fmt.Sprintf("the segment starts at log position %d where the previous one ends at %d", seg.start, pos),
				Evidence: "a segment is missing, or one was cut short"}, nil
		}
		end, torn, err := scanSegment(seg, pos-seg.start, replay)
		if err != nil {
			return 0, nil, err
		}
		pos = seg.start + end
		if torn == nil {
			continue
		}
		bad := &CorruptError{Dir: w.opts.Dir, Segment: SegmentName(seg.start), Offset: end, Pos: pos, Reason: torn.Error()}
		if i < len(w.segs)-1 {
			// A segment is synced whole before the next one is created.
			bad.Evidence = fmt.Sprintf("it lies in a closed segment (%d newer segments follow)", len(w.segs)-1-i)
			return pos, bad, nil
		}
		later, err := durableUnit(seg, end+1, pos)
		if err != nil {
			return 0, nil, err
		}
		if later >= 0 {
			bad.Evidence = fmt.Sprintf("a write unit that was written after it had been made durable starts at log position %d", seg.start+later)
			return pos, bad, nil
		}
		if !errors.Is(torn, errZeroHeader) {
			// After a crash, or in a reused file, the active segment
			// ends in bytes that are not a frame at their position.
			w.opts.Logger.Info("wal: torn tail after a crash; cutting off the rest of the active segment",
				"segment", SegmentName(seg.start), "at", end, "reason", torn.Error())
		}
		return pos, nil, nil
	}
	return pos, nil, nil
}

var errZeroHeader = errors.New("zero frame header")

// cutAfter truncates segment i at the global position pos and removes every
// later segment.
func (w *WAL) cutAfter(i int, pos Position) error {
	seg := w.segs[i]
	// Truncate first so no stale frame can survive past the cut, then
	// preallocate again: the log continues in this segment.
	if err := seg.f.Truncate(int64(pos - seg.start)); err != nil {
		return fmt.Errorf("wal: truncate torn tail: %w", err)
	}
	w.preallocate(seg.f, int64(pos-seg.start))
	if err := seg.f.Sync(); err != nil {
		return fmt.Errorf("wal: sync truncated segment: %w", err)
	}
	for _, later := range w.segs[i+1:] {
		later.close()
		if err := w.opts.FS.Remove(later.f.Name()); err != nil {
			return fmt.Errorf("wal: remove segment after the cut: %w", err)
		}
	}
	w.segs = w.segs[:i+1]
	return w.syncDir()
}

// scanSegment replays the frames of seg from file offset off. It returns the
// offset just past the last valid frame and, if the scan stopped before the
// end of the file, why.
func scanSegment(seg *segment, off Position, replay Replay) (end Position, torn error, err error) {
	n, err := seg.f.Size()
	if err != nil {
		return 0, nil, fmt.Errorf("wal: stat segment: %w", err)
	}
	size := Position(n)
	if off > size {
		return 0, nil, fmt.Errorf("%w: replay position is past the end of segment %s", ErrCorrupt, SegmentName(seg.start))
	}
	r := newChunkReader(seg.f, int64(off), int64(size))
	var hdr [headerLen]byte
	for off < size {
		if err := r.read(hdr[:]); err != nil {
			return off, fmt.Errorf("short frame header: %w", err), nil
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		if hdr == [headerLen]byte{} {
			return off, errZeroHeader, nil
		}
		if n == 0 || n > MaxFrame || off+headerLen-1+Position(n) > size {
			return off, fmt.Errorf("bad frame length %d", n), nil
		}
		body, err := r.next(int(n) - 1)
		if err != nil {
			return off, fmt.Errorf("short frame body: %w", err), nil
		}
		if frameCRC(seg.start+off, hdr[8], body) != binary.LittleEndian.Uint32(hdr[4:8]) {
			return off, errors.New("frame checksum mismatch"), nil
		}
		if Kind(hdr[8]) != kindUnit {
			if err := replay(seg.start+off, Kind(hdr[8]), body); err != nil {
				return 0, nil, fmt.Errorf("wal: replay frame at %d: %w", seg.start+off, err)
			}
		}
		off += headerLen - 1 + Position(n)
	}
	return off, nil, nil
}

// durableUnit returns the file offset of the first valid unit marker at or
// after off in seg that was written once the log was durable past pos, or
// -1. Units written while pos was not yet durable (the log writes while it
// fsyncs what it wrote before) may follow a torn write without saying
// anything about it.
func durableUnit(seg *segment, off, pos Position) (Position, error) {
	found := Position(-1)
	err := eachUnit(seg, off, func(at, durable Position) bool {
		if durable > pos {
			found = at
			return false
		}
		return true
	})
	return found, err
}

// findUnit returns the file offset of the first valid unit marker at or
// after off in seg, or -1.
func findUnit(seg *segment, off Position) (Position, error) {
	found := Position(-1)
	err := eachUnit(seg, off, func(at, _ Position) bool {
		found = at
		return false
	})
	return found, err
}

// eachUnit calls fn, in one pass over seg from file offset off, with the
// file offset of every valid unit marker and the position up to which the
// log was durable when its unit was written, until fn returns false. A
// marker is valid only at the position it was written at, so markers in
// reused files or behind an earlier cut never count.
func eachUnit(seg *segment, off Position, fn func(at, durable Position) bool) error {
	size, err := seg.f.Size()
	if err != nil {
		return fmt.Errorf("wal: stat segment: %w", err)
	}
	const chunk = 4 << 20
	buf := make([]byte, chunk+unitLen)
	for base := int64(off); base+headerLen <= size; base += chunk {
		n, err := seg.f.ReadAt(buf[:min(int64(len(buf)), size-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("wal: read segment %s: %w", SegmentName(seg.start), err)
		}
		b := buf[:n]
		// Every marker's kind byte is 0xFF, eight bytes into it.
		for i := headerLen - 1; i < len(b); {
			j := bytes.IndexByte(b[i:], byte(kindUnit))
			if j < 0 {
				break
			}
			k := i + j - (headerLen - 1) // where the marker would start
			i += j + 1
			if k >= chunk {
				break // the next chunk starts here
			}
			at, pos := Position(base)+Position(k), seg.start+Position(base)+Position(k)
			switch binary.LittleEndian.Uint32(b[k:]) {
			case 1: // no body: written after everything before it was durable
				if binary.LittleEndian.Uint32(b[k+4:]) == frameCRC(pos, byte(kindUnit), nil) && !fn(at, pos) {
					return nil
				}
			case 1 + unitBodyLen:
				if k+unitLen > len(b) {
					continue
				}
				body := b[k+headerLen : k+unitLen]
				if binary.LittleEndian.Uint32(b[k+4:]) == frameCRC(pos, byte(kindUnit), body) &&
					!fn(at, Position(binary.LittleEndian.Uint64(body))) {
					return nil
				}
			}
		}
	}
	return nil
}

// Damage is what Inspect found.
type Damage struct {
	*CorruptError
	// End is where the log's bytes end: everything in [Pos, End) is lost
	// by cutting at Pos.
	End Position
	// Segments are the files the cut truncates or removes.
	Segments []string
}

// Inspect scans the log in dir from `from`, read-only, and reports damage that
// would stop Open (nil if none). lost is called for every valid frame after
// the damage (the scan resynchronises at write-unit markers), so that a
// caller can say what a cut would lose.
func Inspect(opts Options, from Position, lost Replay) (*Damage, error) {
	opts.setDefaults()
	w := &WAL{opts: opts}
	if err := w.loadSegments(); err != nil {
		return nil, err
	}
	defer w.closeFiles()
	if len(w.segs) == 0 {
		return nil, nil
	}
	_, bad, err := w.scan(from, func(Position, Kind, []byte) error { return nil })
	if err != nil || bad == nil {
		return nil, err
	}
	d := &Damage{CorruptError: bad}
	for _, seg := range w.segs {
		n, err := seg.f.Size()
		if err != nil {
			return nil, err
		}
		if seg.start+Position(n) <= bad.Pos {
			continue
		}
		d.Segments = append(d.Segments, SegmentName(seg.start))
		// Resynchronise at each unit marker after the damage.
		var off Position
		if bad.Pos >= seg.start {
			off = bad.Pos - seg.start + 1
		}
		for off < Position(n) {
			u, err := findUnit(seg, off)
			if err != nil {
				return nil, err
			}
			if u < 0 {
				break
			}
			end, _, err := scanSegment(seg, u, lost)
			if err != nil {
				return nil, err
			}
			off = max(end, u+1)
		}
		d.End = seg.start + Position(n)
	}
	return d, nil
}

// Cut truncates the log in dir at d.Pos, after copying every file it changes
// into backupDir: the remedy for damage that Inspect found, taken only on an
// operator's word (`braid repair --apply`).
func Cut(opts Options, d *Damage, backupDir string) error {
	opts.setDefaults()
	w := &WAL{opts: opts}
	if err := w.loadSegments(); err != nil {
		return err
	}
	defer w.closeFiles()
	if err := opts.FS.MkdirAll(backupDir, 0o755); err != nil {
		return fmt.Errorf("wal: create backup dir: %w", err)
	}
	for _, name := range d.Segments {
		if err := copyFile(opts.FS, filepath.Join(opts.Dir, name), filepath.Join(backupDir, name)); err != nil {
			return err
		}
	}
	if err := opts.FS.SyncDir(backupDir); err != nil {
		return fmt.Errorf("wal: sync backup dir: %w", err)
	}
	i, _ := w.segmentAt(d.Pos)
	if i < 0 {
		return fmt.Errorf("wal: cut position %d precedes the oldest segment", d.Pos)
	}
	return w.cutAfter(i, d.Pos)
}

// copyFile copies a segment into the backup directory and syncs the copy.
func copyFile(fs vfs.FS, from, to string) error {
	src, err := fs.OpenFile(from, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("wal: back up %s: %w", from, err)
	}
	defer src.Close()
	dst, err := fs.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("wal: back up %s: %w", from, err)
	}
	defer dst.Close()
	buf := make([]byte, 4<<20)
	for off := int64(0); ; {
		n, err := src.ReadAt(buf, off)
		if n > 0 {
			if _, werr := dst.WriteAt(buf[:n], off); werr != nil {
				return fmt.Errorf("wal: back up %s: %w", from, werr)
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("wal: back up %s: %w", from, err)
		}
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("wal: back up %s: %w", from, err)
	}
	return nil
}
