package httpsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/connect"
)

// received is one POST as the receiver saw it.
type received struct {
	idemKey     string
	contentType string
	auth        string
	body        []byte
	recs        []wireRecord
	status      int
}

// wireRecord is a record object as a receiver decodes it.
type wireRecord struct {
	Stream          string            `json:"stream"`
	Shard           int32             `json:"shard"`
	Offset          int64             `json:"offset"`
	Timestamp       *time.Time        `json:"timestamp"`
	Key             json.RawMessage   `json:"key"`
	KeyEncoding     string            `json:"key_encoding"`
	Value           json.RawMessage   `json:"value"`
	ValueEncoding   string            `json:"value_encoding"`
	Headers         map[string]string `json:"headers"`
	HeadersEncoding string            `json:"headers_encoding"`
}

// receiver is a real HTTP server on loopback that decodes every POST and
// answers what answer says (200 when answer is nil).
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	posts  []received
	answer func(n int, recs []wireRecord, w http.ResponseWriter) int
}

func newReceiver(t *testing.T) *receiver {
	rv := &receiver{t: t}
	rv.srv = httptest.NewServer(http.HandlerFunc(rv.serve))
	t.Cleanup(rv.srv.Close)
	return rv
}

func (rv *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rv.t.Errorf("receiver: %v", err)
		return
	}
	var recs []wireRecord
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-ndjson") {
		for _, line := range bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n")) {
			var wr wireRecord
			if err := json.Unmarshal(line, &wr); err != nil {
				rv.t.Errorf("receiver: JSON line %q: %v", line, err)
			}
			recs = append(recs, wr)
		}
	} else if err := json.Unmarshal(body, &recs); err != nil {
		rv.t.Errorf("receiver: JSON array %q: %v", body, err)
	}
	rv.mu.Lock()
	n := len(rv.posts)
	answer := rv.answer
	rv.mu.Unlock()
	status := http.StatusOK
	if answer != nil {
		status = answer(n, recs, w)
	}
	rv.mu.Lock()
	rv.posts = append(rv.posts, received{
		idemKey: r.Header.Get("Idempotency-Key"), contentType: r.Header.Get("Content-Type"),
		auth: r.Header.Get("Authorization"), body: body, recs: recs, status: status,
	})
	rv.mu.Unlock()
	w.WriteHeader(status)
}

func (rv *receiver) setAnswer(f func(n int, recs []wireRecord, w http.ResponseWriter) int) {
	rv.mu.Lock()
	rv.answer = f
	rv.mu.Unlock()
}

func (rv *receiver) all() []received {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]received(nil), rv.posts...)
}

// accepted lists the offsets of shard 0 in the 2xx answered POSTs, in order.
func (rv *receiver) accepted() []int64 {
	var out []int64
	for _, p := range rv.all() {
		if p.status/100 == 2 {
			for _, r := range p.recs {
				out = append(out, r.Offset)
			}
		}
	}
	return out
}

