package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/catalog"
)

// Hash keys owned by the first and the last shard of an evenly split
// stream.
const (
	firstShardKey  = "0"
	lastShardKey   = "340282366920938463463374607431768211455"
	throttleShard0 = "shardId-000000000000"
	throttleShard1 = "shardId-000000000001"
)

// putBlobs writes n records of size bytes (partition key "k", routed by
// hashKey) in one PutRecords call; a request-level error fails t.
func putBlobs(t *testing.T, kc *kinesis.Client, stream, hashKey string, n, size int) *kinesis.PutRecordsOutput {
	t.Helper()
	recs := make([]types.PutRecordsRequestEntry, n)
	for i := range recs {
		recs[i] = types.PutRecordsRequestEntry{Data: randomBytes(uint64(i), size), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(hashKey)}
	}
	out, err := kc.PutRecords(testCtx(t, 20*time.Second), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: recs})
	if err != nil {
		t.Fatalf("PutRecords %d x %d bytes: %v", n, size, err)
	}
	return out
}

// wantWritten checks that a PutRecords call was stored whole.
func wantWritten(t *testing.T, what string, out *kinesis.PutRecordsOutput) {
	t.Helper()
	if n := aws.ToInt32(out.FailedRecordCount); n != 0 {
		t.Fatalf("%s: %d records failed: %s %s", what, n, aws.ToString(out.Records[0].ErrorCode), aws.ToString(out.Records[0].ErrorMessage))
	}
}

// wantRefused checks that a PutRecords call was refused whole for
// throttling on shardID.
func wantRefused(t *testing.T, what, stream, shardID string, out *kinesis.PutRecordsOutput) {
	t.Helper()
	if n := int(aws.ToInt32(out.FailedRecordCount)); n != len(out.Records) {
		t.Fatalf("%s: FailedRecordCount %d of %d records, want all refused", what, n, len(out.Records))
	}
	msg := fmt.Sprintf("Rate exceeded for shard %s in stream %s under account 000000000000. The whole PutRecords call was refused", shardID, stream)
	for i, r := range out.Records {
		if aws.ToString(r.ErrorCode) != "ProvisionedThroughputExceededException" || r.SequenceNumber != nil ||
			len(aws.ToString(r.ErrorMessage)) < len(msg) || aws.ToString(r.ErrorMessage)[:len(msg)] != msg {
			t.Fatalf("%s: record %d: %s %q (sequence %v), want ProvisionedThroughputExceededException %q...", what, i,
				aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage), r.SequenceNumber, msg)
		}
	}
}

// isThrottled reports whether err is AWS's throttling answer for shardID
// of stream: HTTP 400, ProvisionedThroughputExceededException and AWS's
// message; any other error fails t.
func isThrottled(t *testing.T, err error, stream, shardID string) bool {
	t.Helper()
	if err == nil {
		return false
	}
	var ae smithy.APIError
	var re *awshttp.ResponseError
	want := fmt.Sprintf("Rate exceeded for shard %s in stream %s under account 000000000000.", shardID, stream)
	if !errors.As(err, &ae) || ae.ErrorCode() != "ProvisionedThroughputExceededException" || ae.ErrorMessage() != want ||
		!errors.As(err, &re) || re.HTTPStatusCode() != 400 {
		t.Fatalf("got %v, want HTTP 400 ProvisionedThroughputExceededException %q", err, want)
	}
	return true
}

