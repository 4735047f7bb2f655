package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/braidstream/braid/internal/braidtest"
)

// subscriber returns p's Kinesis client (braidtest.Proc.Kinesis copies
// request bodies; see there why).
func subscriber(p *braidtest.Proc) *kinesis.Client { return p.Kinesis() }

// subscribe starts a subscription and returns its event stream.
func subscribe(t *testing.T, ctx context.Context, kc *kinesis.Client, consumerARN, shardID string, pos *types.StartingPosition) *kinesis.SubscribeToShardEventStream {
	t.Helper()
	out, err := kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(consumerARN), ShardId: aws.String(shardID), StartingPosition: pos})
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	es := out.GetStream()
	t.Cleanup(func() { es.Close() })
	return es
}

// resubscribe subscribes again after es was closed: until the server has
// seen the old subscription end, the call gets ResourceInUseException, and
// a client retries it, as the KCL does.
func resubscribe(t *testing.T, ctx context.Context, kc *kinesis.Client, consumerARN, shardID string, pos *types.StartingPosition) *kinesis.SubscribeToShardEventStream {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(consumerARN), ShardId: aws.String(shardID), StartingPosition: pos})
		if awsErrorCode(err) == "ResourceInUseException" && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			t.Fatalf("SubscribeToShard again: %v", err)
		}
		es := out.GetStream()
		t.Cleanup(func() { es.Close() })
		return es
	}
}

// nextEvents reads events until want records came (or an event carries
// ChildShards) and returns the records and the last event.
func nextEvents(t *testing.T, es *kinesis.SubscribeToShardEventStream, want int) ([]types.Record, *types.SubscribeToShardEvent) {
	t.Helper()
	var recs []types.Record
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-es.Events():
			if !ok {
				t.Fatalf("event stream ended after %d of %d records: %v", len(recs), want, es.Err())
			}
			e := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value
			recs = append(recs, e.Records...)
			if len(recs) > want {
				t.Fatalf("%d records, want %d", len(recs), want)
			}
			if len(recs) == want || len(e.ChildShards) > 0 {
				return recs, &e
			}
		case <-timeout:
			t.Fatalf("%d of %d records in 20s", len(recs), want)
		}
	}
}

func recordData(recs []types.Record) string {
	s := ""
	for _, r := range recs {
		s += string(r.Data) + " "
	}
	return s
}

