package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// keyStream creates a key-routed stream of n shards, as the Kinesis door's
// CreateStream makes them, plus extra configs.
func keyStream(t *testing.T, p *braidtest.Proc, name string, n int32, extra ...string) {
	t.Helper()
	cfg := map[string]*string{catalog.RoutingConfig: ptr("key")}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i]] = ptr(extra[i+1])
	}
	p.CreateStream(testCtx(t, 10*time.Second), name, n, cfg)
}

// kShard is the shard of an evenly split n-shard stream owning key's
// hash key.
func kShard(key string, n int) string {
	h := engine.HashKeyOf([]byte(key))
	for i, r := range catalog.SplitEvenly(n) {
		if r.Contains(h) {
			return fmt.Sprintf("shardId-%012d", i)
		}
	}
	panic("no owner")
}

// kIter returns a shard iterator.
func kIter(t *testing.T, kc *kinesis.Client, stream, shardID string, typ types.ShardIteratorType, seq *string, ts *time.Time) *string {
	t.Helper()
	out, err := kc.GetShardIterator(testCtx(t, 10*time.Second), &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shardID), ShardIteratorType: typ,
		StartingSequenceNumber: seq, Timestamp: ts,
	})
	if err != nil {
		t.Fatalf("GetShardIterator %s %s: %v", shardID, typ, err)
	}
	return out.ShardIterator
}

// kRead reads from it until a call returns no records (or the shard's
// end) and returns the records and the last answer.
func kRead(t *testing.T, kc *kinesis.Client, it *string) ([]types.Record, *kinesis.GetRecordsOutput) {
	t.Helper()
	var recs []types.Record
	for range 100 {
		out, err := kc.GetRecords(testCtx(t, 10*time.Second), &kinesis.GetRecordsInput{ShardIterator: it})
		if err != nil {
			t.Fatalf("GetRecords: %v", err)
		}
		recs = append(recs, out.Records...)
		if len(out.Records) == 0 || out.NextShardIterator == nil {
			return recs, out
		}
		it = out.NextShardIterator
	}
	t.Fatal("GetRecords did not reach the end in 100 calls")
	return nil, nil
}

func kPut(t *testing.T, kc *kinesis.Client, stream, key string, data []byte) *kinesis.PutRecordOutput {
	t.Helper()
	out, err := kc.PutRecord(testCtx(t, 10*time.Second), &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(key), Data: data})
	if err != nil {
		t.Fatalf("PutRecord %s: %v", key, err)
	}
	return out
}

