package kinesis

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream/eventstreamapi"
	"github.com/fxamacker/cbor/v2"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
)

func newTestServer(t testing.TB) *Server {
	eng, err := engine.Open(engine.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	if _, err := eng.CreateStream("fuzz", 2, catalog.Configs{}, false); err != nil {
		t.Fatal(err)
	}
	return NewServer(eng, Options{})
}

// fuzzOps are the registered operations a fuzzer may call: all but the
// one that streams for minutes.
func fuzzOps() []string {
	var names []string
	for name := range ops {
		if name != "SubscribeToShard" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// opIndex is the fuzz input that picks op (0 if op is not registered).
func opIndex(names []string, op string) uint8 {
	i := sort.SearchStrings(names, op)
	if i < len(names) && names[i] == op {
		return uint8(i)
	}
	return 0
}

// serveOnce sends one request through the whole door (dispatch, codec,
// handler on a real engine, answer) and checks the answer's shape: a 200
// decodes in the request's encoding, anything else is an AWS error whose
// __type matches X-Amzn-ErrorType.
func serveOnce(t *testing.T, s *Server, op, contentType string, body []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Amz-Target", targetPrefix+op)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if got := rec.Header().Get("Content-Type"); got != contentType {
		t.Fatalf("%s: answer in %q, request in %q", op, got, contentType)
	}
	var m map[string]any
	var err error
	if contentType == contentCBOR {
		err = cbor.Unmarshal(rec.Body.Bytes(), &m)
	} else {
		err = json.Unmarshal(rec.Body.Bytes(), &m)
	}
	if err != nil {
		t.Fatalf("%s: answer %d %q does not decode: %v", op, rec.Code, rec.Body.Bytes(), err)
	}
	if rec.Code == http.StatusOK {
		return
	}
	if typ, _ := m["__type"].(string); typ == "" || typ != rec.Header().Get("X-Amzn-ErrorType") || rec.Code/100 != 4 && typ != errInternalFailure && typ != errServiceUnavailable {
		t.Fatalf("%s: answer %d %q is not an AWS error", op, rec.Code, rec.Body.Bytes())
	}
	if typ := m["__type"]; typ == errInternalFailure {
		t.Fatalf("%s: request %q made an internal failure: %v", op, body, m["message"])
	}
}

// FuzzJSONRequest drives arbitrary bodies through every operation in JSON.
func FuzzJSONRequest(f *testing.F) {
	names := fuzzOps()
	for _, seed := range [][2]string{
		{"ListStreams", `{}`}, {"ListStreams", `{"Limit":2}`}, {"ListStreams", `{"Limit":0}`}, {"ListStreams", `{"Limit":"x"}`},
		{"ListStreams", `{"NextToken":"a.b"}`}, {"ListStreams", `[1]`}, {"ListStreams", `{"Limit":`}, {"ListStreams", ``}, {"ListStreams", `null`},
		{"CreateStream", `{"StreamName":"fuzz2","ShardCount":1}`}, {"PutRecord", `{"StreamName":"fuzz","PartitionKey":"k","Data":"aGk="}`},
		{"PutRecords", `{"StreamName":"fuzz","Records":[{"PartitionKey":"k","Data":"aGk="}]}`},
		{"GetShardIterator", `{"StreamName":"fuzz","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`},
		{"GetRecords", `{"ShardIterator":"AAAA","Limit":10}`},
		{"DescribeStream", `{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/fuzz"}`},
	} {
		f.Add(opIndex(names, seed[0]), []byte(seed[1]))
	}
	s := newTestServer(f)
	f.Fuzz(func(t *testing.T, opIndex uint8, body []byte) {
		serveOnce(t, s, names[int(opIndex)%len(names)], contentJSON, body)
	})
}

// FuzzCBORRequest does the same in CBOR; seeds are the JSON seeds'
// CBOR twins.
func FuzzCBORRequest(f *testing.F) {
	names := fuzzOps()
	for _, seed := range []struct {
		op string
		in any
	}{
		{"ListStreams", map[string]any{}}, {"ListStreams", map[string]any{"Limit": 2}}, {"ListStreams", map[string]any{"Limit": "x"}},
		{"PutRecord", map[string]any{"StreamName": "fuzz", "PartitionKey": "k", "Data": []byte("hi")}},
		{"PutRecords", map[string]any{"StreamName": "fuzz", "Records": []any{map[string]any{"PartitionKey": "k", "Data": []byte{0, 1}}}}},
		{"GetShardIterator", map[string]any{"StreamName": "fuzz", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP",
			"Timestamp": cbor.Tag{Number: 1, Content: int64(1700000000000)}}},
		{"ListStreams", []any{1, 2}},
	} {
		b, err := cbor.Marshal(seed.in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(opIndex(names, seed.op), b)
	}
	f.Add(uint8(0), []byte{0xbf, 0x61})
	s := newTestServer(f)
	f.Fuzz(func(t *testing.T, opIndex uint8, body []byte) {
		serveOnce(t, s, names[int(opIndex)%len(names)], contentCBOR, body)
	})
}

// FuzzCBORToJSON checks the transcoder alone: what it accepts is one JSON
// object, and decoding that into operation-shaped inputs fails only with
// SerializationException.
func FuzzCBORToJSON(f *testing.F) {
	b, _ := cbor.Marshal(map[string]any{"StreamName": "s", "Records": []any{map[string]any{"Data": []byte{1}, "PartitionKey": "k"}},
		"Timestamp": cbor.Tag{Number: 1, Content: 1.5}, "Limit": 3})
	f.Add(b)
	f.Fuzz(func(t *testing.T, body []byte) {
		j, err := cborToJSON(body)
		if err != nil {
			if typ, _, _ := mapError(err); typ != errSerialization {
				t.Fatalf("refusal %v is not a SerializationException", err)
			}
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(j, &obj); err != nil {
			t.Fatalf("transcoded %q is not a JSON object: %v", j, err)
		}
		var in struct {
			StreamName string  `json:"StreamName"`
			Limit      *int    `json:"Limit"`
			Timestamp  float64 `json:"Timestamp"`
			Records    []struct {
				Data         []byte `json:"Data"`
				PartitionKey string `json:"PartitionKey"`
			} `json:"Records"`
		}
		if err := decode(j, &in); err != nil {
			if typ, _, _ := mapError(err); typ != errSerialization {
				t.Fatalf("decode refusal %v is not a SerializationException", err)
			}
		}
	})
}

// FuzzCBORAnswer checks the one-pass timestamp tagger of CBOR answers
// against a slow model (decode, rewrite the tree, compare): any value the
// decoder can make must encode, and come back with exactly its timestamp
// fields tagged.
func FuzzCBORAnswer(f *testing.F) {
	for _, seed := range []any{
		map[string]any{"Records": []any{map[string]any{"Data": []byte("x"), "ApproximateArrivalTimestamp": 1700000000.25}}},
		map[string]any{"StreamCreationTimestamp": uint64(5), "Timestamp": int64(-3), "StartedAt": "not a number", "EndedAt": nil},
		map[string]any{"A": map[string]any{"Timestamp": float32(1.5)}, "B": []any{true, nil, 1.5}},
	} {
		b, err := cbor.Marshal(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var v any
		if err := cborDec.Unmarshal(in, &v); err != nil {
			return
		}
		if outsideModel(v) {
			return // NaN != NaN; answers hold neither these nor big ints
		}
		got, err := encodeCBOR(v)
		if err != nil {
			t.Fatalf("encode %#v: %v", v, err)
		}
		var gotTree any
		if err := cborDec.Unmarshal(got, &gotTree); err != nil {
			t.Fatalf("answer %x does not decode: %v", got, err)
		}
		want := modelTag(v)
		if !reflect.DeepEqual(gotTree, want) {
			t.Fatalf("tagged %#v, model says %#v", gotTree, want)
		}
	})
}

func outsideModel(v any) bool {
	switch x := v.(type) {
	case float64:
		return math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 1e15
	case cbor.Tag:
		return outsideModel(x.Content)
	case big.Int, *big.Int:
		return true // the encoder writes small ones as plain integers
	case time.Time:
		return true // float seconds to milliseconds: TestCBORAnswer
	case map[string]any:
		for _, e := range x {
			if outsideModel(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if outsideModel(e) {
				return true
			}
		}
	}
	return false
}

// modelTag is the slow model of the tagger, on decoded trees (where tag 1
// decodes as a time.Time).
func modelTag(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			if timestampFields[k] {
				var ms int64
				ok := true
				switch n := e.(type) {
				case uint64:
					ok = n <= math.MaxInt64/1000
					ms = int64(n) * 1000
				case int64:
					ok = n >= math.MinInt64/1000
					ms = n * 1000
				case float64:
					ms = int64(math.Round(n * 1000))
				default:
					ok = false
				}
				if ok {
					m[k] = time.Unix(ms, 0) // tag 1 decodes as seconds
					continue
				}
			}
			m[k] = modelTag(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = modelTag(e)
		}
		return a
	case cbor.Tag:
		return cbor.Tag{Number: x.Number, Content: modelTag(x.Content)}
	}
	return v
}

// FuzzEventStream round-trips SubscribeToShard's event messages through
// the SDK's event-stream decoder: an event with one record of any data,
// partition key and offset, then an exception with any message, must
// decode to exactly those messages and values, with nothing left over.
func FuzzEventStream(f *testing.F) {
	f.Add([]byte("data"), "key", uint64(7), "Another active subscription exists")
	f.Add([]byte{}, "", uint64(0), "")
	f.Add(bytes.Repeat([]byte{0xff}, 300), "\u00e9\x00", uint64(1)<<62, "\xff")
	f.Fuzz(func(t *testing.T, data []byte, key string, offset uint64, msg string) {
		rec := httptest.NewRecorder()
		sub := &subscription{w: rec, rc: http.NewResponseController(rec), enc: eventstream.NewEncoder()}
		offset %= 1 << 62
		seq := SequenceNumber(3, shard.Offset(offset))
		ev := subscribeToShardEvent{Records: []record{{Data: data, PartitionKey: key, SequenceNumber: seq, ApproximateArrivalTimestamp: 1.5, EncryptionType: "NONE"}},
			ContinuationSequenceNumber: &seq, MillisBehindLatest: int64(offset % 1000)}
		if err := sub.event("SubscribeToShardEvent", ev); err != nil {
			t.Fatal(err)
		}
		sub.exception(errorf(errResourceInUse, "%s", msg))

		body := bytes.NewReader(rec.Body.Bytes())
		dec := eventstream.NewDecoder()
		first, err := dec.Decode(body, nil)
		if err != nil {
			t.Fatalf("event: %v", err)
		}
		if h := first.Headers.Get(eventstreamapi.MessageTypeHeader); h == nil || h.String() != eventstreamapi.EventMessageType {
			t.Fatalf("event message type %v", h)
		}
		if h := first.Headers.Get(eventstreamapi.EventTypeHeader); h == nil || h.String() != "SubscribeToShardEvent" {
			t.Fatalf("event type %v", h)
		}
		var got subscribeToShardEvent
		if err := json.Unmarshal(first.Payload, &got); err != nil {
			t.Fatalf("event payload %q: %v", first.Payload, err)
		}
		if len(got.Records) != 1 || !bytes.Equal(got.Records[0].Data, data) || got.Records[0].SequenceNumber != seq ||
			(utf8.ValidString(key) && got.Records[0].PartitionKey != key) || *got.ContinuationSequenceNumber != seq || got.MillisBehindLatest != ev.MillisBehindLatest {
			t.Fatalf("event came back as %+v, sent %+v", got, ev)
		}
		if id, off, err := ParseSequenceNumber(got.Records[0].SequenceNumber); err != nil || id != 3 || off != shard.Offset(offset) {
			t.Fatalf("sequence number %s parsed as shard %d offset %d, %v", seq, id, off, err)
		}
		last, err := dec.Decode(body, nil)
		if err != nil {
			t.Fatalf("exception: %v", err)
		}
		if h := last.Headers.Get(eventstreamapi.MessageTypeHeader); h == nil || h.String() != eventstreamapi.ExceptionMessageType {
			t.Fatalf("exception message type %v", h)
		}
		if h := last.Headers.Get(eventstreamapi.ExceptionTypeHeader); h == nil || h.String() != errResourceInUse {
			t.Fatalf("exception type %v", h)
		}
		var m struct{ Message string }
		if err := json.Unmarshal(last.Payload, &m); err != nil || (utf8.ValidString(msg) && m.Message != msg) {
			t.Fatalf("exception payload %q (%v), sent %q", last.Payload, err, msg)
		}
		if body.Len() != 0 {
			t.Fatalf("%d bytes after the last message", body.Len())
		}
	})
}
