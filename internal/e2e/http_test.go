package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// The HTTP tests read /healthz and /metrics of a real node while Kafka
// clients use it, and check that SIGTERM ends it with exit 0.

// promSample is one sample line of the Prometheus text format.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

// promScrape is a parsed /metrics answer.
type promScrape struct {
	types   map[string]string // family name -> counter, gauge, histogram, ...
	samples []promSample
	text    string
}

// value returns the sample with exactly this name and these labels
// (alternating name, value).
func (s promScrape) value(name string, labels ...string) (float64, bool) {
	for _, smp := range s.samples {
		if smp.name != name || len(smp.labels) != len(labels)/2 {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if v, ok := smp.labels[labels[i]]; !ok || v != labels[i+1] {
				match = false
			}
		}
		if match {
			return smp.value, true
		}
	}
	return 0, false
}

// must returns a sample's value and fails t if it is missing.
func (s promScrape) must(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.value(name, labels...)
	if !ok {
		t.Fatalf("/metrics has no sample %s%v; braid_ lines:\n%s", name, labels, s.braidLines())
	}
	return v
}

func (s promScrape) braidLines() string {
	var out []string
	for _, l := range strings.Split(s.text, "\n") {
		if strings.HasPrefix(l, "braid_") || strings.HasPrefix(l, "# TYPE braid_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// scrapeMetrics GETs /metrics and parses it strictly: every line must be a
// comment or a well-formed sample.
func scrapeMetrics(t testing.TB, ctx context.Context, p *braidtest.Proc) promScrape {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.HTTPAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatalf("GET /metrics: read body: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: status %d\n%s", resp.StatusCode, body.String())
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want Prometheus text (text/plain)", ct)
	}
	s := promScrape{types: map[string]string{}, text: body.String()}
	for i, line := range strings.Split(s.text, "\n") {
		switch {
		case line == "", strings.HasPrefix(line, "# HELP "):
			continue
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			if len(f) != 4 {
				t.Fatalf("/metrics line %d: malformed TYPE line %q", i+1, line)
			}
			s.types[f[2]] = f[3]
			continue
		case strings.HasPrefix(line, "#"):
			continue
		}
		smp, err := parsePromSample(line)
		if err != nil {
			t.Fatalf("/metrics line %d %q: %v", i+1, line, err)
		}
		s.samples = append(s.samples, smp)
	}
	return s
}

func parsePromSample(line string) (promSample, error) {
	smp := promSample{labels: map[string]string{}}
	end := strings.IndexAny(line, "{ ")
	if end <= 0 {
		return smp, fmt.Errorf("no metric name")
	}
	smp.name, line = line[:end], line[end:]
	if line[0] == '{' {
		line = line[1:]
		for {
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, `="`)
			if eq <= 0 {
				return smp, fmt.Errorf("malformed label")
			}
			name := line[:eq]
			line = line[eq+2:]
			var val strings.Builder
			closed := false
			for !closed {
				if line == "" {
					return smp, fmt.Errorf("unterminated label value")
				}
				c := line[0]
				line = line[1:]
				switch {
				case c == '"':
					closed = true
				case c == '\\' && line != "":
					switch line[0] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(line[0])
					}
					line = line[1:]
				default:
					val.WriteByte(c)
				}
			}
			smp.labels[name] = val.String()
			line = strings.TrimPrefix(line, ",")
		}
	}
	f := strings.Fields(line)
	if len(f) < 1 || len(f) > 2 {
		return smp, fmt.Errorf("want a value and an optional timestamp")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return smp, fmt.Errorf("value: %v", err)
	}
	smp.value = v
	return smp, nil
}

