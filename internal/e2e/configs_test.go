package e2e

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// wantConfig is a config's expected value and source.
type wantConfig struct {
	value  string
	source kmsg.ConfigSource
}

func dynamic(v string) wantConfig { return wantConfig{v, kmsg.ConfigSourceDynamicTopicConfig} }
func dflt(v string) wantConfig    { return wantConfig{v, kmsg.ConfigSourceDefaultConfig} }

// checkConfigs describes topic's configs and compares those named in want.
func checkConfigs(t testing.TB, adm *kadm.Client, topic string, want map[string]wantConfig) {
	t.Helper()
	got := topicConfigs(t, testCtx(t, 10*time.Second), adm, topic)
	for name, w := range want {
		c, ok := got[name]
		if !ok || c.MaybeValue() != w.value || c.Source != w.source {
			t.Errorf("%s %s: %q source %v (present %v); want %q source %v", topic, name, c.MaybeValue(), c.Source, ok, w.value, w.source)
		}
	}
}

// alterErr returns the error of a one-topic alter, from the call or the topic.
func alterErr(rs kadm.AlterConfigsResponses, err error) error {
	if err != nil {
		return err
	}
	if len(rs) != 1 {
		return errors.New("not exactly one resource in the answer")
	}
	return rs[0].Err
}