// endOffsets counts what each shard holds, through the Kafka door (which
// is never throttled).
func endOffsets(t *testing.T, p *braidtest.Proc, stream string) map[int32]int64 {
	t.Helper()
	offs, err := newAdmin(t, p).ListEndOffsets(testCtx(t, 10*time.Second), stream)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// TestKinesisThrottleOff: without braid.kinesis.throttle a burst far
// above Kinesis' per-shard limits goes through.
func TestKinesisThrottleOff(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "toff", 1)
	kc := p.Kinesis()
	// 3 MiB and 1,500 records into one shard at once: 3 times the write
	// limit, 1.5 times the records limit.
	for i := range 3 {
		wantWritten(t, fmt.Sprint("call ", i), putBlobs(t, kc, "toff", firstShardKey, 500, 2<<10))
	}
	if got := endOffsets(t, p, "toff")[0]; got != 1500 {
		t.Fatalf("shard 0 holds %d records, want 1500", got)
	}
	// 20 GetRecords calls in a row, 4 times the read limit.
	it := kIter(t, kc, "toff", throttleShard0, types.ShardIteratorTypeTrimHorizon, nil, nil)
	for i := range 20 {
		if _, err := kc.GetRecords(testCtx(t, 10*time.Second), &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1)}); err != nil {
			t.Fatalf("GetRecords %d: %v", i, err)
		}
	}
}

// TestKinesisThrottlePutRecords: with the key on, a call over one shard's
// second of budget is refused whole and writes nothing, a refused call
// takes nothing from the budget, two shards have their own budgets, a bad
// value of the key is refused and changes nothing, and turning the key
// off stops throttling at once.
func TestKinesisThrottlePutRecords(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "tput", 2, catalog.KinesisThrottleConfig, "true")
	kc := p.Kinesis()
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)

	// 2 MiB into shard 0 in one call: refused whole, nothing written.
	wantRefused(t, "2 MiB", "tput", throttleShard0, putBlobs(t, kc, "tput", firstShardKey, 4, 512<<10))
	// It took nothing: a full second's worth (1 MiB) still goes in.
	wantWritten(t, "1 MiB after the refusal", putBlobs(t, kc, "tput", firstShardKey, 2, 512<<10))
	// Now shard 0's second is spent: 900 KiB more is refused...
	wantRefused(t, "900 KiB more", "tput", throttleShard0, putBlobs(t, kc, "tput", firstShardKey, 1, 900<<10))
	// ...while shard 1 has its own budget.
	wantWritten(t, "1 MiB into shard 1", putBlobs(t, kc, "tput", lastShardKey, 2, 512<<10))
	// A call touching both is refused whole, naming the shard over its
	// limit (shard 1 is spent too now), and writes nothing to either.
	recs := []types.PutRecordsRequestEntry{
		{Data: []byte("a"), PartitionKey: aws.String("a"), ExplicitHashKey: aws.String(firstShardKey)},
		{Data: randomBytes(3, 900<<10), PartitionKey: aws.String("b"), ExplicitHashKey: aws.String(lastShardKey)},
	}
	both, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("tput"), Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "both shards", "tput", throttleShard1, both)
	if got := endOffsets(t, p, "tput"); got[0] != 2 || got[1] != 2 {
		t.Fatalf("shards hold %v records, want 2 and 2 (the refused calls wrote nothing)", got)
	}

	// The Kafka door is not throttled: 2 MiB more into the spent shard 0.
	cl := newClient(t, p, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 8 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "tput", Partition: 0, Value: randomBytes(uint64(i), 256<<10)}).FirstErr(); err != nil {
			t.Fatalf("Kafka produce %d into the throttled shard: %v", i, err)
		}
	}
	if got := endOffsets(t, p, "tput")[0]; got != 10 {
		t.Fatalf("shard 0 holds %d records after the Kafka produce, want 10", got)
	}

	// A bad value is refused with a clear error and changes nothing.
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: catalog.KinesisThrottleConfig, Value: ptr("sometimes")}}, "tput")
	if err == nil {
		err = resp[0].Err
	}
	if err == nil || !strings.Contains(err.Error(), "INVALID_CONFIG") {
		t.Fatalf("%s=sometimes: %v, want INVALID_CONFIG", catalog.KinesisThrottleConfig, err)
	}
	wantRefused(t, "2 MiB after the bad value", "tput", throttleShard0, putBlobs(t, kc, "tput", firstShardKey, 4, 512<<10))

	// Off again: the same 2 MiB goes in, at once.
	setTopicConfig(t, ctx, adm, "tput", catalog.KinesisThrottleConfig, "false")
	for i := range 3 {
		wantWritten(t, fmt.Sprint("2 MiB with the key off, call ", i), putBlobs(t, kc, "tput", firstShardKey, 4, 512<<10))
	}
}

