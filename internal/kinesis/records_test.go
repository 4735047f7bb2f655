package kinesis

import (
	"bytes"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/shard"
)

// TestEncodeBatch checks that a door-built batch is one Braid accepts and
// that decoding gives back keys, values, offsets and the arrival time.
func TestEncodeBatch(t *testing.T) {
	in := []putEntry{
		{key: []byte("a"), data: []byte{0, 1, 2}},
		{key: bytes.Repeat([]byte("k"), 256), data: bytes.Repeat([]byte{0xff}, 70000)},
		{key: []byte("c"), data: []byte{}},
	}
	b := encodeBatch(in, 1700000000123)
	h, err := shard.Validate(b)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if h.NumRecords != 3 || h.LastOffsetDelta != 2 || h.ProducerID != -1 || h.Transactional() {
		t.Fatalf("header %+v", h)
	}
	_, out, err := decodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range out {
		if r.offset != shard.Offset(i) || !bytes.Equal(r.key, in[i].key) || !bytes.Equal(r.value, in[i].data) || r.ts != 1700000000123 {
			t.Fatalf("record %d: offset %d key %q ts %d", i, r.offset, r.key, r.ts)
		}
	}
}

// TestIteratorExpiry checks the 5-minute expiry and that a changed
// iterator is refused.
func TestIteratorExpiry(t *testing.T) {
	s := &Server{iterKey: iteratorKey("cluster")}
	issued := time.UnixMilli(time.Now().UnixMilli()) // iterators keep milliseconds
	text := s.encodeIterator(iterator{stream: 3, shard: 1, offset: 42, issued: issued})
	for _, c := range []struct {
		name string
		text string
		now  time.Time
		want string
	}{
		{"fresh", text, issued.Add(IteratorTTL), ""},
		{"expired", text, issued.Add(IteratorTTL + time.Millisecond), errExpiredIterator},
		{"other cluster", (&Server{iterKey: iteratorKey("other")}).encodeIterator(iterator{stream: 3, shard: 1, offset: 42, issued: issued}), issued, errInvalidArgument},
	} {
		it, err := s.decodeIterator(c.text, c.now)
		typ := ""
		if err != nil {
			typ, _, _ = mapError(err)
		}
		if typ != c.want || (err == nil && it.offset != 42) {
			t.Errorf("%s: %+v %v, want %q", c.name, it, err, c.want)
		}
	}
}
