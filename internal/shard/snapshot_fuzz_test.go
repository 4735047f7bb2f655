package shard

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedSnapshot is a checkpoint snapshot with every part filled in: two
// entries (one moved to a segment file, one in the WAL), an idempotent
// producer with a window of two batches, an open and an aborted
// transaction.
func seedSnapshot() Snapshot {
	return Snapshot{
		Key:      Key{Stream: 7, Shard: 2},
		LogStart: 3, Next: 12,
		Entries: []Entry{
			{Base: 3, Last: 6, MaxTS: 1700000000000, Loc: Location{Seg: 1700000000000000000, Pos: 0, Size: 120}},
			{Base: 7, Last: 11, MaxTS: 1700000000500, Loc: Location{Seg: InWAL, Pos: 4096, Size: 200}},
		},
		producers: map[int64]*producerState{
			42: {epoch: 3, lastTS: 1700000000500, n: 2, window: [producerWindow]seqBatch{{first: 0, last: 3, base: 3}, {first: 4, last: 8, base: 7}}},
		},
		txns:    map[int64]*openTxn{43: {first: 9, firstPos: 4096, marker: -1}},
		aborted: []AbortedTxn{{ProducerID: 44, First: 4, Last: 5, pos: 2048}},
	}
}

// FuzzReadSnapshot decodes garbage as a shard's checkpoint snapshot (the
// checkpoint's CRC guards the file, not a bug in the writer): it must
// return an error or a snapshot, never panic, and never allocate more
// entries than the input could hold. What it decodes must survive
// AppendSnapshot and ReadSnapshot unchanged.
func FuzzReadSnapshot(f *testing.F) {
	full := AppendSnapshot(nil, seedSnapshot())
	f.Add(full, true)
	f.Add(AppendSnapshot(nil, Snapshot{Key: Key{Stream: 1}, Next: 5}), true)
	f.Add(full[:len(full)-8], false) // a BRDCKPT1 snapshot has no transaction part
	f.Fuzz(func(t *testing.T, b []byte, withTxns bool) {
		snap, rest, err := ReadSnapshot(b, withTxns)
		if err != nil {
			return
		}
		if len(rest) > len(b) {
			t.Fatalf("%d bytes left of %d", len(rest), len(b))
		}
		used := len(b) - len(rest)
		if n := len(snap.Entries)*entryLen + len(snap.producers)*19 + len(snap.txns)*24 + len(snap.aborted)*32; n > used {
			t.Fatalf("decoded %d bytes' worth of state from %d bytes", n, used)
		}
		if !withTxns {
			return
		}
		again, rest2, err := ReadSnapshot(AppendSnapshot(nil, snap), true)
		if err != nil || len(rest2) != 0 {
			t.Fatalf("re-reading an encoded snapshot: %v, %d bytes left", err, len(rest2))
		}
		if !reflect.DeepEqual(again, snap) {
			t.Fatalf("snapshot changed in a round trip:\n%+v\n%+v", snap, again)
		}
	})
}