// TestHTTPEndpoints checks /healthz, the /metrics families and their values
// against what Kafka clients did, and a graceful SIGTERM.
func TestHTTPEndpoints(t *testing.T) {
	t.Parallel()
	p := braidtest.Start(t)
	ctx := testCtx(t, 25*time.Second)

	t.Run("healthz", func(t *testing.T) {
		code, body := cliHTTPGet(t, ctx, "http://"+p.HTTPAddr+"/healthz")
		if code != 200 || strings.TrimSpace(body) != "ok" {
			t.Errorf("/healthz: %d %q, want 200 \"ok\"", code, body)
		}
		if code, body := cliHTTPGet(t, ctx, "http://"+p.HTTPAddr+"/no-such-page"); code != 404 {
			t.Errorf("/no-such-page: %d %q, want 404", code, body)
		}
	})

	t.Run("metrics-idle", func(t *testing.T) {
		m := scrapeMetrics(t, ctx, p)
		for name, typ := range map[string]string{
			"braid_kafka_connections": "gauge",
			"braid_wal_flush_seconds": "histogram",
			"braid_shards":            "gauge",
			"braid_streams":           "gauge",
		} {
			if m.types[name] != typ {
				t.Errorf("/metrics: %s has type %q, want %s", name, m.types[name], typ)
			}
		}
		if v := m.must(t, "braid_shards"); v != 0 {
			t.Errorf("braid_shards = %v on a new node, want 0", v)
		}
		if v := m.must(t, "braid_streams"); v != 0 {
			t.Errorf("braid_streams = %v on a new node, want 0", v)
		}
		if v := m.must(t, "braid_kafka_connections"); v != 0 {
			t.Errorf("braid_kafka_connections = %v before any client connected, want 0", v)
		}
		m.must(t, "braid_wal_flush_seconds_count")
		m.must(t, "braid_wal_flush_seconds_bucket", "le", "+Inf")
		for state, want := range map[string]float64{"ok": 1, "full": 0, "failed": 0} {
			if v := m.must(t, "braid_storage_state", "state", state); v != want {
				t.Errorf("braid_storage_state{state=%q} = %v on a new node, want %v", state, v, want)
			}
		}
	})

	// Clients are closed by hand below, so the connection gauge can be
	// watched going back to zero; Cleanup closes them on early failure.
	client := func(opts ...kgo.Opt) *kgo.Client {
		t.Helper()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(p.KafkaAddr), kgo.DisableIdempotentWrite(),
			kgo.RetryTimeout(15 * time.Second), kgo.FetchMaxWait(250 * time.Millisecond)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	admCl := client()
	// Uncompressed, so stored batch bytes are at least the value bytes.
	prodCl := client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(admCl)

	streams := map[string]int32{"http-a": 3, "http-b": 2}
	produced := map[string]int{"http-a": 157, "http-b": 23}

	t.Run("produce", func(t *testing.T) {
		for name, shards := range streams {
			createStream(t, ctx, adm, name, shards, nil)
		}
		m := scrapeMetrics(t, ctx, p)
		if v := m.must(t, "braid_shards"); v != 5 {
			t.Errorf("braid_shards = %v after creating streams of 3 and 2 shards, want 5", v)
		}
		if v := m.must(t, "braid_streams"); v != 2 {
			t.Errorf("braid_streams = %v after creating 2 streams, want 2", v)
		}
		if v := m.must(t, "braid_kafka_connections"); v < 1 {
			t.Errorf("braid_kafka_connections = %v while a client is connected, want >= 1", v)
		}
		if _, ok := m.value("braid_produced_records_total", "stream", "http-a"); ok {
			t.Errorf("braid_produced_records_total{stream=http-a} exists before anything was produced")
		}
		flushesBefore := m.must(t, "braid_wal_flush_seconds_count")

		// Several batches over every shard, some with many records.
		for name, n := range produced {
			var recs []*kgo.Record
			for i := range n {
				recs = append(recs, &kgo.Record{Topic: name, Partition: int32(i) % streams[name],
					Key: []byte(fmt.Sprint(i)), Value: payload(uint64(i), 100+i%50)})
				if len(recs) == 40 || i == n-1 {
					produce(t, ctx, prodCl, recs...)
					recs = nil
				}
			}
		}

		m = scrapeMetrics(t, ctx, p)
		if m.types["braid_produced_records_total"] != "counter" || m.types["braid_produced_bytes_total"] != "counter" {
			t.Errorf("/metrics: produced families have types %q and %q, want counter",
				m.types["braid_produced_records_total"], m.types["braid_produced_bytes_total"])
		}
		for name, n := range produced {
			if v := m.must(t, "braid_produced_records_total", "stream", name); v != float64(n) {
				t.Errorf("braid_produced_records_total{stream=%q} = %v, want %d", name, v, n)
			}
			if v := m.must(t, "braid_produced_bytes_total", "stream", name); v < float64(n*100) {
				t.Errorf("braid_produced_bytes_total{stream=%q} = %v for %d records of >= 100 bytes", name, v, n)
			}
		}
		flushes := m.must(t, "braid_wal_flush_seconds_count")
		if flushes <= flushesBefore {
			t.Errorf("braid_wal_flush_seconds_count = %v after acks=all produces, was %v: want growth", flushes, flushesBefore)
		}
		if inf := m.must(t, "braid_wal_flush_seconds_bucket", "le", "+Inf"); inf != flushes {
			t.Errorf("braid_wal_flush_seconds: +Inf bucket %v != count %v", inf, flushes)
		}
		if sum := m.must(t, "braid_wal_flush_seconds_sum"); !(sum > 0) {
			t.Errorf("braid_wal_flush_seconds_sum = %v after %v flushes", sum, flushes)
		}
		if v := m.must(t, "braid_wal_flushed_bytes_total"); v <= 0 {
			t.Errorf("braid_wal_flushed_bytes_total = %v after producing", v)
		}
	})

	t.Run("fetch", func(t *testing.T) {
		m := scrapeMetrics(t, ctx, p)
		if _, ok := m.value("braid_fetched_bytes_total", "stream", "http-a"); ok {
			t.Errorf("braid_fetched_bytes_total{stream=http-a} exists before any fetch")
		}
		for part := range streams["http-a"] {
			consume(t, ctx, p, "http-a", part, kgo.NewOffset().AtStart(), (produced["http-a"]+int(streams["http-a"]-1-part))/int(streams["http-a"]))
		}
		m = scrapeMetrics(t, ctx, p)
		if m.types["braid_fetched_bytes_total"] != "counter" {
			t.Errorf("braid_fetched_bytes_total has type %q, want counter", m.types["braid_fetched_bytes_total"])
		}
		first := m.must(t, "braid_fetched_bytes_total", "stream", "http-a")
		// Reading every record once serves every stored batch at least
		// once.
		if pb := m.must(t, "braid_produced_bytes_total", "stream", "http-a"); first < pb {
			t.Errorf("braid_fetched_bytes_total{stream=http-a} = %v after reading the whole stream, less than the %v bytes produced", first, pb)
		}
		if v, ok := m.value("braid_fetched_bytes_total", "stream", "http-b"); ok && v != 0 {
			t.Errorf("braid_fetched_bytes_total{stream=http-b} = %v though only http-a was read", v)
		}

		consume(t, ctx, p, "http-a", 0, kgo.NewOffset().AtStart(), 53)
		second := scrapeMetrics(t, ctx, p).must(t, "braid_fetched_bytes_total", "stream", "http-a")
		if second <= first {
			t.Errorf("braid_fetched_bytes_total{stream=http-a} did not grow after another fetch: %v then %v", first, second)
		}
	})

	t.Run("connections-close", func(t *testing.T) {
		admCl.Close()
		prodCl.Close()
		deadline := time.Now().Add(5 * time.Second)
		for {
			v := scrapeMetrics(t, ctx, p).must(t, "braid_kafka_connections")
			if v == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("braid_kafka_connections = %v 5s after every client closed, want 0", v)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("delete-stream", func(t *testing.T) {
		adm := newAdmin(t, p)
		if _, err := adm.DeleteTopic(ctx, "http-b"); err != nil {
			t.Fatalf("delete http-b: %v", err)
		}
		m := scrapeMetrics(t, ctx, p)
		if v := m.must(t, "braid_shards"); v != 3 {
			t.Errorf("braid_shards = %v after deleting the 2-shard stream, want 3", v)
		}
		if v := m.must(t, "braid_streams"); v != 1 {
			t.Errorf("braid_streams = %v after deleting one of 2 streams, want 1", v)
		}
	})

	t.Run("sigterm", func(t *testing.T) {
		if err := p.Stop(); err != nil {
			t.Fatalf("SIGTERM: exit %v, want exit 0\nlogs:\n%s", err, p.Logs())
		}
		if logs := p.Logs(); !strings.Contains(logs, "braid stopped cleanly") {
			t.Errorf("logs after SIGTERM lack \"braid stopped cleanly\":\n%s", logs)
		}
		hc := &http.Client{Timeout: 2 * time.Second}
		if resp, err := hc.Get("http://" + p.HTTPAddr + "/healthz"); err == nil {
			resp.Body.Close()
			t.Errorf("/healthz still answers %d after exit", resp.StatusCode)
		}

		// A restart serves again, with the gauges rebuilt from disk and
		// the counters starting over.
		p.Restart()
		m := scrapeMetrics(t, ctx, p)
		if v := m.must(t, "braid_shards"); v != 3 {
			t.Errorf("braid_shards = %v after restart, want 3", v)
		}
		if v := m.must(t, "braid_streams"); v != 1 {
			t.Errorf("braid_streams = %v after restart, want 1", v)
		}
		if v, ok := m.value("braid_produced_records_total", "stream", "http-a"); ok && v != 0 {
			t.Errorf("braid_produced_records_total{stream=http-a} = %v in a fresh process", v)
		}
		if code, body := cliHTTPGet(t, ctx, "http://"+p.HTTPAddr+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
			t.Errorf("/healthz after restart: %d %q", code, body)
		}
		if err := p.Stop(); err != nil {
			t.Fatalf("second SIGTERM: exit %v, want exit 0", err)
		}
	})
}
