package shard

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/braidstream/braid/internal/wal"
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
		entries: packedIndexOf([]Entry{
			{Base: 3, Last: 6, MaxTS: 1700000000000, Loc: Location{Seg: 1700000000000000000, Pos: 0, Size: 120}},
			{Base: 7, Last: 11, MaxTS: 1700000000500, Loc: Location{Seg: InWAL, Pos: 4096, Size: 200}},
		}),
		producers: map[int64]*producerState{
			42: {epoch: 3, lastTS: 1700000000500, n: 2, window: [producerWindow]seqBatch{{first: 0, last: 3, base: 3}, {first: 4, last: 8, base: 7}}},
		},
		txns:    map[int64]*openTxn{43: {first: 9, firstPos: 4096, marker: -1}},
		aborted: []AbortedTxn{{ProducerID: 44, First: 4, Last: 5, pos: 2048}},
	}
}

// FuzzReadSnapshot decodes garbage as a shard's checkpoint snapshot in
// the plain format of checkpoints before BRDCKPT4 (the checkpoint's CRC
// guards the file, not a bug in the writer): it must return an error or a
// snapshot, never panic, and never allocate more entries than the input
// could hold. What it decodes must survive AppendSnapshot (the packed
// format) and ReadSnapshot unchanged.
func FuzzReadSnapshot(f *testing.F) {
	full := AppendPlainSnapshot(nil, seedSnapshot())
	f.Add(full, true)
	f.Add(AppendPlainSnapshot(nil, Snapshot{Key: Key{Stream: 1}, Next: 5}), true)
	f.Add(full[:len(full)-8], false) // a BRDCKPT1 snapshot has no transaction part
	f.Fuzz(func(t *testing.T, b []byte, withTxns bool) {
		format := SnapshotPlain
		if !withTxns {
			format = SnapshotPlainNoTxns
		}
		snap, rest, err := ReadSnapshot(b, format)
		if err != nil {
			return
		}
		if len(rest) > len(b) {
			t.Fatalf("%d bytes left of %d", len(rest), len(b))
		}
		used := len(b) - len(rest)
		if n := snap.Len()*entryLen + len(snap.producers)*19 + len(snap.txns)*24 + len(snap.aborted)*32; n > used {
			t.Fatalf("decoded %d bytes' worth of state from %d bytes", n, used)
		}
		if !withTxns {
			return
		}
		checkRoundTrip(t, snap)
	})
}

// FuzzReadPackedSnapshot decodes garbage as a shard's snapshot in the
// packed format: an error or a snapshot, never a panic, never more entries
// than bytes (a group of entries holds at most one whose fields take no
// byte: entries ascend), entries that ascend and hold a batch header,
// and a round trip that changes nothing.
func FuzzReadPackedSnapshot(f *testing.F) {
	f.Add(AppendSnapshot(nil, seedSnapshot()))
	f.Add(AppendSnapshot(nil, Snapshot{Key: Key{Stream: 1}, Next: 5}))
	f.Add(AppendSnapshot(nil, Snapshot{Key: Key{Stream: 1}, entries: packedIndexOf(manyEntries(300))}))
	f.Fuzz(func(t *testing.T, b []byte) {
		snap, rest, err := ReadSnapshot(b, SnapshotPacked)
		if err != nil {
			return
		}
		if used := len(b) - len(rest); snap.Len() > used {
			t.Fatalf("decoded %d entries from %d bytes", snap.Len(), used)
		}
		es := snap.Entries()
		for i, e := range es {
			if e.Last < e.Base || e.Loc.Size < BatchHeaderLen || i > 0 && e.Base <= es[i-1].Last {
				t.Fatalf("entry %d of %d: %+v after %+v", i, len(es), e, es[max(i-1, 0)])
			}
		}
		checkRoundTrip(t, snap)
	})
}

