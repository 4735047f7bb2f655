package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/catalog"
)

// settingsConfig reads one stream config through the Kafka door.
func settingsConfig(t *testing.T, p *braidtest.Proc, stream, name string) string {
	t.Helper()
	adm := p.Admin()
	defer adm.Close()
	rcs, err := adm.DescribeTopicConfigs(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc.Configs {
		if c.Key == name {
			return c.MaybeValue()
		}
	}
	t.Fatalf("stream %s has no config %s", stream, name)
	return ""
}

// settingsWantCode fails the test unless err is an AWS error of type code.
func settingsWantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := awsErrorCode(err); got != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

const settingsHourMs = 3600 * 1000

// TestKinesisRetention moves retention.ms with Increase/Decrease
// StreamRetentionPeriod under AWS's rules, and the change survives a
// restart; refused requests change nothing.
func TestKinesisRetention(t *testing.T) {
	p := braidtest.Start(t)
	ctx := context.Background()
	p.CreateStream(ctx, "kr", 1, nil)
	kc := p.Kinesis()
	name := aws.String("kr")
	retention := func() string { return settingsConfig(t, p, "kr", "retention.ms") }
	if got := retention(); got != fmt.Sprint(168*settingsHourMs) {
		t.Fatalf("default retention.ms %s", got)
	}
	if _, err := kc.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: name, RetentionPeriodHours: aws.Int32(200)}); err != nil {
		t.Fatal(err)
	}
	if got := retention(); got != fmt.Sprint(200*settingsHourMs) {
		t.Fatalf("after increase to 200 h: retention.ms %s", got)
	}
	for _, c := range []struct {
		what     string
		increase bool
		hours    int32
		stream   string
		code     string
	}{
		{"increase lowering", true, 100, "kr", "InvalidArgumentException"},
		{"decrease raising", false, 300, "kr", "InvalidArgumentException"},
		{"below 24 h", false, 23, "kr", "InvalidArgumentException"},
		{"above 8760 h", true, 8761, "kr", "InvalidArgumentException"},
		{"unknown stream", true, 300, "nope", "ResourceNotFoundException"},
	} {
		var err error
		if c.increase {
			_, err = kc.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String(c.stream), RetentionPeriodHours: aws.Int32(c.hours)})
		} else {
			_, err = kc.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String(c.stream), RetentionPeriodHours: aws.Int32(c.hours)})
		}
		settingsWantCode(t, c.what, err, c.code)
		if got := retention(); got != fmt.Sprint(200*settingsHourMs) {
			t.Fatalf("%s changed retention.ms to %s", c.what, got)
		}
	}
	// The same value is neither an increase nor a decrease: allowed.
	if _, err := kc.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: name, RetentionPeriodHours: aws.Int32(200)}); err != nil {
		t.Fatal(err)
	}
	arn := aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/kr")
	if _, err := kc.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamARN: arn, RetentionPeriodHours: aws.Int32(48)}); err != nil {
		t.Fatal(err)
	}
	p.Kill() // SIGKILL: the change must already be durable
	p.Restart()
	if got := retention(); got != fmt.Sprint(48*settingsHourMs) {
		t.Fatalf("after decrease to 48 h and restart: retention.ms %s", got)
	}
}

