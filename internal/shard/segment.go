package shard

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

// Shard segment files hold a shard's older batches, moved out of the shared
// write-ahead log in the background or rewritten by compaction. A segment is
// a plain concatenation of RecordBatch v2 bytes (Kafka's own .log layout),
// named by its id:
//
//	shards/<stream id>/<shard id>/<20-digit id>.seg
//
// An id is never given to two files of a shard: new ids are above every id
// on disk and at least the wall clock in nanoseconds, so an id freed by a
// removed file is not handed out again (files of older versions are named
// by their first batch's base offset, far below any clock reading). That
// lets compaction write the same offsets to a new file while readers still
// use the old one.
//
// The index (and so the checkpoint, and compaction frames in the log) is the
// only record of what a segment holds: bytes past the last indexed batch, or
// a file no entry refers to, come from a move or a compaction that crashed
// before it was recorded and are cut off at recovery. The mover appends to
// one active segment; any other file is immutable, and goes once no entry
// refers to it.
type segFile struct {
	id   int64
	f    vfs.File
	size int64
}

// SegmentName is the file name of the segment with the given id.
func SegmentName(id int64) string { return fmt.Sprintf("%020d.seg", id) }

// newSegmentLocked creates an empty segment file with a fresh id (segMu
// held). It is not in s.segs yet.
func (s *Shard) newSegmentLocked() (*segFile, error) {
	// The new directories' own entries must survive a power loss too:
	// shards/<stream>/, shards/ and the data dir hold them.
	if err := vfs.MkdirAllDurable(s.fs, s.dir); err != nil {
		return nil, fmt.Errorf("shard %s: create segment dir: %w", s.key, err)
	}
	id := max(s.nextSegID, time.Now().UnixNano())
	s.nextSegID = id + 1
	f, err := s.fs.OpenFile(filepath.Join(s.dir, SegmentName(id)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("shard %s: create segment: %w", s.key, err)
	}
	return &segFile{id: id, f: f}, nil
}

func (s *Shard) readAt(p []byte, loc Location) error {
	if loc.Seg == InWAL {
		return s.log.ReadAt(p, loc.Pos)
	}
	f := s.readableSeg(loc.Seg)
	if f == nil {
		return fmt.Errorf("shard %s: segment %s is gone", s.key, SegmentName(loc.Seg))
	}
	if _, err := f.ReadAt(p, int64(loc.Pos)); err != nil {
		return fmt.Errorf("shard %s: read segment %s: %w", s.key, SegmentName(loc.Seg), err)
	}
	return nil
}

// readableSeg returns the file of segment id that readers may read (a live
// one, or one unlinked but still open for reads under way), or nil.
func (s *Shard) readableSeg(id int64) vfs.File {
	segs := s.segsRO.Load()
	if segs == nil {
		return nil
	}
	i := sort.Search(len(*segs), func(i int) bool { return (*segs)[i].id >= id })
	if i < len(*segs) && (*segs)[i].id == id {
		return (*segs)[i].f
	}
	return nil
}

// publishSegsLocked gives readers the files they may read: the live ones
// and those unlinked but still open for reads under way (segMu held).
func (s *Shard) publishSegsLocked() {
	cp := append([]*segFile(nil), s.segs...)
	for _, r := range s.retired {
		cp = append(cp, r.sf)
	}
	sort.Slice(cp, func(i, j int) bool { return cp[i].id < cp[j].id })
	s.segsRO.Store(&cp)
}

// OpenSegments opens the shard's segment files after the index was restored
// from a checkpoint, cutting off what the index does not refer to.
func (s *Shard) OpenSegments() error {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	refEnd := map[int64]int64{}
	s.mu.RLock()
	s.idx.inFiles(func(e Entry) {
		refEnd[e.Loc.Seg] = max(refEnd[e.Loc.Seg], int64(e.Loc.Pos)+int64(e.Loc.Size))
	})
	s.mu.RUnlock()
	names, err := s.fs.List(s.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("shard %s: list segments: %w", s.key, err)
	}
	for id := range refEnd {
		if !slices.Contains(names, SegmentName(id)) {
			return fmt.Errorf("shard %s: the index refers to segment file %s, which does not exist: %w",
				s.key, filepath.Join(s.dir, SegmentName(id)), wal.ErrCorrupt)
		}
	}
	for _, name := range names {
		if !strings.HasSuffix(name, ".seg") {
			continue
		}
		id, err := strconv.ParseInt(strings.TrimSuffix(name, ".seg"), 10, 64)
		path := filepath.Join(s.dir, name)
		end, referenced := refEnd[id]
		if err != nil || !referenced {
			if err := s.fs.Remove(path); err != nil {
				return fmt.Errorf("shard %s: remove unreferenced segment: %w", s.key, err)
			}
			continue
		}
		f, err := s.fs.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("shard %s: open segment: %w", s.key, err)
		}
		size, err := f.Size()
		if err != nil {
			f.Close()
			return fmt.Errorf("shard %s: stat segment: %w", s.key, err)
		}
		if size < end {
			f.Close()
			return fmt.Errorf("shard %s: segment %s is %d bytes, the index needs %d: %w", s.key, name, size, end, wal.ErrCorrupt)
		}
		if size > end {
			if err := f.Truncate(end); err != nil {
				f.Close()
				return fmt.Errorf("shard %s: truncate segment: %w", s.key, err)
			}
		}
		s.segs = append(s.segs, &segFile{id: id, f: f, size: end})
		s.nextSegID = max(s.nextSegID, id+1)
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].id < s.segs[j].id })
	// The mover starts a new active segment: after a restart no file is
	// appended to again.
	s.active = nil
	s.publishSegsLocked()
	return nil
}

