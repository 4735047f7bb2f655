package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// kafkaTopicConfigs is Kafka's table of topic configs (3.x and 4.x, legacy
// ones included): type and default. Written out here, not taken from
// Braid's own table, so that a config Braid drops or mistypes fails.
var kafkaTopicConfigs = map[string]struct {
	typ kmsg.ConfigType
	def string
	// set is a valid value other than the default.
	set string
}{
	"cleanup.policy":                          {kmsg.ConfigTypeList, "delete", "compact,delete"},
	"compression.gzip.level":                  {kmsg.ConfigTypeInt, "-1", "9"},
	"compression.lz4.level":                   {kmsg.ConfigTypeInt, "9", "17"},
	"compression.type":                        {kmsg.ConfigTypeString, "producer", "zstd"},
	"compression.zstd.level":                  {kmsg.ConfigTypeInt, "3", "-7"},
	"delete.retention.ms":                     {kmsg.ConfigTypeLong, "86400000", "1000"},
	"file.delete.delay.ms":                    {kmsg.ConfigTypeLong, "60000", "0"},
	"flush.messages":                          {kmsg.ConfigTypeLong, "9223372036854775807", "1"},
	"flush.ms":                                {kmsg.ConfigTypeLong, "9223372036854775807", "1000"},
	"follower.replication.throttled.replicas": {kmsg.ConfigTypeList, "", "*"},
	"index.interval.bytes":                    {kmsg.ConfigTypeInt, "4096", "8192"},
	"leader.replication.throttled.replicas":   {kmsg.ConfigTypeList, "", "0:0,1:0"},
	"local.retention.bytes":                   {kmsg.ConfigTypeLong, "-2", "1048576"},
	"local.retention.ms":                      {kmsg.ConfigTypeLong, "-2", "60000"},
	"max.compaction.lag.ms":                   {kmsg.ConfigTypeLong, "9223372036854775807", "3600000"},
	"max.message.bytes":                       {kmsg.ConfigTypeInt, "1048588", "2097152"},
	"message.downconversion.enable":           {kmsg.ConfigTypeBoolean, "true", "false"},
	"message.format.version":                  {kmsg.ConfigTypeString, "3.0-IV1", "2.8"},
	"message.timestamp.after.max.ms":          {kmsg.ConfigTypeLong, "9223372036854775807", "3600000"},
	"message.timestamp.before.max.ms":         {kmsg.ConfigTypeLong, "9223372036854775807", "3600000"},
	"message.timestamp.difference.max.ms":     {kmsg.ConfigTypeLong, "9223372036854775807", "3600000"},
	"message.timestamp.type":                  {kmsg.ConfigTypeString, "CreateTime", "LogAppendTime"},
	"min.cleanable.dirty.ratio":               {kmsg.ConfigTypeDouble, "0.5", "0.1"},
	"min.compaction.lag.ms":                   {kmsg.ConfigTypeLong, "0", "1000"},
	"min.insync.replicas":                     {kmsg.ConfigTypeInt, "1", "2"},
	"preallocate":                             {kmsg.ConfigTypeBoolean, "false", "true"},
	"remote.log.copy.disable":                 {kmsg.ConfigTypeBoolean, "false", "true"},
	"remote.log.delete.on.disable":            {kmsg.ConfigTypeBoolean, "false", "true"},
	"remote.storage.enable":                   {kmsg.ConfigTypeBoolean, "false", "false"},
	"retention.bytes":                         {kmsg.ConfigTypeLong, "-1", "1073741824"},
	"retention.ms":                            {kmsg.ConfigTypeLong, "604800000", "86400000"},
	"segment.bytes":                           {kmsg.ConfigTypeInt, "1073741824", "1048576"},
	"segment.index.bytes":                     {kmsg.ConfigTypeInt, "10485760", "4096"},
	"segment.jitter.ms":                       {kmsg.ConfigTypeLong, "0", "1000"},
	"segment.ms":                              {kmsg.ConfigTypeLong, "604800000", "3600000"},
	"unclean.leader.election.enable":          {kmsg.ConfigTypeBoolean, "false", "true"},
}

