package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// testCtx returns a context that ends after d or when the test ends.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// newClient returns a kgo client for p owned by t (not by the test that
// started p, so subtests can fail on their own). Idempotence is off; fetch
// long polls are short so consumers notice new data quickly.
func newClient(t testing.TB, p *braidtest.Proc, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(p.KafkaAddr),
		kgo.DisableIdempotentWrite(),
		kgo.RetryTimeout(15 * time.Second),
		kgo.FetchMaxWait(250 * time.Millisecond),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newProducer returns a client that sends each record to its Partition.
func newProducer(t testing.TB, p *braidtest.Proc, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, p, append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
}

func newAdmin(t testing.TB, p *braidtest.Proc) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newClient(t, p))
}

// createStream creates a stream with n partitions and fails t on error.
func createStream(t testing.TB, ctx context.Context, adm *kadm.Client, name string, n int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopic(ctx, n, 1, configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create stream %s: %v (%s)", name, err, resp.ErrMessage)
	}
}

// produce sends recs synchronously and fails t on any error.
func produce(t testing.TB, ctx context.Context, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	for i, r := range cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			t.Fatalf("produce record %d (%s/%d): %v", i, r.Record.Topic, r.Record.Partition, r.Err)
		}
	}
}

// consume reads one partition from `from` until it holds exactly n records
// and returns them; it fails t on a fetch error, on a timeout and on extra
// records in the last poll.
func consume(t testing.TB, ctx context.Context, p *braidtest.Proc, topic string, part int32, from kgo.Offset, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newClient(t, p, append([]kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: from}}),
	}, opts...)...)
	defer cl.Close()
	return pollN(t, ctx, cl, n)
}

// pollN polls cl until it has returned n records.
func pollN(t testing.TB, ctx context.Context, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(got), n)
		}
		failOnFetchErrors(t, fs)
		got = append(got, fs.Records()...)
	}
	if len(got) > n {
		t.Fatalf("consumed %d records, want exactly %d (extra: %s)", len(got), n, describe(got[n]))
	}
	return got
}

// pollNothing polls cl for d and fails if any record arrives.
func pollNothing(t testing.TB, cl *kgo.Client, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		failOnFetchErrors(t, fs)
		if recs := fs.Records(); len(recs) > 0 {
			t.Fatalf("got %d records where none were expected, first: %s", len(recs), describe(recs[0]))
		}
	}
}

func failOnFetchErrors(t testing.TB, fs kgo.Fetches) {
	t.Helper()
	fs.EachError(func(topic string, part int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		t.Fatalf("fetch %s/%d: %v", topic, part, err)
	})
}

// fetchSeen closes ch once the client has read a Fetch response: from then
// on a consumer's start offset is resolved.
type fetchSeen struct {
	once sync.Once
	ch   chan struct{}
}

func newFetchSeen() *fetchSeen { return &fetchSeen{ch: make(chan struct{})} }

func (h *fetchSeen) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 1 && err == nil {
		h.once.Do(func() { close(h.ch) })
	}
}

// sameBytes is bytes.Equal that also tells nil from empty.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func showBytes(b []byte) string {
	switch {
	case b == nil:
		return "<nil>"
	case len(b) > 24:
		return fmt.Sprintf("%q...(%d bytes)", b[:24], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func describe(r *kgo.Record) string {
	var hs []string
	for _, h := range r.Headers {
		hs = append(hs, h.Key+"="+showBytes(h.Value))
	}
	return fmt.Sprintf("%s/%d@%d key=%s value=%s headers=[%s] ts=%d", r.Topic, r.Partition, r.Offset,
		showBytes(r.Key), showBytes(r.Value), strings.Join(hs, " "), r.Timestamp.UnixMilli())
}

// checkRecord compares a consumed record with the expected one: topic,
// partition, offset, key, value, headers (nil and empty told apart) and,
// if checkTS, the timestamp in milliseconds. It reports whether they match.
func checkRecord(t testing.TB, i int, got, want *kgo.Record, checkTS bool) bool {
	t.Helper()
	ok := got.Topic == want.Topic && got.Partition == want.Partition && got.Offset == want.Offset &&
		sameBytes(got.Key, want.Key) && sameBytes(got.Value, want.Value) &&
		len(got.Headers) == len(want.Headers)
	if ok {
		for j := range got.Headers {
			if got.Headers[j].Key != want.Headers[j].Key || !sameBytes(got.Headers[j].Value, want.Headers[j].Value) {
				ok = false
			}
		}
	}
	if ok && checkTS && got.Timestamp.UnixMilli() != want.Timestamp.UnixMilli() {
		ok = false
	}
	if !ok {
		t.Errorf("record %d:\n got %s\nwant %s", i, describe(got), describe(want))
	}
	return ok
}

func checkRecords(t testing.TB, got, want []*kgo.Record, checkTS bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	bad := 0
	for i := range got {
		if !checkRecord(t, i, got[i], want[i], checkTS) {
			if bad++; bad == 5 {
				t.Fatalf("stopping after %d mismatched records", bad)
			}
		}
	}
}

// payload returns n deterministic bytes that compress to about half: a
// random first half and a repeated text second half.
func payload(seed uint64, n int) []byte {
	b := make([]byte, n)
	var key [32]byte
	key[0], key[1] = byte(seed), byte(seed>>8)
	rand.NewChaCha8(key).Read(b[:n/2])
	pattern := fmt.Sprintf("braid-payload-%d-", seed)
	for i := n / 2; i < n; i++ {
		b[i] = pattern[(i-n/2)%len(pattern)]
	}
	return b
}

// randomBytes returns n deterministic incompressible bytes.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var key [32]byte
	key[0], key[1], key[2] = byte(seed), byte(seed>>8), 0xa5
	rand.NewChaCha8(key).Read(b)
	return b
}

// listOffset issues a raw ListOffsets for one partition at timestamp ts
// (-1 latest, -2 earliest, -3 max timestamp, or a time in ms).
func listOffset(t testing.TB, ctx context.Context, cl *kgo.Client, topic string, part int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = part, ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("ListOffsets %s/%d ts=%d: %v", topic, part, ts, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("ListOffsets %s/%d ts=%d: malformed response %+v", topic, part, ts, resp)
	}
	return resp.Topics[0].Partitions[0]
}

// startEnd returns a partition's log start and end offsets via kadm.
func startEnd(t testing.TB, ctx context.Context, adm *kadm.Client, topic string, part int32) (int64, int64) {
	t.Helper()
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListStartOffsets %s: %v", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("ListEndOffsets %s: %v", topic, err)
	}
	s, ok1 := starts.Lookup(topic, part)
	e, ok2 := ends.Lookup(topic, part)
	if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
		t.Fatalf("list offsets %s/%d: start %+v (found %v), end %+v (found %v)", topic, part, s, ok1, e, ok2)
	}
	return s.Offset, e.Offset
}