// TestKinesisThrottlePutRecord: past a shard's 1,000 records or 1 MiB a
// second, PutRecord gets AWS's ProvisionedThroughputExceededException (a
// client with retries off sees it) and goes through after a pause; the
// SDK's default retryer gets a throttled PutRecord through by itself.
func TestKinesisThrottlePutRecord(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "trec", 1, catalog.KinesisThrottleConfig, "true")
	kc := p.Kinesis() // RetryMaxAttempts 1: no retries
	ctx := testCtx(t, 60*time.Second)
	put := func(c *kinesis.Client, size int) (*kinesis.PutRecordOutput, error) {
		return c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("trec"), PartitionKey: aws.String("r"), Data: randomBytes(7, size)})
	}

	// 1,500 records in well under a second (PutRecords: one client here
	// cannot send 1,000 PutRecord calls a second): the third 500 are
	// refused whole.
	wantWritten(t, "500 records", putBlobs(t, kc, "trec", firstShardKey, 500, 10))
	wantWritten(t, "500 more", putBlobs(t, kc, "trec", firstShardKey, 500, 10))
	wantRefused(t, "records 1,001-1,500", "trec", throttleShard0, putBlobs(t, kc, "trec", firstShardKey, 500, 10))
	if got := endOffsets(t, p, "trec")[0]; got != 1000 {
		t.Fatalf("shard holds %d records, want 1000", got)
	}

	// A second's bytes spent, a PutRecord of 900 KiB is refused...
	time.Sleep(1100 * time.Millisecond)
	wantWritten(t, "1 MiB", putBlobs(t, kc, "trec", firstShardKey, 2, 512<<10))
	if _, err := put(kc, 900<<10); !isThrottled(t, err, "trec", throttleShard0) {
		t.Fatal("PutRecord of 900 KiB right after 1 MiB went through")
	}
	if got := endOffsets(t, p, "trec")[0]; got != 1002 {
		t.Fatalf("shard holds %d records, want 1002", got)
	}
	// ...and goes through after a pause.
	time.Sleep(1100 * time.Millisecond)
	if _, err := put(kc, 900<<10); err != nil {
		t.Fatalf("PutRecord after a pause: %v", err)
	}

	// The SDK's default retryer retries the exception by itself: spend
	// the bytes of a second, then a PutRecord that needs ~200 ms of refill
	// fails once and then succeeds. Its backoff is random: 10 attempts
	// instead of 3, so that a run of short backoffs all inside the refill
	// cannot fail the test.
	opts := kc.Options()
	opts.Retryer, opts.RetryMaxAttempts = retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 10 }), 0
	dc := kinesis.New(opts)
	for try := 0; ; try++ {
		time.Sleep(1100 * time.Millisecond)
		wantWritten(t, "1 MiB", putBlobs(t, kc, "trec", firstShardKey, 2, 512<<10))
		out, err := put(dc, 200<<10)
		if err != nil {
			t.Fatalf("PutRecord with the default retryer: %v", err)
		}
		attempts, _ := retry.GetAttemptResults(out.ResultMetadata)
		if len(attempts.Results) > 1 {
			t.Logf("went through after %d attempts", len(attempts.Results))
			break
		}
		if try == 2 {
			t.Fatal("3 times, the PutRecord after 1 MiB was not throttled on its first attempt")
		}
	}
}