// describeRaw describes one resource with synonyms and documentation,
// as a raw DescribeConfigs v4.
func describeRaw(t testing.TB, p *braidtest.Proc, typ kmsg.ConfigResourceType, name string) kmsg.DescribeConfigsResponseResource {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = typ, name
	req.Resources = append(req.Resources, rr)
	resp := dialRaw(t, p.KafkaAddr).request(req, 4).(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != 1 {
		t.Fatalf("describe %v %q: %d resources in the answer", typ, name, len(resp.Resources))
	}
	return resp.Resources[0]
}

func strOrNull(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

func synonyms(ss []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym) string {
	var out []string
	for _, s := range ss {
		out = append(out, fmt.Sprintf("%s=%s (%v)", s.Name, strOrNull(s.Value), s.Source))
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func byName(cfgs []kmsg.DescribeConfigsResponseResourceConfig) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range cfgs {
		out[c.Name] = c
	}
	return out
}

// TestKafkaTopicConfigs checks that every topic config Kafka accepts is
// accepted, typed, validated and listed with its default and source, and
// that errors come in Kafka's order.
func TestKafkaTopicConfigs(t *testing.T) {
	p := braidtest.Start(t)
	adm := newAdmin(t, p)

	t.Run("all-listed-with-defaults", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		createStream(t, ctx, adm, "kc-defaults", 1, nil)
		r := describeRaw(t, p, kmsg.ConfigResourceTypeTopic, "kc-defaults")
		got := byName(r.Configs)
		for name, w := range kafkaTopicConfigs {
			c, ok := got[name]
			switch {
			case !ok:
				t.Errorf("%s is not listed", name)
			case c.Value == nil || *c.Value != w.def || c.Source != kmsg.ConfigSourceDefaultConfig:
				t.Errorf("%s = %q source %v, want default %q", name, strOrNull(c.Value), c.Source, w.def)
			case c.ConfigType != w.typ:
				t.Errorf("%s has type %v, want %v", name, c.ConfigType, w.typ)
			case c.ReadOnly || c.Documentation == nil || *c.Documentation == "":
				t.Errorf("%s: read-only %v, documentation %v", name, c.ReadOnly, c.Documentation)
			}
		}
		for name := range got {
			if _, ok := kafkaTopicConfigs[name]; !ok && !strings.HasPrefix(name, "braid.") {
				t.Errorf("%s is listed but is no Kafka topic config", name)
			}
		}
		// Kafka names the broker config that gives the default.
		if c := got["retention.ms"]; len(c.ConfigSynonyms) == 0 || c.ConfigSynonyms[0].Name != "log.retention.hours" || c.ConfigSynonyms[0].Source != kmsg.ConfigSourceDefaultConfig {
			t.Errorf("retention.ms synonyms %+v, want log.retention.hours (DEFAULT_CONFIG) first", c.ConfigSynonyms)
		}
	})

	t.Run("v0-is-default", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		createStream(t, ctx, adm, "kc-v0", 1, map[string]*string{"retention.ms": ptr("1000")})
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "kc-v0"
		req.Resources = append(req.Resources, rr)
		resp := dialRaw(t, p.KafkaAddr).request(req, 0).(*kmsg.DescribeConfigsResponse)
		got := byName(resp.Resources[0].Configs)
		if c := got["retention.ms"]; strOrNull(c.Value) != "1000" || c.IsDefault {
			t.Errorf("v0 retention.ms = %q default %v, want 1000 set on the topic", strOrNull(c.Value), c.IsDefault)
		}
		if c := got["segment.ms"]; strOrNull(c.Value) != "604800000" || !c.IsDefault {
			t.Errorf("v0 segment.ms = %q default %v, want the default", strOrNull(c.Value), c.IsDefault)
		}
	})

	t.Run("all-settable", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		const topic = "kc-all-set"
		set := map[string]*string{}
		for name, w := range kafkaTopicConfigs {
			set[name] = ptr(w.set)
		}
		resp, err := adm.CreateTopic(ctx, 1, 3, set, topic)
		if err != nil || resp.Err != nil {
			t.Fatalf("create with every Kafka topic config: %v / %v (%s)", err, resp.Err, resp.ErrMessage)
		}
		got := topicConfigs(t, ctx, adm, topic)
		for name, w := range kafkaTopicConfigs {
			if c := got[name]; c.MaybeValue() != w.set || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				t.Errorf("%s = %q source %v, want %q from the topic", name, c.MaybeValue(), c.Source, w.set)
			}
		}
	})

	t.Run("validated-by-type", func(t *testing.T) {
		const topic = "kc-validated"
		ctx := testCtx(t, 20*time.Second)
		createStream(t, ctx, adm, topic, 1, map[string]*string{"retention.ms": ptr("1000")})
		for _, bad := range []struct{ name, value string }{
			{"segment.bytes", "2147483648"},                  // INT overflows
			{"min.insync.replicas", "0"},                     // at least 1
			{"cleanup.policy", "delete,shred"},               // LIST of delete, compact
			{"compression.type", "brotli"},                   // one of six
			{"message.timestamp.type", "NoTime"},             // CreateTime or LogAppendTime
			{"preallocate", "yes"},                           // BOOLEAN
			{"min.cleanable.dirty.ratio", "1.5"},             // DOUBLE in [0, 1]
			{"compression.gzip.level", "10"},                 // -1 or 1..9
			{"leader.replication.throttled.replicas", "0-1"}, // partition:broker
			{"message.format.version", "latest"},             // a Kafka version
			{"remote.storage.enable", "true"},                // no tiered storage
			{"retention.ms", "-2"},                           // at least -1
			{"retention.bytes", "1.5"},                       // LONG
			{"not.a.kafka.config", "1"},                      // unknown name
		} {
			ctx := testCtx(t, 10*time.Second)
			resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{bad.name: ptr(bad.value)}, "kc-bad-create")
			if err == nil {
				err = resp.Err
			}
			if !errors.Is(err, kerr.InvalidConfig) {
				t.Errorf("create with %s=%s: %v, want INVALID_CONFIG", bad.name, bad.value, err)
			}
			ops := []kadm.AlterConfig{
				{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("2000")},
				{Op: kadm.SetConfig, Name: bad.name, Value: ptr(bad.value)},
			}
			if err := alterErr(adm.AlterTopicConfigs(ctx, ops, topic)); !errors.Is(err, kerr.InvalidConfig) {
				t.Errorf("alter with %s=%s: %v, want INVALID_CONFIG", bad.name, bad.value, err)
			}
		}
		if md := metadataTopic(t, p, "kc-bad-create"); md.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Errorf("a refused create left a topic: %v", kerr.ErrorForCode(md.ErrorCode))
		}
		checkConfigs(t, adm, topic, map[string]wantConfig{"retention.ms": dynamic("1000")})
	})

	t.Run("unknown-topic-first", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		const missing = "kc-no-such-topic"
		bad := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: ptr("never")}}
		if err := alterErr(adm.AlterTopicConfigs(ctx, bad, missing)); !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("incremental alter of a missing topic with a bad value: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
		if err := alterErr(adm.AlterTopicConfigsState(ctx, bad, missing)); !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("alter of a missing topic with a bad value: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
		unknown := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "not.a.kafka.config", Value: ptr("1")}}
		if err := alterErr(adm.AlterTopicConfigsState(ctx, unknown, missing)); !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("alter of a missing topic with an unknown config: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
		rcs, err := adm.DescribeTopicConfigs(ctx, missing)
		if rc, _ := rcs.On(missing, nil); err == nil && !errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("describe a missing topic: %v", rc.Err)
		}
	})
}

