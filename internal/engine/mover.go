package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// The mover copies batches out of closed write-ahead log segments into
// per-shard segment files, so the log can be reclaimed and so that
// retention and compaction have per-shard files to work on. Order of
// operations, each step safe to crash after:
//
//  1. copy + fsync into shard segments (index still points at the log);
//  2. repoint the index (memory only);
//  3. write a checkpoint (now recovery uses the segments);
//  4. remove log segments nobody points at.
//
// A crash before 3 leaves segment bytes the checkpoint does not know; they
// are cut off at recovery (shard.OpenSegments).

func (e *Engine) shardDir(stream uint64, shardID int32) string {
	return filepath.Join(e.opts.Dir, "shards", strconv.FormatUint(stream, 10), strconv.Itoa(int(shardID)))
}

// openSegments opens every shard's segment files and removes the directories
// of streams that no longer exist (byID: the streams, by id).
func (e *Engine) openSegments(byID map[uint64]*Stream) error {
	for _, st := range e.Streams() {
		for _, sh := range st.Shards {
			if err := sh.OpenSegments(); err != nil {
				return err
			}
		}
	}
	dirs, err := e.opts.FS.List(filepath.Join(e.opts.Dir, "shards"))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("engine: list shard dirs: %w", err)
	}
	for _, d := range dirs {
		id, err := strconv.ParseUint(d, 10, 64)
		if err != nil || byID[id] == nil {
			e.opts.FS.RemoveAll(filepath.Join(e.opts.Dir, "shards", d))
		}
	}
	return nil
}

func (e *Engine) removeStreamFiles(st *Stream) {
	for _, sh := range st.Shards {
		sh.CloseFiles()
	}
	dir := filepath.Join(e.opts.Dir, "shards", strconv.FormatUint(uint64(st.ID), 10))
	if err := e.opts.FS.RemoveAll(dir); err != nil {
		e.opts.Logger.Warn("engine: remove files of deleted stream", "stream", st.Name, "err", err)
	}
}

// oldestNeeded is the lowest log position any shard still reads from.
func (e *Engine) oldestNeeded() wal.Position {
	need := e.wal.Durable()
	for _, st := range e.Streams() {
		for _, sh := range st.Shards {
			if p := sh.OldestPosition(); p >= 0 && p < need {
				need = p
			}
		}
	}
	return need
}

// mover runs apart from checkpoints, so a long, throttled move never
// delays them (restart time depends on checkpoint cadence).
func (e *Engine) mover() {
	defer e.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastMove := time.Now()
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
		}
		if e.shouldMove(lastMove) {
			if err := e.moveClosedWAL(); err != nil {
				e.opts.Logger.Error("engine: moving log data to shard segments failed", "err", err)
			}
			lastMove = time.Now()
		}
	}
}

func (e *Engine) shouldMove(lastMove time.Time) bool {
	closed := int64(e.wal.ActiveStart()) - int64(e.oldestNeeded())
	return closed >= e.opts.MoveAfterBytes || closed > 0 && time.Since(lastMove) >= e.opts.MoveAfter
}

// moveClosedWAL moves every batch in closed log segments into shard
// segments, checkpoints, and reclaims the log.
func (e *Engine) moveClosedWAL() error {
	began := time.Now()
	before := e.wal.ActiveStart()
	var moved int64
	throttle := newThrottle(e.opts.MoveBytesPerSec)
	for _, st := range e.Streams() {
		for _, sh := range st.Shards {
			n, err := sh.MoveOut(before, st.SegmentBytes, throttle)
			if err != nil {
				return err
			}
			moved += n
		}
	}
	if err := e.checkpoint(); err != nil {
		return err
	}
	e.reclaimWAL()
	if e.opts.OnMove != nil {
		e.opts.OnMove(moved)
	}
	e.opts.Logger.Info("engine: moved log data to shard segments", "bytes", moved, "before", before, "took", time.Since(began))
	return nil
}

// newThrottle returns a function that sleeps as needed to keep the bytes
// reported to it under perSec on average since its creation.
func newThrottle(perSec int64) func(n int) {
	began := time.Now()
	var total int64
	return func(n int) {
		total += int64(n)
		due := time.Duration(float64(total) / float64(perSec) * float64(time.Second))
		if ahead := due - time.Since(began); ahead > 0 {
			time.Sleep(ahead)
		}
	}
}

// MoveNow moves all closed log data into shard segments at once (for tests
// and tools).
func (e *Engine) MoveNow() error { return e.moveClosedWAL() }
