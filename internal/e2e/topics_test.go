package e2e

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// metadataTopic asks for one topic with a raw Metadata request and returns
// its answer.
func metadataTopic(t testing.TB, p *braidtest.Proc, topic string) kmsg.MetadataResponseTopic {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp := dialRaw(t, p.KafkaAddr).request(req, 12).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != topic {
		t.Fatalf("metadata for %s: %d topics in answer", topic, len(resp.Topics))
	}
	return resp.Topics[0]
}

// TestTopicAdmin covers CreateTopics, CreatePartitions and DeleteTopics.
func TestTopicAdmin(t *testing.T) {
	p := braidtest.Start(t)
	adm := newAdmin(t, p)

	t.Run("create-with-configs", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		const topic = "ta-configs"
		resp, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{
			"retention.ms":   ptr("3600000"),
			"cleanup.policy": ptr("compact"),
		}, topic)
		if err != nil || resp.Err != nil {
			t.Fatalf("create: %v / %v (%s)", err, resp.Err, resp.ErrMessage)
		}
		if resp.NumPartitions != 3 || resp.ReplicationFactor != 1 || resp.ID == (kadm.TopicID{}) {
			t.Errorf("create answer: %d partitions, replication %d, id %v", resp.NumPartitions, resp.ReplicationFactor, resp.ID)
		}
		if c := resp.Configs["retention.ms"]; c.MaybeValue() != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("create answer retention.ms = %q source %v", c.MaybeValue(), c.Source)
		}
		md := metadataTopic(t, p, topic)
		if md.ErrorCode != 0 || len(md.Partitions) != 3 || md.TopicID != [16]byte(resp.ID) {
			t.Errorf("metadata: %v, %d partitions, id %x (create said %x)", kerr.ErrorForCode(md.ErrorCode), len(md.Partitions), md.TopicID, resp.ID)
		}
		cfgs := topicConfigs(t, ctx, adm, topic)
		for _, w := range []struct {
			name, value string
			source      kmsg.ConfigSource
		}{
			{"retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig},
			{"cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig},
			{"segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig},
			{"max.message.bytes", "1048588", kmsg.ConfigSourceDefaultConfig},
			{"message.timestamp.type", "CreateTime", kmsg.ConfigSourceDefaultConfig},
			{"retention.bytes", "-1", kmsg.ConfigSourceDefaultConfig},
		} {
			c, ok := cfgs[w.name]
			if !ok || c.MaybeValue() != w.value || c.Source != w.source {
				t.Errorf("%s: %q source %v (present %v); want %q source %v", w.name, c.MaybeValue(), c.Source, ok, w.value, w.source)
			}
		}
	})

	// Any replication factor is taken; the node is the only replica and
	// says so.
	for _, rf := range []int16{-1, 1, 3, 5} {
		t.Run(fmt.Sprintf("replication-factor-%d", rf), func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			topic := fmt.Sprintf("ta-rf%d", rf)
			resp, err := adm.CreateTopic(ctx, 2, rf, map[string]*string{"min.insync.replicas": ptr("2")}, topic)
			if err != nil || resp.Err != nil {
				t.Fatalf("create with replication factor %d: %v / %v (%s)", rf, err, resp.Err, resp.ErrMessage)
			}
			if resp.NumPartitions != 2 || resp.ReplicationFactor != 1 {
				t.Errorf("create answer: %d partitions, replication factor %d; want 2 and 1 (the real copies)", resp.NumPartitions, resp.ReplicationFactor)
			}
			md := metadataTopic(t, p, topic)
			if md.ErrorCode != 0 || len(md.Partitions) != 2 {
				t.Fatalf("metadata: %v, %d partitions", kerr.ErrorForCode(md.ErrorCode), len(md.Partitions))
			}
			for _, part := range md.Partitions {
				if part.Leader != 0 || !slices.Equal(part.Replicas, []int32{0}) || !slices.Equal(part.ISR, []int32{0}) || len(part.OfflineReplicas) != 0 {
					t.Errorf("partition %d: leader %d replicas %v isr %v offline %v; want this node as the only replica", part.Partition, part.Leader, part.Replicas, part.ISR, part.OfflineReplicas)
				}
			}
			// min.insync.replicas=2 does not hold acks=all back: the
			// node's fsync is the durability.
			r := &kgo.Record{Topic: topic, Value: []byte("rf")}
			produce(t, ctx, newProducer(t, p), r)
		})
	}

	refusals := []struct {
		name    string
		topic   string
		parts   int32
		rf      int16
		configs map[string]*string
		want    error
	}{
		{"duplicate", "ta-dup", 1, 1, nil, kerr.TopicAlreadyExists},
		{"name-with-slash", "bad/name", 1, 1, nil, kerr.InvalidTopicException},
		{"name-with-space", "bad name", 1, 1, nil, kerr.InvalidTopicException},
		{"name-dot", ".", 1, 1, nil, kerr.InvalidTopicException},
		{"name-dotdot", "..", 1, 1, nil, kerr.InvalidTopicException},
		{"name-too-long", strings.Repeat("x", 250), 1, 1, nil, kerr.InvalidTopicException},
		{"replication-factor-0", "ta-rf0", 1, 0, nil, kerr.InvalidReplicationFactor},
		{"replication-factor-minus-2", "ta-rf-2", 1, -2, nil, kerr.InvalidReplicationFactor},
		{"exists-before-bad-config", "ta-dup-bad-config", 1, 1, map[string]*string{"retention.ms": ptr("soon")}, kerr.TopicAlreadyExists},
		{"exists-before-bad-replication-factor", "ta-dup-bad-rf", 1, 0, nil, kerr.TopicAlreadyExists},
		{"zero-partitions", "ta-zero", 0, 1, nil, kerr.InvalidPartitions},
		{"unknown-config", "ta-unknown-config", 1, 1, map[string]*string{"no.such.config": ptr("1")}, kerr.InvalidConfig},
		{"bad-config-value", "ta-bad-value", 1, 1, map[string]*string{"retention.ms": ptr("soon")}, kerr.InvalidConfig},
	}
	for _, c := range refusals {
		t.Run("refuse/"+c.name, func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			if c.want == kerr.TopicAlreadyExists {
				createStream(t, ctx, adm, c.topic, 1, nil)
			}
			before := metadataTopic(t, p, c.topic)
			// kadm returns the topic's error as the call's error too.
			resp, err := adm.CreateTopic(ctx, c.parts, c.rf, c.configs, c.topic)
			if err == nil {
				err = resp.Err
			}
			if !errors.Is(err, c.want) || !errors.Is(resp.Err, c.want) {
				t.Fatalf("create %q: %v (%s), want %v", c.topic, err, resp.ErrMessage, c.want)
			}
			if c.want == kerr.TopicAlreadyExists {
				if after := metadataTopic(t, p, c.topic); after.TopicID != before.TopicID || len(after.Partitions) != 1 {
					t.Errorf("a refused create changed the existing topic: %+v", after)
				}
				return
			}
			// Nothing was created.
			if md := metadataTopic(t, p, c.topic); md.ErrorCode != kerr.UnknownTopicOrPartition.Code && md.ErrorCode != kerr.InvalidTopicException.Code {
				t.Errorf("after a refused create, metadata for %q says %v with %d partitions", c.topic, kerr.ErrorForCode(md.ErrorCode), len(md.Partitions))
			}
		})
	}

	t.Run("create-partitions", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		const topic = "ta-grow"
		createStream(t, ctx, adm, topic, 2, nil)
		prod := newProducer(t, p)
		produce(t, ctx, prod, &kgo.Record{Topic: topic, Partition: 1, Value: []byte("before")})

		rs, err := adm.UpdatePartitions(ctx, 4, topic)
		if err != nil || rs[topic].Err != nil {
			t.Fatalf("grow to 4: %v / %v (%s)", err, rs[topic].Err, rs[topic].ErrMessage)
		}
		md := metadataTopic(t, p, topic)
		if len(md.Partitions) != 4 {
			t.Fatalf("after growing, metadata lists %d partitions", len(md.Partitions))
		}
		for i, part := range md.Partitions {
			if part.Partition != int32(i) || part.ErrorCode != 0 {
				t.Errorf("partition %d: %+v", i, part)
			}
		}
		// A fresh client sees the new partitions and can use them.
		prod2 := newProducer(t, p)
		r := &kgo.Record{Topic: topic, Partition: 3, Key: []byte("k"), Value: []byte("in a new partition")}
		produce(t, ctx, prod2, r)
		if r.Offset != 0 {
			t.Errorf("first record of the new partition got offset %d", r.Offset)
		}
		got := consume(t, ctx, p, topic, 3, kgo.NewOffset().AtStart(), 1)
		checkRecord(t, 0, got[0], r, true)
		if got := consume(t, ctx, p, topic, 1, kgo.NewOffset().AtStart(), 1); string(got[0].Value) != "before" {
			t.Errorf("old partition 1 now holds %s", describe(got[0]))
		}

		for _, c := range []struct {
			name  string
			count int
		}{{"shrink", 1}, {"same", 4}} {
			rs, err := adm.UpdatePartitions(ctx, c.count, topic)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if !errors.Is(rs[topic].Err, kerr.InvalidPartitions) {
				t.Errorf("%s to %d partitions: %v (%s), want INVALID_PARTITIONS", c.name, c.count, rs[topic].Err, rs[topic].ErrMessage)
			}
		}
		if md := metadataTopic(t, p, topic); len(md.Partitions) != 4 {
			t.Errorf("after refused changes, %d partitions", len(md.Partitions))
		}
		rs, err = adm.CreatePartitions(ctx, 1, "ta-no-such-topic")
		if err != nil || !errors.Is(rs["ta-no-such-topic"].Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("grow a missing topic: %v / %v, want UNKNOWN_TOPIC_OR_PARTITION", err, rs["ta-no-such-topic"].Err)
		}
	})

	t.Run("delete-and-recreate", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		const topic = "ta-delete"
		createStream(t, ctx, adm, topic, 2, nil)
		prod := newProducer(t, p)
		var old []*kgo.Record
		for i := range 20 {
			old = append(old, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: []byte("old data")})
		}
		produce(t, ctx, prod, old...)
		oldID := metadataTopic(t, p, topic).TopicID

		rs, err := adm.DeleteTopics(ctx, topic)
		if err != nil || rs[topic].Err != nil {
			t.Fatalf("delete: %v / %v", err, rs[topic].Err)
		}
		if md := metadataTopic(t, p, topic); md.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("after delete, metadata says %v with %d partitions", kerr.ErrorForCode(md.ErrorCode), len(md.Partitions))
		}
		rs, err = adm.DeleteTopics(ctx, topic)
		if err == nil && !errors.Is(rs[topic].Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("second delete: %v, want UNKNOWN_TOPIC_OR_PARTITION", rs[topic].Err)
		}

		createStream(t, ctx, adm, topic, 2, nil)
		if id := metadataTopic(t, p, topic).TopicID; id == oldID {
			t.Errorf("the re-created stream kept the old topic id %x", id)
		}
		for part := range int32(2) {
			if s, e := startEnd(t, ctx, adm, topic, part); s != 0 || e != 0 {
				t.Errorf("re-created partition %d: start %d end %d, want 0 and 0", part, s, e)
			}
		}
		r := &kgo.Record{Topic: topic, Partition: 0, Value: []byte("new data")}
		produce(t, ctx, newProducer(t, p), r)
		if r.Offset != 0 {
			t.Errorf("first record of the re-created stream got offset %d", r.Offset)
		}
		got := consume(t, ctx, p, topic, 0, kgo.NewOffset().AtStart(), 1)
		checkRecord(t, 0, got[0], r, true)
		// Nothing old comes back on the other partition either.
		cl := newClient(t, p, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {1: kgo.NewOffset().AtStart()}}))
		pollNothing(t, cl, 500*time.Millisecond)
	})
}
