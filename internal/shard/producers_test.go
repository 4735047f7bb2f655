package shard

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"
)

// idemSeedBatch is seedBatch sent by idempotent producer pid at epoch and
// sequence seq.
func idemSeedBatch(pid int64, epoch int16, seq int32, keys ...string) []byte {
	b := seedBatch(keys...)
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerID+8:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offProducerID+10:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// TestProducerWindowAndForget: a shard answers a retry of any of a
// producer's last producerWindow batches as a duplicate and refuses one
// older than that; a producer forgotten by expiry must start its sequence
// again, although the shard remembers the producer of its last batch
// (producerLocked) to spare a map lookup per batch.
func TestProducerWindowAndForget(t *testing.T) {
	s, _ := newTailShard(t, 1<<20)
	appendSeq := func(pid int64, seq int32) (AppendResult, error) {
		b := idemSeedBatch(pid, 0, seq, "k")
		h, err := Validate(b)
		if err != nil {
			t.Fatal(err)
		}
		return s.Append(b, h, -1, false)
	}
	var bases []Offset
	for seq := range int32(producerWindow + 2) {
		r, err := appendSeq(7, seq)
		if err != nil || r.Duplicate {
			t.Fatalf("seq %d: %+v, %v", seq, r, err)
		}
		bases = append(bases, r.Base)
	}
	last := int32(producerWindow + 1)
	for seq := last - producerWindow + 1; seq <= last; seq++ {
		if r, err := appendSeq(7, seq); err != nil || !r.Duplicate || r.Base != bases[seq] {
			t.Fatalf("retry of seq %d: %+v, %v; want a duplicate at %d", seq, r, err, bases[seq])
		}
	}
	if _, err := appendSeq(7, last-producerWindow); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("retry of a batch older than the window: %v, want ErrOutOfOrderSequence", err)
	}
	if got := s.Producers(); len(got) != 1 || got[0].LastSequence != last {
		t.Fatalf("producers %+v, want 7 at sequence %d", got, last)
	}

	if n := s.ExpireProducers(time.Hour, time.Now().Add(48*time.Hour)); n != 1 {
		t.Fatalf("expired %d producers, want 1", n)
	}
	if _, err := appendSeq(7, last+1); !errors.Is(err, ErrUnknownProducer) {
		t.Fatalf("forgotten producer continuing its sequence: %v, want ErrUnknownProducer", err)
	}
	if r, err := appendSeq(7, 0); err != nil || r.Duplicate {
		t.Fatalf("forgotten producer starting again: %+v, %v", r, err)
	}
}
