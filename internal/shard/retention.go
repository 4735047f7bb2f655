package shard

import (
	"fmt"
	"os"
	"time"
)

// Retention (cleanup.policy=delete). A pass finds the new log start: past
// every leading batch whose newest record is older than retention.ms, and
// past the oldest batches for as long as what remains still holds at least
// retention.bytes (both as Kafka does, at batch rather than segment
// granularity). The new log start is written to the shared log and made
// durable before any file goes, so a crash can only leave files that
// recovery no longer refers to. Segment files wholly below the log start
// are unlinked at once but their descriptors stay open for a grace period,
// so reads already under way finish (Kafka's file.delete.delay.ms).
// Files go once no index entry refers to them (see
// DropUnreferencedSegments), which covers compaction's rewrites too.

// RetentionPolicy is one shard's delete policy; -1 disables a limit.
type RetentionPolicy struct {
	Ms    int64
	Bytes int64
}

// RetentionTarget returns the log start a retention pass would move to
// (the current one if nothing is due). Only visible data is considered.
func (s *Shard) RetentionTarget(p RetentionPolicy, now time.Time) Offset {
	hw := s.HighWatermark()
	s.mu.RLock()
	defer s.mu.RUnlock()
	start := s.logStart
	total := s.idx.bytesFrom(0, hw)
	cutoff := now.UnixMilli() - p.Ms
	for _, e := range s.idx.from(0) {
		if e.Last >= hw {
			break
		}
		byTime := p.Ms >= 0 && e.MaxTS < cutoff
		bySize := p.Bytes >= 0 && total-int64(e.Loc.Size) >= p.Bytes
		if !byTime && !bySize {
			break
		}
		total -= int64(e.Loc.Size)
		start = e.Last + 1
	}
	return start
}

type retiredFile struct {
	sf      *segFile
	closeAt time.Time
}

// DropUnreferencedSegments unlinks segment files no index entry refers to
// any more (their batches are below the log start, or compaction rewrote
// them elsewhere) and closes, after grace, those dropped earlier. The
// active segment stays, and nothing goes while a compaction frame that
// unreferenced files is not yet durable: a crash must find every file the
// log it replays refers to. It returns the bytes freed.
func (s *Shard) DropUnreferencedSegments(grace time.Duration, now time.Time) (int64, error) {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	kept := s.retired[:0]
	for _, r := range s.retired {
		if now.After(r.closeAt) {
			r.sf.f.Close()
		} else {
			kept = append(kept, r)
		}
	}
	changed := len(kept) != len(s.retired)
	s.retired = kept
	s.mu.RLock()
	if s.log.Durable() < s.dropAfter {
		s.mu.RUnlock()
		if changed {
			s.publishSegsLocked()
		}
		return 0, nil
	}
	referenced := map[int64]bool{}
	s.idx.files(func(seg int64) { referenced[seg] = true })
	s.mu.RUnlock()
	var freed int64
	var keep []*segFile
	var err error
	for _, sf := range s.segs {
		if referenced[sf.id] || sf == s.active || err != nil {
			keep = append(keep, sf)
			continue
		}
		if rerr := s.fs.Remove(sf.f.Name()); rerr != nil && !os.IsNotExist(rerr) {
			err = fmt.Errorf("shard %s: remove segment: %w", s.key, rerr)
			keep = append(keep, sf)
			continue
		}
		s.retired = append(s.retired, retiredFile{sf: sf, closeAt: now.Add(grace)})
		freed += sf.size
	}
	if len(keep) != len(s.segs) || changed {
		s.segs = keep
		s.publishSegsLocked()
	}
	return freed, err
}