// TestKinesisPutGetRecords writes records with PutRecord and reads them
// back with every iterator type.
func TestKinesisPutGetRecords(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "kr", 2)
	kc := p.Kinesis()
	ctx := testCtx(t, 60*time.Second)

	// Four records to one shard, data of every byte value.
	key := "k-a"
	sid := kShard(key, 2)
	var puts []*kinesis.PutRecordOutput
	var data [][]byte
	before := time.Now()
	for i := range 4 {
		d := append([]byte{0, 0xff, byte(i)}, randomBytes(uint64(i), 100)...)
		data = append(data, d)
		out := kPut(t, kc, "kr", key, d)
		if *out.ShardId != sid || out.EncryptionType != types.EncryptionTypeNone {
			t.Fatalf("put %d went to %s (%s), want %s (owner of MD5(%q))", i, *out.ShardId, out.EncryptionType, sid, key)
		}
		if i > 0 && *out.SequenceNumber <= *puts[i-1].SequenceNumber {
			t.Fatalf("sequence numbers out of order: %s after %s", *out.SequenceNumber, *puts[i-1].SequenceNumber)
		}
		puts = append(puts, out)
	}
	after := time.Now()

	check := func(name string, got []types.Record, from int) {
		t.Helper()
		if len(got) != len(puts)-from {
			t.Fatalf("%s: %d records, want %d", name, len(got), len(puts)-from)
		}
		for i, r := range got {
			w := from + i
			if !bytes.Equal(r.Data, data[w]) || *r.PartitionKey != key || *r.SequenceNumber != *puts[w].SequenceNumber {
				t.Fatalf("%s: record %d = %q/%s, want %q/%s", name, i, r.Data, *r.SequenceNumber, data[w], *puts[w].SequenceNumber)
			}
			if at := *r.ApproximateArrivalTimestamp; at.Before(before.Add(-time.Second)) || at.After(after.Add(time.Second)) {
				t.Fatalf("%s: arrival %v not within the puts (%v..%v)", name, at, before, after)
			}
		}
	}
	all, last := kRead(t, kc, kIter(t, kc, "kr", sid, types.ShardIteratorTypeTrimHorizon, nil, nil))
	check("TRIM_HORIZON", all, 0)
	if last.MillisBehindLatest == nil || *last.MillisBehindLatest != 0 || last.NextShardIterator == nil || last.ChildShards != nil {
		t.Fatalf("caught up answer: %+v", last)
	}
	got, _ := kRead(t, kc, kIter(t, kc, "kr", sid, types.ShardIteratorTypeAtSequenceNumber, puts[1].SequenceNumber, nil))
	check("AT_SEQUENCE_NUMBER", got, 1)
	got, _ = kRead(t, kc, kIter(t, kc, "kr", sid, types.ShardIteratorTypeAfterSequenceNumber, puts[1].SequenceNumber, nil))
	check("AFTER_SEQUENCE_NUMBER", got, 2)
	ts := all[2].ApproximateArrivalTimestamp
	got, _ = kRead(t, kc, kIter(t, kc, "kr", sid, types.ShardIteratorTypeAtTimestamp, nil, ts))
	if len(got) == 0 || *got[len(got)-1].SequenceNumber != *puts[3].SequenceNumber || !got[0].ApproximateArrivalTimestamp.Equal(*ts) {
		t.Fatalf("AT_TIMESTAMP %v: %+v", ts, got)
	}
	// Limit: one record per call, each answer going on where the last
	// stopped.
	it := kIter(t, kc, "kr", sid, types.ShardIteratorTypeTrimHorizon, nil, nil)
	time.Sleep(20 * time.Millisecond) // the records are at least this far behind
	for i := range 2 {
		out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1)})
		if err != nil || len(out.Records) != 1 || *out.Records[0].SequenceNumber != *puts[i].SequenceNumber {
			t.Fatalf("Limit 1, call %d: %+v %v", i, out, err)
		}
		if *out.MillisBehindLatest < 20 {
			t.Fatalf("MillisBehindLatest %d", *out.MillisBehindLatest)
		}
		it = out.NextShardIterator
	}

	// LATEST sees only what is written after it.
	latest := kIter(t, kc, "kr", sid, types.ShardIteratorTypeLatest, nil, nil)
	if got, _ := kRead(t, kc, latest); len(got) != 0 {
		t.Fatalf("LATEST before a write: %d records", len(got))
	}
	newer := kPut(t, kc, "kr", key, []byte("newer"))
	got, _ = kRead(t, kc, latest)
	if len(got) != 1 || string(got[0].Data) != "newer" || *got[0].SequenceNumber != *newer.SequenceNumber {
		t.Fatalf("LATEST then a write: %+v", got)
	}

	// ExplicitHashKey overrides the partition key's hash: the lowest and
	// highest hash keys go to the first and last shard.
	for _, c := range []struct{ hash, shard string }{
		{"0", "shardId-000000000000"},
		{catalog.MaxHashKey.String(), "shardId-000000000001"},
	} {
		for _, pk := range []string{"k-a", "k-b", "k-c"} {
			out, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("kr"), PartitionKey: aws.String(pk), ExplicitHashKey: aws.String(c.hash), Data: []byte("x")})
			if err != nil || *out.ShardId != c.shard {
				t.Fatalf("ExplicitHashKey %s, key %s: %+v %v, want %s", c.hash, pk, out, err, c.shard)
			}
		}
	}
}

