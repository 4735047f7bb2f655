package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/group"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/txn"
	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

// ErrNoCatalog is returned by Open for a data directory that holds log or
// shard data but no catalog: starting would treat every shard's data as
// belonging to no stream and delete it.
var ErrNoCatalog = errors.New("engine: data directory has data but no catalog.json")

// RepairReport tells what `braid repair` found in a data directory and, when
// applied, what it did.
type RepairReport struct {
	Dir     string `json:"data_dir"`
	Damaged bool   `json:"damaged"`
	// Where the damage is and why it is not a torn tail.
	File     string       `json:"file,omitempty"`
	Offset   wal.Position `json:"file_offset,omitempty"`
	Position wal.Position `json:"log_position,omitempty"`
	Reason   string       `json:"reason,omitempty"`
	Evidence string       `json:"evidence,omitempty"`
	// What cutting the log at Position loses.
	LostBytes    int64          `json:"lost_bytes,omitempty"`
	LostSegments []string       `json:"wal_segments_changed,omitempty"`
	LostShards   []LostRange    `json:"lost_shard_ranges,omitempty"`
	LostFrames   map[string]int `json:"lost_frames,omitempty"`
	// Set once applied.
	Applied bool   `json:"applied"`
	Backup  string `json:"backup_dir,omitempty"`
}

// LostRange is a shard's offsets in the part of the log a cut removes. The
// frames inside the damaged write unit after the damage cannot be read, so
// the ranges are a lower bound of what is lost; LostBytes is exact.
type LostRange struct {
	Stream     string       `json:"stream"`
	Shard      int32        `json:"shard"`
	FromOffset shard.Offset `json:"from_offset"`
	ToOffset   shard.Offset `json:"to_offset"` // inclusive
	Batches    int          `json:"batches"`
}

// Repair inspects the data directory's write-ahead log for damage that stops
// Open (see wal.CorruptError) and reports what cutting the log at the damage
// would lose. With apply, it first copies every WAL file the cut changes to
// DIR/repair-<UTC time>/wal/, then cuts. The node must not be running.
func Repair(fs vfs.FS, dir string, apply bool) (RepairReport, error) {
	if fs == nil {
		fs = vfs.Default
	}
	rep := RepairReport{Dir: dir}
	lock, err := lockDir(fs, dir)
	if err != nil {
		return rep, err
	}
	defer lock.Close()
	snap, err := catalog.FileStore{FS: fs, Path: filepath.Join(dir, "catalog.json")}.Load()
	if err != nil {
		return rep, err
	}
	names := map[uint64]string{}
	if snap != nil {
		for _, st := range snap.Streams {
			names[uint64(st.ID)] = st.Name
		}
	}
	ck, err := loadCheckpoint(fs, dir)
	if err != nil {
		return rep, err
	}
	type key struct {
		stream uint64
		shard  int32
	}
	ranges := map[key]*LostRange{}
	frames := map[string]int{}
	lost := func(sk shard.Key, b []byte) {
		h, err := shard.ParseHeader(b)
		if err != nil {
			return
		}
		k := key{sk.Stream, sk.Shard}
		r := ranges[k]
		if r == nil {
			name := names[k.stream]
			if name == "" {
				name = fmt.Sprintf("(deleted stream %d)", k.stream)
			}
			r = &LostRange{Stream: name, Shard: k.shard, FromOffset: shard.Offset(h.BaseOffset)}
			ranges[k] = r
		}
		r.FromOffset = min(r.FromOffset, shard.Offset(h.BaseOffset))
		r.ToOffset = max(r.ToOffset, shard.Offset(h.BaseOffset)+shard.Offset(h.LastOffsetDelta))
		r.Batches++
	}
	walOpts := wal.Options{Dir: filepath.Join(dir, "wal"), FS: fs}
	d, err := wal.Inspect(walOpts, ck.replayFrom, func(pos wal.Position, kind wal.Kind, body []byte) error {
		switch kind {
		case shard.KindBatch:
			frames["record batches"]++
			if len(body) < shard.FramePrefixLen+shard.BatchHeaderLen {
				return nil
			}
			lost(shard.Key{Stream: binary.LittleEndian.Uint64(body), Shard: int32(binary.LittleEndian.Uint32(body[8:]))}, body[shard.FramePrefixLen:])
		case shard.KindRouted:
			frames["routed record batches"]++
			if f, err := shard.DecodeRouted(body); err == nil {
				for _, p := range f.Parts {
					lost(p.Key, p.Batch)
				}
			}
		case group.KindOffsets:
			frames["group offset commits"]++
		case group.KindGroup:
			frames["group membership changes"]++
		case txn.KindTxn:
			frames["transaction state changes"]++
		case shard.KindLogStart:
			frames["log start changes"]++
		case shard.KindCompact:
			frames["compaction switches"]++
		default:
			frames[fmt.Sprintf("kind %d", kind)]++
		}
		return nil
	})
	if err != nil || d == nil {
		return rep, err
	}
	rep.Damaged = true
	rep.File = filepath.Join("wal", d.Segment)
	rep.Offset, rep.Position = d.Offset, d.Pos
	rep.Reason, rep.Evidence = d.Reason, d.Evidence
	rep.LostBytes = int64(d.End - d.Pos)
	rep.LostSegments = d.Segments
	rep.LostFrames = frames
	for _, r := range ranges {
		rep.LostShards = append(rep.LostShards, *r)
	}
	sort.Slice(rep.LostShards, func(i, j int) bool {
		a, b := rep.LostShards[i], rep.LostShards[j]
		return a.Stream < b.Stream || a.Stream == b.Stream && a.Shard < b.Shard
	})
	if !apply {
		return rep, nil
	}
	rep.Backup = filepath.Join(dir, "repair-"+time.Now().UTC().Format("20060102T150405Z"))
	if _, err := fs.Stat(rep.Backup); err == nil {
		return rep, fmt.Errorf("engine: repair: backup dir %s exists", rep.Backup)
	}
	if err := wal.Cut(walOpts, d, filepath.Join(rep.Backup, "wal")); err != nil {
		return rep, err
	}
	if err := fs.SyncDir(dir); err != nil {
		return rep, err
	}
	rep.Applied = true
	return rep, nil
}

// checkHasCatalog refuses a data directory whose catalog is missing while
// log, checkpoint or shard data is there.
func checkHasCatalog(fs vfs.FS, dir string) error {
	if _, err := fs.Stat(filepath.Join(dir, "catalog.json")); err == nil || !os.IsNotExist(err) {
		return err
	}
	var found []string
	if _, err := fs.Stat(filepath.Join(dir, "checkpoint")); err == nil {
		found = append(found, "checkpoint")
	}
	for _, sub := range []string{"wal", "shards"} {
		if names, err := fs.List(filepath.Join(dir, sub)); err == nil && len(names) > 0 {
			found = append(found, sub+"/")
		}
	}
	if len(found) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s holds %v. Starting would drop every shard's data; nothing was changed. "+
		"Restore catalog.json from a backup, or move the directory aside to start empty", ErrNoCatalog, dir, found)
}