// TestKafkaBrokerConfigs covers AlterConfigs and IncrementalAlterConfigs
// on the broker: stream defaults Braid applies take effect on every stream
// and survive a restart; other dynamic configs are kept and listed;
// read-only and unknown names and bad values change nothing.
func TestKafkaBrokerConfigs(t *testing.T) {
	// Flags are the static layer, under the dynamic ones.
	p := braidtest.Start(t, "--stream-default", "retention.ms=86400000", "--stream-default", "segment.ms=3600000")
	adm := newAdmin(t, p)
	ctx := testCtx(t, 60*time.Second)
	const topic = "kb-defaults"
	createStream(t, ctx, adm, topic, 1, nil)
	prod := newProducer(t, p)
	big := func() error {
		return prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: randomBytes(7, 8<<10)}).FirstErr()
	}
	keyless := func() error {
		return prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("no key")}).FirstErr()
	}
	if err := big(); err != nil {
		t.Fatalf("8 KiB record under the default limit: %v", err)
	}

	// Cluster-wide defaults (resource "") through IncrementalAlterConfigs.
	rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "message.max.bytes", Value: ptr("4096")},
		{Op: kadm.SetConfig, Name: "log.retention.hours", Value: ptr("2")},
		{Op: kadm.SetConfig, Name: "num.io.threads", Value: ptr("16")},
	})
	if err := alterErr(rs, err); err != nil {
		t.Fatalf("alter cluster-wide broker configs: %v", err)
	}
	// This node's own value beats the cluster-wide one.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "log.cleaner.min.cleanable.ratio", Value: ptr("0.2")},
		{Op: kadm.AppendConfig, Name: "log.cleanup.policy", Value: ptr("compact")},
	}, 0)
	if err := alterErr(rs, err); err != nil {
		t.Fatalf("alter this node's broker configs: %v", err)
	}

	check := func(t *testing.T, when string) {
		t.Helper()
		if err := big(); !errors.Is(err, kerr.MessageTooLarge) {
			t.Errorf("%s: 8 KiB record over message.max.bytes=4096: %v, want MESSAGE_TOO_LARGE", when, err)
		}
		got := byName(describeRaw(t, p, kmsg.ConfigResourceTypeTopic, topic).Configs)
		for name, w := range map[string]struct {
			value, synonym string
			src            kmsg.ConfigSource
		}{
			"max.message.bytes":         {"4096", "message.max.bytes", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
			"retention.ms":              {"7200000", "log.retention.hours", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
			"min.cleanable.dirty.ratio": {"0.2", "log.cleaner.min.cleanable.ratio", kmsg.ConfigSourceDynamicBrokerConfig},
			"cleanup.policy":            {"delete,compact", "log.cleanup.policy", kmsg.ConfigSourceDynamicBrokerConfig},
			"segment.bytes":             {"1073741824", "log.segment.bytes", kmsg.ConfigSourceDefaultConfig},
			"segment.ms":                {"3600000", "log.roll.ms", kmsg.ConfigSourceStaticBrokerConfig},
		} {
			c := got[name]
			if c.Value == nil || *c.Value != w.value || c.Source != w.src || len(c.ConfigSynonyms) == 0 || c.ConfigSynonyms[0].Name != w.synonym {
				t.Errorf("%s: topic %s = %q source %v synonyms %s; want %q from %s (%v)", when, name, strOrNull(c.Value), c.Source, synonyms(c.ConfigSynonyms), w.value, w.synonym, w.src)
			}
		}
		// The flag's value is listed under the dynamic one that wins.
		if got := synonyms(got["retention.ms"].ConfigSynonyms); !strings.Contains(got, "log.retention.hours=2 (DYNAMIC_DEFAULT_BROKER_CONFIG), log.retention.ms=86400000 (STATIC_BROKER_CONFIG), log.retention.hours=168 (DEFAULT_CONFIG)") {
			t.Errorf("%s: retention.ms synonyms %s", when, got)
		}
		node := byName(describeRaw(t, p, kmsg.ConfigResourceTypeBroker, "0").Configs)
		for name, w := range map[string]struct {
			value string
			src   kmsg.ConfigSource
		}{
			"message.max.bytes":               {"4096", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
			"num.io.threads":                  {"16", kmsg.ConfigSourceDynamicDefaultBrokerConfig},
			"log.cleaner.min.cleanable.ratio": {"0.2", kmsg.ConfigSourceDynamicBrokerConfig},
			"log.segment.bytes":               {"1073741824", kmsg.ConfigSourceDefaultConfig},
			"num.partitions":                  {"1", kmsg.ConfigSourceStaticBrokerConfig},
			"log.roll.ms":                     {"3600000", kmsg.ConfigSourceStaticBrokerConfig},
		} {
			c := node[name]
			if c.Value == nil || *c.Value != w.value || c.Source != w.src {
				t.Errorf("%s: broker %s = %q source %v; want %q (%v)", when, name, strOrNull(c.Value), c.Source, w.value, w.src)
			}
		}
		if c := node["num.partitions"]; !c.ReadOnly {
			t.Errorf("%s: num.partitions is not read-only", when)
		}
		if c := node["num.io.threads"]; c.ReadOnly || c.Documentation == nil || !strings.Contains(*c.Documentation, "does not act on it") {
			t.Errorf("%s: num.io.threads read-only %v, documentation %v; want it reported as accepted, not applied", when, c.ReadOnly, c.Documentation)
		}
		// The cluster-wide resource lists only what is set there.
		cluster, err := adm.DescribeBrokerConfigs(ctx)
		if err != nil || len(cluster) != 1 {
			t.Fatalf("%s: describe cluster-wide: %v (%d)", when, err, len(cluster))
		}
		names := map[string]string{}
		for _, c := range cluster[0].Configs {
			names[c.Key] = c.MaybeValue()
			if c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
				t.Errorf("%s: cluster-wide %s source %v", when, c.Key, c.Source)
			}
		}
		if len(names) != 3 || names["message.max.bytes"] != "4096" || names["log.retention.hours"] != "2" || names["num.io.threads"] != "16" {
			t.Errorf("%s: cluster-wide configs %v", when, names)
		}
	}
	check(t, "after the change")

	// Refusals change nothing, and say why.
	for _, bad := range []struct {
		name, value string
		broker      []int32
		want        error
	}{
		{"not.a.kafka.config", "1", nil, kerr.InvalidConfig},
		{"message.max.bytes", "big", nil, kerr.InvalidConfig},
		{"log.retention.ms", "-5", []int32{0}, kerr.InvalidConfig},
		{"num.partitions", "3", nil, kerr.InvalidRequest},
		{"broker.id", "3", []int32{0}, kerr.InvalidRequest},
	} {
		ops := []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "num.io.threads", Value: ptr("32")},
			{Op: kadm.SetConfig, Name: bad.name, Value: ptr(bad.value)},
		}
		if err := alterErr(adm.AlterBrokerConfigs(ctx, ops, bad.broker...)); !errors.Is(err, bad.want) {
			t.Errorf("alter %v %s=%s: %v, want %v", bad.broker, bad.name, bad.value, err, bad.want)
		}
		if err := alterErr(adm.AlterBrokerConfigsState(ctx, ops, bad.broker...)); !errors.Is(err, bad.want) {
			t.Errorf("legacy alter %v %s=%s: %v, want %v", bad.broker, bad.name, bad.value, err, bad.want)
		}
	}
	// Another node's id is refused (kadm would route it to that node).
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, "7"
	rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	rc.Name, rc.Value = "message.max.bytes", ptr("100")
	rr.Configs = append(rr.Configs, rc)
	req.Resources = append(req.Resources, rr)
	resp := dialRaw(t, p.KafkaAddr).request(req, 1).(*kmsg.IncrementalAlterConfigsResponse)
	if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("alter broker 7's configs: %+v, want INVALID_REQUEST", resp.Resources)
	}
	// Validation only changes nothing either.
	if err := alterErr(adm.ValidateAlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.max.bytes", Value: ptr("9999999")}})); err != nil {
		t.Errorf("validate only: %v", err)
	}
	check(t, "after refused changes")

	// SIGKILL: the change must have been durable when it was answered.
	p.Kill()
	p.Restart()
	prod = newProducer(t, p)
	adm = newAdmin(t, p)
	check(t, "after a restart")

	// Legacy AlterConfigs replaces the whole cluster-wide set: the limit
	// is gone, the retention is the default again.
	if err := alterErr(adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "num.io.threads", Value: ptr("16")}})); err != nil {
		t.Fatalf("legacy alter of the cluster-wide configs: %v", err)
	}
	if err := big(); err != nil {
		t.Errorf("8 KiB record once message.max.bytes is unset: %v", err)
	}
	checkConfigs(t, adm, topic, map[string]wantConfig{
		"max.message.bytes": dflt("1048588"),
		"retention.ms":      {"86400000", kmsg.ConfigSourceStaticBrokerConfig},
	})
	// This node's log.cleanup.policy=delete,compact made the stream
	// compacted: a record without a key is refused, as Kafka does.
	if err := keyless(); !errors.Is(err, kerr.InvalidRecord) {
		t.Errorf("record without a key under log.cleanup.policy=delete,compact: %v, want INVALID_RECORD", err)
	}
	// DELETE of this node's values restores the defaults.
	rs, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.DeleteConfig, Name: "log.cleaner.min.cleanable.ratio"},
		{Op: kadm.SubtractConfig, Name: "log.cleanup.policy", Value: ptr("compact")},
	}, 0)
	if err := alterErr(rs, err); err != nil {
		t.Fatalf("delete this node's configs: %v", err)
	}
	got := topicConfigs(t, ctx, adm, topic)
	if c := got["min.cleanable.dirty.ratio"]; c.MaybeValue() != "0.5" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("min.cleanable.dirty.ratio after DELETE: %q from %v", c.MaybeValue(), c.Source)
	}
	if c := got["cleanup.policy"]; c.MaybeValue() != "delete" {
		t.Errorf("cleanup.policy after SUBTRACT: %q from %v", c.MaybeValue(), c.Source)
	}
	if err := keyless(); err != nil {
		t.Errorf("record without a key once the stream is no longer compacted: %v", err)
	}
}