// TestKinesisRecordErrors checks the main error cases of PutRecord,
// GetShardIterator and GetRecords, and that they write nothing.
func TestKinesisRecordErrors(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "ke", 1)
	kc := p.Kinesis()
	ctx := testCtx(t, 60*time.Second)
	put := func(key string, data []byte, hash *string) error {
		_, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("ke"), PartitionKey: aws.String(key), Data: data, ExplicitHashKey: hash})
		return err
	}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"data over 1 MiB", put("k", make([]byte, 1<<20+1), nil), "ValidationException"},
		{"empty partition key", put("", []byte("x"), nil), "ValidationException"},
		{"partition key of 257", put(strings.Repeat("k", 257), []byte("x"), nil), "ValidationException"},
		{"hash key not decimal", put("k", []byte("x"), aws.String("12x")), "ValidationException"},
		{"hash key 2^128", put("k", []byte("x"), aws.String("340282366920938463463374607431768211456")), "InvalidArgumentException"},
	} {
		if awsErrorCode(c.err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, c.err, c.want)
		}
	}
	if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("nope"), PartitionKey: aws.String("k"), Data: []byte("x")}); awsErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("unknown stream: %v", err)
	}
	if got, _ := kRead(t, kc, kIter(t, kc, "ke", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil)); len(got) != 0 {
		t.Fatalf("refused puts wrote %d records", len(got))
	}

	// A record of exactly 1 MiB is taken and read back through both doors.
	big := randomBytes(7, 1<<20)
	out := kPut(t, kc, "ke", "big", big)
	got, _ := kRead(t, kc, kIter(t, kc, "ke", *out.ShardId, types.ShardIteratorTypeAtSequenceNumber, out.SequenceNumber, nil))
	if len(got) != 1 || !bytes.Equal(got[0].Data, big) {
		t.Fatalf("1 MiB record read back as %d records", len(got))
	}
	if recs := p.ReadPartition(ctx, "ke", 0, true); len(recs) != 1 || !bytes.Equal(recs[0].Value, big) || string(recs[0].Key) != "big" {
		t.Fatalf("1 MiB record through Kafka: %d records", len(recs))
	}

	iter := func(in *kinesis.GetShardIteratorInput) error {
		in.StreamName = aws.String("ke")
		_, err := kc.GetShardIterator(ctx, in)
		return err
	}
	otherShard := "4" + strings.Repeat("0", 9) + "1" + strings.Repeat("0", 19)
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"unknown shard", iter(&kinesis.GetShardIteratorInput{ShardId: aws.String("shardId-000000000009"), ShardIteratorType: types.ShardIteratorTypeLatest}), "ResourceNotFoundException"},
		{"bad type", iter(&kinesis.GetShardIteratorInput{ShardId: aws.String("shardId-000000000000"), ShardIteratorType: "SOMEWHERE"}), "ValidationException"},
		{"no sequence number", iter(&kinesis.GetShardIteratorInput{ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber}), "InvalidArgumentException"},
		{"another shard's sequence number", iter(&kinesis.GetShardIteratorInput{ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: &otherShard}), "InvalidArgumentException"},
		{"sequence number past the end", iter(&kinesis.GetShardIteratorInput{ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String("4" + strings.Repeat("0", 10) + fmt.Sprintf("%019d", 99))}), "InvalidArgumentException"},
		{"no timestamp", iter(&kinesis.GetShardIteratorInput{ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeAtTimestamp}), "InvalidArgumentException"},
	} {
		if awsErrorCode(c.err) != c.want {
			t.Errorf("GetShardIterator, %s: %v, want %s", c.name, c.err, c.want)
		}
	}

	good := kIter(t, kc, "ke", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil)
	raw, err := base64.RawURLEncoding.DecodeString(*good)
	if err != nil {
		t.Fatal(err)
	}
	raw[19] ^= 1 // another offset, same signature
	forged := base64.RawURLEncoding.EncodeToString(raw)
	for _, c := range []struct {
		name  string
		it    string
		limit *int32
		want  string
	}{
		{"forged", forged, nil, "InvalidArgumentException"},
		{"garbage", "not-an-iterator", nil, "InvalidArgumentException"},
		{"limit 0", *good, aws.Int32(0), "ValidationException"},
		{"limit 10001", *good, aws.Int32(10001), "ValidationException"},
	} {
		_, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(c.it), Limit: c.limit})
		if awsErrorCode(err) != c.want {
			t.Errorf("GetRecords, %s iterator: %v, want %s", c.name, err, c.want)
		}
	}
	// An iterator of a deleted stream does not read a new stream of the
	// same name.
	if _, err := p.Admin().DeleteTopics(ctx, "ke"); err != nil {
		t.Fatal(err)
	}
	keyStream(t, p, "ke", 1)
	if _, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: good}); awsErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("iterator of a deleted stream: %v", err)
	}
}

