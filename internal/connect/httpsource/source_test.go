package httpsource

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/connect"
)

// open starts a source on a loopback port the kernel picks.
func open(t *testing.T, cfg map[string]any) (*Source, string) {
	t.Helper()
	cfg["listen"] = "127.0.0.1:9" // checked, then replaced by port 0 below
	raw, _ := json.Marshal(cfg)
	s, err := New(connect.Env{Name: "ingest"}, raw)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.listen = func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }
	if err := s.Open(t.Context(), nil); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, "http://" + s.Addr().String() + s.cfg.Path
}

// testClient bounds every request, so a test of a broken source fails
// instead of hanging.
var testClient = &http.Client{Timeout: 15 * time.Second}

type answer struct {
	status int
	body   string
	header http.Header
	err    error
}

// post sends body in a goroutine; the answer arrives on the channel.
func post(url, body string, hdr map[string]string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := testClient.Do(req)
		if err != nil {
			ch <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- answer{status: resp.StatusCode, body: string(b), header: resp.Header}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan answer) answer {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("POST: %v", a.err)
		}
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no answer within 10s")
		return answer{}
	}
}

// notYet fails if ch is answered within d.
func notYet(t *testing.T, ch <-chan answer, d time.Duration, why string) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("answered %d %s %v before %s", a.status, a.body, a.err, why)
	case <-time.After(d):
	}
}

func pollN(t *testing.T, s *Source, n int) ([]connect.Record, []byte) {
	t.Helper()
	var all []connect.Record
	var pos []byte
	deadline := time.Now().Add(10 * time.Second)
	for len(all) < n {
		if time.Now().After(deadline) {
			t.Fatalf("polled %d records in 10s, want %d", len(all), n)
		}
		recs, p, err := s.Poll(t.Context())
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		if recs != nil {
			all, pos = append(all, recs...), p
		}
	}
	return all, pos
}

func TestHeldUntilCommitted(t *testing.T) {
	s, url := open(t, map[string]any{})
	ch := post(url, `[{"key":"a","value":{"n":1},"headers":{"h":"v"}},{"value":2,"stream":"other"}]`, nil)
	recs, pos := pollN(t, s, 2)
	if string(recs[0].Key) != `"a"` || string(recs[0].Value) != `{"n":1}` || recs[0].Stream != "" ||
		len(recs[0].Headers) != 1 || recs[0].Headers[0].Key != "h" || string(recs[0].Headers[0].Value) != "v" {
		t.Fatalf("record 0: %+v", recs[0])
	}
	if recs[1].Key != nil || string(recs[1].Value) != "2" || recs[1].Stream != "other" {
		t.Fatalf("record 1: %+v", recs[1])
	}
	if recs[0].Timestamp.IsZero() {
		t.Fatal("no timestamp")
	}
	notYet(t, ch, 200*time.Millisecond, "Committed")

	ch2 := post(url, `{"value":3}`, nil)
	_, pos2 := pollN(t, s, 1)
	// The first request's position answers it, not the second.
	if err := s.Committed(t.Context(), pos); err != nil {
		t.Fatalf("Committed: %v", err)
	}
	a := wait(t, ch)
	if a.status != 200 || strings.TrimSpace(a.body) != `{"accepted":2}` {
		t.Fatalf("answer %d %s, want 200 {\"accepted\":2}", a.status, a.body)
	}
	notYet(t, ch2, 100*time.Millisecond, "a Committed that covers it")
	if err := s.Committed(t.Context(), pos2); err != nil {
		t.Fatalf("Committed: %v", err)
	}
	if a := wait(t, ch2); a.status != 200 || strings.TrimSpace(a.body) != `{"accepted":1}` {
		t.Fatalf("second answer %d %s", a.status, a.body)
	}
}