// TestSnapshotRoundTrip checks that the seed survives a round trip whole,
// so the fuzz target's round-trip check compares something.
func TestSnapshotRoundTrip(t *testing.T) {
	want := seedSnapshot()
	got, rest, err := ReadSnapshot(AppendSnapshot(nil, want), true)
	if err != nil || len(rest) != 0 {
		t.Fatalf("read: %v, %d bytes left", err, len(rest))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

// FuzzProducerState decodes garbage as a snapshot's idempotent producer
// state: no panic, windows no longer than producerWindow, and what decodes
// round-trips.
func FuzzProducerState(f *testing.F) {
	f.Add(appendProducers(nil, seedSnapshot().producers))
	f.Add(appendProducers(nil, map[int64]*producerState{1: {epoch: -1}, 2: {epoch: 0, n: 1, window: [producerWindow]seqBatch{{first: 2147483600, last: 10, base: 1}}}}))
	f.Add(appendProducers(nil, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, rest, err := readProducers(b)
		if err != nil {
			return
		}
		for id, st := range m {
			if st.n > producerWindow {
				t.Fatalf("producer %d: window of %d batches", id, st.n)
			}
		}
		if used := len(b) - len(rest); len(m)*19 > used {
			t.Fatalf("%d producers from %d bytes", len(m), used)
		}
		again, rest2, err := readProducers(appendProducers(nil, m))
		if err != nil || len(rest2) != 0 || !reflect.DeepEqual(again, m) {
			t.Fatalf("producer state changed in a round trip (%v, %d left)", err, len(rest2))
		}
	})
}

// FuzzTxnState decodes garbage as a snapshot's transaction state (open
// transactions and the aborted-transaction index): no panic, and what
// decodes round-trips.
func FuzzTxnState(f *testing.F) {
	s := seedSnapshot()
	f.Add(appendTxns(nil, s.txns, s.aborted))
	f.Add(appendTxns(nil, nil, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		txns, aborted, rest, err := readTxns(b)
		if err != nil {
			return
		}
		if used := len(b) - len(rest); len(txns)*24+len(aborted)*32 > used {
			t.Fatalf("%d open and %d aborted transactions from %d bytes", len(txns), len(aborted), used)
		}
		t2, a2, rest2, err := readTxns(appendTxns(nil, txns, aborted))
		if err != nil || len(rest2) != 0 || !reflect.DeepEqual(t2, txns) || !reflect.DeepEqual(a2, aborted) {
			t.Fatalf("transaction state changed in a round trip (%v, %d left)", err, len(rest2))
		}
	})
}

// timedBatch is a valid batch whose records carry the given timestamp
// deltas, gzip-compressed if asked.
func timedBatch(gzipped bool, deltas ...int64) []byte {
	var raw []byte
	for i, d := range deltas {
		r := kmsg.NewRecord()
		r.OffsetDelta, r.TimestampDelta64, r.Key, r.Value = int32(i), d, []byte("k"), []byte("v")
		body := r.AppendTo(nil)[1:]
		raw = binary.AppendVarint(raw, int64(len(body)))
		raw = append(raw, body...)
	}
	rb := kmsg.NewRecordBatch()
	rb.Magic, rb.LastOffsetDelta, rb.NumRecords = 2, int32(len(deltas)-1), int32(len(deltas))
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.FirstTimestamp, rb.MaxTimestamp = 1700000000000, 1700000000000+slices.Max(deltas)
	if gzipped {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(raw)
		w.Close()
		raw, rb.Attributes = buf.Bytes(), 1
	}
	rb.Records = raw
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// FuzzRecordTimes feeds garbage to the time index's decoder (record
// timestamps of a batch read back from a segment file, where no CRC is
// checked on the way): an error or the timestamps, never a panic, and never
// more records than the header claims.
func FuzzRecordTimes(f *testing.F) {
	f.Add(timedBatch(false, 0, 5, 3))
	f.Add(timedBatch(true, 0, 1000))
	f.Add(seedBatch("a", "b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		n := 0
		err2 := recordTimes(b, func(off Offset, ts int64) bool {
			n++
			if n > int(h.NumRecords) {
				t.Fatalf("record %d of a batch of %d", n, h.NumRecords)
			}
			return true
		})
		if err != nil && err2 == nil {
			t.Fatalf("ParseHeader refused the batch (%v), recordTimes did not", err)
		}
	})
}

// TestRecordTimesSeeds checks the seeds decode to their timestamps, so the
// fuzz target starts from batches that reach the record walk.
func TestRecordTimesSeeds(t *testing.T) {
	for _, gz := range []bool{false, true} {
		var got []int64
		err := recordTimes(timedBatch(gz, 0, 5, 3), func(_ Offset, ts int64) bool { got = append(got, ts-1700000000000); return true })
		if err != nil || !slices.Equal(got, []int64{0, 5, 3}) {
			t.Errorf("gzip %v: %v, %v", gz, got, err)
		}
	}
}