// TestKinesisSubscribeToShard pushes records written before and after
// subscribing, resumes exactly at a continuation sequence number, and
// ends a closed shard with ChildShards.
func TestKinesisSubscribeToShard(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "sub", 1)
	kc := subscriber(p)
	ctx := testCtx(t, 60*time.Second)
	c := kRegister(t, kc, "sub", "pusher")
	const shard0 = "shardId-000000000000"

	for i := range 3 {
		kPut(t, kc, "sub", fmt.Sprint("k", i), []byte(fmt.Sprint("r", i)))
	}
	es := subscribe(t, ctx, kc, *c.ConsumerARN, shard0, &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	recs, _ := nextEvents(t, es, 3)
	for i := 3; i < 5; i++ {
		kPut(t, kc, "sub", fmt.Sprint("k", i), []byte(fmt.Sprint("r", i)))
	}
	more, last := nextEvents(t, es, 2)
	recs = append(recs, more...)
	if got := recordData(recs); got != "r0 r1 r2 r3 r4 " {
		t.Fatalf("pushed %q", got)
	}
	if *last.ContinuationSequenceNumber != *recs[4].SequenceNumber || *recs[4].PartitionKey != "k4" {
		t.Fatalf("continuation %s, last record %s", *last.ContinuationSequenceNumber, *recs[4].SequenceNumber)
	}
	es.Close()

	// Resume after the continuation: exactly the records after it.
	kPut(t, kc, "sub", "k5", []byte("r5"))
	es = resubscribe(t, ctx, kc, *c.ConsumerARN, shard0, &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: last.ContinuationSequenceNumber})
	kPut(t, kc, "sub", "k6", []byte("r6"))
	if recs, _ := nextEvents(t, es, 2); recordData(recs) != "r5 r6 " {
		t.Fatalf("resumed with %q", recordData(recs))
	}
	// One subscription per consumer and shard: the others are consumers
	// of their own.
	c2, c3 := kRegister(t, kc, "sub", "at"), kRegister(t, kc, "sub", "latest")
	at := subscribe(t, ctx, kc, *c2.ConsumerARN, shard0, &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: recs[3].SequenceNumber})
	if recs, _ := nextEvents(t, at, 4); recordData(recs) != "r3 r4 r5 r6 " {
		t.Fatalf("AT_SEQUENCE_NUMBER r3: %q", recordData(recs))
	}
	latest := subscribe(t, ctx, kc, *c3.ConsumerARN, shard0, &types.StartingPosition{Type: types.ShardIteratorTypeLatest})

	// A split ends the shard: the rest of its records, then ChildShards,
	// then the end of the stream.
	kPut(t, kc, "sub", "k7", []byte("r7"))
	var r reshardReply
	if status, err := p.PostJSON("/v1/streams/sub/split", map[string]any{"shard": 0}, &r); err != nil || status != 200 {
		t.Fatalf("split: %d %v %+v", status, err, r)
	}
	for name, s := range map[string]*kinesis.SubscribeToShardEventStream{"resumed": es, "latest": latest} {
		recs, last := nextEvents(t, s, 1)
		if recordData(recs) != "r7 " {
			t.Fatalf("%s: %q before the end", name, recordData(recs))
		}
		for len(last.ChildShards) == 0 { // heartbeats, then the end
			recs, last = nextEvents(t, s, 0)
			if len(recs) != 0 {
				t.Fatalf("%s: %q after r7", name, recordData(recs))
			}
		}
		if len(last.ChildShards) != 2 || last.ChildShards[0].ParentShards[0] != shard0 || last.ContinuationSequenceNumber != nil {
			t.Fatalf("%s: end of the split shard: children %+v", name, last.ChildShards)
		}
		select {
		case _, ok := <-s.Events():
			if ok {
				t.Fatalf("%s: an event after ChildShards", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the stream did not end after ChildShards", name)
		}
		if s.Err() != nil {
			t.Fatalf("%s: %v", name, s.Err())
		}
	}
}

// TestKinesisSubscriptionEnds checks how a subscription ends: at its
// deadline (shortened to 2s here), with a ResourceNotFoundException
// event when its consumer is deregistered, and the errors answered
// before any event.
func TestKinesisSubscriptionEnds(t *testing.T) {
	p := braidtest.Start(t, "--kinesis-subscription-ttl", "2s")
	keyStream(t, p, "end", 2)
	kc := subscriber(p)
	ctx := testCtx(t, 60*time.Second)
	c := kRegister(t, kc, "end", "c")
	const shard0 = "shardId-000000000000"

	// The deadline: the stream ends cleanly after about 2s, idle or not.
	began := time.Now()
	es := subscribe(t, ctx, kc, *c.ConsumerARN, shard0, &types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	for range es.Events() {
	}
	if took := time.Since(began); took < 2*time.Second || took > 4500*time.Millisecond || es.Err() != nil {
		t.Fatalf("subscription ended after %s: %v", took, es.Err())
	}

	// Deregistering the consumer ends its subscriptions with an error.
	es = subscribe(t, ctx, kc, *c.ConsumerARN, shard0, &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	<-es.Events() // subscribed
	if _, err := kc.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: c.ConsumerARN}); err != nil {
		t.Fatal(err)
	}
	for range es.Events() {
	}
	if awsErrorCode(es.Err()) != "ResourceNotFoundException" {
		t.Fatalf("after deregistration: %v, want ResourceNotFoundException", es.Err())
	}

	c = kRegister(t, kc, "end", "c2")
	seq := kPut(t, kc, "end", "k", []byte("v"))
	other := "shardId-000000000001"
	if *seq.ShardId == other {
		other = shard0
	}
	for _, bad := range []struct {
		arn, shard string
		pos        *types.StartingPosition
		want       string
	}{
		{kStreamARN + "end/consumer/nobody:1", shard0, &types.StartingPosition{Type: types.ShardIteratorTypeLatest}, "ResourceNotFoundException"},
		{*c.ConsumerARN, "shardId-000000000009", &types.StartingPosition{Type: types.ShardIteratorTypeLatest}, "ResourceNotFoundException"},
		{*c.ConsumerARN, shard0, &types.StartingPosition{Type: "SOMEWHERE"}, "ValidationException"},
		{*c.ConsumerARN, shard0, &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber}, "InvalidArgumentException"},
		{*c.ConsumerARN, other, &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: seq.SequenceNumber}, "InvalidArgumentException"},
	} {
		_, err := kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(bad.arn), ShardId: aws.String(bad.shard), StartingPosition: bad.pos})
		if awsErrorCode(err) != bad.want {
			t.Fatalf("subscribe %s %s %+v: %v, want %s", bad.arn, bad.shard, bad.pos, err, bad.want)
		}
	}
}