// settingsListTags pages through ListTagsForStream two at a time.
func settingsListTags(t *testing.T, kc *kinesis.Client, stream string) string {
	t.Helper()
	var got []string
	var after *string
	for range 30 {
		out, err := kc.ListTagsForStream(context.Background(), &kinesis.ListTagsForStreamInput{StreamName: aws.String(stream), Limit: aws.Int32(2), ExclusiveStartTagKey: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range out.Tags {
			got = append(got, *tg.Key+"="+aws.ToString(tg.Value))
		}
		if !*out.HasMoreTags {
			return strings.Join(got, ",")
		}
		if len(out.Tags) != 2 {
			t.Fatalf("HasMoreTags with %d tags of limit 2", len(out.Tags))
		}
		after = out.Tags[len(out.Tags)-1].Key
	}
	t.Fatal("ListTagsForStream never ended")
	return ""
}

// TestKinesisTags adds, overwrites, lists (paginated) and removes stream
// tags by name and by ARN; AWS's tag rules refuse bad requests without
// changing anything; tags survive a restart.
func TestKinesisTags(t *testing.T) {
	p := braidtest.Start(t)
	ctx := context.Background()
	p.CreateStream(ctx, "kt", 1, nil)
	kc := p.Kinesis()
	name := aws.String("kt")
	arn := aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/kt")
	if _, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: map[string]string{"team": "a", "env": "prod", "cost": ""}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamARN: arn, Tags: map[string]string{"team": "b", "z": "last"}}); err != nil {
		t.Fatal(err)
	}
	const want = "cost=,env=prod,team=b,z=last"
	if got := settingsListTags(t, kc, "kt"); got != want {
		t.Fatalf("tags %s, want %s", got, want)
	}
	many := map[string]string{}
	for i := range 47 {
		many[fmt.Sprintf("k%02d", i)] = "v"
	}
	long := strings.Repeat("x", 129)
	for _, c := range []struct {
		what string
		call func() error
		code string
	}{
		{"51 tags in all", func() error {
			_, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: many})
			return err
		}, "InvalidArgumentException"},
		{"key of 129 characters", func() error {
			_, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: map[string]string{long: "v"}})
			return err
		}, "ValidationException"},
		{"value of 257 characters", func() error {
			_, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: map[string]string{"ok": strings.Repeat("v", 257)}})
			return err
		}, "ValidationException"},
		{"reserved aws: key", func() error {
			_, err := kc.TagResource(ctx, &kinesis.TagResourceInput{ResourceARN: arn, Tags: map[string]string{"aws:x": "v"}})
			return err
		}, "InvalidArgumentException"},
		{"no tags", func() error {
			_, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: map[string]string{}})
			return err
		}, "ValidationException"},
		{"remove an empty key list", func() error {
			_, err := kc.RemoveTagsFromStream(ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: name, TagKeys: []string{}})
			return err
		}, "ValidationException"},
		{"list limit 51", func() error {
			_, err := kc.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: name, Limit: aws.Int32(51)})
			return err
		}, "ValidationException"},
		{"unknown stream", func() error {
			_, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("nope"), Tags: map[string]string{"a": "b"}})
			return err
		}, "ResourceNotFoundException"},
		{"unknown resource", func() error {
			_, err := kc.TagResource(ctx, &kinesis.TagResourceInput{ResourceARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/nope"), Tags: map[string]string{"a": "b"}})
			return err
		}, "ResourceNotFoundException"},
		{"consumer resource", func() error {
			_, err := kc.ListTagsForResource(ctx, &kinesis.ListTagsForResourceInput{ResourceARN: aws.String(*arn + "/consumer/c:1")})
			return err
		}, "ResourceNotFoundException"},
	} {
		settingsWantCode(t, c.what, c.call(), c.code)
		if got := settingsListTags(t, kc, "kt"); got != want {
			t.Fatalf("%s changed the tags to %s", c.what, got)
		}
	}
	// 46 more make 50: allowed.
	delete(many, "k46")
	if _, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: many}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range many {
		keys = append(keys, k)
	}
	if _, err := kc.RemoveTagsFromStream(ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: name, TagKeys: append(keys, "missing")}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.TagResource(ctx, &kinesis.TagResourceInput{ResourceARN: arn, Tags: map[string]string{"r": "1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.UntagResource(ctx, &kinesis.UntagResourceInput{ResourceARN: arn, TagKeys: []string{"cost", "z"}}); err != nil {
		t.Fatal(err)
	}
	p.Kill() // SIGKILL: the change must already be durable
	p.Restart()
	out, err := kc.ListTagsForResource(ctx, &kinesis.ListTagsForResourceInput{ResourceARN: arn})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(settingsTagList(out.Tags)); got != "[env=prod r=1 team=b]" {
		t.Fatalf("after restart: tags %s", got)
	}
}

func settingsTagList(tags []types.Tag) []string {
	var out []string
	for _, tg := range tags {
		out = append(out, *tg.Key+"="+aws.ToString(tg.Value))
	}
	return out
}

// settingsStored reads a stream's Kinesis settings from catalog.json.
func settingsStored(t *testing.T, p *braidtest.Proc, stream string) catalog.KinesisSettings {
	t.Helper()
	snap, err := catalog.FileStore{Path: filepath.Join(p.DataDir, "catalog.json")}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range snap.Streams {
		if st.Name == stream && st.Kinesis != nil {
			return *st.Kinesis
		}
	}
	return catalog.KinesisSettings{}
}

// TestKinesisModeAndRecordSize sets braid.kinesis.stream.mode with
// UpdateStreamMode and max.message.bytes with UpdateMaxRecordSize; both
// survive a restart, bad values change nothing, and DescribeLimits
// counts the ON_DEMAND stream and open shards.
func TestKinesisModeAndRecordSize(t *testing.T) {
	p := braidtest.Start(t)
	ctx := context.Background()
	p.CreateStream(ctx, "km", 3, nil)
	p.CreateStream(ctx, "other", 2, nil)
	kc := p.Kinesis()
	arn := aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/km")
	lim, err := kc.DescribeLimits(ctx, &kinesis.DescribeLimitsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if *lim.OpenShardCount != 5 || *lim.OnDemandStreamCount != 0 {
		t.Fatalf("limits before: open shards %d, on-demand streams %d", *lim.OpenShardCount, *lim.OnDemandStreamCount)
	}
	if _, err := kc.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: arn, StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: arn, MaxRecordSizeInKiB: aws.Int32(2048)}); err != nil {
		t.Fatal(err)
	}
	const wantBytes = "2097664" // 2048 KiB and 512 bytes of framing
	check := func(what string) {
		t.Helper()
		if got := settingsConfig(t, p, "km", "braid.kinesis.stream.mode"); got != "ON_DEMAND" {
			t.Fatalf("%s: mode %s", what, got)
		}
		if got := settingsConfig(t, p, "km", "max.message.bytes"); got != wantBytes {
			t.Fatalf("%s: max.message.bytes %s", what, got)
		}
	}
	check("after the updates")
	for _, c := range []struct {
		what string
		call func() error
		code string
	}{
		{"mode BURST", func() error {
			_, err := kc.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: arn, StreamModeDetails: &types.StreamModeDetails{StreamMode: "BURST"}})
			return err
		}, "ValidationException"},
		{"mode of an unknown stream", func() error {
			_, err := kc.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/nope"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}})
			return err
		}, "ResourceNotFoundException"},
		{"record size 1023 KiB", func() error {
			_, err := kc.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: arn, MaxRecordSizeInKiB: aws.Int32(1023)})
			return err
		}, "ValidationException"},
		{"record size 10241 KiB", func() error {
			_, err := kc.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: arn, MaxRecordSizeInKiB: aws.Int32(10241)})
			return err
		}, "ValidationException"},
		{"record size of an unknown stream", func() error {
			_, err := kc.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/nope"), MaxRecordSizeInKiB: aws.Int32(1024)})
			return err
		}, "ResourceNotFoundException"},
	} {
		settingsWantCode(t, c.what, c.call(), c.code)
		check(c.what)
	}
	p.Kill() // SIGKILL: the change must already be durable
	p.Restart()
	check("after restart")
	lim, err = kc.DescribeLimits(ctx, &kinesis.DescribeLimitsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if *lim.OpenShardCount != 5 || *lim.OnDemandStreamCount != 1 || *lim.ShardLimit < 5 || *lim.OnDemandStreamCountLimit < 1 {
		t.Fatalf("limits after: shard limit %d, open shards %d, on-demand streams %d (limit %d)", *lim.ShardLimit, *lim.OpenShardCount, *lim.OnDemandStreamCount, *lim.OnDemandStreamCountLimit)
	}
}

