package connect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/connect/pgtest"
)

// BenchmarkConnectors measures the built-in connectors end to end through
// a real braid serve process (one fresh node per sub-benchmark), with the
// resources they used:
//
//	eval "$(bash .ci/s3.sh)"; eval "$(bash .ci/postgres.sh)"
//	go test -run '^$' -bench BenchmarkConnectors -benchtime 1x ./internal/connect
//
// Sizes: BRAID_BENCH_CONNECT_MB (default 200) MB of ~1 KiB JSON values for
// the s3-sink runs, BRAID_BENCH_CONNECT_ROWS (default 100000) rows for the
// PostgreSQL runs. Each sub-benchmark moves its data once, whatever b.N
// is (the setup is the expensive part); its figures are the metrics:
//
//   - s3-*: plain-MB/s is a kgo consumer (read_committed, no group) reading
//     the whole 4-shard stream; sink-MB/s is the s3-sink from its creation
//     (group join included) until every shard's state object in S3 says it
//     is done; sink/plain is their ratio. The objects are then read back and
//     must hold exactly the records written.
//   - pg-insert, pg-upsert: postgres-sink (exactly-once) rows/s from its
//     creation until its progress table covers every record; the table is
//     then checked.
//   - pg-cdc: rows/s from the first of N rows inserted (transactions of
//     10,000 rows) until a read_committed consumer of the stream has them
//     all.
//
// Resources: braid-cpu-s (utime+stime of the braid process over the
// measured phase) and braid-cpu-s/GB of values moved, braid-peak-MiB
// (VmHWM, reset when the phase starts), and the CPU of the S3 server
// (s3srv-cpu-s) and of PostgreSQL (pg-cpu-s: the postmaster and all its
// processes, whatever else uses that server included) when found.
// BRAID_BENCH_CONNECT_PROFILE=DIR also saves a CPU profile of braid's first
// seconds of each phase (see benchProfile).
//
// Without BRAID_TEST_S3_ENDPOINT or BRAID_TEST_POSTGRES_URL the matching
// sub-benchmarks skip (fail in CI), as the other target tests do.
func BenchmarkConnectors(b *testing.B) {
	mb := benchEnvInt(b, "BRAID_BENCH_CONNECT_MB", 200)
	rows := benchEnvInt(b, "BRAID_BENCH_CONNECT_ROWS", 100000)
	b.Run("s3-jsonl", func(b *testing.B) { benchS3Sink(b, mb, "jsonl", "none") })
	b.Run("s3-parquet-zstd", func(b *testing.B) { benchS3Sink(b, mb, "parquet", "zstd") })
	b.Run("pg-insert", func(b *testing.B) { benchPGSink(b, rows, "insert") })
	b.Run("pg-upsert", func(b *testing.B) { benchPGSink(b, rows, "upsert") })
	b.Run("pg-cdc", func(b *testing.B) { benchPGCDC(b, rows) })
}

const benchShards = 4

func benchEnvInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// benchValue is record i's value: a JSON object of about 1 KiB.
func benchValue(id, seq int) []byte {
	head := fmt.Sprintf(`{"id":%d,"seq":%d,"customer":"customer-%06d","total":%d.%02d,"status":"paid","note":"`,
		id, seq, id%100000, id%997, id%100)
	return []byte(head + strings.Repeat("n", 1024-len(head)-2) + `"}`)
}

// benchProduce writes n records (key = id) into stream and returns the
// values' bytes. ids repeat every distinct records (for upserts).
func benchProduce(b *testing.B, p *braidtest.Proc, stream string, n, distinct int) int64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cl := p.Client(kgo.DefaultProduceTopic(stream), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(20000))
	defer cl.Close()
	var total int64
	errs := make(chan error, 1)
	for i := 0; i < n; i++ {
		id := i % distinct
		v := benchValue(id, i)
		total += int64(len(v))
		cl.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(id)), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatalf("produce: flush: %v", err)
	}
	select {
	case err := <-errs:
		b.Fatalf("produce: %v", err)
	default:
	}
	return total
}

// benchEnds is each shard's end offset and their sum.
func benchEnds(b *testing.B, p *braidtest.Proc, stream string) ([]int64, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends := make([]int64, benchShards)
	var sum int64
	for s := range ends {
		ends[s] = p.EndOffset(ctx, stream, int32(s), true)
		sum += ends[s]
	}
	return ends, sum
}

