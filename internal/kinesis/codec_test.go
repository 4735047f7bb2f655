package kinesis

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// A CBOR request means what the same request in JSON means: blobs are byte
// strings, timestamps tag 1 around epoch milliseconds (as the AWS SDK for
// Java writes them).
func TestCBORRequestTranscodesToJSON(t *testing.T) {
	type entry struct {
		Data         []byte `json:"Data"`
		PartitionKey string `json:"PartitionKey"`
	}
	type input struct {
		StreamName string  `json:"StreamName"`
		Limit      *int    `json:"Limit"`
		Timestamp  float64 `json:"Timestamp"`
		Records    []entry `json:"Records"`
	}
	body, err := cbor.Marshal(map[string]any{
		"StreamName": "s1",
		"Limit":      7,
		"Timestamp":  cbor.Tag{Number: 1, Content: int64(1700000000123)},
		"Records":    []any{map[string]any{"Data": []byte{0, 1, 2, 255}, "PartitionKey": "k"}},
		"Unknown":    "ignored as JSON ignores it",
	})
	if err != nil {
		t.Fatal(err)
	}
	j, err := cborToJSON(body)
	if err != nil {
		t.Fatal(err)
	}
	var in input
	if err := decode(j, &in); err != nil {
		t.Fatalf("decode %s: %v", j, err)
	}
	if in.StreamName != "s1" || in.Limit == nil || *in.Limit != 7 || in.Timestamp != 1700000000.123 ||
		len(in.Records) != 1 || !bytes.Equal(in.Records[0].Data, []byte{0, 1, 2, 255}) || in.Records[0].PartitionKey != "k" {
		t.Fatalf("decoded %+v from %s", in, j)
	}
}

// Jackson, under the AWS SDK for Java, writes indefinite-length maps and
// strings.
func TestCBORRequestIndefiniteLength(t *testing.T) {
	body := []byte{0xbf, 0x65, 'L', 'i', 'm', 'i', 't', 0x03,
		0x69, 'N', 'e', 'x', 't', 'T', 'o', 'k', 'e', 'n', 0x7f, 0x62, 'a', '.', 0x61, 'b', 0xff, 0xff}
	j, err := cborToJSON(body)
	if err != nil {
		t.Fatal(err)
	}
	var in listStreamsInput
	if err := decode(j, &in); err != nil || in.Limit == nil || *in.Limit != 3 || in.NextToken != "a.b" {
		t.Fatalf("decoded %+v from %s: %v", in, j, err)
	}
}

func TestCBORRequestRefusals(t *testing.T) {
	enc := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, body := range map[string][]byte{
		"truncated":     enc(map[string]any{"StreamName": "s1"})[:5],
		"not a map":     enc([]any{1, 2}),
		"int keys":      enc(map[int]any{1: "x"}),
		"other tag":     enc(map[string]any{"X": cbor.Tag{Number: 55, Content: "x"}}),
		"trailing data": append(enc(map[string]any{}), 0x01),
		"dup keys":      {0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02},
		"deep nesting":  bytes.Repeat([]byte{0x81}, 100),
	} {
		if _, err := cborToJSON(body); err == nil {
			t.Errorf("%s: accepted", name)
		} else if typ, _, _ := mapError(err); typ != errSerialization {
			t.Errorf("%s: %v, want %s", name, err, errSerialization)
		}
	}
}

