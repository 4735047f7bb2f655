package s3sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"

	"github.com/braidstream/braid/internal/connect"
)

var ctx = context.Background()

func put(t testing.TB, s *Sink, recs []connect.Record) {
	t.Helper()
	if err := s.Put(ctx, recs); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func flush(t testing.TB, s *Sink) {
	t.Helper()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// TestJSONLCompressions writes jsonl objects with each compression and
// reads them back: keys, extension, metadata, state, every record once.
func TestJSONLCompressions(t *testing.T) {
	tg := needS3(t)
	decoders := map[string]func([]byte) ([]byte, error){
		"none": func(b []byte) ([]byte, error) { return b, nil },
		"gzip": func(b []byte) ([]byte, error) {
			r, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, err
			}
			return io.ReadAll(r)
		},
		"zstd": func(b []byte) ([]byte, error) {
			r, err := zstd.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, err
			}
			defer r.Close()
			return io.ReadAll(r)
		},
		"snappy": func(b []byte) ([]byte, error) { return io.ReadAll(snappy.NewReader(bytes.NewReader(b))) },
	}
	exts := map[string]string{"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst", "snappy": ".jsonl.sz"}
	for comp, decode := range decoders {
		t.Run(comp, func(t *testing.T) {
			bucket := tg.newBucket(t)
			k := connect.ShardKey{Stream: "orders", Shard: 3}
			s, next := openSink(t, tg.config(bucket, map[string]any{"compression": comp, "prefix": "archive/{stream}/"}), k)
			if len(next) != 0 {
				t.Fatalf("Open on an empty bucket: %v, want no offsets", next)
			}
			put(t, s, records("orders", 3, 0, 100))
			if d := s.Durable(); len(d) != 0 {
				t.Fatalf("Durable before Flush: %v", d)
			}
			flush(t, s)
			if d := s.Durable(); d[k] != 100 {
				t.Fatalf("Durable after Flush: %v, want 100", d)
			}
			keys := tg.dataObjects(t, bucket)
			want := "archive/orders/orders-3-00000000000000000000" + exts[comp]
			if len(keys) != 1 || keys[0] != want {
				t.Fatalf("objects %v, want [%s]", keys, want)
			}
			body, meta := tg.get(t, bucket, keys[0])
			plain, err := decode(body)
			if err != nil {
				t.Fatalf("decode %s: %v", comp, err)
			}
			if comp != "none" && bytes.Equal(plain, body) {
				t.Fatalf("object not compressed")
			}
			exactlyOnce(t, jsonlOffsets(t, plain), 0, 100)
			if meta[metaFirstOffset] != "0" || meta[metaLastOffset] != "99" || meta[metaRecords] != "100" {
				t.Fatalf("metadata %v", meta)
			}
			stBody, _ := tg.get(t, bucket, "archive/_braid/archive/orders/3")
			var st state
			if err := json.Unmarshal(stBody, &st); err != nil || st.NextOffset != 100 || st.LastKey != want {
				t.Fatalf("state %s (%v)", stBody, err)
			}
			// A new sink resumes after the state.
			s.Close()
			_, next = openSink(t, tg.config(bucket, map[string]any{"compression": comp, "prefix": "archive/{stream}/"}), k)
			if next[k] != 100 {
				t.Fatalf("reopened: %v, want %s at 100", next, k)
			}
		})
	}
}

// readParquet reads every row of a parquet object as a map.
func readParquet(t *testing.T, body []byte) (*parquet.File, []map[string]any) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("open parquet: %v", err)
	}
	r := parquet.NewReader(bytes.NewReader(body))
	var rows []map[string]any
	for {
		row := map[string]any{}
		if err := r.Read(&row); err != nil {
			if err == io.EOF {
				break
			}
			t.Fatalf("read row: %v", err)
		}
		rows = append(rows, row)
	}
	return f, rows
}