// Concurrent callers: each request's records come out of one Poll,
// together and in order, and every caller gets 200 once committed.
func TestConcurrentRequestsAtomic(t *testing.T) {
	s, url := open(t, map[string]any{"auth_token": "s3cret"})
	const callers, perReq = 16, 50
	var chans []<-chan answer
	for c := 0; c < callers; c++ {
		var lines []string
		for i := 0; i < perReq; i++ {
			lines = append(lines, fmt.Sprintf(`{"key":"c%d","value":{"caller":%d,"i":%d}}`, c, c, i))
		}
		chans = append(chans, post(url, strings.Join(lines, "\n")+"\n", map[string]string{"Authorization": "Bearer s3cret"}))
	}
	got := 0
	deadline := time.Now().Add(10 * time.Second)
	for got < callers*perReq {
		if time.Now().After(deadline) {
			t.Fatalf("polled %d records, want %d", got, callers*perReq)
		}
		recs, pos, err := s.Poll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(recs)%perReq != 0 {
			t.Fatalf("Poll returned %d records: not whole requests of %d", len(recs), perReq)
		}
		for i := 0; i < len(recs); i += perReq {
			for j := 0; j < perReq; j++ {
				var v struct{ Caller, I int }
				json.Unmarshal(recs[i+j].Value, &v) //nolint:errcheck
				var first struct{ Caller int }
				json.Unmarshal(recs[i].Value, &first) //nolint:errcheck
				if v.Caller != first.Caller || v.I != j {
					t.Fatalf("request split or reordered at %d: %s", i+j, recs[i+j].Value)
				}
			}
		}
		got += len(recs)
		if pos != nil {
			if err := s.Committed(t.Context(), pos); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, ch := range chans {
		if a := wait(t, ch); a.status != 200 || strings.TrimSpace(a.body) != fmt.Sprintf(`{"accepted":%d}`, perReq) {
			t.Fatalf("answer %d %s", a.status, a.body)
		}
	}
}

func TestRefusedRequestsWriteNothing(t *testing.T) {
	s, url := open(t, map[string]any{"auth_token": "tok", "max_body_bytes": 200})
	auth := map[string]string{"Authorization": "Bearer tok"}
	for _, tc := range []struct {
		name   string
		body   string
		hdr    map[string]string
		status int
		want   string
	}{
		{"no token", `[{"value":1}]`, nil, 401, "bearer"},
		{"wrong token", `[{"value":1}]`, map[string]string{"Authorization": "Bearer nope"}, 401, "bearer"},
		{"array syntax", "[{\"value\":1},\n {\"value\": }]", auth, 400, "line 2, column 12"},
		{"jsonl syntax", "{\"value\":1}\n{\"value\":2}\n{\"value\":3\n", auth, 400, "line 3, column 10"},
		{"not an object", `[{"value":1}, 7]`, auth, 400, "record 1"},
		{"unknown field", "{\"value\":1}\n{\"vlaue\":1}", auth, 400, "line 2"},
		{"bad base64", `[{"value":"!!","value_encoding":"base64"}]`, auth, 400, "record 0: value"},
		{"bad stream", `[{"value":1,"stream":"a b"}]`, auth, 400, "stream"},
		{"too large", `[{"value":"` + strings.Repeat("x", 300) + `"}]`, auth, 413, "max_body_bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := wait(t, post(url, tc.body, tc.hdr))
			if a.status != tc.status || !strings.Contains(a.body, tc.want) {
				t.Fatalf("answer %d %s, want %d mentioning %q", a.status, a.body, tc.status, tc.want)
			}
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error == "" {
				t.Fatalf("error body %q is not {\"error\": ...}", a.body)
			}
		})
	}
	// A chunked body (no Content-Length) over the limit is cut off too.
	req, _ := http.NewRequest(http.MethodPost, url, io.MultiReader(strings.NewReader(`[{"value":"`), strings.NewReader(strings.Repeat("y", 300)+`"}]`)))
	req.Header.Set("Authorization", "Bearer tok")
	req.ContentLength = -1
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked body over the limit: %d, want 413", resp.StatusCode)
	}
	if a := wait(t, post(strings.TrimSuffix(url, "records")+"other", `[]`, auth)); a.status != 404 {
		t.Fatalf("other path: %d, want 404", a.status)
	}
	resp, err = testClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET: %d, want 405", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	if recs, _, _ := s.Poll(ctx); recs != nil {
		t.Fatalf("refused requests handed %d records to Poll", len(recs))
	}
}

func TestValuesBody(t *testing.T) {
	s, url := open(t, map[string]any{"body": "values"})
	ch := post(url, "{\"a\": 1}\n\"text\"\n\n[1, 2]\n", nil)
	recs, pos := pollN(t, s, 3)
	want := []string{`{"a":1}`, `"text"`, `[1,2]`}
	for i, r := range recs {
		if string(r.Value) != want[i] || r.Key != nil {
			t.Fatalf("record %d: key %q value %q, want value %s", i, r.Key, r.Value, want[i])
		}
	}
	s.Committed(t.Context(), pos) //nolint:errcheck
	if a := wait(t, ch); a.status != 200 || !strings.Contains(a.body, `"accepted":3`) {
		t.Fatalf("answer %d %s", a.status, a.body)
	}
	ch = post(url, `[{"x":1}, 5]`, nil)
	recs, pos = pollN(t, s, 2)
	if string(recs[0].Value) != `{"x":1}` || string(recs[1].Value) != "5" {
		t.Fatalf("array of values: %q %q", recs[0].Value, recs[1].Value)
	}
	s.Committed(t.Context(), pos) //nolint:errcheck
	wait(t, ch)
}

func TestBase64Payloads(t *testing.T) {
	s, url := open(t, map[string]any{})
	ch := post(url, `[{"key":"AAE=","key_encoding":"base64","value":"/w==","value_encoding":"base64"},{"key":"k"}]`, nil)
	recs, pos := pollN(t, s, 2)
	if !bytes.Equal(recs[0].Key, []byte{0, 1}) || !bytes.Equal(recs[0].Value, []byte{0xff}) {
		t.Fatalf("base64: key %v value %v", recs[0].Key, recs[0].Value)
	}
	if recs[1].Value != nil {
		t.Fatalf("no value: %q, want nil (a tombstone)", recs[1].Value)
	}
	s.Committed(t.Context(), pos) //nolint:errcheck
	wait(t, ch)
}