// benchPlainRead reads n records of stream from the start, read_committed,
// and returns how long it took and the values' bytes.
func benchPlainRead(b *testing.B, p *braidtest.Proc, stream string, n int) (time.Duration, int64) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	start := time.Now()
	cl := p.Client(kgo.ConsumeTopics(stream), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	got, bytes := 0, int64(0)
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			b.Fatalf("plain read: %d of %d records after %v: %v", got, n, time.Since(start), err)
		}
		fs.EachError(func(t string, s int32, err error) { b.Fatalf("plain read %s/%d: %v", t, s, err) })
		fs.EachRecord(func(r *kgo.Record) { got++; bytes += int64(len(r.Value)) })
	}
	return time.Since(start), bytes
}

// benchCreate creates a connector through the admin API.
func benchCreate(b *testing.B, p *braidtest.Proc, def map[string]any) {
	b.Helper()
	var out map[string]any
	if code, err := p.PostJSON("/v1/connectors", def, &out); err != nil || code != http.StatusCreated {
		b.Fatalf("create connector: %d %v %v", code, err, out)
	}
}

// benchWait polls done every 100ms until it holds; after timeout it fails
// b, showing the connector's describe object.
func benchWait(b *testing.B, p *braidtest.Proc, connector string, timeout time.Duration, done func() bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			var d json.RawMessage
			_, _ = p.GetJSON("/v1/connectors/"+connector, &d)
			b.Fatalf("connector %s not done after %v: %s", connector, timeout, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func benchS3Sink(b *testing.B, mb int, format, compression string) {
	endpoint, access, secret := os.Getenv("BRAID_TEST_S3_ENDPOINT"), os.Getenv("BRAID_TEST_S3_ACCESS_KEY"), os.Getenv("BRAID_TEST_S3_SECRET_KEY")
	if endpoint == "" {
		if os.Getenv("CI") != "" {
			b.Fatal("BRAID_TEST_S3_ENDPOINT not set in CI (.ci/run starts the server with .ci/s3.sh)")
		}
		b.Skip("BRAID_TEST_S3_ENDPOINT not set: eval \"$(bash .ci/s3.sh)\"")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s3c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")})
	bucket := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		b.Fatalf("create bucket: %v", err)
	}
	b.Cleanup(func() { benchEmptyBucket(s3c, bucket) })

	p := braidtest.Start(b)
	const stream = "orders"
	p.CreateStream(ctx, stream, benchShards, nil)
	n := mb << 10 // ~1 KiB each
	written := benchProduce(b, p, stream, n, n)
	ends, _ := benchEnds(b, p, stream)

	braid := benchBraidPid(b, p)
	cpu0 := procCPU(braid)
	plainTook, plainBytes := benchPlainRead(b, p, stream, n)
	plainCPU := procCPU(braid) - cpu0
	if plainBytes != written {
		b.Fatalf("plain read %d bytes of values, wrote %d", plainBytes, written)
	}

	name := "bench-" + format
	resetPeakRSS(braid)
	s3srv := benchPid("s3server")
	meter := startMeter(braid, s3srv, 0)
	profiled := benchProfile(b, p, 5)
	start := time.Now()
	benchCreate(b, p, map[string]any{
		"name": name, "type": "s3-sink", "streams": []string{stream}, "delivery": "exactly-once",
		"config": map[string]any{"endpoint": endpoint, "access_key": access, "secret_key": secret,
			"bucket": bucket, "path_style": true, "prefix": "bench/{stream}/", "format": format,
			"compression": compression, "max_age": "1s"},
	})
	// Done when every shard's state object (written after each object)
	// says the next offset is the shard's end.
	benchWait(b, p, name, 3*time.Minute, func() bool {
		for s, end := range ends {
			key := fmt.Sprintf("bench/_braid/%s/%s/%d", name, stream, s)
			out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
			if err != nil {
				return false
			}
			var st struct {
				NextOffset int64 `json:"next_offset"`
			}
			err = json.NewDecoder(out.Body).Decode(&st)
			out.Body.Close()
			if err != nil || st.NextOffset < end {
				return false
			}
		}
		return true
	})
	took := time.Since(start)
	used := meter.stop()
	profiled()

	// The figure counts only if the bucket holds every record once.
	stored, objects, records := benchCountObjects(b, ctx, s3c, bucket, "bench/"+stream+"/", format)
	if records != int64(n) {
		b.Fatalf("the bucket holds %d records in %d objects, want %d", records, objects, n)
	}
	plainMBps := float64(plainBytes) / 1e6 / plainTook.Seconds()
	sinkMBps := float64(written) / 1e6 / took.Seconds()
	b.ReportMetric(plainMBps, "plain-MB/s")
	b.ReportMetric(sinkMBps, "sink-MB/s")
	b.ReportMetric(sinkMBps/plainMBps, "sink/plain")
	b.ReportMetric(float64(n)/took.Seconds(), "records/s")
	b.ReportMetric(plainCPU, "plain-braid-cpu-s")
	used.report(b, written)
	b.Logf("%s: %d records, %.1f MB of values; plain read %v (braid %.2f cpu-s); sink %v, %d objects, %.1f MB stored",
		b.Name(), n, float64(written)/1e6, plainTook.Round(time.Millisecond), plainCPU, took.Round(time.Millisecond),
		objects, float64(stored)/1e6)
}

// benchCountObjects reads every data object under prefix back and counts
// its records (lines of jsonl, rows of parquet).
func benchCountObjects(b *testing.B, ctx context.Context, c *s3.Client, bucket, prefix, format string) (stored, objects, records int64) {
	b.Helper()
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			b.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: o.Key})
			if err != nil {
				b.Fatalf("get %s: %v", *o.Key, err)
			}
			body, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				b.Fatalf("get %s: %v", *o.Key, err)
			}
			stored += int64(len(body))
			objects++
			if format == "parquet" {
				f, err := parquet.OpenFile(bytes.NewReader(body), int64(len(body)))
				if err != nil {
					b.Fatalf("%s: %v", *o.Key, err)
				}
				records += f.NumRows()
			} else {
				records += int64(bytes.Count(body, []byte("\n")))
			}
		}
	}
	return stored, objects, records
}