func TestParquetInferredSchema(t *testing.T) {
	tg := needS3(t)
	for _, comp := range []string{"zstd", "snappy"} {
		t.Run(comp, func(t *testing.T) {
			bucket := tg.newBucket(t)
			s, _ := openSink(t, tg.config(bucket, map[string]any{"format": "parquet", "compression": comp}))
			vals := []string{
				`{"id": 1, "price": 2, "name": "a", "paid": true, "tags": ["x"], "mixed": 1}`,
				`{"id": 2, "price": 2.5, "name": "b", "paid": false, "addr": {"city": "Oslo"}, "mixed": "one"}`,
				`{"id": 3, "name": null, "mixed": true}`,
			}
			var recs []connect.Record
			for i, v := range vals {
				recs = append(recs, connect.Record{Stream: "s", Offset: int64(i), Timestamp: t0, Value: []byte(v)})
			}
			put(t, s, recs)
			flush(t, s)
			keys := tg.dataObjects(t, bucket)
			if len(keys) != 1 || keys[0] != "s/s-0-00000000000000000000.parquet" {
				t.Fatalf("objects %v", keys)
			}
			body, _ := tg.get(t, bucket, keys[0])
			f, rows := readParquet(t, body)
			types := map[string]string{}
			for _, c := range f.Schema().Fields() {
				types[c.Name()] = c.Type().String()
			}
			wantTypes := map[string]string{"id": "INT(64,true)", "price": "DOUBLE", "name": "STRING", "paid": "BOOLEAN",
				"tags": "JSON", "addr": "JSON", "mixed": "STRING"}
			for n, want := range wantTypes {
				if !strings.Contains(types[n], want) {
					t.Errorf("column %s is %q, want %s", n, types[n], want)
				}
			}
			if len(types) != len(wantTypes) {
				t.Errorf("columns %v, want %v", types, wantTypes)
			}
			cc := f.Metadata().RowGroups[0].Columns[0].MetaData.Codec.String()
			if !strings.EqualFold(cc, comp) {
				t.Errorf("codec %s, want %s", cc, comp)
			}
			if len(rows) != 3 {
				t.Fatalf("rows %v", rows)
			}
			check := func(row int, col string, want any) {
				t.Helper()
				if got := rows[row][col]; got != want {
					t.Errorf("row %d %s = %#v, want %#v", row, col, got, want)
				}
			}
			check(0, "id", int64(1))
			check(1, "price", 2.5)
			check(0, "price", 2.0)
			check(1, "name", "b")
			check(2, "name", nil)
			check(0, "paid", true)
			if !reflect.DeepEqual(rows[1]["addr"], map[string]any{"city": "Oslo"}) { // the reader decodes JSON columns
				t.Errorf("row 1 addr = %#v", rows[1]["addr"])
			}
			check(0, "mixed", "1")
			check(1, "mixed", "one")
			check(2, "mixed", "true")
			check(2, "price", nil)
		})
	}
}

func TestParquetConfiguredSchema(t *testing.T) {
	tg := needS3(t)
	bucket := tg.newBucket(t)
	schema := []map[string]string{{"name": "id", "type": "int64"}, {"name": "total", "type": "double"}, {"name": "who", "type": "string"}}
	s, _ := openSink(t, tg.config(bucket, map[string]any{"format": "parquet", "schema": schema}))
	put(t, s, []connect.Record{
		{Stream: "s", Offset: 0, Timestamp: t0, Value: []byte(`{"id": 7, "total": 3, "who": "x", "extra": 1}`)},
		{Stream: "s", Offset: 1, Timestamp: t0, Value: []byte(`{"id": 8}`)},
	})
	err := s.Put(ctx, []connect.Record{
		{Stream: "s", Offset: 2, Timestamp: t0, Value: []byte(`{"id": 9}`)},
		{Stream: "s", Offset: 3, Timestamp: t0, Value: []byte(`{"id": "nine"}`)},
	})
	var bad *connect.BadRecordError
	if !errors.As(err, &bad) || bad.Index != 1 || !errors.Is(err, ErrSchema) {
		t.Fatalf("a string in an int64 column: %v, want BadRecordError at 1 (ErrSchema)", err)
	}
	flush(t, s)
	body, _ := tg.get(t, bucket, "s/s-0-00000000000000000000.parquet")
	f, rows := readParquet(t, body)
	if n := len(f.Schema().Fields()); n != 3 {
		t.Fatalf("%d columns, want the schema's 3", n)
	}
	if len(rows) != 3 || rows[0]["id"] != int64(7) || rows[0]["total"] != 3.0 || rows[1]["who"] != nil || rows[2]["id"] != int64(9) {
		t.Fatalf("rows %v", rows)
	}
}