// fetchRaw sends one raw Fetch for a partition at offset and returns the
// partition's answer. The topic is named both ways so any version works.
func fetchRaw(t testing.TB, ctx context.Context, cl *kgo.Client, topic string, topicID [16]byte, part int32, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 8<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = part, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("Fetch %s/%d@%d: %v", topic, part, offset, err)
	}
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("Fetch %s/%d@%d: top-level error %v or malformed response", topic, part, offset, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.Topics[0].Partitions[0]
}

// topicID returns a stream's topic id from Metadata.
func topicID(t testing.TB, ctx context.Context, adm *kadm.Client, topic string) [16]byte {
	t.Helper()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatalf("metadata %s: %v", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		t.Fatalf("metadata %s: found %v, err %v", topic, ok, td.Err)
	}
	return td.ID
}

// topicConfigs returns a stream's described configs by name.
func topicConfigs(t testing.TB, ctx context.Context, adm *kadm.Client, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("DescribeTopicConfigs %s: %v / %v (%s)", topic, err, rc.Err, rc.ErrMessage)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}

func ptr(s string) *string { return &s }

// rawConn is a bare TCP connection to the Kafka port: tests write frames by
// hand and read answers without any client library in between.
type rawConn struct {
	t    testing.TB
	nc   net.Conn
	corr int32
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	r.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// readFrame reads one size-prefixed frame and returns its correlation id and
// the rest of it.
func (r *rawConn) readFrame(wait time.Duration) (int32, []byte, error) {
	r.nc.SetReadDeadline(time.Now().Add(wait))
	var size [4]byte
	if _, err := io.ReadFull(r.nc, size[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		return 0, nil, fmt.Errorf("response frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.nc, body); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(body)), body[4:], nil
}

// request sends req at version and returns the decoded response.
func (r *rawConn) request(req kmsg.Request, version int16) kmsg.Response {
	r.t.Helper()
	req.SetVersion(version)
	r.corr++
	corr := r.corr
	r.write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("braid-e2e")).AppendRequest(nil, req, corr))
	gotCorr, body, err := r.readFrame(10 * time.Second)
	if err != nil {
		r.t.Fatalf("%s v%d: read response: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	if gotCorr != corr {
		r.t.Fatalf("%s v%d: correlation id %d, want %d", kmsg.NameForKey(req.Key()), version, gotCorr, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && req.Key() != 18 { // response header v1: skip its tags
		body = skipTags(r.t, body)
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("%s v%d: decode response: %v", kmsg.NameForKey(req.Key()), version, err)
	}
	return resp
}

func skipTags(t testing.TB, b []byte) []byte {
	t.Helper()
	n, l := binary.Uvarint(b)
	if l <= 0 {
		t.Fatalf("bad tag count in response header")
	}
	b = b[l:]
	for range n {
		_, l1 := binary.Uvarint(b)
		if l1 <= 0 {
			t.Fatalf("bad tag in response header")
		}
		size, l2 := binary.Uvarint(b[l1:])
		if l2 <= 0 || int(size) > len(b)-l1-l2 {
			t.Fatalf("bad tag size in response header")
		}
		b = b[l1+l2+int(size):]
	}
	return b
}
