package e2e

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
)

// Kafka clients expect __consumer_offsets to exist as an internal topic:
// kgo's regex consumers skip internal topics by what Metadata says
// (franz-go's TestConsumeRegex), and a KIP-848 broker-side regex can match
// it (Test848RegexBrokerResolves). Braid lists it, serves it empty and
// refuses writes, deletion and growth.
func TestConsumerOffsetsIsInternal(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)

	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	td, ok := md.Topics["__consumer_offsets"]
	if !ok || !td.IsInternal || len(td.Partitions) != 1 {
		t.Fatalf("metadata for __consumer_offsets: %+v (listed %v), want internal with 1 partition", td, ok)
	}

	cl := newProducer(t, p, kgo.RecordRetries(0))
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "__consumer_offsets", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("produce to __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", err)
	}
	dr, err := adm.DeleteTopics(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if r := dr["__consumer_offsets"]; !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Errorf("delete __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", r.Err)
	}
	cr, err := adm.CreateTopic(ctx, 1, 1, nil, "__consumer_offsets")
	if err == nil {
		err = cr.Err
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("create __consumer_offsets: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	pr, err := adm.CreatePartitions(ctx, 2, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if r := pr["__consumer_offsets"]; !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Errorf("grow __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", r.Err)
	}
	if hw := p.EndOffset(ctx, "__consumer_offsets", 0, false); hw != 0 {
		t.Errorf("__consumer_offsets high watermark %d, want 0", hw)
	}

	// A regex consumer matching everything consumes user streams only.
	createStream(t, ctx, adm, "visible", 1, nil)
	produce(t, ctx, newProducer(t, p), &kgo.Record{Topic: "visible", Value: []byte("v")})
	re := newClient(t, p, kgo.ConsumeRegex(), kgo.ConsumeTopics(".*"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := pollN(t, ctx, re, 1)
	if got[0].Topic != "visible" {
		t.Fatalf("regex consumer read %s", describe(got[0]))
	}
	if topics := re.GetConsumeTopics(); len(topics) != 1 || topics[0] != "visible" {
		t.Fatalf("regex consumer consumes %q, want [visible]", topics)
	}

	// It survives a restart as it was.
	p.Kill()
	p.Restart()
	md, err = newAdmin(t, p).Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again := md.Topics["__consumer_offsets"]; !again.IsInternal || again.ID != td.ID {
		t.Fatalf("after restart: %+v, want internal with topic id %x", again, td.ID)
	}
}