// MoveOut copies every batch whose bytes lie in the shared log before
// `before` into the shard's segment files, fsyncs them, and repoints the
// index. Produce and fetch go on meanwhile: the copy happens outside the
// shard's lock, and the index switch is one short critical section. It
// returns the bytes moved. throttle, if set, is called after each write
// with its size, and may sleep to keep the copy within an I/O budget.
func (s *Shard) MoveOut(before wal.Position, segmentBytes int64, throttle func(n int)) (int64, error) {
	s.mu.RLock()
	var move []ref
	for i, e := range s.idx.from(s.idx.firstInLog()) {
		if e.Loc.Pos >= before {
			break
		}
		move = append(move, ref{Entry: e, data: s.dataLocked(i)})
	}
	s.mu.RUnlock()
	if len(move) == 0 {
		return 0, nil
	}
	s.segMu.Lock()
	defer s.segMu.Unlock()
	touched := map[*segFile]bool{}
	var created []*segFile
	prevActive := s.active
	var prevSize int64
	if prevActive != nil {
		prevSize = prevActive.size
	}
	// fail forgets everything this call wrote, so that no file readers
	// cannot find (never published, its directory entry never synced) stays
	// in the shard, and the active file keeps exactly what entries refer to.
	fail := func(err error) (int64, error) {
		for _, sf := range created {
			sf.f.Close()
			s.fs.Remove(sf.f.Name())
			s.segs = slices.DeleteFunc(s.segs, func(x *segFile) bool { return x == sf })
		}
		s.active = prevActive
		if prevActive != nil {
			prevActive.size = prevSize
			if terr := prevActive.f.Truncate(prevSize); terr != nil {
				s.active = nil // append to a fresh file next time
			}
		}
		return 0, err
	}
	newLocs := make([]Location, len(move))
	var pending []byte
	var cur *segFile
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if _, err := cur.f.WriteAt(pending, cur.size-int64(len(pending))); err != nil {
			return fmt.Errorf("shard %s: write segment: %w", s.key, err)
		}
		// Sync as we go: one fsync of a gigabyte of dirty pages at the end
		// would stall the WAL's group commits behind it for seconds.
		if err := cur.f.Datasync(); err != nil {
			return fmt.Errorf("shard %s: sync segment: %w", s.key, err)
		}
		if throttle != nil {
			throttle(len(pending))
		}
		pending = pending[:0]
		return nil
	}
	var moved int64
	for k, e := range move {
		if s.active == nil || s.active.size >= segmentBytes {
			if err := flush(); err != nil {
				return fail(err)
			}
			sf, err := s.newSegmentLocked()
			if err != nil {
				return fail(err)
			}
			s.segs = append(s.segs, sf)
			s.active = sf
			created = append(created, sf)
		}
		cur = s.active
		touched[cur] = true
		data, err := s.readEntry(e)
		if err != nil {
			return fail(fmt.Errorf("shard %s: read batch %d to move: %w", s.key, e.Base, err))
		}
		newLocs[k] = Location{Seg: cur.id, Pos: wal.Position(cur.size), Size: e.Loc.Size}
		pending = append(pending, data...)
		cur.size += int64(len(data))
		moved += int64(len(data))
		if len(pending) >= 8<<20 {
			if err := flush(); err != nil {
				return fail(err)
			}
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	for sf := range touched {
		if err := sf.f.Sync(); err != nil {
			return fail(fmt.Errorf("shard %s: sync segment: %w", s.key, err))
		}
	}
	if len(created) > 0 {
		if err := s.syncDir(); err != nil {
			return fail(err)
		}
		s.publishSegsLocked()
	}
	s.mu.Lock()
	// The moved entries are a run of the index, less any DeleteRecords
	// dropped from its front meanwhile.
	repointed := false
	k := 0
	first := s.idx.search(func(x *Entry) bool { return x.Base >= move[0].Base })
	s.idx.update(first, first+len(move), func(x *Entry) {
		for k < len(move) && move[k].Base < x.Base {
			k++
		}
		if k < len(move) && move[k].Base == x.Base && move[k].Loc == x.Loc {
			x.Loc = newLocs[k]
			repointed = true
		}
	})
	if repointed {
		s.rewrites++
	}
	s.mu.Unlock()
	return moved, nil
}

// Segments returns the number of segment files and their total size.
func (s *Shard) Segments() (n int, bytes int64) {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	for _, sf := range s.segs {
		bytes += sf.size
	}
	return len(s.segs), bytes
}

// CloseFiles closes the shard's segment files.
func (s *Shard) CloseFiles() {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	for _, sf := range s.segs {
		sf.f.Close()
	}
	for _, r := range s.retired {
		r.sf.f.Close()
	}
	s.segs, s.retired, s.active = nil, nil, nil
	s.segsRO.Store(nil)
}

func (s *Shard) syncDir() error {
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("sync dir %s: %w", s.dir, err)
	}
	return nil
}