// TestConfigs covers IncrementalAlterConfigs, AlterConfigs and the configs
// that change what produce does.
func TestConfigs(t *testing.T) {
	p := braidtest.Start(t)
	adm := newAdmin(t, p)

	t.Run("incremental", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		const topic = "cfg-incremental"
		createStream(t, ctx, adm, topic, 1, map[string]*string{"segment.ms": ptr("3600000")})

		steps := []struct {
			name string
			ops  []kadm.AlterConfig
			err  error
			want map[string]wantConfig
		}{
			{"set", []kadm.AlterConfig{
				{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("1000")},
				{Op: kadm.SetConfig, Name: "retention.bytes", Value: ptr("4096")},
			}, nil, map[string]wantConfig{
				"retention.ms": dynamic("1000"), "retention.bytes": dynamic("4096"), "segment.ms": dynamic("3600000"),
			}},
			{"set-again", []kadm.AlterConfig{
				{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("2000")},
			}, nil, map[string]wantConfig{
				"retention.ms": dynamic("2000"), "retention.bytes": dynamic("4096"), "segment.ms": dynamic("3600000"),
			}},
			{"delete", []kadm.AlterConfig{
				{Op: kadm.DeleteConfig, Name: "retention.ms"},
			}, nil, map[string]wantConfig{
				"retention.ms": dflt("604800000"), "retention.bytes": dynamic("4096"), "segment.ms": dynamic("3600000"),
			}},
			{"append-cleanup-policy", []kadm.AlterConfig{
				{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: ptr("compact")},
			}, nil, map[string]wantConfig{
				"cleanup.policy": dynamic("delete,compact"),
			}},
			{"append-present-value", []kadm.AlterConfig{
				{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: ptr("delete")},
			}, nil, map[string]wantConfig{
				"cleanup.policy": dynamic("delete,compact"),
			}},
			{"subtract-cleanup-policy", []kadm.AlterConfig{
				{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: ptr("delete")},
			}, nil, map[string]wantConfig{
				"cleanup.policy": dynamic("compact"),
			}},
			{"bad-value-refused-whole", []kadm.AlterConfig{
				{Op: kadm.SetConfig, Name: "segment.ms", Value: ptr("60000")},
				{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("tomorrow")},
			}, kerr.InvalidConfig, map[string]wantConfig{
				"segment.ms": dynamic("3600000"), "retention.ms": dflt("604800000"),
			}},
			{"unknown-name-refused", []kadm.AlterConfig{
				{Op: kadm.SetConfig, Name: "no.such.config", Value: ptr("1")},
			}, kerr.InvalidConfig, map[string]wantConfig{
				"segment.ms": dynamic("3600000"),
			}},
			{"append-to-non-list-refused", []kadm.AlterConfig{
				{Op: kadm.AppendConfig, Name: "retention.ms", Value: ptr("5")},
			}, kerr.InvalidConfig, map[string]wantConfig{
				"retention.ms": dflt("604800000"),
			}},
			{"bad-cleanup-policy-refused", []kadm.AlterConfig{
				{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: ptr("shred")},
			}, kerr.InvalidConfig, map[string]wantConfig{
				"cleanup.policy": dynamic("compact"),
			}},
		}
		for _, s := range steps {
			t.Run(s.name, func(t *testing.T) {
				ctx := testCtx(t, 10*time.Second)
				if err := alterErr(adm.AlterTopicConfigs(ctx, s.ops, topic)); !errors.Is(err, s.err) {
					t.Fatalf("alter: %v, want %v", err, s.err)
				}
				checkConfigs(t, adm, topic, s.want)
			})
		}

		t.Run("validate-only", func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			ops := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.ms", Value: ptr("1")}}
			if err := alterErr(adm.ValidateAlterTopicConfigs(ctx, ops, topic)); err != nil {
				t.Fatalf("validate: %v", err)
			}
			checkConfigs(t, adm, topic, map[string]wantConfig{"segment.ms": dynamic("3600000")})
		})

		t.Run("unknown-topic", func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			ops := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("1")}}
			if err := alterErr(adm.AlterTopicConfigs(ctx, ops, "cfg-no-such-topic")); !errors.Is(err, kerr.UnknownTopicOrPartition) {
				t.Errorf("alter a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
			}
		})
	})

	t.Run("legacy-alter-replaces-all", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		const topic = "cfg-legacy"
		createStream(t, ctx, adm, topic, 1, map[string]*string{
			"segment.ms":     ptr("3600000"),
			"retention.ms":   ptr("5000"),
			"cleanup.policy": ptr("compact"),
		})
		err := alterErr(adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{
			{Name: "retention.bytes", Value: ptr("2048")},
			{Name: "retention.ms", Value: ptr("7000")},
		}, topic))
		if err != nil {
			t.Fatalf("AlterConfigs: %v", err)
		}
		// What was not named is back to its default.
		checkConfigs(t, adm, topic, map[string]wantConfig{
			"retention.bytes": dynamic("2048"),
			"retention.ms":    dynamic("7000"),
			"segment.ms":      dflt("604800000"),
			"cleanup.policy":  dflt("delete"),
		})

		// A bad value refuses the whole request: nothing changes.
		err = alterErr(adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{
			{Name: "retention.bytes", Value: ptr("4096")},
			{Name: "segment.ms", Value: ptr("never")},
		}, topic))
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Fatalf("AlterConfigs with a bad value: %v, want INVALID_CONFIG", err)
		}
		checkConfigs(t, adm, topic, map[string]wantConfig{
			"retention.bytes": dynamic("2048"),
			"retention.ms":    dynamic("7000"),
			"segment.ms":      dflt("604800000"),
		})

		// An empty set clears every explicit config.
		if err := alterErr(adm.AlterTopicConfigsState(ctx, nil, topic)); err != nil {
			t.Fatalf("AlterConfigs with no configs: %v", err)
		}
		checkConfigs(t, adm, topic, map[string]wantConfig{
			"retention.bytes": dflt("-1"),
			"retention.ms":    dflt("604800000"),
		})

		// Broker configs come from flags: refused.
		req := kmsg.NewPtrAlterConfigsRequest()
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
		rc := kmsg.NewAlterConfigsRequestResourceConfig()
		rc.Name, rc.Value = "num.partitions", ptr("3")
		rr.Configs = append(rr.Configs, rc)
		req.Resources = append(req.Resources, rr)
		resp := dialRaw(t, p.KafkaAddr).request(req, 2).(*kmsg.AlterConfigsResponse)
		if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode == 0 {
			t.Errorf("AlterConfigs on the broker was accepted: %+v", resp.Resources)
		}
	})

	t.Run("max-message-bytes", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		const topic = "cfg-max-message"
		createStream(t, ctx, adm, topic, 1, nil)
		prod := newProducer(t, p) // no compression: the batch is as big as the record
		big := &kgo.Record{Topic: topic, Value: randomBytes(1, 8<<10)}
		produce(t, ctx, prod, big) // fits the default limit
		if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "max.message.bytes", Value: ptr("4096")},
		}, topic)); err != nil {
			t.Fatalf("lower max.message.bytes: %v", err)
		}
		tooBig := &kgo.Record{Topic: topic, Value: randomBytes(2, 8<<10)}
		res := prod.ProduceSync(ctx, tooBig)
		if err := res.FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("8 KiB record over a 4096-byte limit: %v, want MESSAGE_TOO_LARGE", err)
		}
		small := &kgo.Record{Topic: topic, Key: []byte("small"), Value: randomBytes(3, 1000)}
		produce(t, ctx, prod, small)
		if small.Offset != 1 {
			t.Errorf("record after the refused one got offset %d, want 1", small.Offset)
		}
		got := consume(t, ctx, p, topic, 0, kgo.NewOffset().AtStart(), 2)
		big.Offset = 0
		checkRecords(t, got, []*kgo.Record{big, small}, true)
	})

	t.Run("log-append-time", func(t *testing.T) {
		ctx := testCtx(t, 20*time.Second)
		const topic = "cfg-log-append-time"
		createStream(t, ctx, adm, topic, 1, nil)
		prod := newProducer(t, p)
		old := time.UnixMilli(978_307_200_000) // 2001-01-01
		before := &kgo.Record{Topic: topic, Value: []byte("create time"), Timestamp: old}
		produce(t, ctx, prod, before)
		if err := alterErr(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: ptr("LogAppendTime")},
		}, topic)); err != nil {
			t.Fatalf("set LogAppendTime: %v", err)
		}
		checkConfigs(t, adm, topic, map[string]wantConfig{"message.timestamp.type": dynamic("LogAppendTime")})
		from := time.Now()
		after := []*kgo.Record{
			{Topic: topic, Value: []byte("append time 1"), Timestamp: old},
			{Topic: topic, Value: []byte("append time 2"), Timestamp: old.Add(time.Hour)},
		}
		produce(t, ctx, prod, after...)
		to := time.Now()

		got := consume(t, ctx, p, topic, 0, kgo.NewOffset().AtStart(), 3)
		if got[0].Timestamp.UnixMilli() != old.UnixMilli() || got[0].Attrs.TimestampType() != 0 {
			t.Errorf("record written before the change: timestamp %v type %d, want %v type 0", got[0].Timestamp, got[0].Attrs.TimestampType(), old)
		}
		for i, r := range got[1:] {
			if r.Attrs.TimestampType() != 1 {
				t.Errorf("record %d: timestamp type %d, want 1 (LogAppendTime)", i+1, r.Attrs.TimestampType())
			}
			if ts := r.Timestamp; ts.Before(from.Add(-2*time.Second)) || ts.After(to.Add(2*time.Second)) {
				t.Errorf("record %d: timestamp %v, want the broker's time, within [%v, %v]", i+1, ts, from, to)
			}
			if string(r.Value) != string(after[i].Value) || r.Offset != int64(i+1) {
				t.Errorf("record %d: %s", i+1, describe(r))
			}
		}
		// ListOffsets by time goes by the broker's time too.
		lo, err := adm.ListOffsetsAfterMilli(ctx, old.Add(2*time.Hour).UnixMilli(), topic)
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := lo.Lookup(topic, 0); r.Offset != 1 {
			t.Errorf("first offset after 2001-01-01T02:00 is %d, want 1 (the first LogAppendTime record)", r.Offset)
		}
	})
}