func newSink(t *testing.T, rv *receiver, cfg map[string]any, dataDir string) *Sink {
	t.Helper()
	if cfg == nil {
		cfg = map[string]any{}
	}
	cfg["url"] = rv.srv.URL + "/ingest"
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(connect.Env{Name: "hook", Delivery: connect.AtLeastOnce, DataDir: dataDir}, raw)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.firstBackoff = 10 * time.Millisecond
	if _, err := s.Open(t.Context(), []connect.ShardKey{{Stream: "orders", Shard: 0}}); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// records returns n JSON records of orders/0 from offset from.
func records(from, n int) []connect.Record {
	out := make([]connect.Record, n)
	for i := range out {
		off := int64(from + i)
		out[i] = connect.Record{
			Stream: "orders", Shard: 0, Offset: off,
			Timestamp: time.UnixMilli(1_700_000_000_000 + off).UTC(),
			Key:       []byte(fmt.Sprintf(`"k%d"`, off)),
			Value:     []byte(fmt.Sprintf(`{"id": %d, "total": 10}`, off)),
		}
	}
	return out
}

var orders0 = connect.ShardKey{Stream: "orders", Shard: 0}

func durableOf(s *Sink) (int64, bool) {
	v, ok := s.Durable()[orders0]
	return v, ok
}

func offsets(from, to int64) []int64 {
	var out []int64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBatchByCount(t *testing.T) {
	rv := newReceiver(t)
	s := newSink(t, rv, map[string]any{"batch_max_records": 3, "batch_max_wait": "1h"}, "")
	ctx := t.Context()
	if err := s.Put(ctx, records(0, 7)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	posts := rv.all()
	if len(posts) != 2 || len(posts[0].recs) != 3 || len(posts[1].recs) != 3 {
		t.Fatalf("after Put of 7 with batch_max_records 3: %d POSTs %v, want 2 of 3", len(posts), posts)
	}
	if d, _ := durableOf(s); d != 6 {
		t.Fatalf("Durable = %d, want 6 (the 7th record is only buffered)", d)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if d, _ := durableOf(s); d != 7 {
		t.Fatalf("Durable after Flush = %d, want 7", d)
	}
	if got := rv.accepted(); !equal(got, offsets(0, 7)) {
		t.Fatalf("received offsets %v, want 0..6 once each", got)
	}
	for i, p := range rv.all() {
		want := fmt.Sprintf("hook/orders/0/%d", 3*i)
		if p.idemKey != want {
			t.Errorf("POST %d Idempotency-Key %q, want %q", i, p.idemKey, want)
		}
		if p.contentType != "application/json" {
			t.Errorf("POST %d Content-Type %q", i, p.contentType)
		}
	}
}

func TestBatchByBytes(t *testing.T) {
	rv := newReceiver(t)
	// Room for two records and their separators, not three.
	longest := 0
	for _, r := range records(0, 7) {
		var one bytes.Buffer
		appendRecord(&one, &r)
		longest = max(longest, one.Len())
	}
	maxBytes := 2*(longest+1) + 1
	s := newSink(t, rv, map[string]any{"batch_max_bytes": maxBytes, "batch_max_wait": "1h"}, "")
	if err := s.Put(t.Context(), records(0, 7)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	posts := rv.all()
	if len(posts) != 4 {
		t.Fatalf("%d POSTs, want 4 (2+2+2+1)", len(posts))
	}
	for i, p := range posts {
		if len(p.body) > maxBytes {
			t.Errorf("POST %d: %d body bytes, over batch_max_bytes %d", i, len(p.body), maxBytes)
		}
		if want := min(2, 7-2*i); len(p.recs) != want {
			t.Errorf("POST %d: %d records, want %d", i, len(p.recs), want)
		}
	}
	if got := rv.accepted(); !equal(got, offsets(0, 7)) {
		t.Fatalf("received offsets %v, want 0..6", got)
	}

	// A record larger than the limit goes alone.
	big := records(7, 1)
	big[0].Value = []byte(`"` + strings.Repeat("x", 3*maxBytes) + `"`)
	if err := s.Put(t.Context(), big); err != nil {
		t.Fatalf("Put big: %v", err)
	}
	if got := len(rv.all()); got != 5 {
		t.Fatalf("a record over batch_max_bytes: %d POSTs, want 5", got)
	}
}

func TestBatchByTime(t *testing.T) {
	rv := newReceiver(t)
	const wait = 150 * time.Millisecond
	s := newSink(t, rv, map[string]any{"batch_max_wait": wait.String()}, "")
	start := time.Now()
	if err := s.Put(t.Context(), records(0, 2)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if n := len(rv.all()); n != 0 {
		t.Fatalf("%d POSTs right after Put, want none before batch_max_wait", n)
	}
	if _, ok := durableOf(s); ok {
		t.Fatal("Durable reports the shard before any POST")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rv.all()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no POST within 5s of empty Puts")
		}
		if err := s.Put(t.Context(), nil); err != nil {
			t.Fatalf("empty Put: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if el := time.Since(start); el < wait {
		t.Fatalf("POST after %v, before batch_max_wait %v", el, wait)
	}
	if d, _ := durableOf(s); d != 2 {
		t.Fatalf("Durable = %d, want 2", d)
	}
}

func TestRetryAfter503(t *testing.T) {
	rv := newReceiver(t)
	rv.setAnswer(func(n int, _ []wireRecord, w http.ResponseWriter) int {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	s := newSink(t, rv, map[string]any{"batch_max_records": 3}, "")
	start := time.Now()
	if err := s.Put(t.Context(), records(0, 3)); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("retried after %v, before the Retry-After of 1s", el)
	}
	posts := rv.all()
	if len(posts) != 2 || posts[0].status != 503 || posts[1].status != 200 {
		t.Fatalf("POSTs %+v, want a 503 then a 200", posts)
	}
	if posts[0].idemKey != posts[1].idemKey || posts[0].idemKey != "hook/orders/0/0" {
		t.Fatalf("Idempotency-Keys %q, %q: want hook/orders/0/0 on both", posts[0].idemKey, posts[1].idemKey)
	}
	if d, _ := durableOf(s); d != 3 {
		t.Fatalf("Durable = %d, want 3", d)
	}
}

func TestTransientGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{{"503", http.StatusServiceUnavailable}, {"429", http.StatusTooManyRequests}, {"408", http.StatusRequestTimeout}} {
		t.Run(tc.name, func(t *testing.T) {
			rv := newReceiver(t)
			rv.setAnswer(func(int, []wireRecord, http.ResponseWriter) int { return tc.status })
			s := newSink(t, rv, map[string]any{"batch_max_records": 4}, "")
			err := s.Put(t.Context(), records(0, 4))
			var bad *connect.BadRecordError
			if err == nil || errors.As(err, &bad) {
				t.Fatalf("Put against a receiver answering %d: %v, want a plain error", tc.status, err)
			}
			if n := len(rv.all()); n != maxAttempts {
				t.Fatalf("%d POSTs, want %d attempts", n, maxAttempts)
			}
			if _, ok := durableOf(s); ok {
				t.Fatal("Durable moved without a 2xx")
			}
			// The records stay buffered: a later success delivers them.
			rv.setAnswer(nil)
			if err := s.Flush(t.Context()); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if d, _ := durableOf(s); d != 4 {
				t.Fatalf("Durable = %d, want 4", d)
			}
		})
	}
}

func TestNetworkErrorIsTransient(t *testing.T) {
	rv := newReceiver(t)
	s := newSink(t, rv, map[string]any{"batch_max_records": 2}, "")
	rv.srv.Close()
	err := s.Put(t.Context(), records(0, 2))
	var bad *connect.BadRecordError
	if err == nil || errors.As(err, &bad) {
		t.Fatalf("Put to a closed receiver: %v, want a plain error", err)
	}
	if _, ok := durableOf(s); ok {
		t.Fatal("Durable moved without a 2xx")
	}
}

func TestTargetFaultIsNotABadRecord(t *testing.T) {
	for _, status := range []int{401, 403, 404, 405} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			rv := newReceiver(t)
			rv.setAnswer(func(int, []wireRecord, http.ResponseWriter) int { return status })
			s := newSink(t, rv, map[string]any{"batch_max_records": 4}, "")
			err := s.Put(t.Context(), records(0, 4))
			var bad *connect.BadRecordError
			if err == nil || errors.As(err, &bad) {
				t.Fatalf("Put answered %d: %v, want a plain error", status, err)
			}
			if n := len(rv.all()); n != 1 {
				t.Fatalf("%d POSTs, want 1 (no retry, no bisection)", n)
			}
		})
	}
}

// refuseID answers 400 to any batch holding the record whose value has
// id poison.
func refuseID(poison int64) func(int, []wireRecord, http.ResponseWriter) int {
	return func(_ int, recs []wireRecord, _ http.ResponseWriter) int {
		for _, r := range recs {
			var v struct{ ID int64 }
			json.Unmarshal(r.Value, &v) //nolint:errcheck
			if v.ID == poison {
				return http.StatusBadRequest
			}
		}
		return http.StatusOK
	}
}

func TestPoisonBisection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		poison int64
		format string
	}{
		{"middle", 10, 5, "json_array"},
		{"first", 10, 0, "jsonl"},
		{"last", 10, 9, "json_array"},
		{"odd", 13, 11, "jsonl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rv := newReceiver(t)
			rv.setAnswer(refuseID(tc.poison))
			s := newSink(t, rv, map[string]any{"batch_max_records": tc.n, "format": tc.format}, "")
			recs := records(0, tc.n)
			err := s.Put(t.Context(), recs)
			var bad *connect.BadRecordError
			if !errors.As(err, &bad) {
				t.Fatalf("Put: %v, want a *BadRecordError", err)
			}
			if bad.Index != int(tc.poison) {
				t.Fatalf("BadRecordError.Index = %d, want %d", bad.Index, tc.poison)
			}
			if got := rv.accepted(); !equal(got, offsets(0, tc.poison)) {
				t.Fatalf("delivered %v, want exactly the records before the refused one", got)
			}
			if d, ok := durableOf(s); tc.poison > 0 && d != tc.poison || tc.poison == 0 && ok {
				t.Fatalf("Durable = %d (%v), want %d", d, ok, tc.poison)
			}
			// The runtime goes on with the records after it.
			if err := s.Put(t.Context(), recs[bad.Index+1:]); err != nil {
				t.Fatalf("Put of the rest: %v", err)
			}
			// The runtime applied its policy to the refused record: the
			// sink's progress passes it (the rest is only buffered).
			if d, _ := durableOf(s); d != tc.poison+1 {
				t.Fatalf("Durable after the next Put = %d, want %d (past the refused record)", d, tc.poison+1)
			}
			if err := s.Flush(t.Context()); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			var want []int64
			for o := int64(0); o < int64(tc.n); o++ {
				if o != tc.poison {
					want = append(want, o)
				}
			}
			if got := rv.accepted(); !equal(got, want) {
				t.Fatalf("delivered %v, want every record but %d once", got, tc.poison)
			}
			if d, _ := durableOf(s); d != int64(tc.n) {
				t.Fatalf("Durable = %d, want %d", d, tc.n)
			}
		})
	}
}

// A refusal in one shard's batch drops the records of the same Put the
// runtime gives again from the other shards' batches too, and only those.
func TestPoisonAcrossShards(t *testing.T) {
	rv := newReceiver(t)
	rv.setAnswer(func(_ int, recs []wireRecord, _ http.ResponseWriter) int {
		for _, r := range recs {
			if r.Shard == 1 && r.Offset == 1 {
				return http.StatusUnprocessableEntity
			}
		}
		return http.StatusOK
	})
	s := newSink(t, rv, map[string]any{"batch_max_records": 3}, "")
	rec := func(shard int32, off int64) connect.Record {
		return connect.Record{Stream: "orders", Shard: shard, Offset: off, Value: []byte(`{}`)}
	}
	recs := []connect.Record{rec(1, 0), rec(0, 0), rec(1, 1), rec(0, 1), rec(1, 2)}
	err := s.Put(t.Context(), recs)
	var bad *connect.BadRecordError
	if !errors.As(err, &bad) || bad.Index != 2 {
		t.Fatalf("Put: %v, want BadRecordError for index 2 (orders/1 offset 1)", err)
	}
	if err := s.Put(t.Context(), recs[3:]); err != nil {
		t.Fatalf("Put of the rest: %v", err)
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	got := map[int32][]int64{}
	for _, p := range rv.all() {
		if p.status == http.StatusOK {
			for _, r := range p.recs {
				got[r.Shard] = append(got[r.Shard], r.Offset)
			}
		}
	}
	if !equal(got[0], []int64{0, 1}) || !equal(got[1], []int64{0, 2}) {
		t.Fatalf("delivered %v, want shard 0: 0 1, shard 1: 0 2, each once", got)
	}
}

// A record of an earlier Put refused in a batch cannot be named by this
// Put's BadRecordError: the sink fails, and after the restart names it
// in the first Put that holds it.
func TestPoisonFromEarlierPut(t *testing.T) {
	dir := t.TempDir()
	rv := newReceiver(t)
	rv.setAnswer(refuseID(1))
	s := newSink(t, rv, map[string]any{"batch_max_records": 4}, dir)
	recs := records(0, 6)
	if err := s.Put(t.Context(), recs[:2]); err != nil {
		t.Fatalf("Put 0-1: %v", err)
	}
	err := s.Put(t.Context(), recs[2:4])
	var bad *connect.BadRecordError
	if err == nil || errors.As(err, &bad) {
		t.Fatalf("Put 2-3: %v, want a plain error (the refused record came in an earlier Put)", err)
	}
	if d, _ := durableOf(s); d != 1 {
		t.Fatalf("Durable = %d, want 1", d)
	}
	if err := s.Put(t.Context(), recs[4:]); !errors.Is(err, ErrBroken) {
		t.Fatalf("Put after the failure: %v, want ErrBroken", err)
	}
	s.Close()

	// The runtime restarts a new sink at Durable.
	s2 := newSink(t, rv, map[string]any{"batch_max_records": 4}, dir)
	before := len(rv.all())
	err = s2.Put(t.Context(), recs[1:])
	if !errors.As(err, &bad) || bad.Index != 0 {
		t.Fatalf("first Put after restart: %v, want BadRecordError for index 0", err)
	}
	if n := len(rv.all()); n != before {
		t.Fatalf("%d POSTs to name the known refused record, want none", n-before)
	}
	if err := s2.Put(t.Context(), recs[2:]); err != nil {
		t.Fatalf("Put of the rest: %v", err)
	}
	if err := s2.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := rv.accepted(); !equal(got, []int64{0, 2, 3, 4, 5}) {
		t.Fatalf("delivered %v, want 0 and 2..5", got)
	}
}

// The first batch after a restart starts at the first record not
// acknowledged and carries the key its earlier attempts carried.
func TestIdempotencyKeyStableAcrossRestart(t *testing.T) {
	rv := newReceiver(t)
	rv.setAnswer(func(n int, _ []wireRecord, _ http.ResponseWriter) int {
		if n == 0 {
			return http.StatusOK
		}
		return http.StatusBadGateway
	})
	cfg := map[string]any{"batch_max_records": 3}
	s := newSink(t, rv, cfg, "")
	if err := s.Put(t.Context(), records(0, 3)); err != nil {
		t.Fatalf("Put 0-2: %v", err)
	}
	if err := s.Put(t.Context(), records(3, 3)); err == nil {
		t.Fatal("Put against 502s succeeded")
	}
	s.Close()
	rv.setAnswer(nil)
	s2 := newSink(t, rv, cfg, "")
	if err := s2.Put(t.Context(), records(3, 3)); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	keys := map[string]int{}
	for _, p := range rv.all() {
		keys[p.idemKey]++
	}
	if len(keys) != 2 || keys["hook/orders/0/3"] != maxAttempts+1 || keys["hook/orders/0/0"] != 1 {
		t.Fatalf("Idempotency-Keys %v, want hook/orders/0/3 on all %d attempts and the replay", keys, maxAttempts+1)
	}
}

func TestEncoding(t *testing.T) {
	rv := newReceiver(t)
	s := newSink(t, rv, map[string]any{"format": "jsonl", "headers": map[string]string{"Authorization": "Bearer t0k"}}, "")
	recs := []connect.Record{
		{Stream: "orders", Shard: 0, Offset: 0, Key: []byte("plain-key"), Value: []byte("{\n  \"id\": 1\n}"),
			Headers: []connect.Header{{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("2")}}},
		{Stream: "orders", Shard: 0, Offset: 1, Key: nil, Value: []byte{0xff, 0x00},
			Headers: []connect.Header{{Key: "bin", Value: []byte{0xfe}}}},
		{Stream: "orders", Shard: 0, Offset: 2, Key: []byte(`42`), Value: nil},
	}
	if err := s.Put(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	posts := rv.all()
	if len(posts) != 1 || len(posts[0].recs) != 3 {
		t.Fatalf("POSTs %+v", posts)
	}
	p := posts[0]
	if p.auth != "Bearer t0k" || p.contentType != "application/x-ndjson" {
		t.Fatalf("headers: Authorization %q Content-Type %q", p.auth, p.contentType)
	}
	if n := bytes.Count(p.body, []byte("\n")); n != 3 {
		t.Fatalf("JSON lines body has %d line breaks, want 3:\n%s", n, p.body)
	}
	r0, r1, r2 := p.recs[0], p.recs[1], p.recs[2]
	if string(r0.Key) != `"cGxhaW4ta2V5"` || r0.KeyEncoding != "base64" {
		t.Errorf("non-JSON key: %s %q", r0.Key, r0.KeyEncoding)
	}
	if string(r0.Value) != `{"id":1}` || r0.ValueEncoding != "" {
		t.Errorf("JSON value: %s %q", r0.Value, r0.ValueEncoding)
	}
	if r0.Headers["a"] != "2" || len(r0.Headers) != 1 {
		t.Errorf("repeated header: %v, want the last", r0.Headers)
	}
	if string(r1.Key) != "null" || string(r1.Value) != `"/wA="` || r1.ValueEncoding != "base64" {
		t.Errorf("binary value: key %s value %s %q", r1.Key, r1.Value, r1.ValueEncoding)
	}
	if r1.Headers["bin"] != "/g==" || r1.HeadersEncoding != "base64" {
		t.Errorf("binary header: %v %q", r1.Headers, r1.HeadersEncoding)
	}
	if string(r2.Key) != "42" || string(r2.Value) != "null" {
		t.Errorf("tombstone: key %s value %s", r2.Key, r2.Value)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"empty", ``, "url is required"},
		{"no url", `{}`, "url is required"},
		{"scheme", `{"url":"ftp://x/y"}`, "scheme must be http or https"},
		{"unknown field", `{"url":"http://x","batch_size":3}`, "unknown field"},
		{"records", `{"url":"http://x","batch_max_records":0}`, "batch_max_records"},
		{"bytes", `{"url":"http://x","batch_max_bytes":-1}`, "batch_max_bytes"},
		{"wait", `{"url":"http://x","batch_max_wait":"soon"}`, "duration"},
		{"wait number", `{"url":"http://x","batch_max_wait":5}`, "want a string"},
		{"timeout", `{"url":"http://x","timeout":"0s"}`, "timeout"},
		{"format", `{"url":"http://x","format":"xml"}`, "format"},
		{"reserved header", `{"url":"http://x","headers":{"idempotency-key":"x"}}`, "set by the sink"},
		{"header name", `{"url":"http://x","headers":{"a b":"x"}}`, "valid header name"},
		{"header value", `{"url":"http://x","headers":{"a":"x\r\ny: z"}}`, "line break"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(connect.Env{Name: "c"}, json.RawMessage(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%s): %v, want an error about %q", tc.raw, err, tc.want)
			}
		})
	}
	s, err := New(connect.Env{Name: "c"}, json.RawMessage(`{"url":"https://example.test/in"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.BatchMaxRecords != 500 || s.cfg.BatchMaxBytes != 1<<20 || time.Duration(s.cfg.BatchMaxWait) != time.Second ||
		s.cfg.Format != "json_array" || time.Duration(s.cfg.Timeout) != 10*time.Second {
		t.Fatalf("defaults: %+v", s.cfg)
	}
}

func TestNotOpen(t *testing.T) {
	s, err := New(connect.Env{Name: "c"}, json.RawMessage(`{"url":"http://127.0.0.1:9/"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), records(0, 1)); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Put before Open: %v", err)
	}
	s.Open(t.Context(), nil) //nolint:errcheck
	s.Close()
	if err := s.Flush(t.Context()); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Flush after Close: %v", err)
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	raw, _ := json.Marshal(map[string]any{"url": srv.URL, "timeout": "50ms", "batch_max_records": 1})
	s, err := New(connect.Env{Name: "hook"}, raw)
	if err != nil {
		t.Fatal(err)
	}
	s.firstBackoff = time.Millisecond
	s.Open(t.Context(), nil) //nolint:errcheck
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err = s.Put(ctx, records(0, 1))
	var bad *connect.BadRecordError
	if err == nil || errors.As(err, &bad) || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("Put to a receiver that never answers: %v, want a plain error after retries", err)
	}
	if _, ok := durableOf(s); ok {
		t.Fatal("Durable moved without an answer")
	}
}