// TestKinesisEncryptionAndMonitoring records stream encryption and
// enhanced monitoring; both survive a restart (the restarted server
// keeps them when it next writes its catalog) and bad requests change
// nothing.
func TestKinesisEncryptionAndMonitoring(t *testing.T) {
	p := braidtest.Start(t)
	ctx := context.Background()
	p.CreateStream(ctx, "ke", 1, nil)
	kc := p.Kinesis()
	name := aws.String("ke")
	if _, err := kc.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	en, err := kc.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{types.MetricsNameIncomingBytes, types.MetricsNameIteratorAgeMilliseconds}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(en.CurrentShardLevelMetrics, en.DesiredShardLevelMetrics) != "[] [IncomingBytes IteratorAgeMilliseconds]" || *en.StreamName != "ke" {
		t.Fatalf("enable: current %v desired %v", en.CurrentShardLevelMetrics, en.DesiredShardLevelMetrics)
	}
	want := func(what, enc, key, metrics string) {
		t.Helper()
		k := settingsStored(t, p, "ke")
		if k.EncryptionType != enc || k.KeyID != key || fmt.Sprint(k.ShardLevelMetrics) != metrics {
			t.Fatalf("%s: stored %+v, want encryption %q key %q metrics %s", what, k, enc, key, metrics)
		}
	}
	want("after start", "KMS", "alias/aws/kinesis", "[IncomingBytes IteratorAgeMilliseconds]")
	// Describe* report what was recorded.
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: name})
	if err != nil {
		t.Fatal(err)
	}
	if d := sum.StreamDescriptionSummary; d.EncryptionType != types.EncryptionTypeKms || aws.ToString(d.KeyId) != "alias/aws/kinesis" ||
		len(d.EnhancedMonitoring) != 1 || fmt.Sprint(d.EnhancedMonitoring[0].ShardLevelMetrics) != "[IncomingBytes IteratorAgeMilliseconds]" {
		t.Fatalf("DescribeStreamSummary: encryption %v key %v monitoring %+v", d.EncryptionType, aws.ToString(d.KeyId), d.EnhancedMonitoring)
	}
	desc, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: name})
	if err != nil {
		t.Fatal(err)
	}
	if d := desc.StreamDescription; d.EncryptionType != types.EncryptionTypeKms || aws.ToString(d.KeyId) != "alias/aws/kinesis" {
		t.Fatalf("DescribeStream: encryption %v key %v", d.EncryptionType, aws.ToString(d.KeyId))
	}
	for _, c := range []struct {
		what string
		call func() error
		code string
	}{
		{"encryption NONE", func() error {
			_, err := kc.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeNone, KeyId: aws.String("k")})
			return err
		}, "InvalidArgumentException"},
		{"encryption without a key", func() error {
			_, err := kc.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("")})
			return err
		}, "ValidationException"},
		{"encryption of an unknown stream", func() error {
			_, err := kc.StopStreamEncryption(ctx, &kinesis.StopStreamEncryptionInput{StreamName: aws.String("nope"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("k")})
			return err
		}, "ResourceNotFoundException"},
		{"unknown metric", func() error {
			_, err := kc.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{"IncomingBytes", "Latency"}})
			return err
		}, "ValidationException"},
		{"no metrics", func() error {
			_, err := kc.DisableEnhancedMonitoring(ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{}})
			return err
		}, "ValidationException"},
		{"monitoring of an unknown stream", func() error {
			_, err := kc.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: aws.String("nope"), ShardLevelMetrics: []types.MetricsName{types.MetricsNameAll}})
			return err
		}, "ResourceNotFoundException"},
	} {
		settingsWantCode(t, c.what, c.call(), c.code)
		want(c.what, "KMS", "alias/aws/kinesis", "[IncomingBytes IteratorAgeMilliseconds]")
	}
	p.Kill() // SIGKILL: the change must already be durable
	p.Restart()
	// A catalog write after the restart keeps what the restart loaded.
	if _, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: name, Tags: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	want("after restart", "KMS", "alias/aws/kinesis", "[IncomingBytes IteratorAgeMilliseconds]")
	en, err = kc.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{types.MetricsNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if len(en.CurrentShardLevelMetrics) != 2 || len(en.DesiredShardLevelMetrics) != 7 {
		t.Fatalf("enable ALL after restart: current %v desired %v", en.CurrentShardLevelMetrics, en.DesiredShardLevelMetrics)
	}
	dis, err := kc.DisableEnhancedMonitoring(ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{types.MetricsNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if len(dis.CurrentShardLevelMetrics) != 7 || len(dis.DesiredShardLevelMetrics) != 0 {
		t.Fatalf("disable ALL: current %v desired %v", dis.CurrentShardLevelMetrics, dis.DesiredShardLevelMetrics)
	}
	if _, err := kc.StopStreamEncryption(ctx, &kinesis.StopStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	want("after stop and disable", "", "", "[]")
}

// TestKinesisResourcePolicy stores, returns and deletes a stream's
// resource policy by ARN; it survives a restart and bad requests change
// nothing.
func TestKinesisResourcePolicy(t *testing.T) {
	p := braidtest.Start(t)
	ctx := context.Background()
	p.CreateStream(ctx, "kp", 1, nil)
	kc := p.Kinesis()
	arn := aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/kp")
	policy := func() string {
		t.Helper()
		out, err := kc.GetResourcePolicy(ctx, &kinesis.GetResourcePolicyInput{ResourceARN: arn})
		if err != nil {
			t.Fatal(err)
		}
		return *out.Policy
	}
	if got := policy(); got != "{}" {
		t.Fatalf("policy before any: %s", got)
	}
	const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kinesis:GetRecords","Resource":"*"}]}`
	if _, err := kc.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: arn, Policy: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		call func() error
		code string
	}{
		{"policy not JSON", func() error {
			_, err := kc.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: arn, Policy: aws.String("allow all")})
			return err
		}, "InvalidArgumentException"},
		{"policy over 20 KiB", func() error {
			_, err := kc.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: arn, Policy: aws.String(`{"a":"` + strings.Repeat("x", 20480) + `"}`)})
			return err
		}, "ValidationException"},
		{"policy on an unknown stream", func() error {
			_, err := kc.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/nope"), Policy: aws.String(doc)})
			return err
		}, "ResourceNotFoundException"},
	} {
		settingsWantCode(t, c.what, c.call(), c.code)
		if got := policy(); got != doc {
			t.Fatalf("%s changed the policy to %s", c.what, got)
		}
	}
	p.Kill() // SIGKILL: the change must already be durable
	p.Restart()
	if got := policy(); got != doc {
		t.Fatalf("after restart: policy %s", got)
	}
	if _, err := kc.DeleteResourcePolicy(ctx, &kinesis.DeleteResourcePolicyInput{ResourceARN: arn}); err != nil {
		t.Fatal(err)
	}
	_, err := kc.DeleteResourcePolicy(ctx, &kinesis.DeleteResourcePolicyInput{ResourceARN: arn})
	settingsWantCode(t, "delete of no policy", err, "ResourceNotFoundException")
	p.Kill()
	p.Restart()
	if got := policy(); got != "{}" {
		t.Fatalf("after delete and restart: policy %s", got)
	}
}

