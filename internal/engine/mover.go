package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/braidstream/braid/internal/wal"
)

// The write-ahead log is the storage of record: a batch is written once,
// to the log, and read from there for as long as it is retained. The
// mover copies batches out of closed log segments into per-shard segment
// files only where that pays:
//
//   - compacted streams, whose cleaner rewrites per-shard files: their
//     closed log data is moved once MoveAfterBytes of it pile up, or after
//     MoveAfter;
//   - live batches that pin old log segments that are mostly garbage
//     (batches below a log start that retention, DeleteRecords or a
//     deleted stream left behind): the log is reclaimed from its head
//     only, so a little long-lived data would keep a lot of dead log on
//     disk; gcCut decides, and copying never costs more than half the log
//     it frees.
//
// A stream with one retention, the common case, is never copied: the
// copy doubled every byte written and competed with the log's fsyncs for
// the disk (docs/design/storage.md). Order of operations, each step safe
// to crash after:
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
	var weighed struct {
		refs   uint64
		oldest wal.Position
		at     time.Time
	}
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
		}
		var plan movePlan
		if e.shouldMoveCompacted(lastMove) {
			plan.compacted = e.wal.ActiveStart()
		}
		// Weighing the log walks every index entry still in it, which is
		// everything retained: only when an entry may have left it
		// (dropped, compacted, moved, a shard gone), or now and then.
		// The log rolling adds no garbage: a closed segment fully
		// referenced never makes a move pay.
		refs, oldest := e.logRefChanges(), e.oldestNeeded()
		if refs != weighed.refs || oldest != weighed.oldest || time.Since(weighed.at) >= e.opts.MoveAfter {
			weighed.refs, weighed.oldest, weighed.at = refs, oldest, time.Now()
			e.weighs.Add(1)
			plan.all = e.garbageCut()
		}
		if plan.compacted > 0 || plan.all > 0 {
			if err := e.move(plan); err != nil {
				e.opts.Logger.Error("engine: moving log data to shard segments failed", "err", err)
			}
			lastMove = time.Now()
		}
	}
}

// logRefChanges sums what can have left log data unreferenced since
// the last call gave the same sum: every shard's dropped entries and
// rewrites, and the number of shards.
func (e *Engine) logRefChanges() uint64 {
	var n uint64
	for _, st := range e.Streams() {
		for _, sh := range st.Shards {
			n += sh.RefChanges() + 1
		}
	}
	return n
}

// movePlan says how far back in the log each shard's batches are moved:
// every shard's before all, a compacted stream's before compacted too.
type movePlan struct {
	all, compacted wal.Position
}

func (p movePlan) before(st *Stream) wal.Position {
	if st.Compact != nil {
		return max(p.all, p.compacted)
	}
	return p.all
}

// shouldMoveCompacted says whether the closed log holds enough, or old
// enough, data of compacted streams to move it for their cleaner.
func (e *Engine) shouldMoveCompacted(lastMove time.Time) bool {
	oldest := wal.Position(-1)
	for _, st := range e.Streams() {
		if st.Compact == nil {
			continue
		}
		for _, sh := range st.Shards {
			if p := sh.OldestPosition(); p >= 0 && (oldest < 0 || p < oldest) {
				oldest = p
			}
		}
	}
	if oldest < 0 {
		return false
	}
	closed := int64(e.wal.ActiveStart()) - int64(oldest)
	return closed >= e.opts.MoveAfterBytes || closed > 0 && time.Since(lastMove) >= e.opts.MoveAfter
}

// garbageCut weighs the closed log: how many bytes of each closed segment
// are still referenced by an index entry, and returns where moving every
// batch before it pays (see gcCut), or 0.
func (e *Engine) garbageCut() wal.Position {
	starts := e.wal.SegmentStarts()
	if len(starts) < 2 {
		return 0
	}
	starts, end := starts[:len(starts)-1], starts[len(starts)-1]
	live := make([]int64, len(starts))
	for _, st := range e.Streams() {
		for _, sh := range st.Shards {
			sh.WALRefs(func(pos wal.Position, size int32) {
				if pos >= end || pos < starts[0] {
					return
				}
				i := sort.Search(len(starts), func(i int) bool { return starts[i] > pos }) - 1
				live[i] += int64(size)
			})
		}
	}
	return gcCut(starts, end, live, maxMovedFraction)
}

// maxMovedFraction bounds what a garbage move copies: at most this share
// of the log segments it frees.
const maxMovedFraction = 0.5

// gcCut chooses which head of the closed log to free by copying its live
// batches out. Closed segment i spans [starts[i], starts[i+1]) (the last
// ends at end) and holds live[i] referenced bytes. Leading segments with
// nothing live are reclaimed without a move and are skipped; of the
// prefixes after them whose live share is at most maxFraction, the one
// with the smallest share wins (the longest among equals), and its end is
// returned. 0 means no move pays: in a log whose data is all retained
// alike, every prefix is live and nothing is ever copied.
func gcCut(starts []wal.Position, end wal.Position, live []int64, maxFraction float64) wal.Position {
	k := 0
	for k < len(live) && live[k] == 0 {
		k++
	}
	var cut wal.Position
	best := maxFraction
	var liveSum, sizeSum int64
	for i := k; i < len(starts); i++ {
		next := end
		if i+1 < len(starts) {
			next = starts[i+1]
		}
		liveSum += live[i]
		sizeSum += int64(next - starts[i])
		if share := float64(liveSum) / float64(sizeSum); share <= best {
			best, cut = share, next
		}
	}
	return cut
}

// moveClosedWAL moves every batch in closed log segments into shard
// segments, checkpoints, and reclaims the log.
func (e *Engine) moveClosedWAL() error {
	return e.move(movePlan{all: e.wal.ActiveStart()})
}

// move copies the batches the plan names into shard segments,
// checkpoints, and reclaims the log.
func (e *Engine) move(plan movePlan) error {
	began := time.Now()
	var moved int64
	throttle := newThrottle(e.opts.MoveBytesPerSec)
	for _, st := range e.Streams() {
		before := plan.before(st)
		if before <= 0 {
			continue
		}
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
	e.opts.Logger.Info("engine: moved log data to shard segments", "bytes", moved, "before", plan.all, "compacted_before", plan.compacted, "took", time.Since(began))
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
