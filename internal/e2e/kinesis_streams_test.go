package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/catalog"
	kin "github.com/braidstream/braid/internal/kinesis"
	"github.com/braidstream/braid/internal/shard"
)

// shardSummary is one shard as a test compares it: id, parents, hash
// range and sequence range, in one line.
func shardSummary(s types.Shard) string {
	b := &strings.Builder{}
	num := func(name string) string {
		id, err := kin.ParseShardName(name)
		if err != nil {
			return name
		}
		return id.String()
	}
	b.WriteString(num(*s.ShardId))
	if s.ParentShardId != nil {
		fmt.Fprintf(b, " p=%s", num(*s.ParentShardId))
	}
	if s.AdjacentParentShardId != nil {
		fmt.Fprintf(b, " a=%s", num(*s.AdjacentParentShardId))
	}
	fmt.Fprintf(b, " [%s,%s] from=%s", *s.HashKeyRange.StartingHashKey, *s.HashKeyRange.EndingHashKey, *s.SequenceNumberRange.StartingSequenceNumber)
	if s.SequenceNumberRange.EndingSequenceNumber != nil {
		fmt.Fprintf(b, " to=%s", *s.SequenceNumberRange.EndingSequenceNumber)
	}
	return b.String()
}

// shardIDsOf lists the shard numbers of shards: "0 1 4".
func shardIDsOf(shards []types.Shard) string {
	var ids []string
	for _, s := range shards {
		id, err := kin.ParseShardName(*s.ShardId)
		if err != nil {
			return err.Error()
		}
		ids = append(ids, id.String())
	}
	return strings.Join(ids, " ")
}

// describeAllShards pages through DescribeStream, limit shards at a time.
func describeAllShards(t *testing.T, ctx context.Context, kc *kinesis.Client, name string, limit int32) []types.Shard {
	t.Helper()
	var all []types.Shard
	var after *string
	for range 100 {
		out, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name), Limit: aws.Int32(limit), ExclusiveStartShardId: after})
		if err != nil {
			t.Fatalf("DescribeStream %s: %v", name, err)
		}
		all = append(all, out.StreamDescription.Shards...)
		if !*out.StreamDescription.HasMoreShards {
			return all
		}
		if len(out.StreamDescription.Shards) == 0 {
			t.Fatal("DescribeStream: HasMoreShards with no shards")
		}
		after = out.StreamDescription.Shards[len(out.StreamDescription.Shards)-1].ShardId
	}
	t.Fatal("DescribeStream did not end")
	return nil
}

// listAllShards pages through ListShards with NextToken.
func listAllShards(t *testing.T, ctx context.Context, kc *kinesis.Client, in *kinesis.ListShardsInput) []types.Shard {
	t.Helper()
	var all []types.Shard
	for range 100 {
		out, err := kc.ListShards(ctx, in)
		if err != nil {
			t.Fatalf("ListShards %+v: %v", in, err)
		}
		all = append(all, out.Shards...)
		if out.NextToken == nil {
			return all
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: in.MaxResults}
	}
	t.Fatal("ListShards did not end")
	return nil
}

func wantAWSError(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := awsErrorCode(err); got != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
	// The message is for an AWS client: no Go package names in it.
	var ae smithy.APIError
	if errors.As(err, &ae) {
		for _, pkg := range []string{"catalog: ", "engine: ", "shard: ", "wal: ", "kinesis: "} {
			if strings.HasPrefix(ae.ErrorMessage(), pkg) {
				t.Fatalf("%s: message %q starts with a Go package name", what, ae.ErrorMessage())
			}
		}
	}
}