// A CBOR answer carries blobs as byte strings and timestamps as tag 1
// epoch milliseconds; other fields as JSON would (names, omitempty).
func TestCBORAnswer(t *testing.T) {
	type record struct {
		Data                        []byte  `json:"Data"`
		ApproximateArrivalTimestamp float64 `json:"ApproximateArrivalTimestamp"`
	}
	type output struct {
		Records   []record `json:"Records"`
		NextToken *string  `json:"NextToken,omitempty"`
		Millis    int64    `json:"MillisBehindLatest"`
		Created   float64  `json:"StreamCreationTimestamp"`
		Raw       json.RawMessage
		Filter    struct{ Timestamp float32 }
		Negative  struct{ Timestamp int64 }
		Time      struct{ Timestamp, EndedAt time.Time }
	}
	out := output{
		Records: []record{{Data: []byte("hello"), ApproximateArrivalTimestamp: 1700000000.123}},
		Millis:  5, Created: 1600000000, Raw: json.RawMessage(`{"A":1.5}`),
	}
	b, err := encodeCBOR(out)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]cbor.RawMessage
	if err := cbor.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["NextToken"]; ok {
		t.Errorf("omitempty field encoded")
	}
	var recs []map[string]cbor.RawMessage
	if err := cbor.Unmarshal(m["Records"], &recs); err != nil || len(recs) != 1 {
		t.Fatalf("Records: %v %v", recs, err)
	}
	var data []byte
	if err := cbor.Unmarshal(recs[0]["Data"], &data); err != nil || string(data) != "hello" || recs[0]["Data"][0]>>5 != 2 {
		t.Errorf("Data %x: want a byte string", []byte(recs[0]["Data"]))
	}
	for field, raw := range map[string]cbor.RawMessage{"ApproximateArrivalTimestamp": recs[0]["ApproximateArrivalTimestamp"], "StreamCreationTimestamp": m["StreamCreationTimestamp"]} {
		var tag cbor.Tag
		if err := cbor.Unmarshal(raw, &tag); err != nil || tag.Number != 1 {
			t.Errorf("%s %x: want tag 1 (%v)", field, []byte(raw), err)
		}
	}
	var ts cbor.Tag
	cbor.Unmarshal(recs[0]["ApproximateArrivalTimestamp"], &ts)
	if ms, ok := ts.Content.(uint64); !ok || ms != 1700000000123 {
		t.Errorf("ApproximateArrivalTimestamp content %v (%T), want 1700000000123 ms", ts.Content, ts.Content)
	}
	var nested struct {
		Filter, Negative struct{ Timestamp cbor.Tag }
		Time             struct{ Timestamp, EndedAt cbor.Tag }
	}
	out.Filter.Timestamp, out.Negative.Timestamp = 2.5, -2
	out.Time.Timestamp, out.Time.EndedAt = time.UnixMilli(1700000000123), time.Unix(1700000000, 0)
	if b, err = encodeCBOR(out); err != nil {
		t.Fatal(err)
	}
	if err := cbor.Unmarshal(b, &nested); err != nil || nested.Filter.Timestamp.Number != 1 || nested.Filter.Timestamp.Content != uint64(2500) ||
		nested.Negative.Timestamp.Number != 1 || nested.Negative.Timestamp.Content != int64(-2000) {
		t.Errorf("float32 / negative timestamps: %+v %v", nested, err)
	}
	if nested.Time.Timestamp.Number != 1 || nested.Time.Timestamp.Content != uint64(1700000000123) ||
		nested.Time.EndedAt.Number != 1 || nested.Time.EndedAt.Content != uint64(1700000000000) {
		t.Errorf("time.Time timestamps: %+v, want tag 1 epoch milliseconds", nested.Time)
	}
	var raw map[string]float64
	if err := cbor.Unmarshal(m["Raw"], &raw); err != nil || raw["A"] != 1.5 {
		t.Errorf("MarshalJSON field: %v %v", raw, err)
	}
}

// BenchmarkAnswer encodes a GetRecords-sized answer (1000 records of
// 1 KiB) in each encoding.
func BenchmarkAnswer(b *testing.B) {
	type record struct {
		SequenceNumber              string  `json:"SequenceNumber"`
		ApproximateArrivalTimestamp float64 `json:"ApproximateArrivalTimestamp"`
		Data                        []byte  `json:"Data"`
		PartitionKey                string  `json:"PartitionKey"`
	}
	type output struct {
		Records            []record `json:"Records"`
		NextShardIterator  string   `json:"NextShardIterator"`
		MillisBehindLatest int64    `json:"MillisBehindLatest"`
	}
	var out output
	for i := range 1000 {
		out.Records = append(out.Records, record{SequenceNumber: SequenceNumber(1, 0), ApproximateArrivalTimestamp: 1700000000.5 + float64(i), Data: bytes.Repeat([]byte{byte(i)}, 1024), PartitionKey: "key"})
	}
	for _, c := range []struct {
		name string
		c    codec
	}{{"json", codecJSON}, {"cbor", codecCBOR}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(1000 * 1024)
			for b.Loop() {
				if _, err := encodeAnswer(c.c, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