// atomicHeader sends X-Braid-Atomic: true with a call.
func atomicHeader(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("X-Braid-Atomic", "true"))
}

func badAtomicHeader(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("X-Braid-Atomic", "maybe"))
}

// TestKinesisPutRecordsAtomic checks PutRecords with an invalid record:
// every call (atomic by stream config or header, or not) is refused whole
// with AWS's ValidationException and writes nothing; a valid call writes
// its records in request order per shard.
func TestKinesisPutRecordsAtomic(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "pa", 2)
	keyStream(t, p, "pa-cfg", 2, catalog.PutRecordsAtomicConfig, "true")
	kc := p.Kinesis()
	ctx := testCtx(t, 60*time.Second)
	entries := func(bad int) []types.PutRecordsRequestEntry {
		var out []types.PutRecordsRequestEntry
		for i := range 6 {
			key := fmt.Sprintf("key-%d", i%3)
			if i == bad {
				key = strings.Repeat("k", 300)
			}
			out = append(out, types.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: []byte(fmt.Sprintf("r%d", i))})
		}
		return out
	}
	count := func(stream string) int {
		n := 0
		for _, s := range []string{"shardId-000000000000", "shardId-000000000001"} {
			got, _ := kRead(t, kc, kIter(t, kc, stream, s, types.ShardIteratorTypeTrimHorizon, nil, nil))
			n += len(got)
		}
		return n
	}
	for _, c := range []struct {
		name   string
		stream string
		opts   []func(*kinesis.Options)
	}{
		{"config", "pa-cfg", nil},
		{"header", "pa", []func(*kinesis.Options){atomicHeader}},
	} {
		// An invalid record fails the whole call, as AWS's request
		// validation does: nothing is written.
		_, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(c.stream), Records: entries(4)}, c.opts...)
		if awsErrorCode(err) != "ValidationException" || !strings.Contains(err.Error(), "records.5.member.partitionKey") {
			t.Fatalf("%s: atomic call with an invalid record: %v, want ValidationException naming records.5", c.name, err)
		}
		if n := count(c.stream); n != 0 {
			t.Fatalf("%s: atomic call with an invalid record wrote %d records", c.name, n)
		}
		// Valid: all written.
		out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(c.stream), Records: entries(-1)}, c.opts...)
		if err != nil || *out.FailedRecordCount != 0 || count(c.stream) != 6 {
			t.Fatalf("%s: valid atomic call: %+v %v", c.name, out, err)
		}
	}

	// Not atomic: the same; a valid call's records are written in request
	// order within each shard.
	if _, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("pa"), Records: entries(4)}); awsErrorCode(err) != "ValidationException" {
		t.Fatalf("non-atomic call with an invalid record: %v, want ValidationException", err)
	}
	if n := count("pa"); n != 6 {
		t.Fatalf("non-atomic call with an invalid record: stream holds %d records, want the 6 of before", n)
	}
	out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("pa"), Records: entries(-1)})
	if err != nil || *out.FailedRecordCount != 0 {
		t.Fatalf("non-atomic call: %+v %v", out, err)
	}
	for i, r := range out.Records {
		if r.ErrorCode != nil || *r.ShardId != kShard(fmt.Sprintf("key-%d", i%3), 2) {
			t.Fatalf("record %d: %+v", i, r)
		}
		for j := range i {
			if *out.Records[j].ShardId == *r.ShardId && *out.Records[j].SequenceNumber >= *r.SequenceNumber {
				t.Fatalf("records %d and %d of shard %s out of request order", j, i, *r.ShardId)
			}
		}
	}
	if n := count("pa"); n != 6+6 {
		t.Fatalf("non-atomic call: stream holds %d records, want 12", n)
	}
	// A bad atomic header is refused, nothing written.
	if _, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("pa"), Records: entries(-1)}, badAtomicHeader); awsErrorCode(err) != "InvalidArgumentException" || count("pa") != 12 {
		t.Fatalf("bad X-Braid-Atomic header: %v", err)
	}

	// Request-level limits change nothing.
	many := make([]types.PutRecordsRequestEntry, 501)
	for i := range many {
		many[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("x")}
	}
	if _, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("pa"), Records: many}); awsErrorCode(err) != "ValidationException" {
		t.Fatalf("501 records: %v", err)
	}
	huge := make([]types.PutRecordsRequestEntry, 6)
	for i := range huge {
		huge[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: make([]byte, 1<<20)}
	}
	if _, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("pa"), Records: huge}); awsErrorCode(err) != "InvalidArgumentException" {
		t.Fatalf("6 MiB of records: %v", err)
	}
	if n := count("pa"); n != 12 {
		t.Fatalf("refused calls changed the stream: %d records", n)
	}
}