// TestKinesisAccountSettings records the billing commitment with
// UpdateAccountSettings; it survives a restart and a bad status changes
// nothing.
func TestKinesisAccountSettings(t *testing.T) {
	p := braidtest.Start(t)
	ctx := context.Background()
	kc := p.Kinesis()
	status := func() types.MinimumThroughputBillingCommitmentOutput {
		t.Helper()
		out, err := kc.DescribeAccountSettings(ctx, &kinesis.DescribeAccountSettingsInput{})
		if err != nil {
			t.Fatal(err)
		}
		return *out.MinimumThroughputBillingCommitment
	}
	if got := status(); got.Status != types.MinimumThroughputBillingCommitmentOutputStatusDisabled || got.StartedAt != nil {
		t.Fatalf("before any update: %+v", got)
	}
	up, err := kc.UpdateAccountSettings(ctx, &kinesis.UpdateAccountSettingsInput{MinimumThroughputBillingCommitment: &types.MinimumThroughputBillingCommitmentInput{Status: types.MinimumThroughputBillingCommitmentInputStatusEnabled}})
	if err != nil {
		t.Fatal(err)
	}
	started := up.MinimumThroughputBillingCommitment.StartedAt
	if up.MinimumThroughputBillingCommitment.Status != "ENABLED" || started == nil || time.Since(*started) > time.Minute || time.Since(*started) < -time.Minute {
		t.Fatalf("update answered %+v", up.MinimumThroughputBillingCommitment)
	}
	_, err = kc.UpdateAccountSettings(ctx, &kinesis.UpdateAccountSettingsInput{MinimumThroughputBillingCommitment: &types.MinimumThroughputBillingCommitmentInput{Status: "PAUSED"}})
	settingsWantCode(t, "status PAUSED", err, "ValidationException")
	p.Kill() // SIGKILL: the change must already be durable
	p.Restart()
	got := status()
	if got.Status != "ENABLED" || got.StartedAt == nil || !got.StartedAt.Equal(*started) {
		t.Fatalf("after restart: %+v, want ENABLED since %v", got, *started)
	}
	if _, err := kc.UpdateAccountSettings(ctx, &kinesis.UpdateAccountSettingsInput{MinimumThroughputBillingCommitment: &types.MinimumThroughputBillingCommitmentInput{Status: types.MinimumThroughputBillingCommitmentInputStatusDisabled}}); err != nil {
		t.Fatal(err)
	}
	if got := status(); got.Status != "DISABLED" || got.EndedAt == nil {
		t.Fatalf("after disabling: %+v", got)
	}
}

