package shard

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

var decompressor = kgo.DefaultDecompressor()

// recordTimes calls fn with each record's offset and timestamp in batch b.
func recordTimes(b []byte, fn func(off Offset, ts int64) bool) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	raw := b[BatchHeaderLen:]
	if c := h.Codec(); c != 0 {
		raw, err = decompressor.Decompress(raw, kgo.CompressionCodecType(c))
		if err != nil {
			return fmt.Errorf("%w: decompress: %v", ErrCorruptBatch, err)
		}
	}
	logAppend := h.Attributes&attrTimestampType != 0
	stop := false
	return walkRecords(raw, h.NumRecords, func(od, tsd int64) {
		if stop {
			return
		}
		ts := h.FirstTimestamp + tsd
		if logAppend {
			ts = h.MaxTimestamp
		}
		stop = !fn(Offset(h.BaseOffset+od), ts)
	})
}

func (s *Shard) readEntry(e ref) ([]byte, error) {
	if e.data != nil {
		return e.data, nil
	}
	b := make([]byte, e.Loc.Size)
	if err := s.readAt(b, e.Loc); err != nil {
		return nil, err
	}
	return b, nil
}

// visibleEntries copies the index entries below the high watermark that are
// not before the log start, with their cached bytes.
func (s *Shard) visibleEntries() ([]ref, Offset, Offset) {
	hw := s.HighWatermark()
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.idx.search(func(e *Entry) bool { return e.Base >= hw })
	return s.refsLocked(0, n), s.logStart, hw
}

// OffsetForTime returns the first offset whose record timestamp is at least
// ts, as Kafka's ListOffsets does; found is false if there is none (the
// caller answers with the high watermark).
func (s *Shard) OffsetForTime(ts int64) (off Offset, recTS int64, found bool, err error) {
	entries, logStart, _ := s.visibleEntries()
	// Timestamps need not grow with offsets, so batch max timestamps are not
	// sorted: the answer is in the first batch, in offset order, whose max
	// reaches ts (what Kafka's time index of running maxima finds).
	for i := range entries {
		if entries[i].MaxTS < ts {
			continue
		}
		b, err := s.readEntry(entries[i])
		if err != nil {
			return 0, 0, false, err
		}
		err = recordTimes(b, func(o Offset, t int64) bool {
			if t >= ts && o >= logStart {
				off, recTS, found = o, t, true
				return false
			}
			return true
		})
		if err != nil || found {
			return off, recTS, found, err
		}
	}
	return 0, 0, false, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (the first such record); found is false if the shard
// holds no visible record.
func (s *Shard) MaxTimestamp() (off Offset, ts int64, found bool, err error) {
	entries, logStart, _ := s.visibleEntries()
	best := -1
	for i, e := range entries {
		if best < 0 || e.MaxTS > entries[best].MaxTS {
			best = i
		}
	}
	if best < 0 {
		return 0, 0, false, nil
	}
	b, err := s.readEntry(entries[best])
	if err != nil {
		return 0, 0, false, err
	}
	want := entries[best].MaxTS
	err = recordTimes(b, func(o Offset, t int64) bool {
		if t == want && o >= logStart {
			off, ts, found = o, t, true
			return false
		}
		return true
	})
	return off, ts, found, err
}
