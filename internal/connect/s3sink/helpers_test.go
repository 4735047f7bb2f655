package s3sink

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/braidstream/braid/internal/connect"
)

// target is an S3-compatible server the tests write to: the one
// .ci/s3.sh started (BRAID_TEST_S3_*), or one a test starts itself.
type target struct {
	endpoint, access, secret string
}

// needS3 returns the server named by BRAID_TEST_S3_ENDPOINT. Unset, the
// test skips, except in CI (CI set), where it fails: a skipped sink test
// would read as a pass.
func needS3(t testing.TB) target {
	t.Helper()
	tg := target{os.Getenv("BRAID_TEST_S3_ENDPOINT"), os.Getenv("BRAID_TEST_S3_ACCESS_KEY"), os.Getenv("BRAID_TEST_S3_SECRET_KEY")}
	if tg.endpoint != "" {
		return tg
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("BRAID_TEST_S3_ENDPOINT not set in CI (.ci/run starts the server with .ci/s3.sh)")
	}
	t.Skip("BRAID_TEST_S3_ENDPOINT not set: eval \"$(bash .ci/s3.sh)\" starts a local S3-compatible server")
	return tg
}

func (tg target) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(tg.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(tg.access, tg.secret, ""),
	})
}

var bucketSeq atomic.Int64

// newBucket creates a bucket of the test's own.
func (tg target) newBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano(), bucketSeq.Add(1))
	if _, err := tg.client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return name
}

// config is a sink config for bucket on tg, with extra fields merged in.
func (tg target) config(bucket string, extra map[string]any) json.RawMessage {
	c := map[string]any{"endpoint": tg.endpoint, "access_key": tg.access, "secret_key": tg.secret,
		"bucket": bucket, "path_style": true}
	for k, v := range extra {
		c[k] = v
	}
	b, _ := json.Marshal(c)
	return b
}

func testEnv(name string) connect.Env {
	return connect.Env{Name: name, Delivery: connect.ExactlyOnce, Logger: slog.New(slog.DiscardHandler)}
}

// openSink builds and opens a sink, failing t on an error.
func openSink(t testing.TB, cfg json.RawMessage, shards ...connect.ShardKey) (*Sink, map[connect.ShardKey]int64) {
	t.Helper()
	s, err := New(testEnv("archive"), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	next, err := s.Open(context.Background(), shards)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, next
}

var t0 = time.Date(2026, 11, 30, 9, 59, 0, 0, time.UTC)

// records makes records from..to-1 of one shard, each value {"n": offset,
// ...}, one second apart from t0.
func records(stream string, shard int32, from, to int64) []connect.Record {
	var out []connect.Record
	for o := from; o < to; o++ {
		v := fmt.Sprintf(`{"n": %d, "name": "rec-%d", "ok": %t}`, o, o, o%2 == 0)
		out = append(out, connect.Record{Stream: stream, Shard: shard, Offset: o,
			Timestamp: t0.Add(time.Duration(o) * time.Second), Value: []byte(v)})
	}
	return out
}

// objects lists the bucket's keys under prefix, sorted.
func (tg target) objects(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(tg.client(), &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, *o.Key)
		}
	}
	sort.Strings(keys)
	return keys
}

// dataObjects is the bucket's keys less the _braid state objects.
func (tg target) dataObjects(t testing.TB, bucket string) []string {
	var out []string
	for _, k := range tg.objects(t, bucket, "") {
		if !strings.Contains(k, "_braid/") {
			out = append(out, k)
		}
	}
	return out
}

func (tg target) get(t testing.TB, bucket, key string) ([]byte, map[string]string) {
	t.Helper()
	out, err := tg.client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b, out.Metadata
}

// jsonlOffsets reads the "n" of each line of a jsonl object.
func jsonlOffsets(t testing.TB, body []byte) []int64 {
	t.Helper()
	var out []int64
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v struct{ N int64 }
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, v.N)
	}
	return out
}

// exactlyOnce checks that offsets are from..to-1, each once, in order.
func exactlyOnce(t testing.TB, got []int64, from, to int64) {
	t.Helper()
	if int64(len(got)) != to-from {
		t.Fatalf("got %d records, want %d (%d..%d): %v", len(got), to-from, from, to-1, got)
	}
	for i, o := range got {
		if o != from+int64(i) {
			t.Fatalf("record %d is offset %d, want %d: %v", i, o, from+int64(i), got)
		}
	}
}

// s3Proc is an s3server process of a test's own, to stop and restart. Its
// output and how each run of it ended go to a log the test prints if it
// fails: a server that dies under the test says why.
type s3Proc struct {
	bin, db, addr, log string
	cmd                *exec.Cmd
	exited             chan struct{} // closed once cmd has been waited for
}

// startS3 starts the s3server binary (BRAID_TEST_S3_SERVER, built by
// .ci/s3.sh) on a free port with a fresh file.
func startS3(t *testing.T) *s3Proc {
	t.Helper()
	bin := os.Getenv("BRAID_TEST_S3_SERVER")
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("BRAID_TEST_S3_SERVER not set in CI (.ci/s3.sh exports it)")
		}
		t.Skip("BRAID_TEST_S3_SERVER not set: eval \"$(bash .ci/s3.sh)\"")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	p := &s3Proc{bin: bin, db: filepath.Join(dir, "s3.db"), addr: addr, log: filepath.Join(dir, "s3.log")}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("s3server log:\n%s", b)
		}
	})
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *s3Proc) target() target {
	return target{"http://" + p.addr, "k", "s"}
}

func (p *s3Proc) start() error {
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(p.bin, "-addr", p.addr, "-db", p.db, "-access-key", "k", "-secret-key", "s")
	p.cmd.Stderr = logf
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	cmd, exited := p.cmd, make(chan struct{})
	p.exited = exited
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	fmt.Fprintf(logf, "[test] started pid %d: %q\n", cmd.Process.Pid, line)
	go func() {
		io.Copy(logf, r) // the rest of its output, until it exits
		err := cmd.Wait()
		fmt.Fprintf(logf, "[test] pid %d ended: %v\n", cmd.Process.Pid, err)
		logf.Close()
		close(exited)
	}()
	if err != nil || !strings.HasPrefix(line, "listening on") {
		return fmt.Errorf("s3server did not start: %q %v", line, err)
	}
	return nil
}

// stop kills the server and waits until it is gone.
func (p *s3Proc) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		<-p.exited
		p.cmd = nil
	}
}