// benchEmptyBucket deletes the bucket's objects and the bucket, so the
// test server's database does not keep hundreds of MB.
func benchEmptyBucket(c *s3.Client, bucket string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return
		}
		for _, o := range page.Contents {
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key})
		}
	}
	_, _ = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket})
}

func benchPGSink(b *testing.B, rows int, mode string) {
	url, db := pgtest.Schema(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := db.Exec(ctx, "create table orders (id bigint primary key, seq bigint, customer text, total double precision, status text, note text)"); err != nil {
		b.Fatal(err)
	}
	distinct := rows
	if mode == "upsert" {
		distinct = rows / 2 // every id written twice: half the rows update
	}
	p := braidtest.Start(b)
	const stream = "orders"
	p.CreateStream(ctx, stream, benchShards, nil)
	written := benchProduce(b, p, stream, rows, distinct)

	braid := benchBraidPid(b, p)
	resetPeakRSS(braid)
	meter := startMeter(braid, 0, benchPostmaster(b, db))
	profiled := benchProfile(b, p, 5)
	name := "bench-pg-" + mode
	cfg := map[string]any{"url": url, "table": "orders", "mode": mode,
		"columns": map[string]string{"id": "id", "seq": "seq", "customer": "customer", "total": "total", "status": "status", "note": "note"}}
	if mode == "upsert" {
		cfg["key_columns"] = []string{"id"}
	}
	start := time.Now()
	benchCreate(b, p, map[string]any{"name": name, "type": "postgres-sink", "streams": []string{stream},
		"delivery": "exactly-once", "config": cfg})
	// Done when the progress table, written in each batch's transaction,
	// covers every record.
	benchWait(b, p, name, 3*time.Minute, func() bool {
		var next int64
		err := db.QueryRow(ctx, "select coalesce(sum(next_offset), 0) from braid_connect_offsets where connector = $1", name).Scan(&next)
		return err == nil && next >= int64(rows)
	})
	took := time.Since(start)
	used := meter.stop()
	profiled()

	var count, latest int64
	if err := db.QueryRow(ctx, "select count(*), count(*) filter (where seq >= $1) from orders", rows-distinct).Scan(&count, &latest); err != nil {
		b.Fatal(err)
	}
	if count != int64(distinct) || latest != int64(distinct) {
		b.Fatalf("table has %d rows, %d of them from the last write of their id; want %d each", count, latest, distinct)
	}
	b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
	b.ReportMetric(float64(written)/1e6/took.Seconds(), "MB/s")
	used.report(b, written)
	b.Logf("%s: %d records (%d ids), %.1f MB of values in %v", b.Name(), rows, distinct, float64(written)/1e6, took.Round(time.Millisecond))
}

func benchPGCDC(b *testing.B, rows int) {
	url, db := pgtest.Schema(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var schema string
	if err := db.QueryRow(ctx, "select current_schema()").Scan(&schema); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(ctx, "create table src (id bigint primary key, seq bigint, customer text, total double precision, status text, note text)"); err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("benchcdc%d", time.Now().UnixNano()%1e9)
	// Before braid starts, so it runs after braid stopped.
	pgtest.DropReplicationAtEnd(b, name)
	p := braidtest.Start(b)
	const stream = "changes"
	p.CreateStream(ctx, stream, benchShards, nil)
	benchCreate(b, p, map[string]any{"name": name, "type": "postgres-cdc", "stream": stream, "delivery": "exactly-once",
		"config": map[string]any{"url": url, "tables": []string{schema + ".src"}, "stream": stream}})
	benchWait(b, p, name, 60*time.Second, func() bool {
		var d struct {
			State string `json:"state"`
		}
		_, err := p.GetJSON("/v1/connectors/"+name, &d)
		return err == nil && d.State == "running"
	})

	cl := p.Client(kgo.ConsumeTopics(stream), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	braid := benchBraidPid(b, p)
	resetPeakRSS(braid)
	meter := startMeter(braid, 0, benchPostmaster(b, db))
	profiled := benchProfile(b, p, 4)
	start := time.Now()
	// The rows are made by PostgreSQL itself, ~1 KiB each like the other
	// runs' values, in transactions of 10,000.
	const txn = 10000
	for from := 0; from < rows; from += txn {
		to := min(from+txn, rows) - 1
		if _, err := db.Exec(ctx, `insert into src select g, g, 'customer-' || lpad((g % 100000)::text, 6, '0'),
			(g % 997) + (g % 100) / 100.0, 'paid', repeat('n', 900) from generate_series($1::bigint, $2::bigint) g`, from, to); err != nil {
			b.Fatal(err)
		}
	}
	inserted := time.Since(start)
	got, bytes := 0, int64(0)
	for got < rows {
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Minute-time.Since(start))
		fs := cl.PollFetches(pctx)
		timedOut := pctx.Err() != nil
		pcancel()
		if timedOut {
			var d json.RawMessage
			_, _ = p.GetJSON("/v1/connectors/"+name, &d)
			b.Fatalf("%d of %d changes in the stream after %v: %s", got, rows, time.Since(start), d)
		}
		fs.EachError(func(t string, s int32, err error) { b.Fatalf("read %s/%d: %v", t, s, err) })
		fs.EachRecord(func(r *kgo.Record) { got++; bytes += int64(len(r.Value)) })
	}
	took := time.Since(start)
	used := meter.stop()
	profiled()
	if got != rows {
		b.Fatalf("%d changes in the stream, want %d", got, rows)
	}
	b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
	b.ReportMetric(inserted.Seconds(), "insert-s")
	used.report(b, bytes)
	b.Logf("%s: %d rows inserted in %v, all %d changes (%.1f MB of values) in the stream after %v",
		b.Name(), rows, inserted.Round(time.Millisecond), got, float64(bytes)/1e6, took.Round(time.Millisecond))
}

// benchBraidPid is the braid process's pid, from /healthz's Braid-Pid.
func benchBraidPid(b *testing.B, p *braidtest.Proc) int {
	b.Helper()
	resp, err := http.Get("http://" + p.HTTPAddr + "/healthz")
	if err != nil {
		b.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	pid, err := strconv.Atoi(resp.Header.Get("Braid-Pid"))
	if err != nil {
		b.Fatalf("healthz: Braid-Pid %q", resp.Header.Get("Braid-Pid"))
	}
	return pid
}

// benchPid is the pid of the one process named comm, or 0.
func benchPid(comm string) int {
	var found int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := readProcStat(pid)
		if ok && st.comm == comm {
			if found != 0 {
				return 0 // more than one: which is ours is unknown
			}
			found = pid
		}
	}
	return found
}

// benchPostmaster is the pid of the PostgreSQL server db talks to, when it
// runs on this machine: the parent of db's backend.
func benchPostmaster(b *testing.B, db *pgx.Conn) int {
	var backend int
	if err := db.QueryRow(context.Background(), "select pg_backend_pid()").Scan(&backend); err != nil {
		b.Fatal(err)
	}
	st, ok := readProcStat(backend)
	if !ok {
		return 0 // not on this machine (or not visible)
	}
	return st.ppid
}

// benchProfile, with BRAID_BENCH_CONNECT_PROFILE set to a directory, takes
// a CPU profile of braid over the next seconds of the phase into
// <dir>/<sub-benchmark>.pprof (go tool pprof braid FILE); the returned
// function waits for it. Without the variable it does nothing.
func benchProfile(b *testing.B, p *braidtest.Proc, seconds int) (wait func()) {
	dir := os.Getenv("BRAID_BENCH_CONNECT_PROFILE")
	if dir == "" {
		return func() {}
	}
	path := fmt.Sprintf("%s/%s.pprof", dir, strings.ReplaceAll(b.Name(), "/", "_"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.HTTPAddr, seconds))
		if err != nil {
			b.Logf("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode == http.StatusOK {
			err = os.WriteFile(path, data, 0o644)
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Logf("profile: %d %v", resp.StatusCode, err)
			return
		}
		b.Logf("profile of braid: %s", path)
	}()
	return func() {
		select {
		case <-done:
		case <-time.After(time.Duration(seconds+10) * time.Second):
			b.Logf("profile: no answer")
		}
	}
}