// TestKinesisSubscriberGone checks that the server ends a subscription
// as soon as its client goes away, not at its next heartbeat write (5s),
// and that deleting the stream ends its subscriptions with an error.
func TestKinesisSubscriberGone(t *testing.T) {
	p := braidtest.Start(t, "--log-level", "debug")
	keyStream(t, p, "gone", 1)
	kc := subscriber(p)
	ctx := testCtx(t, 60*time.Second)
	c := kRegister(t, kc, "gone", "c")
	const shard0 = "shardId-000000000000"

	es := subscribe(t, ctx, kc, *c.ConsumerARN, shard0, &types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	<-es.Events()
	es.Close()
	wctx := testCtx(t, 3*time.Second)
	waitFor(t, wctx, "the server to see the client gone", func() bool {
		return strings.Contains(p.Logs(), `msg="kinesis: subscription ended" consumer=c`)
	})

	es = resubscribe(t, ctx, kc, *c.ConsumerARN, shard0, &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	<-es.Events()
	adm := p.Admin()
	defer adm.Close()
	if _, err := adm.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	for range es.Events() {
	}
	if awsErrorCode(es.Err()) != "ResourceNotFoundException" {
		t.Fatalf("after the stream's deletion: %v, want ResourceNotFoundException", es.Err())
	}
}

// TestKinesisSubscriptionTakeover checks AWS's rule for a consumer and
// shard already subscribed: a second SubscribeToShard within 5 seconds
// gets ResourceInUseException and changes nothing; one after 5 seconds
// takes over, and the first ends with ResourceInUseException. Another
// shard, or another consumer, is independent.
func TestKinesisSubscriptionTakeover(t *testing.T) {
	p := braidtest.Start(t)
	keyStream(t, p, "take", 2)
	kc := subscriber(p)
	ctx := testCtx(t, 60*time.Second)
	c, other := kRegister(t, kc, "take", "c"), kRegister(t, kc, "take", "other")
	const shard0, shard1 = "shardId-000000000000", "shardId-000000000001"
	latest := &types.StartingPosition{Type: types.ShardIteratorTypeLatest}

	first := subscribe(t, ctx, kc, *c.ConsumerARN, shard0, latest)
	began := time.Now()
	<-first.Events()
	subscribe(t, ctx, kc, *c.ConsumerARN, shard1, latest)
	subscribe(t, ctx, kc, *other.ConsumerARN, shard0, latest)
	_, err := kc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: c.ConsumerARN, ShardId: aws.String(shard0), StartingPosition: latest})
	if awsErrorCode(err) != "ResourceInUseException" {
		t.Fatalf("second subscription within 5s: %v, want ResourceInUseException", err)
	}
	// The refused call left the first subscription alone.
	var onShard0 []string
	for i := 0; i < 50 && len(onShard0) == 0; i++ {
		if put := kPut(t, kc, "take", fmt.Sprint("k", i), []byte(fmt.Sprint("v", i))); *put.ShardId == shard0 {
			onShard0 = append(onShard0, fmt.Sprint("v", i))
		}
	}
	if recs, _ := nextEvents(t, first, 1); string(recs[0].Data) != onShard0[0] {
		t.Fatalf("first subscription got %q, want %q", recs[0].Data, onShard0[0])
	}

	time.Sleep(time.Until(began.Add(5100 * time.Millisecond)))
	second := subscribe(t, ctx, kc, *c.ConsumerARN, shard0, latest)
	<-second.Events()
	for range first.Events() {
	}
	if awsErrorCode(first.Err()) != "ResourceInUseException" {
		t.Fatalf("taken-over subscription ended with %v, want ResourceInUseException", first.Err())
	}
}