func TestCloseAnswers503(t *testing.T) {
	s, url := open(t, map[string]any{})
	polled := post(url, `[{"value":1}]`, nil)
	pollN(t, s, 1)
	var queued <-chan answer
	// Wait for the second request to be queued (but not polled).
	queued = post(url, `[{"value":2}]`, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.queue)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second request never queued")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, ch := range map[string]<-chan answer{"polled": polled, "queued": queued} {
		a := wait(t, ch)
		if a.status != 503 || a.header.Get("Retry-After") == "" {
			t.Fatalf("%s request after Close: %d %s (Retry-After %q), want 503 with Retry-After", name, a.status, a.body, a.header.Get("Retry-After"))
		}
	}
	if _, _, err := s.Poll(t.Context()); err == nil {
		t.Fatal("Poll after Close: nil error")
	}
}

// A caller that gives up before its request is polled writes nothing.
func TestAbandonedRequestNotPolled(t *testing.T) {
	s, url := open(t, map[string]any{})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(`[{"value":"gone"}]`))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	for {
		s.mu.Lock()
		n := len(s.queue)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	// The server notices the closed connection shortly after.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		gone := s.queue[0].ctx.Err() != nil
		s.mu.Unlock()
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never saw the caller leave")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ch := post(url, `[{"value":"kept"}]`, nil)
	recs, pos := pollN(t, s, 1)
	if len(recs) != 1 || string(recs[0].Value) != `"kept"` {
		t.Fatalf("polled %d records (first %q), want only the request still waiting", len(recs), recs[0].Value)
	}
	s.Committed(t.Context(), pos) //nolint:errcheck
	wait(t, ch)
}

// The position continues after a restart, so a stored position never
// acknowledges a new request.
func TestPositionContinues(t *testing.T) {
	raw := json.RawMessage(`{"listen":"127.0.0.1:9"}`)
	s, err := New(connect.Env{Name: "p"}, raw)
	if err != nil {
		t.Fatal(err)
	}
	s.listen = func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }
	if err := s.Open(t.Context(), binary.BigEndian.AppendUint64(nil, 41)); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch := post("http://"+s.Addr().String()+"/records", `{"value":1}`, nil)
	_, pos := pollN(t, s, 1)
	if got := binary.BigEndian.Uint64(pos); got != 42 {
		t.Fatalf("position %d after a restart at 41, want 42", got)
	}
	s.Committed(t.Context(), pos) //nolint:errcheck
	wait(t, ch)
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct{ name, raw, want string }{
		{"empty", ``, "listen is required"},
		{"no listen", `{}`, "listen is required"},
		{"port 0", `{"listen":"127.0.0.1:0"}`, "fixed port"},
		{"no port", `{"listen":"127.0.0.1"}`, "listen"},
		{"path", `{"listen":":8080","path":"records"}`, "path"},
		{"body", `{"listen":":8080","body":"lines"}`, "body"},
		{"max body", `{"listen":":8080","max_body_bytes":0}`, "max_body_bytes"},
		{"unknown", `{"listen":":8080","token":"x"}`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(connect.Env{}, json.RawMessage(tc.raw)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%s): %v, want an error about %q", tc.raw, err, tc.want)
			}
		})
	}
}

func TestListenError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	s, err := New(connect.Env{}, json.RawMessage(fmt.Sprintf(`{"listen":%q}`, busy.Addr().String())))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "listen") {
		s.Close()
		t.Fatalf("Open on a taken port: %v", err)
	}
}

// A Poll's batch ends at a request's edge, never inside one, even when
// the next request would take it past pollMaxRecords.
func TestPollTakesWholeRequests(t *testing.T) {
	s, url := open(t, map[string]any{})
	const perReq = pollMaxRecords * 2 / 5
	var chans []<-chan answer
	for c := 0; c < 3; c++ {
		var b strings.Builder
		for i := 0; i < perReq; i++ {
			fmt.Fprintf(&b, "{\"value\":[%d,%d]}\n", c, i)
		}
		chans = append(chans, post(url, b.String(), nil))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.queue)
		s.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want 3", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, want := range []int{2 * perReq, perReq} {
		recs, pos, err := s.Poll(t.Context())
		if err != nil || len(recs) != want {
			t.Fatalf("Poll: %d records, %v; want %d (whole requests only)", len(recs), err, want)
		}
		s.Committed(t.Context(), pos) //nolint:errcheck
	}
	for _, ch := range chans {
		if a := wait(t, ch); a.status != 200 {
			t.Fatalf("answer %d %s", a.status, a.body)
		}
	}
}
