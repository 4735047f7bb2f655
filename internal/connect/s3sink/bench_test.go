package s3sink

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/braidstream/braid/internal/connect"
)

// BenchmarkSink measures the sink's throughput (MB/s of record values
// in, objects of 8 MiB out) against the S3 server of BRAID_TEST_S3_*,
// and, for the ratio, a plain PUT of the same values as 8 MiB objects and
// a plain GET of them back (plain-put-MB/s, plain-get-MB/s).
//
//	eval "$(bash .ci/s3.sh)"; go test -run - -bench Sink ./internal/connect/s3sink
func BenchmarkSink(b *testing.B) {
	for _, tc := range []struct{ format, compression string }{
		{"jsonl", "none"}, {"jsonl", "zstd"}, {"parquet", "zstd"},
	} {
		b.Run(tc.format+"-"+tc.compression, func(b *testing.B) {
			benchSink(b, tc.format, tc.compression)
		})
	}
}

// benchRecords is a batch of 1000 order-like records of about 200 bytes.
func benchRecords() ([]connect.Record, int64) {
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]connect.Record, 1000)
	var size int64
	for i := range recs {
		v := fmt.Sprintf(`{"id":%d,"customer":"c-%06d","status":"%s","total":%.2f,"items":%d,"note":"%x","ts":"2026-11-30T10:%02d:%02dZ"}`,
			i, rng.IntN(100000), []string{"paid", "open", "void"}[rng.IntN(3)], rng.Float64()*500, rng.IntN(9)+1,
			rng.Uint64(), i/60%60, i%60)
		recs[i] = connect.Record{Stream: "orders", Timestamp: t0, Value: []byte(v)}
		size += int64(len(v))
	}
	return recs, size
}

func benchSink(b *testing.B, format, compression string) {
	tg := needS3(b)
	bucket := tg.newBucket(b)
	const objectBytes = 8 << 20
	s, _ := openSink(b, tg.config(bucket, map[string]any{"format": format, "compression": compression,
		"max_bytes": objectBytes, "max_age": "0s"}), connect.ShardKey{Stream: "orders"})
	recs, size := benchRecords()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range recs {
			recs[j].Offset = int64(i*len(recs) + j)
		}
		if err := s.Put(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()

	// The same values, plainly: PUT as jsonl objects of 8 MiB, GET back.
	var body bytes.Buffer
	for body.Len() < objectBytes {
		for _, r := range recs {
			body.Write(r.Value)
			body.WriteByte('\n')
		}
	}
	total := int64(b.N) * size
	objects := int((total + objectBytes - 1) / objectBytes)
	client := tg.client()
	start := time.Now()
	for i := 0; i < objects; i++ {
		key := fmt.Sprintf("plain/%d", i)
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key,
			Body: bytes.NewReader(body.Bytes()[:objectBytes]), ContentLength: aws.Int64(objectBytes)}); err != nil {
			b.Fatal(err)
		}
	}
	put := time.Since(start)
	start = time.Now()
	for i := 0; i < objects; i++ {
		tg.get(b, bucket, fmt.Sprintf("plain/%d", i))
	}
	get := time.Since(start)
	mb := float64(objects*objectBytes) / 1e6
	b.ReportMetric(mb/put.Seconds(), "plain-put-MB/s")
	b.ReportMetric(mb/get.Seconds(), "plain-get-MB/s")
}