// TestKinesisStreamLifecycle creates, describes and deletes streams through
// the AWS SDK, and checks that refused creates change nothing.
func TestKinesisStreamLifecycle(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, time.Minute)
	kc := p.Kinesis()
	adm := newAdmin(t, p)

	before := time.Now().Add(-time.Second)
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("k1"), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("k1")})
	if err != nil {
		t.Fatal(err)
	}
	d := sum.StreamDescriptionSummary
	if *d.OpenShardCount != 3 || d.StreamStatus != types.StreamStatusActive || d.StreamModeDetails.StreamMode != types.StreamModeProvisioned ||
		*d.RetentionPeriodHours != 168 || d.EncryptionType != types.EncryptionTypeNone || *d.StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/k1" ||
		len(d.EnhancedMonitoring) != 1 || d.StreamCreationTimestamp.Before(before) || d.StreamCreationTimestamp.After(time.Now().Add(time.Second)) {
		t.Fatalf("summary %+v (created %v)", d, d.StreamCreationTimestamp)
	}
	ls, err := kc.ListStreams(ctx, &kinesis.ListStreamsInput{})
	if err != nil || len(ls.StreamSummaries) != 1 || !ls.StreamSummaries[0].StreamCreationTimestamp.Equal(*d.StreamCreationTimestamp) {
		t.Fatalf("ListStreams summaries %+v, %v; want creation time %v", ls, err, d.StreamCreationTimestamp)
	}
	// RetentionPeriodHours follows retention.ms, rounded up to hours.
	for _, tc := range []struct {
		ms    string
		hours int32
	}{{"5400000", 2}, {"-1", 8760}, {"3600000", 1}} {
		resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr(tc.ms)}}, "k1")
		if err == nil {
			_, err = resp.On("k1", nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("k1")})
		if err != nil || *sum.StreamDescriptionSummary.RetentionPeriodHours != tc.hours {
			t.Fatalf("retention.ms %s: %+v, %v; want %d hours", tc.ms, sum, err, tc.hours)
		}
	}
	cfg := topicConfigs(t, ctx, adm, "k1")
	if v := cfg["braid.routing"].Value; v == nil || *v != "key" {
		t.Fatalf("braid.routing = %v, want key", v)
	}
	if v := cfg["braid.kinesis.stream.mode"].Value; v == nil || *v != "PROVISIONED" {
		t.Fatalf("braid.kinesis.stream.mode = %v, want PROVISIONED", v)
	}

	// Three shards over even ranges covering the whole key space, open.
	shards := describeAllShards(t, ctx, kc, "k1", 100)
	third := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(3))
	next := big.NewInt(0)
	for i, s := range shards {
		if *s.ShardId != kin.ShardName(catalog.ShardID(i)) || s.ParentShardId != nil || s.SequenceNumberRange.EndingSequenceNumber != nil ||
			*s.SequenceNumberRange.StartingSequenceNumber != kin.SequenceNumber(catalog.ShardID(i), 0) || *s.HashKeyRange.StartingHashKey != next.String() {
			t.Fatalf("shard %d: %s", i, shardSummary(s))
		}
		end, _ := new(big.Int).SetString(*s.HashKeyRange.EndingHashKey, 10)
		next.Add(end, big.NewInt(1))
	}
	if len(shards) != 3 || next.Cmp(new(big.Int).Lsh(big.NewInt(1), 128)) != 0 || third.Sign() == 0 {
		t.Fatalf("shards do not cover the key space: %d shards, ends at %s", len(shards), next)
	}

	// ON_DEMAND without ShardCount: 4 shards.
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("od"),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	sum, err = kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/od")})
	if err != nil || *sum.StreamDescriptionSummary.OpenShardCount != 4 || sum.StreamDescriptionSummary.StreamModeDetails.StreamMode != types.StreamModeOnDemand {
		t.Fatalf("on-demand stream: %+v, %v", sum, err)
	}

	// Refused creates.
	for _, tc := range []struct {
		name string
		in   *kinesis.CreateStreamInput
		code string
	}{
		{"exists", &kinesis.CreateStreamInput{StreamName: aws.String("k1"), ShardCount: aws.Int32(1)}, "ResourceInUseException"},
		{"internal stream", &kinesis.CreateStreamInput{StreamName: aws.String("__consumer_offsets"), ShardCount: aws.Int32(1)}, "ResourceInUseException"},
		{"no shard count", &kinesis.CreateStreamInput{StreamName: aws.String("bad1")}, "InvalidArgumentException"},
		{"zero shards", &kinesis.CreateStreamInput{StreamName: aws.String("bad2"), ShardCount: aws.Int32(0)}, "ValidationException"},
		{"over braid.shards.max", &kinesis.CreateStreamInput{StreamName: aws.String("bad3"), ShardCount: aws.Int32(1025)}, "LimitExceededException"},
		{"bad name", &kinesis.CreateStreamInput{StreamName: aws.String("a/b"), ShardCount: aws.Int32(1)}, "ValidationException"},
		{"long name", &kinesis.CreateStreamInput{StreamName: aws.String(strings.Repeat("n", 129)), ShardCount: aws.Int32(1)}, "ValidationException"},
		{"bad mode", &kinesis.CreateStreamInput{StreamName: aws.String("bad4"), ShardCount: aws.Int32(1), StreamModeDetails: &types.StreamModeDetails{StreamMode: "FAST"}}, "ValidationException"},
	} {
		_, err := kc.CreateStream(ctx, tc.in)
		wantAWSError(t, tc.name, err, tc.code)
	}
	ls, err = kc.ListStreams(ctx, &kinesis.ListStreamsInput{})
	if err != nil || fmt.Sprint(ls.StreamNames) != "[k1 od]" {
		t.Fatalf("streams after refused creates: %v, %v", ls.StreamNames, err)
	}
	if n := len(describeAllShards(t, ctx, kc, "k1", 100)); n != 3 {
		t.Fatalf("k1 has %d shards after a refused create of the same name", n)
	}

	// Delete.
	if _, err := kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("k1"), EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	_, err = kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("k1")})
	wantAWSError(t, "DescribeStream after delete", err, "ResourceNotFoundException")
	_, err = kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("k1")})
	wantAWSError(t, "DescribeStreamSummary after delete", err, "ResourceNotFoundException")
	_, err = kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("k1")})
	wantAWSError(t, "DeleteStream twice", err, "ResourceNotFoundException")
	_, err = kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("__consumer_offsets")})
	wantAWSError(t, "DeleteStream internal", err, "ResourceNotFoundException")
	_, err = kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("k1")})
	wantAWSError(t, "ListShards after delete", err, "ResourceNotFoundException")
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("k1"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("create again after delete: %v", err)
	}
}