// TestKinesisThrottleGetRecords: more than 5 GetRecords calls a second on
// a shard are throttled, another shard is not, and a big answer takes a
// read debt that throttles the next calls until it is paid.
func TestKinesisThrottleGetRecords(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "tget", 2)
	kc := p.Kinesis()
	ctx := testCtx(t, 60*time.Second)
	// 6 MiB in shard 0, written before throttling is on.
	for range 2 {
		wantWritten(t, "3 MiB", putBlobs(t, kc, "tget", firstShardKey, 6, 512<<10))
	}
	setTopicConfig(t, ctx, newAdmin(t, p), "tget", catalog.KinesisThrottleConfig, "true")

	// 20 one-record calls as fast as they come.
	it := kIter(t, kc, "tget", throttleShard0, types.ShardIteratorTypeTrimHorizon, nil, nil)
	start := time.Now()
	ok, throttled := 0, 0
	for range 20 {
		_, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1)})
		if isThrottled(t, err, "tget", throttleShard0) {
			throttled++
		} else {
			ok++
		}
	}
	elapsed := time.Since(start)
	if limit := 5 + int(elapsed.Seconds()*5) + 1; throttled == 0 || ok > limit {
		t.Fatalf("in %v: %d calls answered (at most %d allowed), %d throttled", elapsed, ok, limit, throttled)
	}
	t.Logf("in %v: %d answered, %d throttled", elapsed, ok, throttled)
	// Shard 1 has its own budget.
	it1 := kIter(t, kc, "tget", throttleShard1, types.ShardIteratorTypeTrimHorizon, nil, nil)
	for i := range 5 {
		if _, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it1}); err != nil {
			t.Fatalf("shard 1, call %d: %v", i, err)
		}
	}

	// A 6 MiB answer: 4 MiB of debt, paid in about 2 s; the calls
	// budget alone would allow the next call.
	time.Sleep(1100 * time.Millisecond)
	out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
	if err != nil || len(out.Records) != 12 {
		t.Fatalf("big read: %v, %d records", err, len(out.Records))
	}
	if _, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator}); !isThrottled(t, err, "tget", throttleShard0) {
		t.Fatal("the call right after a 6 MiB answer was not throttled")
	}
	time.Sleep(2200 * time.Millisecond)
	if _, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.NextShardIterator}); err != nil {
		t.Fatalf("after the debt is paid: %v", err)
	}
}

// TestKinesisThrottleSubscribe: a subscription is slowed to 2 MiB/s per
// consumer and shard, never failed.
func TestKinesisThrottleSubscribe(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "tsub", 1)
	kc := subscriber(p)
	ctx := testCtx(t, 60*time.Second)
	// 6 MiB, written before throttling is on.
	for range 2 {
		wantWritten(t, "3 MiB", putBlobs(t, kc, "tsub", firstShardKey, 6, 512<<10))
	}
	setTopicConfig(t, ctx, newAdmin(t, p), "tsub", catalog.KinesisThrottleConfig, "true")
	c := kRegister(t, kc, "tsub", "slow")

	start := time.Now()
	es := subscribe(t, ctx, kc, *c.ConsumerARN, throttleShard0, &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	got := 0
	for got < 12 {
		select {
		case ev, ok := <-es.Events():
			if !ok {
				t.Fatalf("stream ended after %d records: %v", got, es.Err())
			}
			e := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value
			size := 0
			for _, r := range e.Records {
				size += len(r.Data) + len(aws.ToString(r.PartitionKey))
			}
			if size > 2<<20 {
				t.Fatalf("an event of %d bytes, over a second's 2 MiB", size)
			}
			got += len(e.Records)
		case <-ctx.Done():
			t.Fatalf("%d of 12 records", got)
		}
	}
	// 2 MiB at once (the burst), then 2 MiB a second: the last 2 MiB
	// cannot come before 2 s.
	if elapsed := time.Since(start); elapsed < 1800*time.Millisecond {
		t.Fatalf("6 MiB pushed in %v, want about 2 s at 2 MiB/s", elapsed)
	} else {
		t.Logf("6 MiB pushed in %v", elapsed)
	}
}