// TestBadRecords: values a format cannot take are refused one by one,
// with their index; the records before them are kept.
func TestBadRecords(t *testing.T) {
	tg := needS3(t)
	for _, tc := range []struct {
		format, value string
		want          error
	}{
		{"jsonl", `not json`, ErrNotJSON},
		{"parquet", `not json`, ErrNotJSON},
		{"parquet", `[1, 2]`, ErrNotObject},
		{"parquet", `"a string"`, ErrNotObject},
	} {
		t.Run(tc.format+"/"+tc.value, func(t *testing.T) {
			bucket := tg.newBucket(t)
			s, _ := openSink(t, tg.config(bucket, map[string]any{"format": tc.format}))
			recs := records("s", 0, 0, 3)
			recs[1].Value = []byte(tc.value)
			err := s.Put(ctx, recs)
			var bad *connect.BadRecordError
			if !errors.As(err, &bad) || bad.Index != 1 || !errors.Is(err, tc.want) {
				t.Fatalf("Put: %v, want BadRecordError at 1 wrapping %v", err, tc.want)
			}
			put(t, s, recs[2:]) // the runtime goes on after the refused record
			flush(t, s)
			if d := s.Durable()[connect.ShardKey{Stream: "s"}]; d != 3 {
				t.Fatalf("Durable %d, want 3", d)
			}
		})
	}
}

// TestRoll: objects roll by record count, by size, by age and when the
// Hive-style partition of the next record changes.
func TestRoll(t *testing.T) {
	tg := needS3(t)
	firsts := func(t *testing.T, bucket string) []string {
		var out []string
		for _, k := range tg.dataObjects(t, bucket) {
			out = append(out, k[strings.LastIndexByte(k, '-')+1:strings.IndexByte(k, '.')])
		}
		return out
	}
	t.Run("max_records", func(t *testing.T) {
		bucket := tg.newBucket(t)
		s, _ := openSink(t, tg.config(bucket, map[string]any{"max_records": 10}))
		put(t, s, records("s", 0, 0, 35))
		if d := s.Durable()[connect.ShardKey{Stream: "s"}]; d != 30 {
			t.Fatalf("Durable %d after 35 records in objects of 10, want 30", d)
		}
		flush(t, s)
		got := strings.Join(firsts(t, bucket), ",")
		if want := "00000000000000000000,00000000000000000010,00000000000000000020,00000000000000000030"; got != want {
			t.Fatalf("objects start at %s, want %s", got, want)
		}
	})
	t.Run("max_bytes", func(t *testing.T) {
		bucket := tg.newBucket(t)
		recs := records("s", 0, 0, 20)
		size := int64(len(recs[0].Value) + 1) // the first 10 values are equally long
		s, _ := openSink(t, tg.config(bucket, map[string]any{"max_bytes": 4 * size}))
		put(t, s, recs[:10])
		if d := s.Durable()[connect.ShardKey{Stream: "s"}]; d != 8 {
			t.Fatalf("Durable %d after 10 records in objects of 4 records' bytes, want 8", d)
		}
	})
	t.Run("max_age", func(t *testing.T) {
		bucket := tg.newBucket(t)
		s, _ := openSink(t, tg.config(bucket, map[string]any{"max_age": "1m"}))
		now := time.Now()
		s.now = func() time.Time { return now }
		put(t, s, records("s", 0, 0, 5))
		now = now.Add(59 * time.Second)
		put(t, s, nil)
		if d := s.Durable(); len(d) != 0 {
			t.Fatalf("rolled before max_age: %v", d)
		}
		now = now.Add(time.Second)
		put(t, s, nil) // the runtime's empty Put, once a second
		if d := s.Durable()[connect.ShardKey{Stream: "s"}]; d != 5 {
			t.Fatalf("Durable %d at max_age, want 5", d)
		}
	})
	t.Run("hive", func(t *testing.T) {
		bucket := tg.newBucket(t)
		s, _ := openSink(t, tg.config(bucket, map[string]any{"prefix": "lake/{stream}/dt={dt}/hour={hour}/shard={shard}/"}))
		// t0 is 09:59:00, one record a second: 60..119 fall in hour 10;
		// 80000+ in the next day.
		recs := records("clicks", 2, 0, 120)
		recs = append(recs, records("clicks", 2, 80000, 80001)...)
		put(t, s, recs)
		flush(t, s)
		got := tg.dataObjects(t, bucket)
		want := []string{
			"lake/clicks/dt=2026-11-30/hour=09/shard=2/clicks-2-00000000000000000000.jsonl",
			"lake/clicks/dt=2026-11-30/hour=10/shard=2/clicks-2-00000000000000000060.jsonl",
			"lake/clicks/dt=2026-12-01/hour=08/shard=2/clicks-2-00000000000000080000.jsonl",
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("keys\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		body, _ := tg.get(t, bucket, want[1])
		exactlyOnce(t, jsonlOffsets(t, body), 60, 120)
		if tg.objects(t, bucket, "lake/_braid/archive/clicks/2") == nil {
			t.Fatalf("no state object under the prefix's root")
		}
	})
}

// allOffsets reads every jsonl data object of the bucket, in key order.
func allOffsets(t *testing.T, tg target, bucket string) []int64 {
	var out []int64
	for _, k := range tg.dataObjects(t, bucket) {
		body, _ := tg.get(t, bucket, k)
		out = append(out, jsonlOffsets(t, body)...)
	}
	return out
}

// TestExactlyOnceAcrossCrash: a sink stops after writing an object but
// before its state object; the next sink, resuming at Open's offsets,
// neither writes those records twice nor rewrites the object differently,
// though it would roll elsewhere (by count, where the first rolled by a
// Flush).
func TestExactlyOnceAcrossCrash(t *testing.T) {
	tg := needS3(t)
	bucket := tg.newBucket(t)
	k := connect.ShardKey{Stream: "s", Shard: 0}
	cfg := tg.config(bucket, map[string]any{"max_records": 20})
	s1, _ := openSink(t, cfg, k)
	put(t, s1, records("s", 0, 0, 45)) // objects 0-19, 20-39; 40-44 buffered
	stateKey := "_braid/archive/s/0"
	before, _ := tg.get(t, bucket, stateKey) // next 40
	flush(t, s1)                             // object 40-44 by Flush: a roll point a replay would not choose
	orphan := "s/s-0-00000000000000000040.jsonl"
	orphanBody, _ := tg.get(t, bucket, orphan)
	// The crash: the bucket as if s1 stopped between object 40 and its
	// state object.
	if _, err := tg.client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &stateKey, Body: bytes.NewReader(before)}); err != nil {
		t.Fatal(err)
	}
	s1.Close()

	s2, next := openSink(t, cfg, k)
	if next[k] != 40 {
		t.Fatalf("Open after the crash: %v, want 40", next)
	}
	put(t, s2, records("s", 0, next[k], 70))
	flush(t, s2)
	exactlyOnce(t, allOffsets(t, tg, bucket), 0, 70)
	after, _ := tg.get(t, bucket, orphan)
	if !bytes.Equal(after, orphanBody) {
		t.Fatalf("object %s was rewritten with other records:\n%s\nwas\n%s", orphan, after, orphanBody)
	}
	if got := len(tg.dataObjects(t, bucket)); got != 5 {
		t.Fatalf("%d objects, want 5 (0, 20, 40, 45, 65)", got)
	}

	// A sink closed with records not yet durable: they come again.
	put(t, s2, records("s", 0, 70, 75))
	s2.Close()
	s3, next := openSink(t, cfg, k)
	if next[k] != 70 {
		t.Fatalf("Open after a Close with buffered records: %v, want 70", next)
	}
	// The runtime may hand over records from before the state (the group's
	// offsets lag): they are not written again.
	put(t, s3, records("s", 0, 60, 80))
	flush(t, s3)
	exactlyOnce(t, allOffsets(t, tg, bucket), 0, 80)
}