// TestKinesisTagLimitConcurrent adds tags from many clients at once: the
// 50-tag limit is checked and applied as one step, so it holds.
func TestKinesisTagLimitConcurrent(t *testing.T) {
	p := braidtest.Start(t)
	ctx := context.Background()
	p.CreateStream(ctx, "kc", 1, nil)
	kc := p.Kinesis()
	const clients, each = 12, 7 // 84 tags asked for, 7 clients' worth fit
	errs := make(chan error, clients)
	for c := range clients {
		go func() {
			tags := map[string]string{}
			for i := range each {
				tags[fmt.Sprintf("c%02d-%d", c, i)] = "v"
			}
			_, err := kc.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String("kc"), Tags: tags})
			errs <- err
		}()
	}
	ok := 0
	for range clients {
		switch err := <-errs; awsErrorCode(err) {
		case "":
			if err != nil {
				t.Fatal(err)
			}
			ok++
		case "InvalidArgumentException":
		default:
			t.Fatal(err)
		}
	}
	out, err := kc.ListTagsForResource(ctx, &kinesis.ListTagsForResourceInput{ResourceARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/kc")})
	if err != nil {
		t.Fatal(err)
	}
	if ok != 50/each || len(out.Tags) != ok*each {
		t.Fatalf("%d adds succeeded, stream has %d tags; want %d and %d", ok, len(out.Tags), 50/each, 50/each*each)
	}
}

// TestKinesisWarmThroughput sets an on-demand stream's warm throughput:
// refused on a provisioned stream, without the account's billing
// commitment, and out of range, changing nothing; reached at once,
// reported by DescribeStreamSummary, and durable.
func TestKinesisWarmThroughput(t *testing.T) {
	p := braidtest.Start(t)
	kc := p.Kinesis()
	ctx := testCtx(t, time.Minute)
	for name, mode := range map[string]types.StreamMode{"warm": types.StreamModeOnDemand, "prov": types.StreamModeProvisioned} {
		in := &kinesis.CreateStreamInput{StreamName: aws.String(name), StreamModeDetails: &types.StreamModeDetails{StreamMode: mode}}
		if mode == types.StreamModeProvisioned {
			in.ShardCount = aws.Int32(1)
		}
		if _, err := kc.CreateStream(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	warm := func(name string, mibps *int32) (*kinesis.UpdateStreamWarmThroughputOutput, error) {
		return kc.UpdateStreamWarmThroughput(ctx, &kinesis.UpdateStreamWarmThroughputInput{StreamName: aws.String(name), WarmThroughputMiBps: mibps})
	}
	reported := func() *types.WarmThroughputObject {
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("warm")})
		if err != nil {
			t.Fatal(err)
		}
		return out.StreamDescriptionSummary.WarmThroughput
	}

	_, err := warm("warm", aws.Int32(100))
	wantAWSError(t, "without the billing commitment", err, "InvalidArgumentException")
	if _, err := kc.UpdateAccountSettings(ctx, &kinesis.UpdateAccountSettingsInput{MinimumThroughputBillingCommitment: &types.MinimumThroughputBillingCommitmentInput{Status: types.MinimumThroughputBillingCommitmentInputStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	_, err = warm("prov", aws.Int32(100))
	wantAWSError(t, "a provisioned stream", err, "InvalidArgumentException")
	_, err = warm("warm", aws.Int32(-1))
	wantAWSError(t, "a negative value", err, "ValidationException")
	_, err = warm("warm", aws.Int32(10241))
	wantAWSError(t, "over 10 GiB/s", err, "InvalidArgumentException")
	_, err = warm("nope", aws.Int32(100))
	wantAWSError(t, "an unknown stream", err, "ResourceNotFoundException")
	if w := reported(); w != nil {
		t.Fatalf("refused calls set the warm throughput: %+v", w)
	}

	out, err := warm("warm", aws.Int32(100))
	if err != nil || *out.StreamName != "warm" || *out.WarmThroughput.TargetMiBps != 100 || *out.WarmThroughput.CurrentMiBps != 100 {
		t.Fatalf("UpdateStreamWarmThroughput: %+v %v", out, err)
	}
	p.Kill() // SIGKILL: the change must already be durable
	p.Restart()
	if w := reported(); w == nil || *w.TargetMiBps != 100 || *w.CurrentMiBps != 100 {
		t.Fatalf("DescribeStreamSummary after a restart: warm throughput %+v, want 100 MiBps", w)
	}
}

// TestKinesisRecordDistribution switches an on-demand stream between
// USER_PARTITION_KEY (records of one key go to one shard) and AUTO
// (spread evenly, keys ignored); the strategy is durable, refused for a
// provisioned stream, and a refused call changes nothing.
func TestKinesisRecordDistribution(t *testing.T) {
	p := braidtest.Start(t)
	kc := p.Kinesis()
	ctx := testCtx(t, time.Minute)
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("dist"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("pdist"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	set := func(stream string, strategy types.RecordDistributionStrategy) error {
		_, err := kc.UpdateStreamRecordDistributionStrategy(ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{
			StreamARN: aws.String(kStreamARN + stream), RecordDistributionStrategy: strategy})
		return err
	}
	// spread puts 400 records of one partition key and counts them by shard.
	spread := func() map[string]int {
		recs := make([]types.PutRecordsRequestEntry, 400)
		for i := range recs {
			recs[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("one-key"), Data: []byte{byte(i)}}
		}
		out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("dist"), Records: recs})
		if err != nil || *out.FailedRecordCount != 0 {
			t.Fatalf("PutRecords: %+v %v", out, err)
		}
		by := map[string]int{}
		for _, r := range out.Records {
			by[*r.ShardId]++
		}
		return by
	}
	reported := func() types.RecordDistributionStrategy {
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("dist")})
		if err != nil {
			t.Fatal(err)
		}
		return out.StreamDescriptionSummary.RecordDistributionStrategy
	}

	if by := spread(); len(by) != 1 {
		t.Fatalf("by partition key (the default): one key went to %v", by)
	}
	wantAWSError(t, "a provisioned stream", set("pdist", types.RecordDistributionStrategyAuto), "InvalidArgumentException")
	wantAWSError(t, "an unknown strategy", set("dist", "SOMEHOW"), "ValidationException")
	wantAWSError(t, "an unknown stream", set("nope", types.RecordDistributionStrategyAuto), "ResourceNotFoundException")
	if got := reported(); got != "" {
		t.Fatalf("refused calls set the strategy: %q", got)
	}

	if err := set("dist", types.RecordDistributionStrategyAuto); err != nil {
		t.Fatal(err)
	}
	p.Kill() // SIGKILL: the change must already be durable
	p.Restart()
	if got := reported(); got != types.RecordDistributionStrategyAuto {
		t.Fatalf("strategy after a restart: %q, want AUTO", got)
	}
	// 4 even shards, 400 records: about 100 each; under 40 is a bug, not
	// chance (p < 1e-12).
	by := spread()
	if len(by) != 4 {
		t.Fatalf("AUTO: one key went to %v, want all 4 shards", by)
	}
	for id, n := range by {
		if n < 40 {
			t.Fatalf("AUTO: shard %s got %d of 400 records: %v", id, n, by)
		}
	}

	if err := set("dist", types.RecordDistributionStrategyUserPartitionKey); err != nil {
		t.Fatal(err)
	}
	if by := spread(); len(by) != 1 || reported() != types.RecordDistributionStrategyUserPartitionKey {
		t.Fatalf("back to USER_PARTITION_KEY: one key went to %v, strategy %q", by, reported())
	}
}