// pause makes the next change land at a later millisecond than the last,
// and returns a moment between them.
func pause() time.Time {
	time.Sleep(20 * time.Millisecond)
	t := time.Now()
	time.Sleep(20 * time.Millisecond)
	return t
}

// TestKinesisReshardLineage splits and merges through the AWS SDK and
// checks the lineage DescribeStream and ListShards show, the shard filters,
// pagination, and that refused reshards change nothing.
func TestKinesisReshardLineage(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, time.Minute)
	kc := p.Kinesis()
	name := aws.String("lin")
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: name, ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	// Three records (without keys, so they stay where addressed) in shard 0.
	cl := newProducer(t, p)
	for range 3 {
		produce(t, ctx, cl, &kgo.Record{Topic: "lin", Partition: 0, Value: []byte("v")})
	}
	tCreated := pause()

	two126 := new(big.Int).Lsh(big.NewInt(1), 126)
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: name, ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(two126.String())}); err != nil {
		t.Fatal(err)
	}
	tSplit := pause()
	// Shard 1 is the upper half; 3 is [2^126, 2^127-1]: adjacent. The
	// request names 1 first; the child lists the lower range (3) as parent.
	if _, err := kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/lin"), ShardToMerge: aws.String("shardId-000000000001"), AdjacentShardToMerge: aws.String("shardId-000000000003")}); err != nil {
		t.Fatal(err)
	}
	tMerged := pause()

	two127 := new(big.Int).Lsh(big.NewInt(1), 127)
	top := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	m1 := func(b *big.Int) string { return new(big.Int).Sub(b, big.NewInt(1)).String() }
	seq := func(id, off int) string { return kin.SequenceNumber(catalog.ShardID(id), shardOffset(off)) }
	want := []string{
		fmt.Sprintf("0 [0,%s] from=%s to=%s", m1(two127), seq(0, 0), seq(0, 2)),
		fmt.Sprintf("1 [%s,%s] from=%s to=%s", two127, top, seq(1, 0), seq(1, 0)),
		fmt.Sprintf("2 p=0 [0,%s] from=%s", m1(two126), seq(2, 0)),
		fmt.Sprintf("3 p=0 [%s,%s] from=%s to=%s", two126, m1(two127), seq(3, 0), seq(3, 0)),
		fmt.Sprintf("4 p=3 a=1 [%s,%s] from=%s", two126, top, seq(4, 0)),
	}
	check := func(what string, got []types.Shard) {
		t.Helper()
		var lines []string
		for _, s := range got {
			lines = append(lines, shardSummary(s))
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s:\n%s\nwant\n%s", what, strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
	}
	check("DescribeStream", describeAllShards(t, ctx, kc, "lin", 100))
	check("DescribeStream, 2 at a time", describeAllShards(t, ctx, kc, "lin", 2))
	check("ListShards", listAllShards(t, ctx, kc, &kinesis.ListShardsInput{StreamName: name}))
	check("ListShards, 2 at a time", listAllShards(t, ctx, kc, &kinesis.ListShardsInput{StreamName: name, MaxResults: aws.Int32(2)}))
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: name})
	if err != nil || *sum.StreamDescriptionSummary.OpenShardCount != 2 {
		t.Fatalf("summary after split and merge: %+v, %v", sum, err)
	}

	t.Run("refused reshards change nothing", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			call func() error
			code string
		}{
			{"split at the range start", func() error {
				_, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: name, ShardToSplit: aws.String("shardId-000000000004"), NewStartingHashKey: aws.String(two126.String())})
				return err
			}, "InvalidArgumentException"},
			{"split outside the range", func() error {
				_, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: name, ShardToSplit: aws.String("shardId-000000000004"), NewStartingHashKey: aws.String("5")})
				return err
			}, "InvalidArgumentException"},
			{"split a closed shard", func() error {
				_, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: name, ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("5")})
				return err
			}, "InvalidArgumentException"},
			{"split an unknown shard", func() error {
				_, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: name, ShardToSplit: aws.String("shardId-000000000099"), NewStartingHashKey: aws.String("5")})
				return err
			}, "ResourceNotFoundException"},
			{"split at a key that is no number", func() error {
				_, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: name, ShardToSplit: aws.String("shardId-000000000002"), NewStartingHashKey: aws.String("-1")})
				return err
			}, "ValidationException"},
			{"split in an unknown stream", func() error {
				_, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("nope"), ShardToSplit: aws.String("shardId-000000000002"), NewStartingHashKey: aws.String("5")})
				return err
			}, "ResourceNotFoundException"},
			{"merge with itself", func() error {
				_, err := kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: name, ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000002")})
				return err
			}, "InvalidArgumentException"},
			{"merge a closed shard", func() error {
				_, err := kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: name, ShardToMerge: aws.String("shardId-000000000003"), AdjacentShardToMerge: aws.String("shardId-000000000002")})
				return err
			}, "InvalidArgumentException"},
			{"merge in an unknown stream", func() error {
				_, err := kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("nope"), ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000004")})
				return err
			}, "ResourceNotFoundException"},
		} {
			wantAWSError(t, tc.name, tc.call(), tc.code)
		}
		check("DescribeStream after refused reshards", describeAllShards(t, ctx, kc, "lin", 100))

		// The open shards of lin are adjacent; three shards have a pair
		// that is not.
		if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("three"), ShardCount: aws.Int32(3)}); err != nil {
			t.Fatal(err)
		}
		_, err := kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("three"), ShardToMerge: aws.String("shardId-000000000000"), AdjacentShardToMerge: aws.String("shardId-000000000002")})
		wantAWSError(t, "merge non-adjacent", err, "InvalidArgumentException")
		if got := shardIDsOf(listAllShards(t, ctx, kc, &kinesis.ListShardsInput{StreamName: aws.String("three"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})); got != "0 1 2" {
			t.Fatalf("open shards after a refused merge: %s", got)
		}
	})

	t.Run("shard filters", func(t *testing.T) {
		ts := func(tm time.Time) *time.Time { return &tm }
		for _, tc := range []struct {
			filter types.ShardFilter
			want   string
		}{
			{types.ShardFilter{Type: types.ShardFilterTypeAtLatest}, "2 4"},
			{types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-000000000002")}, "3 4"},
			{types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}, "0 1"},
			{types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}, "0 1 2 3 4"},
			{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: ts(tCreated)}, "0 1"},
			{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: ts(tSplit)}, "1 2 3"},
			{types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: ts(tMerged)}, "2 4"},
			{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: ts(tCreated)}, "0 1 2 3 4"},
			{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: ts(tSplit)}, "1 2 3 4"},
			{types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: ts(tMerged)}, "2 4"},
		} {
			f := tc.filter
			got := shardIDsOf(listAllShards(t, ctx, kc, &kinesis.ListShardsInput{StreamName: name, ShardFilter: &f}))
			paged := shardIDsOf(listAllShards(t, ctx, kc, &kinesis.ListShardsInput{StreamName: name, ShardFilter: &f, MaxResults: aws.Int32(1)}))
			if got != tc.want || paged != tc.want {
				t.Errorf("%s %v: got %q, one at a time %q, want %q", f.Type, f.Timestamp, got, paged, tc.want)
			}
		}
		for _, f := range []types.ShardFilter{
			{Type: types.ShardFilterTypeAtTimestamp},
			{Type: types.ShardFilterTypeFromTimestamp},
			{Type: types.ShardFilterTypeAfterShardId},
		} {
			_, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, ShardFilter: &f})
			wantAWSError(t, "ListShards "+string(f.Type)+" without its argument", err, "InvalidArgumentException")
		}
		_, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, ShardFilter: &types.ShardFilter{Type: "SOMETIME"}})
		wantAWSError(t, "ListShards with an unknown filter", err, "ValidationException")
	})

	var token *string // a ListShards NextToken of lin
	t.Run("pagination errors", func(t *testing.T) {
		out, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, MaxResults: aws.Int32(2)})
		if err != nil || out.NextToken == nil || shardIDsOf(out.Shards) != "0 1" {
			t.Fatalf("first page: %+v, %v", out, err)
		}
		_, err = kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, NextToken: out.NextToken})
		wantAWSError(t, "NextToken with StreamName", err, "InvalidArgumentException")
		_, err = kc.ListShards(ctx, &kinesis.ListShardsInput{NextToken: aws.String("forged")})
		wantAWSError(t, "forged NextToken", err, "InvalidArgumentException")
		_, err = kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, MaxResults: aws.Int32(0)})
		wantAWSError(t, "MaxResults 0", err, "ValidationException")
		_, err = kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, MaxResults: aws.Int32(10001)})
		wantAWSError(t, "MaxResults 10001", err, "ValidationException")
		_, err = kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: name, Limit: aws.Int32(10001)})
		wantAWSError(t, "DescribeStream Limit 10001", err, "ValidationException")
		after, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, ExclusiveStartShardId: aws.String("shardId-000000000002")})
		if err != nil || shardIDsOf(after.Shards) != "3 4" || after.NextToken != nil {
			t.Fatalf("ExclusiveStartShardId: %+v, %v", after, err)
		}
		token = out.NextToken

		// StreamCreationTimestamp must be the stream's.
		sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: name})
		if err != nil {
			t.Fatal(err)
		}
		created := *sum.StreamDescriptionSummary.StreamCreationTimestamp
		if _, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, StreamCreationTimestamp: &created}); err != nil {
			t.Fatalf("ListShards with the stream's creation time: %v", err)
		}
		other := created.Add(-time.Second)
		_, err = kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name, StreamCreationTimestamp: &other})
		wantAWSError(t, "ListShards with another creation time", err, "ResourceNotFoundException")
	})

	t.Run("expired shards", func(t *testing.T) {
		// Trimming all of shard 0 expires it: it is no longer listed, and
		// its children are now at the trim horizon.
		adm := newAdmin(t, p)
		var to kadm.Offsets
		to.Add(kadm.Offset{Topic: "lin", Partition: 0, At: 3})
		if _, err := adm.DeleteRecords(ctx, to); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			filter types.ShardFilterType
			want   string
		}{
			{types.ShardFilterTypeAtTrimHorizon, "1 2 3"},
			{types.ShardFilterTypeFromTrimHorizon, "1 2 3 4"},
		} {
			if got := shardIDsOf(listAllShards(t, ctx, kc, &kinesis.ListShardsInput{StreamName: name, ShardFilter: &types.ShardFilter{Type: tc.filter}})); got != tc.want {
				t.Errorf("%s after trimming shard 0: %s, want %s", tc.filter, got, tc.want)
			}
		}
		if got := shardIDsOf(describeAllShards(t, ctx, kc, "lin", 100)); got != "1 2 3 4" {
			t.Errorf("DescribeStream after trimming shard 0: %s", got)
		}
	})

	t.Run("token of a deleted stream", func(t *testing.T) {
		// A token outlives no deletion: the stream it names is gone even
		// if one of the same name was created since.
		if _, err := kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("lin")}); err != nil {
			t.Fatal(err)
		}
		if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("lin"), ShardCount: aws.Int32(5)}); err != nil {
			t.Fatal(err)
		}
		_, err := kc.ListShards(ctx, &kinesis.ListShardsInput{NextToken: token})
		wantAWSError(t, "NextToken of a deleted stream", err, "ResourceNotFoundException")
	})
}