// TestOpenErrors: a missing bucket and wrong credentials are clear errors
// from Open.
func TestOpenErrors(t *testing.T) {
	tg := needS3(t)
	bucket := tg.newBucket(t)
	for _, tc := range []struct {
		name string
		cfg  json.RawMessage
		want string
	}{
		{"missing bucket", tg.config("no-such-bucket-here", nil), `bucket "no-such-bucket-here" does not exist`},
		{"wrong secret", tg.config(bucket, map[string]any{"secret_key": "wrong"}), "check access_key and secret_key"},
		{"wrong access key", tg.config(bucket, map[string]any{"access_key": "nobody"}), "check access_key and secret_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(testEnv("x"), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Open(ctx, []connect.ShardKey{{Stream: "s"}})
			if !errors.Is(err, ErrBucket) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v, want ErrBucket saying %q", err, tc.want)
			}
		})
	}
	if keys := tg.objects(t, bucket, ""); len(keys) != 0 {
		t.Fatalf("refused sinks wrote %v", keys)
	}
}

// TestServerRestart: the S3 server goes away mid-run. Back within the
// SDK's retries, the sink goes on; away longer, Put fails, and a new sink
// resumes from the state without losing or repeating a record.
func TestServerRestart(t *testing.T) {
	p := startS3(t)
	tg := p.target()
	bucket := tg.newBucket(t)
	k := connect.ShardKey{Stream: "s"}
	cfg := tg.config(bucket, map[string]any{"max_records": 10})
	s1, _ := openSink(t, cfg, k)
	put(t, s1, records("s", 0, 0, 25))

	p.stop()
	restarted := make(chan error)
	go func() {
		time.Sleep(300 * time.Millisecond)
		restarted <- p.start()
	}()
	put(t, s1, records("s", 0, 25, 35)) // rolls 20-29 while the server is down
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if d := s1.Durable()[k]; d != 30 {
		t.Fatalf("Durable %d after a restart within the retries, want 30", d)
	}

	p.stop()
	start := time.Now()
	err := s1.Put(ctx, records("s", 0, 35, 45))
	if err == nil {
		t.Fatal("Put with the server down: no error")
	}
	t.Logf("Put failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	s1.Close()
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	s2, next := openSink(t, cfg, k)
	if next[k] != 30 {
		t.Fatalf("Open after the outage: %v, want 30", next)
	}
	put(t, s2, records("s", 0, 30, 50))
	flush(t, s2)
	exactlyOnce(t, allOffsets(t, tg, bucket), 0, 50)
}

// TestDefaultCredentialChain: with no keys in the config, the AWS SDK's
// default chain supplies them (here from the environment).
func TestDefaultCredentialChain(t *testing.T) {
	tg := needS3(t)
	bucket := tg.newBucket(t)
	cfg := json.RawMessage(`{"endpoint": "` + tg.endpoint + `", "bucket": "` + bucket + `", "path_style": true}`)
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_ACCESS_KEY_ID", tg.access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", tg.secret)
	s, _ := openSink(t, cfg)
	put(t, s, records("s", 0, 0, 3))
	flush(t, s)
	if keys := tg.dataObjects(t, bucket); len(keys) != 1 {
		t.Fatalf("objects %v", keys)
	}

	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	s2, err := New(testEnv("archive"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Open(ctx, nil); !errors.Is(err, ErrBucket) {
		t.Fatalf("Open with a wrong secret in the environment: %v, want ErrBucket", err)
	}
}

func TestType(t *testing.T) {
	if Type.Name != "s3-sink" || !Type.ExactlyOnce || Type.NewSink == nil || Type.NewSource != nil || Type.Doc == "" {
		t.Fatalf("Type %+v", Type)
	}
	// A bad config is refused by NewSink, before any target is reached.
	if _, err := Type.NewSink(testEnv("x"), json.RawMessage(`{"bucket": "b", "format": "csv"}`)); err == nil {
		t.Fatal("NewSink took format csv")
	}
	if _, err := Type.NewSink(connect.Env{}, json.RawMessage(`{"bucket": "b"}`)); err == nil {
		t.Fatal("NewSink took a connector without a name")
	}
}

// TestShardNotOpened: records of a shard Open was not given still start
// from its state object, read on the shard's first Put.
func TestShardNotOpened(t *testing.T) {
	tg := needS3(t)
	bucket := tg.newBucket(t)
	cfg := tg.config(bucket, map[string]any{"max_records": 10})
	s1, _ := openSink(t, cfg)
	put(t, s1, records("s", 1, 0, 20))
	s1.Close()
	second := "s/s-1-00000000000000000010.jsonl"
	before, _ := tg.get(t, bucket, second)
	// Objects of 15 now: without the state, the replay would write
	// 10-24 over the object holding 10-19.
	s2, next := openSink(t, tg.config(bucket, map[string]any{"max_records": 15})) // no shards named
	if len(next) != 0 {
		t.Fatalf("Open without shards: %v", next)
	}
	put(t, s2, records("s", 1, 0, 25))
	flush(t, s2)
	exactlyOnce(t, allOffsets(t, tg, bucket), 0, 25)
	if after, _ := tg.get(t, bucket, second); !bytes.Equal(after, before) {
		t.Fatalf("%s rewritten:\n%s\nwas\n%s", second, after, before)
	}
	if d := s2.Durable()[connect.ShardKey{Stream: "s", Shard: 1}]; d != 25 {
		t.Fatalf("Durable %d, want 25", d)
	}
}