// TestKinesisCrossDoor writes through each door and reads through the
// other, before and after a split; the split shard ends with ChildShards.
func TestKinesisCrossDoor(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "x", 1)
	kc := p.Kinesis()
	ctx := testCtx(t, 60*time.Second)

	// Kinesis in, Kafka out: key and value byte for byte.
	var want []*kgo.Record
	var recs []types.PutRecordsRequestEntry
	for i := range 20 {
		k, v := fmt.Sprintf("pk-%d-\u00e9", i), randomBytes(uint64(i), 1+i*37)
		recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: v})
		want = append(want, &kgo.Record{Key: []byte(k), Value: v})
	}
	if out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("x"), Records: recs}); err != nil || *out.FailedRecordCount != 0 {
		t.Fatalf("PutRecords: %+v %v", out, err)
	}
	got := consume(t, ctx, p, "x", 0, kgo.NewOffset().AtStart(), 20)
	for i, r := range got {
		if !bytes.Equal(r.Key, want[i].Key) || !bytes.Equal(r.Value, want[i].Value) {
			t.Fatalf("Kafka record %d: key %q value %d bytes, want %q, %d bytes", i, r.Key, len(r.Value), want[i].Key, len(want[i].Value))
		}
	}

	// Kafka in, Kinesis out; a null key reads as an empty partition key,
	// headers are not shown.
	pr := newClient(t, p)
	produce(t, ctx, pr,
		&kgo.Record{Topic: "x", Key: []byte("kafka-1"), Value: []byte("v1"), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("hv")}}},
		&kgo.Record{Topic: "x", Key: []byte("kafka-2"), Value: nil})
	kr, _ := kRead(t, kc, kIter(t, kc, "x", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil))
	if len(kr) != 22 || *kr[20].PartitionKey != "kafka-1" || string(kr[20].Data) != "v1" || *kr[21].PartitionKey != "kafka-2" || len(kr[21].Data) != 0 {
		t.Fatalf("Kafka records through Kinesis: %d records", len(kr))
	}
	for i := range 20 {
		if *kr[i].PartitionKey != string(want[i].Key) || !bytes.Equal(kr[i].Data, want[i].Value) {
			t.Fatalf("record %d: %q", i, *kr[i].PartitionKey)
		}
	}

	// Split shard 0; its reader ends with ChildShards and no next
	// iterator; new writes from both doors land in the children.
	open := kIter(t, kc, "x", "shardId-000000000000", types.ShardIteratorTypeLatest, nil, nil)
	var r reshardReply
	if status, err := p.PostJSON("/v1/streams/x/split", map[string]any{"shard": 0}, &r); err != nil || status != 200 {
		t.Fatalf("split: %d %v %+v", status, err, r)
	}
	produce(t, ctx, pr, &kgo.Record{Topic: "x", Key: []byte("after-kafka"), Value: []byte("k")})
	put := kPut(t, kc, "x", "after-kinesis", []byte("n"))
	if *put.ShardId == "shardId-000000000000" {
		t.Fatalf("put after the split went to the closed shard")
	}
	rest, last := kRead(t, kc, open)
	if len(rest) != 0 || last.NextShardIterator != nil || len(last.ChildShards) != 2 {
		t.Fatalf("end of the closed shard: %d records, next %v, children %+v", len(rest), last.NextShardIterator, last.ChildShards)
	}
	seen, owner := map[string]string{}, map[string]string{}
	for _, c := range last.ChildShards {
		lo, err1 := catalog.ParseHashKey(*c.HashKeyRange.StartingHashKey)
		hi, err2 := catalog.ParseHashKey(*c.HashKeyRange.EndingHashKey)
		if err1 != nil || err2 != nil {
			t.Fatalf("child %s range %v %v", *c.ShardId, err1, err2)
		}
		for _, k := range []string{"after-kafka", "after-kinesis"} {
			if (catalog.HashRange{Start: lo, End: hi}).Contains(engine.HashKeyOf([]byte(k))) {
				owner[k] = *c.ShardId
			}
		}
		if len(c.ParentShards) != 1 || c.ParentShards[0] != "shardId-000000000000" || c.HashKeyRange == nil || *c.HashKeyRange.StartingHashKey == "" {
			t.Fatalf("child %+v", c)
		}
		got, _ := kRead(t, kc, kIter(t, kc, "x", *c.ShardId, types.ShardIteratorTypeTrimHorizon, nil, nil))
		for _, g := range got {
			seen[*g.PartitionKey] = *c.ShardId
		}
	}
	if seen["after-kafka"] != owner["after-kafka"] || seen["after-kinesis"] != *put.ShardId || *put.ShardId != owner["after-kinesis"] || len(seen) != 2 {
		t.Fatalf("records after the split: %v, owners %v", seen, owner)
	}

	// Merge the children back: each ends with the one merged child,
	// whose parents are both.
	c1 := kIter(t, kc, "x", "shardId-000000000001", types.ShardIteratorTypeLatest, nil, nil)
	if status, err := p.PostJSON("/v1/streams/x/merge", map[string]any{"shards": []int{1, 2}}, &r); err != nil || status != 200 {
		t.Fatalf("merge: %d %v %+v", status, err, r)
	}
	_, last = kRead(t, kc, c1)
	if last.NextShardIterator != nil || len(last.ChildShards) != 1 || fmt.Sprint(last.ChildShards[0].ParentShards) != "[shardId-000000000001 shardId-000000000002]" ||
		*last.ChildShards[0].HashKeyRange.StartingHashKey != "0" || *last.ChildShards[0].HashKeyRange.EndingHashKey != catalog.MaxHashKey.String() {
		t.Fatalf("end of a merged shard: next %v, children %+v", last.NextShardIterator, last.ChildShards)
	}
}