func shardOffset(n int) shard.Offset { return shard.Offset(n) }

// TestKinesisUpdateShardCount scales a stream through the AWS SDK to an
// even layout, and checks that refused scales change nothing.
func TestKinesisUpdateShardCount(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, time.Minute)
	kc := p.Kinesis()
	name := aws.String("sc")
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: name, ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	out, err := kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: name, TargetShardCount: aws.Int32(3), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil {
		t.Fatal(err)
	}
	if *out.CurrentShardCount != 2 || *out.TargetShardCount != 3 || *out.StreamName != "sc" || *out.StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/sc" {
		t.Fatalf("UpdateShardCount answered %+v", out)
	}
	open := func() []string {
		var rs []string
		for _, s := range listAllShards(t, ctx, kc, &kinesis.ListShardsInput{StreamName: name, ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}}) {
			rs = append(rs, *s.HashKeyRange.StartingHashKey+"-"+*s.HashKeyRange.EndingHashKey)
		}
		// In hash-key order (decimal strings of one length sort as numbers).
		slices.SortFunc(rs, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)) })
		return rs
	}
	var want []string
	for _, r := range catalog.SplitEvenly(3) {
		want = append(want, r.Start.String()+"-"+r.End.String())
	}
	if got := open(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("open ranges after scaling to 3: %v, want %v", got, want)
	}
	// Every shard has a lineage back to the two first ones.
	for _, s := range describeAllShards(t, ctx, kc, "sc", 100) {
		id, _ := kin.ParseShardName(*s.ShardId)
		if (id < 2) != (s.ParentShardId == nil) {
			t.Fatalf("shard %s", shardSummary(s))
		}
	}
	for _, tc := range []struct {
		name string
		in   *kinesis.UpdateShardCountInput
		code string
	}{
		{"zero", &kinesis.UpdateShardCountInput{StreamName: name, TargetShardCount: aws.Int32(0), ScalingType: types.ScalingTypeUniformScaling}, "ValidationException"},
		{"over braid.shards.max", &kinesis.UpdateShardCountInput{StreamName: name, TargetShardCount: aws.Int32(1025), ScalingType: types.ScalingTypeUniformScaling}, "LimitExceededException"},
		{"bad scaling type", &kinesis.UpdateShardCountInput{StreamName: name, TargetShardCount: aws.Int32(4), ScalingType: "SOMEHOW"}, "ValidationException"},
		{"unknown stream", &kinesis.UpdateShardCountInput{StreamName: aws.String("nope"), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling}, "ResourceNotFoundException"},
	} {
		_, err := kc.UpdateShardCount(ctx, tc.in)
		wantAWSError(t, tc.name, err, tc.code)
	}
	if got := open(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("open ranges after refused scales: %v, want %v", got, want)
	}
	// Down to one.
	out, err = kc.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: name, TargetShardCount: aws.Int32(1), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil || *out.CurrentShardCount != 3 || *out.TargetShardCount != 1 {
		t.Fatalf("scale to 1: %+v, %v", out, err)
	}
	if got := open(); len(got) != 1 || got[0] != "0-340282366920938463463374607431768211455" {
		t.Fatalf("open ranges after scaling to 1: %v", got)
	}
}
