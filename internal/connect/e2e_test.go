package connect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/connect"
)

// describe is the part of the describe object the tests read.
type describe struct {
	Name         string `json:"name"`
	State        string `json:"state"`
	Kind         string `json:"kind"`
	RecordsTotal int64  `json:"records_total"`
	Lag          int64  `json:"lag"`
	LastError    *struct {
		Message string `json:"message"`
	} `json:"last_error"`
	DeadLetteredTotal int64 `json:"dead_lettered_total"`
	SkippedTotal      int64 `json:"skipped_total"`
	Restarts          int64 `json:"restarts"`
	Backfill          *struct {
		Done, Total int64
	} `json:"backfill"`
}

// call sends body (raw: YAML or JSON) and decodes the JSON answer into out.
func call(t testing.TB, p *braidtest.Proc, method, path, body string, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.HTTPAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

func mustCall(t testing.TB, p *braidtest.Proc, method, path, body string, want int, out any) {
	t.Helper()
	if code, b := call(t, p, method, path, body, out); code != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, b)
	}
}

func get(t *testing.T, p *braidtest.Proc, name string) describe {
	t.Helper()
	var d describe
	mustCall(t, p, "GET", "/v1/connectors/"+name, "", 200, &d)
	return d
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	began := time.Now()
	defer func() {
		if d := time.Since(began); d > 3*time.Second {
			t.Logf("waited %s for %s", d.Round(time.Millisecond), what)
		}
	}()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lines returns the lines of every file in dir, sorted.
func lines(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	sort.Strings(out)
	return out
}

// appendLines appends line-<from> to line-<to-1> (safe off the test's
// goroutine: it reports with t.Error).
func appendLines(t *testing.T, path string, from, to int) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	var b bytes.Buffer
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "line-%06d\n", i)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Error(err)
	}
}

// TestFileSourceToSinkSurvivesSIGKILL: lines tailed by an exactly-once
// file source land in the stream exactly once, and the file sink writes
// every one of them, across a SIGKILL of braid while both run.
func TestFileSourceToSinkSurvivesSIGKILL(t *testing.T) {
	for _, delivery := range []connect.Delivery{connect.ExactlyOnce, connect.AtLeastOnce} {
		t.Run(string(delivery), func(t *testing.T) { sourceToSinkKill(t, delivery) })
	}
}