// TestKinesisReadCommitted checks that GetRecords never shows records of
// aborted Kafka transactions, nor of a transaction still open.
func TestKinesisReadCommitted(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "tx", 1)
	kc := p.Kinesis()
	ctx := testCtx(t, 60*time.Second)
	cl := txnProducer(t, p, "kinesis-tx")
	inTxn(t, ctx, cl, "tx", 0, false, "aborted-1", "aborted-2")
	inTxn(t, ctx, cl, "tx", 0, true, "committed-1")
	inTxn(t, ctx, cl, "tx", 0, false, "aborted-3")
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, cl, &kgo.Record{Topic: "tx", Partition: 0, Value: []byte("open")})
	// LATEST while the transaction is open must not skip its records.
	latest := kIter(t, kc, "tx", "shardId-000000000000", types.ShardIteratorTypeLatest, nil, nil)
	got, _ := kRead(t, kc, kIter(t, kc, "tx", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil))
	var vals []string
	for _, r := range got {
		vals = append(vals, string(r.Data))
	}
	if fmt.Sprint(vals) != "[committed-1]" {
		t.Fatalf("GetRecords showed %v, want only the committed record", vals)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	kPut(t, kc, "tx", "after", []byte("after"))
	got, _ = kRead(t, kc, kIter(t, kc, "tx", "shardId-000000000000", types.ShardIteratorTypeTrimHorizon, nil, nil))
	vals = vals[:0]
	for _, r := range got {
		vals = append(vals, string(r.Data))
	}
	if fmt.Sprint(vals) != "[committed-1 open after]" {
		t.Fatalf("after the commit GetRecords showed %v", vals)
	}
	got, _ = kRead(t, kc, latest)
	vals = vals[:0]
	for _, r := range got {
		vals = append(vals, string(r.Data))
	}
	if fmt.Sprint(vals) != "[open after]" {
		t.Fatalf("LATEST taken while a transaction was open then showed %v, want [open after]", vals)
	}
}
