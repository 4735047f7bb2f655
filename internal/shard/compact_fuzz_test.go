package shard

import (
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedBatch is a valid uncompressed batch of keyed records.
func seedBatch(keys ...string) []byte {
	return seedValueBatch([]byte("v"), keys...)
}

// seedValueBatch is a valid uncompressed batch of keyed records, each
// holding value.
func seedValueBatch(value []byte, keys ...string) []byte {
	var raw []byte
	for i, k := range keys {
		r := kmsg.NewRecord()
		r.OffsetDelta, r.Key, r.Value = int32(i), []byte(k), value
		if k == "" {
			r.Key = nil
		}
		body := r.AppendTo(nil)[1:]
		raw = binary.AppendVarint(raw, int64(len(body)))
		raw = append(raw, body...)
	}
	rb := kmsg.NewRecordBatch()
	rb.Magic, rb.LastOffsetDelta, rb.NumRecords = 2, int32(len(keys)-1), int32(len(keys))
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.Records = raw
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// FuzzCheckKeys feeds produce batches to the key check of compacted
// streams and to the batch rebuild: anything Validate accepts must be
// judged or refused with an error, never crash; a rebuilt batch keeps its
// offsets and has a correct CRC.
func FuzzCheckKeys(f *testing.F) {
	f.Add(seedBatch("a", "b"))
	f.Add(seedBatch("a", ""))
	f.Add(seedBatch("x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Validate(b)
		if err != nil {
			return
		}
		_ = CheckKeys(b, h)
		var keep [][]byte
		if eachRecord(b, h, func(_ Offset, raw []byte, _ *kmsg.Record) {
			if len(keep) == 0 {
				keep = append(keep, raw)
			}
		}) != nil || len(keep) == 0 {
			return
		}
		nb, err := rebuildBatch(b, h, keep)
		if err != nil {
			return
		}
		nh, err := ParseHeader(nb)
		if err != nil || nh.BaseOffset != h.BaseOffset || nh.LastOffsetDelta != h.LastOffsetDelta || nh.NumRecords != 1 {
			t.Fatalf("rebuilt header %+v from %+v (%v)", nh, h, err)
		}
		if crc32.Checksum(nb[offAttributes:], castagnoli) != binary.BigEndian.Uint32(nb[offCRC:]) {
			t.Fatal("rebuilt batch has a bad CRC")
		}
	})
}

// FuzzReplayCompact feeds compaction frames to recovery: a malformed one
// is refused with an error, and no frame leaves the index out of order.
func FuzzReplayCompact(f *testing.F) {
	ok := encodeCompactFrame(Key{}, 5, []compactChange{{base: 0, loc: Location{Seg: 7, Pos: 0, Size: 70}}, {base: 3, loc: Location{Size: -1}}})
	f.Add(ok[FramePrefixLen:])
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, payload []byte) {
		s := New(Key{}, nil, 0, nil, t.TempDir())
		for _, base := range []Offset{0, 3, 5, 9} {
			s.addLocked(Entry{Base: base, Last: base + 1, Loc: Location{Seg: InWAL, Pos: 100, Size: 70}}, nil)
		}
		_ = s.ReplayCompact(payload)
		es := entriesOf(s)
		for i := 1; i < len(es); i++ {
			if es[i].Base <= es[i-1].Base {
				t.Fatalf("index out of order after replay: %+v", es)
			}
		}
	})
}
