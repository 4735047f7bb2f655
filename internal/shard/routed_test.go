package shard

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// compressedBatch is seedBatch's records compressed with codec (1-4),
// from producer 9 at sequence 100.
func compressedBatch(t *testing.T, codec int8, keys ...string) []byte {
	t.Helper()
	b := seedBatch(keys...)
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	body := b[BatchHeaderLen:]
	if codec != 0 {
		if body, err = compress(codec, body); err != nil {
			t.Fatal(err)
		}
	}
	nb := append(append([]byte(nil), b[:BatchHeaderLen]...), body...)
	be := binary.BigEndian
	be.PutUint32(nb[offLength:], uint32(len(nb)-12))
	be.PutUint16(nb[offAttributes:], uint16(h.Attributes)|uint16(codec))
	be.PutUint64(nb[offProducerID:], 9)
	be.PutUint32(nb[offFirstSequence:], 100)
	be.PutUint32(nb[offCRC:], crc32.Checksum(nb[offAttributes:], castagnoli))
	return nb
}

// keysOf decodes a batch and returns "key@delta" for each record.
func keysOf(t *testing.T, b []byte) []string {
	t.Helper()
	h, err := Validate(b)
	if err != nil {
		t.Fatalf("routed batch does not validate: %v", err)
	}
	var out []string
	if err := eachRecord(b, h, func(off Offset, _ []byte, r *kmsg.Record) {
		k := string(r.Key)
		if r.Key == nil {
			k = "<nil>"
		}
		out = append(out, fmt.Sprintf("%s@%d=%s", k, r.OffsetDelta, r.Value))
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRouteRecords(t *testing.T) {
	keys := []string{"a1", "b1", "a2", "", "b2", "a3"}
	// a* to 0, b* to 1, null keys to 2.
	dest := func(k []byte) int {
		switch {
		case k == nil:
			return 2
		case k[0] == 'a':
			return 0
		}
		return 1
	}
	for codec := int8(0); codec <= 4; codec++ {
		b := compressedBatch(t, codec, keys...)
		h, _ := ParseHeader(b)
		batches, headers, err := RouteRecords(b, h, 3, dest)
		if err != nil {
			t.Fatalf("codec %d: %v", codec, err)
		}
		want := []string{"[a1@0=v a2@1=v a3@2=v]", "[b1@0=v b2@1=v]", "[<nil>@0=v]"}
		for d := range 3 {
			if got := fmt.Sprint(keysOf(t, batches[d])); got != want[d] {
				t.Errorf("codec %d dest %d: %s, want %s", codec, d, got, want[d])
			}
			nh, _ := ParseHeader(batches[d])
			if nh != headers[d] {
				t.Errorf("codec %d dest %d: header %+v, encoded %+v", codec, d, headers[d], nh)
			}
			if nh.Codec() != codec || nh.ProducerID != 9 {
				t.Errorf("codec %d dest %d: codec %d producer %d", codec, d, nh.Codec(), nh.ProducerID)
			}
		}
		// The first record of dest 1 is the batch's second: sequence 101.
		if headers[1].FirstSequence != 101 || headers[2].FirstSequence != 103 {
			t.Errorf("codec %d: first sequences %d %d, want 101 103", codec, headers[1].FirstSequence, headers[2].FirstSequence)
		}
		// All to one destination: the batch itself.
		batches, _, err = RouteRecords(b, h, 3, func([]byte) int { return 1 })
		if err != nil || !bytes.Equal(batches[1], b) || batches[0] != nil {
			t.Errorf("codec %d: one destination did not get the batch itself (err %v)", codec, err)
		}
	}
}

// FuzzDecodeRouted feeds arbitrary bytes to the routed-frame decoder,
// which recovery runs on what it finds in the log: it must refuse or
// decode, never crash, and what it decodes lies within the body.
func FuzzDecodeRouted(f *testing.F) {
	b := seedBatch("k1", "k2")
	le := binary.LittleEndian
	var body []byte
	body = appendPrefix(body, Key{Stream: 1, Shard: 2})
	body = append(body, 1)
	body = le.AppendUint64(body, 5)
	body = le.AppendUint16(body, 0)
	body = le.AppendUint32(body, 0)
	body = le.AppendUint32(body, 1)
	body = le.AppendUint64(body, 0)
	body = le.AppendUint32(body, 1)
	body = appendPrefix(body, Key{Stream: 1, Shard: 3})
	body = le.AppendUint32(body, uint32(len(b)))
	body = append(body, b...)
	f.Add(body)
	f.Add(body[:routedNoteLen])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		fr, err := DecodeRouted(body)
		if err != nil {
			return
		}
		for _, p := range fr.Parts {
			if p.At < routedNoteLen || p.At+len(p.Batch) > len(body) || !bytes.Equal(body[p.At:p.At+len(p.Batch)], p.Batch) {
				t.Fatalf("part at %d of %d bytes lies outside the body of %d", p.At, len(p.Batch), len(body))
			}
		}
	})
}

// FuzzRouteRecords feeds produce batches to the router: anything Validate
// accepts must be routed or refused, never crash, and every batch it makes
// must validate and hold the records it was given, in order.
func FuzzRouteRecords(f *testing.F) {
	f.Add(seedBatch("a", "b", "", "c"))
	f.Add(seedBatch("only"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Validate(b)
		if err != nil || h.Control() {
			return
		}
		batches, _, err := RouteRecords(b, h, 2, func(k []byte) int { return len(k) % 2 })
		if err != nil {
			return
		}
		total := 0
		for _, nb := range batches {
			if nb == nil {
				continue
			}
			nh, err := Validate(nb)
			if err != nil {
				t.Fatalf("routed batch does not validate: %v", err)
			}
			total += int(nh.NumRecords)
		}
		if total != int(h.NumRecords) {
			t.Fatalf("routed %d records of %d", total, h.NumRecords)
		}
	})
}