func sourceToSinkKill(t *testing.T, delivery connect.Delivery) {
	p := braidtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p.CreateStream(ctx, "lines", 2, nil)
	in := filepath.Join(t.TempDir(), "in")
	os.MkdirAll(in, 0o755)
	out := filepath.Join(t.TempDir(), "out")
	mustCall(t, p, "POST", "/v1/connectors", fmt.Sprintf(`
name: tail
type: file-source
stream: lines
delivery: %s
config: {path: %q, max_batch: 50}
`, delivery, filepath.Join(in, "*.txt")), 201, nil)
	mustCall(t, p, "POST", "/v1/connectors", fmt.Sprintf(`{"name": "archive", "type": "file-sink", "streams": ["lines"], "config": {"dir": %q, "max_bytes": 4096}}`, out), 201, nil)

	const n = 4000
	a, b := filepath.Join(in, "a.txt"), filepath.Join(in, "b.txt")
	// A writer appends lines all along; braid is killed while the source
	// is moving them, and restarted while the writer goes on.
	written := make(chan struct{})
	go func() {
		defer close(written)
		for i := 0; i < n; i += 20 {
			path := a
			if i >= n/2 {
				path = b
			}
			appendLines(t, path, i, i+20)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var atKill describe
	waitFor(t, "the source to be under way", 20*time.Second, func() bool { atKill = get(t, p, "tail"); return atKill.RecordsTotal >= 500 })
	p.Kill()
	if atKill.RecordsTotal >= n {
		t.Fatalf("the source had moved all %d lines before the kill", atKill.RecordsTotal)
	}
	t.Logf("killed braid after the source moved %d lines", atKill.RecordsTotal)
	time.Sleep(200 * time.Millisecond)
	p.Restart()
	<-written

	want := make([]string, 0, n)
	for i := 0; i < n; i++ {
		want = append(want, fmt.Sprintf("line-%06d", i))
	}
	sort.Strings(want)
	seen := map[string]bool{}
	deadline := time.Now().Add(40 * time.Second)
	for len(seen) != n {
		if time.Now().After(deadline) {
			_, src := call(t, p, "GET", "/v1/connectors/tail", "", nil)
			_, snk := call(t, p, "GET", "/v1/connectors/archive", "", nil)
			t.Fatalf("the sink has %d of %d lines\nsource: %s\nsink: %s", len(seen), n, src, snk)
		}
		time.Sleep(100 * time.Millisecond)
		for _, l := range lines(t, out) {
			seen[l] = true
		}
	}
	var inStream []string
	for shard := int32(0); shard < 2; shard++ {
		for _, r := range p.ReadPartition(ctx, "lines", shard, true) {
			inStream = append(inStream, string(r.Value))
		}
	}
	sort.Strings(inStream)
	if delivery == connect.AtLeastOnce {
		// Every line at least once; a batch whose position the kill
		// took may be there twice.
		t.Logf("at-least-once: %d records for %d lines", len(inStream), n)
		inStream = slices.Compact(inStream)
	}
	// Exactly once in the stream: each line once, nothing else.
	if len(inStream) != n {
		t.Fatalf("stream holds %d records, want %d (duplicates or losses)", len(inStream), n)
	}
	for i := range want {
		if inStream[i] != want[i] {
			t.Fatalf("stream record %d = %q, want %q", i, inStream[i], want[i])
		}
	}
	for _, l := range lines(t, out) {
		if !strings.HasPrefix(l, "line-") {
			t.Fatalf("sink wrote %q", l)
		}
	}
	d := get(t, p, "archive")
	waitFor(t, "the sink's lag to reach 0", 10*time.Second, func() bool { d = get(t, p, "archive"); return d.Lag == 0 && d.Backfill == nil })
}

// TestDefinitionsSurviveRestart: definitions and the paused intent are
// read back after a restart; a corrupt file shows as a failed connector.
func TestDefinitionsSurviveRestart(t *testing.T) {
	p := braidtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.CreateStream(ctx, "s", 1, nil)
	out := t.TempDir()
	mustCall(t, p, "POST", "/v1/connectors", fmt.Sprintf(`{"name":"one","type":"file-sink","streams":["s"],"config":{"dir":%q}}`, out), 201, nil)
	mustCall(t, p, "POST", "/v1/connectors", fmt.Sprintf(`{"name":"two","type":"file-sink","streams":["s"],"config":{"dir":%q}}`, out+"/2"), 201, nil)
	mustCall(t, p, "POST", "/v1/connectors/two/pause", "", 200, nil)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(p.DataDir, "connectors", "defs", "broken.json"), []byte("{not json"), 0o644)
	p.Restart()
	waitFor(t, "one to run", 10*time.Second, func() bool { return get(t, p, "one").State == connect.StateRunning })
	if d := get(t, p, "two"); d.State != connect.StatePaused {
		t.Fatalf("two: state %s after restart, want paused", d.State)
	}
	d := get(t, p, "broken")
	if d.State != connect.StateFailed || d.LastError == nil || !strings.Contains(d.LastError.Message, "corrupt") {
		t.Fatalf("broken: %+v, want failed with the corruption named", d)
	}
	if !strings.Contains(p.Logs(), "corrupt") {
		t.Fatal("the corrupt file is not reported in the log")
	}
	mustCall(t, p, "DELETE", "/v1/connectors/broken", "", 204, nil)
	mustCall(t, p, "GET", "/v1/connectors/broken", "", 404, nil)
}

// TestBadRecordPolicies: records a sink refuses go to the dead-letter
// stream with their origin in headers, are skipped, or fail the connector;
// a failing connector does not stop the others.
func TestBadRecordPolicies(t *testing.T) {
	p := braidtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	p.CreateStream(ctx, "orders", 1, nil)
	dir := t.TempDir()
	def := func(name, errs string) string {
		return fmt.Sprintf(`{"name":%q,"type":"file-sink","streams":["orders"],"errors":%s,"config":{"dir":%q,"format":"json"}}`, name, errs, filepath.Join(dir, name))
	}
	mustCall(t, p, "POST", "/v1/connectors", def("dlq", `{"on_bad_record":"dead-letter","dead_letter_stream":"orders-dlq"}`), 201, nil)
	mustCall(t, p, "POST", "/v1/connectors", def("skip", `{"on_bad_record":"skip"}`), 201, nil)
	mustCall(t, p, "POST", "/v1/connectors", def("fail", `{}`), 201, nil)
	// A target that cannot work: its dir is under a regular file.
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	mustCall(t, p, "POST", "/v1/connectors", fmt.Sprintf(`{"name":"broken","type":"file-sink","streams":["orders"],"config":{"dir":%q}}`, filepath.Join(dir, "file", "x")), 201, nil)

	cl := p.Client()
	produce := func(vals ...string) {
		for _, v := range vals {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte("k"), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(`{"id":1}`, `not json`, `{"id":3}`)
	waitFor(t, "fail to fail", 20*time.Second, func() bool { return get(t, p, "fail").State == connect.StateFailed })
	d := get(t, p, "fail")
	if d.LastError == nil || !strings.Contains(d.LastError.Message, "offset 1") {
		t.Fatalf("fail: last_error %+v, want the bad record's offset", d.LastError)
	}
	waitFor(t, "broken to retry", 20*time.Second, func() bool { return get(t, p, "broken").State == connect.StateRetrying })
	// The others go on, through records produced after the failures.
	produce(`{"id":4}`)
	for _, name := range []string{"dlq", "skip"} {
		waitFor(t, name+" to write every good record", 20*time.Second, func() bool { return len(lines(t, filepath.Join(dir, name))) == 3 })
	}
	if d := get(t, p, "skip"); d.SkippedTotal != 1 || d.State != connect.StateRunning {
		t.Fatalf("skip: %+v, want 1 skipped and running", d)
	}
	if d := get(t, p, "dlq"); d.DeadLetteredTotal != 1 {
		t.Fatalf("dlq: %+v, want 1 dead-lettered", d)
	}
	recs := p.ReadPartition(ctx, "orders-dlq", 0, true)
	if len(recs) != 1 || string(recs[0].Value) != "not json" || string(recs[0].Key) != "k" {
		t.Fatalf("dead-letter stream: %d records, want the original one", len(recs))
	}
	h := map[string]string{}
	for _, x := range recs[0].Headers {
		h[x.Key] = string(x.Value)
	}
	for k, v := range map[string]string{connect.HeaderConnector: "dlq", connect.HeaderStream: "orders", connect.HeaderShard: "0", connect.HeaderOffset: "1"} {
		if h[k] != v {
			t.Errorf("dead-letter header %s = %q, want %q", k, h[k], v)
		}
	}
	if !strings.Contains(h[connect.HeaderError], "not JSON") {
		t.Errorf("dead-letter header %s = %q, want the reason", connect.HeaderError, h[connect.HeaderError])
	}
	// A shard that ends in a refused record is still committed to its
	// end (or the children of a split would never be read).
	produce(`also not json`)
	for _, name := range []string{"dlq", "skip"} {
		var offs connect.Offsets
		waitFor(t, name+" to commit past the last, refused record", 10*time.Second, func() bool {
			mustCall(t, p, "GET", "/v1/connectors/"+name+"/offsets", "", 200, &offs)
			return len(offs.Offsets) == 1 && offs.Offsets[0].Offset == 5
		})
	}
	// The failed connector stays failed until restarted; a restart reads
	// the bad record again and fails again.
	var after describe
	mustCall(t, p, "POST", "/v1/connectors/fail/restart", "", 200, &after)
	waitFor(t, "fail to fail again", 20*time.Second, func() bool { return get(t, p, "fail").State == connect.StateFailed })
	if got := lines(t, filepath.Join(dir, "fail")); len(got) != 1 {
		t.Fatalf("fail wrote %d lines, want the 1 before the bad record", len(got))
	}
	// The retrying connector recovers once its target works; a restart
	// tries at once instead of waiting out the grown backoff (after the
	// third retry the next is 4s away).
	waitFor(t, "broken's backoff to grow to 4s", 15*time.Second, func() bool { return get(t, p, "broken").Restarts >= 3 })
	os.Remove(filepath.Join(dir, "file"))
	var restarted describe
	mustCall(t, p, "POST", "/v1/connectors/broken/restart", "", 200, &restarted)
	if restarted.Restarts < 4 {
		t.Fatalf("broken: %d restarts counted, want the retries and the restart", restarted.Restarts)
	}
	waitFor(t, "broken to run once its target works", 3*time.Second, func() bool {
		return get(t, p, "broken").State == connect.StateRunning
	})
	waitFor(t, "broken to catch up", 10*time.Second, func() bool {
		return len(lines(t, filepath.Join(dir, "file", "x"))) == 5
	})
	metrics := httpGet(t, "http://"+p.HTTPAddr+"/metrics")
	for _, want := range []string{
		`braid_connector_state{connector="fail",state="failed"} 1`,
		`braid_connector_errors_total{connector="skip",kind="bad_record"} 2`,
		`braid_connector_records_total{connector="dlq"} 5`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestBadDefinitions: every bad definition gets 400 naming the problem,
// and nothing is created.
func TestBadDefinitions(t *testing.T) {
	p := braidtest.Start(t)
	dir := t.TempDir()
	cases := []struct{ name, body, want string }{
		{"not yaml", "name: [", "not YAML or JSON"},
		{"no name", `{"type":"file-sink","streams":["s"],"config":{"dir":"/tmp"}}`, "name: missing"},
		{"bad name", `{"name":"a b","type":"file-sink","streams":["s"],"config":{"dir":"/tmp"}}`, "name:"},
		{"unknown type", `{"name":"x","type":"kafka-sink","streams":["s"]}`, `unknown connector type "kafka-sink" (known: file-sink, file-source`},
		{"sink without streams", `{"name":"x","type":"file-sink","config":{"dir":"/tmp"}}`, "streams: a sink needs"},
		{"source with streams", `{"name":"x","type":"file-source","streams":["s"],"stream":"s","config":{"path":"/tmp/x"}}`, "streams: a source writes to one stream"},
		{"exactly-once sink", `{"name":"x","type":"file-sink","streams":["s"],"delivery":"exactly-once","config":{"dir":"/tmp"}}`, "delivery: type file-sink cannot deliver exactly once"},
		{"dead-letter without stream", `{"name":"x","type":"file-sink","streams":["s"],"errors":{"on_bad_record":"dead-letter"},"config":{"dir":"/tmp"}}`, "errors.dead_letter_stream: missing"},
		{"unknown key", "name: x\ntype: file-sink\nstreams: [s]\nconfgi: {dir: /tmp}\n", "confgi: unknown key"},
		{"unknown errors key", `{"name":"x","type":"file-sink","streams":["s"],"errors":{"on_bad":"skip"},"config":{"dir":"/tmp"}}`, "errors.on_bad: unknown key"},
		{"bad duration", `{"name":"x","type":"file-sink","streams":["s"],"errors":{"retry_backoff_max":"soon"},"config":{"dir":"/tmp"}}`, "errors.retry_backoff_max"},
		{"bad config", `{"name":"x","type":"file-sink","streams":["s"],"config":{"dri":"/tmp"}}`, "config: file-sink"},
		{"missing config", `{"name":"x","type":"file-source","stream":"s"}`, "config: file-source: path is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := call(t, p, "POST", "/v1/connectors", c.body, nil)
			var e struct{ Error string }
			json.Unmarshal([]byte(body), &e)
			if code != 400 || !strings.Contains(e.Error, c.want) {
				t.Fatalf("%d %s, want 400 with %q", code, body, c.want)
			}
		})
	}
	var list struct{ Connectors []describe }
	mustCall(t, p, "GET", "/v1/connectors", "", 200, &list)
	if len(list.Connectors) != 0 {
		t.Fatalf("bad definitions created %d connectors", len(list.Connectors))
	}
	if ents, _ := os.ReadDir(filepath.Join(p.DataDir, "connectors", "defs")); len(ents) != 0 {
		t.Fatalf("bad definitions left %d files", len(ents))
	}
	// A good one, then the same name again: 409; unknown: 404.
	good := fmt.Sprintf(`{"name":"x","type":"file-sink","streams":["s"],"config":{"dir":%q}}`, dir)
	mustCall(t, p, "POST", "/v1/connectors", good, 201, nil)
	mustCall(t, p, "POST", "/v1/connectors", good, 409, nil)
	mustCall(t, p, "POST", "/v1/connectors/nope/pause", "", 404, nil)
}

// TestPauseResumeResetOffsets: a paused sink stops reading; offsets reset
// only while paused; after a reset to earliest it reads everything again.
func TestPauseResumeResetOffsets(t *testing.T) {
	p := braidtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	p.CreateStream(ctx, "s", 1, nil)
	out := t.TempDir()
	mustCall(t, p, "POST", "/v1/connectors", fmt.Sprintf(`{"name":"x","type":"file-sink","streams":["s"],"config":{"dir":%q,"max_age":"1s"}}`, out), 201, nil)
	cl := p.Client()
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("v%d", i))).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cl2 := p.Client(kgo.DefaultProduceTopic("s"))
	cl = cl2
	produce(0, 10)
	waitFor(t, "10 records", 20*time.Second, func() bool { return get(t, p, "x").RecordsTotal == 10 })
	var offs connect.Offsets
	waitFor(t, "the commit", 10*time.Second, func() bool {
		mustCall(t, p, "GET", "/v1/connectors/x/offsets", "", 200, &offs)
		return len(offs.Offsets) == 1 && offs.Offsets[0].Offset == 10
	})
	mustCall(t, p, "POST", "/v1/connectors/x/offsets/reset", `{"to":"earliest"}`, 409, nil)
	var d describe
	mustCall(t, p, "POST", "/v1/connectors/x/pause", "", 200, &d)
	if d.State != connect.StatePaused {
		t.Fatalf("state %s after pause", d.State)
	}
	produce(10, 15)
	time.Sleep(1500 * time.Millisecond)
	if d := get(t, p, "x"); d.RecordsTotal != 10 {
		t.Fatalf("a paused sink read: %d records", d.RecordsTotal)
	}
	mustCall(t, p, "POST", "/v1/connectors/x/offsets/reset", `{"to":"sideways"}`, 400, nil)
	mustCall(t, p, "POST", "/v1/connectors/x/offsets/reset", `{"offsets":[{"stream":"other","shard":0,"offset":1}]}`, 400, nil)
	mustCall(t, p, "POST", "/v1/connectors/x/offsets/reset", `{"offsets":[{"stream":"s","shard":0,"offset":12}]}`, 200, &offs)
	if len(offs.Offsets) != 1 || offs.Offsets[0].Offset != 12 {
		t.Fatalf("offsets after reset: %+v", offs)
	}
	mustCall(t, p, "POST", "/v1/connectors/x/offsets/reset", `{"to":"earliest"}`, 200, &offs)
	if len(offs.Offsets) != 1 || offs.Offsets[0].Offset != 0 {
		t.Fatalf("offsets after reset to earliest: %+v", offs)
	}
	mustCall(t, p, "POST", "/v1/connectors/x/resume", "", 200, nil)
	waitFor(t, "all 15 read again", 20*time.Second, func() bool { return get(t, p, "x").RecordsTotal == 25 })
	mustCall(t, p, "DELETE", "/v1/connectors/x", "", 204, nil)
	mustCall(t, p, "GET", "/v1/connectors/x", "", 404, nil)
}

// TestConnectorsDisabled: with --connectors=false the API answers 503 and
// defined connectors do not run.
func TestConnectorsDisabled(t *testing.T) {
	p := braidtest.Start(t)
	p.CreateStream(context.Background(), "s", 1, nil)
	out := t.TempDir()
	mustCall(t, p, "POST", "/v1/connectors", fmt.Sprintf(`{"name":"x","type":"file-source","stream":"s","config":{"path":%q}}`, filepath.Join(out, "in")), 201, nil)
	waitFor(t, "running", 10*time.Second, func() bool { return get(t, p, "x").State == connect.StateRunning })
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	p.Args = append(p.Args, "--connectors=false")
	p.Restart()
	for _, path := range []string{"/v1/connectors", "/v1/connectors/x", "/v1/connector-types"} {
		code, body := call(t, p, "GET", path, "", nil)
		if code != 503 || !strings.Contains(body, "connectors are disabled on this node") {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
	}
	os.WriteFile(filepath.Join(out, "in"), []byte("a\n"), 0o644)
	time.Sleep(1500 * time.Millisecond)
	if n := p.EndOffset(context.Background(), "s", 0, false); n != 0 {
		t.Fatalf("a connector ran on a node with connectors disabled: %d records", n)
	}
}

// TestSinkReadsSplitChildrenAfterParent: a sink behind a split reads the
// children only once the parent is done (Braid's lineage gate on the
// connector's group), so each key's records reach the target in order.
func TestSinkReadsSplitChildrenAfterParent(t *testing.T) {
	p := braidtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	key := "key"
	p.CreateStream(ctx, "ks", 1, map[string]*string{"braid.routing": &key})
	out := t.TempDir()
	mustCall(t, p, "POST", "/v1/connectors", fmt.Sprintf(`{"name":"x","type":"file-sink","streams":["ks"],"config":{"dir":%q}}`, out), 201, nil)
	mustCall(t, p, "POST", "/v1/connectors/x/pause", "", 200, nil)
	cl := p.Client(kgo.DefaultProduceTopic("ks"))
	const keys, per = 20, 400
	produce := func(from, to int) {
		var recs []*kgo.Record
		for s := from; s < to; s++ {
			for k := 0; k < keys; k++ {
				recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint("k", k)), Value: []byte(fmt.Sprintf("k%d:%d", k, s))})
			}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, per)
	if code, body := call(t, p, "POST", "/v1/streams/ks/split", `{"shard":0}`, nil); code != 200 {
		t.Fatalf("split: %d %s", code, body)
	}
	produce(per, 2*per)
	mustCall(t, p, "POST", "/v1/connectors/x/resume", "", 200, nil)
	countIn := func(glob string) (files, n int) {
		paths, _ := filepath.Glob(filepath.Join(out, glob))
		for _, f := range paths {
			b, _ := os.ReadFile(f)
			n += bytes.Count(b, []byte("\n"))
		}
		return len(paths), n
	}
	// The moment a child's file appears, the parent's lines are all there.
	waitFor(t, "a child shard's file", 30*time.Second, func() bool {
		c1, _ := countIn("ks.1.*.log")
		c2, _ := countIn("ks.2.*.log")
		if c1+c2 == 0 {
			return false
		}
		if _, n := countIn("ks.0.*.log"); n != keys*per {
			t.Fatalf("a child was read while the parent had %d of %d lines out", n, keys*per)
		}
		return true
	})
	waitFor(t, "every line", 30*time.Second, func() bool { return len(lines(t, out)) >= 2*keys*per })
	// Per key, in the order written: the parent's lines, then a child's.
	for _, glob := range []string{"ks.1.*.log", "ks.2.*.log"} {
		paths, _ := filepath.Glob(filepath.Join(out, glob))
		last := map[string]int{}
		for _, f := range paths {
			b, _ := os.ReadFile(f)
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var k string
				var s int
				if _, err := fmt.Sscanf(strings.Replace(l, ":", " ", 1), "%s %d", &k, &s); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				if prev, ok := last[k]; ok && s <= prev {
					t.Fatalf("%s: key %s record %d after %d", glob, k, s, prev)
				}
				if s < per {
					t.Fatalf("%s: key %s record %d was written before the split", glob, k, s)
				}
				last[k] = s
			}
		}
	}
}
