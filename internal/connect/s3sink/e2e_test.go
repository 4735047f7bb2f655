package s3sink

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"

	"fmt"
	"github.com/klauspost/compress/gzip"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestE2EThroughBraid runs the s3-sink inside a real braid serve through
// the connect runtime: records produced before and after a SIGKILL of
// braid, and while the S3 server is down long enough for the connector to
// go retrying, land in the bucket exactly once, in Hive-style keys.
func TestE2EThroughBraid(t *testing.T) {
	s3 := startS3(t) // a server of this test's own, to stop and restart
	tg := s3.target()
	bucket := tg.newBucket(t)
	p := braidtest.Start(t)
	p.CreateStream(ctx, "orders", 2, nil)
	cl := p.Client(kgo.DefaultProduceTopic("orders"))
	defer cl.Close()
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			v := fmt.Sprintf(`{"n": %d, "status": "paid"}`, i)
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
	}
	produce(0, 300)
	def := map[string]any{
		"name": "orders-archive", "type": "s3-sink", "streams": []string{"orders"}, "delivery": "exactly-once",
		"config": map[string]any{"endpoint": tg.endpoint, "access_key": tg.access, "secret_key": tg.secret,
			"bucket": bucket, "path_style": true, "prefix": "lake/{stream}/dt={dt}/", "compression": "gzip",
			"max_records": 40, "max_age": "1s"},
	}
	if code, err := p.PostJSON("/v1/connectors", def, nil); err != nil || code != 201 {
		t.Fatalf("create connector: %d %v", code, err)
	}
	count := func() map[int64]int {
		seen := map[int64]int{}
		for _, k := range tg.dataObjects(t, bucket) {
			body, _ := tg.get(t, bucket, k)
			plain, err := gunzip(body)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			for _, n := range jsonlOffsets(t, plain) {
				seen[n]++
			}
		}
		return seen
	}
	waitUntil(t, "the first objects", func() bool { return len(count()) >= 80 })
	p.Kill()
	p.Restart()
	cl2 := p.Client(kgo.DefaultProduceTopic("orders"))
	defer cl2.Close()
	cl = cl2
	produce(300, 400)
	s3.stop()
	produce(400, 500)
	var d struct {
		State     string `json:"state"`
		Lag       int64  `json:"lag"`
		LastError *struct {
			Message string `json:"message"`
		} `json:"last_error"`
	}
	waitUntil(t, "the connector retrying while S3 is down", func() bool {
		_, err := p.GetJSON("/v1/connectors/orders-archive", &d)
		return err == nil && d.State == "retrying"
	})
	t.Logf("S3 down: %s (%s)", d.State, d.LastError.Message)
	if err := s3.start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "all 500 records in the bucket", func() bool { return len(count()) == 500 })
	time.Sleep(2 * time.Second) // a duplicate would come with the next roll
	seen := count()
	var dup []int64
	for n, c := range seen {
		if c != 1 {
			dup = append(dup, n)
		}
	}
	sort.Slice(dup, func(i, j int) bool { return dup[i] < dup[j] })
	if len(seen) != 500 || len(dup) > 0 {
		t.Fatalf("%d distinct records (want 500); more than once: %v", len(seen), dup)
	}
	keyRE := regexp.MustCompile(`^lake/orders/dt=\d{4}-\d\d-\d\d/orders-[01]-\d{20}\.jsonl\.gz$`)
	for _, k := range tg.dataObjects(t, bucket) {
		if !keyRE.MatchString(k) {
			t.Errorf("key %s does not match %s", k, keyRE)
		}
	}
	if _, err := p.GetJSON("/v1/connectors/orders-archive", &d); err != nil || d.State != "running" {
		b, _ := json.Marshal(d)
		t.Fatalf("describe: %s %v", b, err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func gunzip(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
