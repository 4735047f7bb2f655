package client_test

// The tests run a real `braid serve` built from this checkout
// (internal/testnode).

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/client/internal/testnode"
)

// server is a braid node for the SDK's tests (see internal/testnode), with
// helpers to check what it holds.
type server struct {
	*testnode.Node
}

// startServer runs braid serve on loopback ports with a fresh data
// directory and waits until /healthz answers; it is killed at test end.
func startServer(tb testing.TB, args ...string) *server {
	tb.Helper()
	return &server{testnode.Start(tb, args...)}
}

// reader returns a plain kgo client for checking what the server holds.
func (s *server) reader(tb testing.TB, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.KafkaAddr)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// createStream creates a stream with shards shards and the given configs.
func (s *server) createStream(tb testing.TB, name string, shards int32, configs map[string]string) {
	tb.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, shards, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, s.reader(tb))
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		tb.Fatalf("create stream %s: %v", name, err)
	}
}

// readAll reads shard 0..shards-1 of stream from the start until want
// records came back (or 10s passed), and returns them.
func (s *server) readAll(tb testing.TB, stream string, want int) []*kgo.Record {
	tb.Helper()
	cl := s.reader(tb, kgo.ConsumeTopics(stream), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	return got
}

// endOffset returns the high watermark of stream's shard.
func (s *server) endOffset(tb testing.TB, stream string, shard int32) int64 {
	tb.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = stream
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition, p.Timestamp = shard, -1
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, s.reader(tb))
	if err != nil {
		tb.Fatalf("list offsets: %v", err)
	}
	rp := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
		tb.Fatalf("list offsets: %v", err)
	}
	return rp.Offset
}

func TestMain(m *testing.M) { testnode.Main(m) }