// checkRoundTrip checks that snap survives AppendSnapshot and ReadSnapshot
// unchanged, down to how its entries are sealed.
func checkRoundTrip(t *testing.T, snap Snapshot) {
	t.Helper()
	again, rest, err := ReadSnapshot(AppendSnapshot(nil, snap), SnapshotPacked)
	if err != nil || len(rest) != 0 {
		t.Fatalf("re-reading an encoded snapshot: %v, %d bytes left", err, len(rest))
	}
	if !reflect.DeepEqual(again, snap) {
		t.Fatalf("snapshot changed in a round trip:\n%+v\n%+v", snap, again)
	}
}

// manyEntries returns n consecutive batches of 4 records, in the log.
func manyEntries(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Base: Offset(4 * i), Last: Offset(4*i + 3), MaxTS: 1700000000000 + int64(i), Loc: Location{Seg: InWAL, Pos: wal.Position(5000 * i), Size: 4400}}
	}
	return es
}

// TestSnapshotRoundTrip checks that the seeds survive a round trip whole,
// in both formats, so the fuzz targets' round-trip checks compare
// something.
func TestSnapshotRoundTrip(t *testing.T) {
	// Empty producer and transaction state decodes as empty, not nil.
	many, _, err := ReadSnapshot(AppendSnapshot(nil, Snapshot{Key: Key{Stream: 1}, entries: packedIndexOf(manyEntries(300))}), SnapshotPacked)
	if err != nil || !slices.Equal(many.Entries(), manyEntries(300)) {
		t.Fatalf("300 entries read back as %d (%v)", many.Len(), err)
	}
	for _, want := range []Snapshot{seedSnapshot(), many} {
		for _, format := range []SnapshotFormat{SnapshotPlain, SnapshotPacked} {
			enc := AppendSnapshot(nil, want)
			if format == SnapshotPlain {
				enc = AppendPlainSnapshot(nil, want)
			}
			got, rest, err := ReadSnapshot(enc, format)
			if err != nil || len(rest) != 0 {
				t.Fatalf("format %d: read: %v, %d bytes left", format, err, len(rest))
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("format %d: round trip of %d entries changed it (entries equal: %v)", format, want.Len(), slices.Equal(got.Entries(), want.Entries()))
			}
		}
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

// TestReadIndexRefusesBadEntries: entries a checkpoint's CRC let through
// but the index cannot hold (offsets going back, batches smaller than
// their header, a field wider than 8 bytes, groups of no or too many
// entries, bytes missing, a timestamp below its group's least value,
// which the cleaner takes as a bound) are an error, not an index.
func TestReadIndexRefusesBadEntries(t *testing.T) {
	good := manyEntries(3)
	encode := func(es []Entry) []byte {
		x := index{blocks: []block{encodeBlock(0, es)}, split: len(es)}
		return appendIndex(nil, &x, nil)
	}
	if _, _, err := readIndex(encode(good)); err != nil {
		t.Fatalf("valid entries: %v", err)
	}
	back := slices.Clone(good)
	back[2].Base, back[2].Last = back[1].Last, back[1].Last+2
	small := slices.Clone(good)
	small[1].Loc.Size = BatchHeaderLen - 1
	span := slices.Clone(good)
	span[0].Last = span[0].Base - 1
	wide := encode(good)
	wide[4+1+fPos] = 9
	wrap := encode(good) // least timestamp so high that the third wraps below it
	binary.LittleEndian.PutUint64(wrap[4+1+fields+8*fMaxTS:], math.MaxInt64-1)
	none, many := encode(good), encode(good)
	none[4], many[4] = 0, blockLen+1
	for name, b := range map[string][]byte{
		"offsets going back": encode(back), "a batch smaller than its header": encode(small),
		"an entry ending before it starts": encode(span), "a field 9 bytes wide": wide,
		"a group of none": none, "a group of too many": many, "bytes missing": encode(good)[:20],
		"a timestamp below its group's least": wrap,
	} {
		if x, _, err := readIndex(b); err == nil {
			t.Errorf("%s: read as %d entries", name, x.len())
		}
	}
}
