package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// The connection-layer tests drive a real server over raw TCP: stalled and
// trickling clients, connection limits, idle connections, and the order in
// which pipelined answers leave the server.

// stalledClient dials addr and sends only a size prefix announcing size
// bytes, then the first n bytes of that body, and nothing more.
func stalledClient(t testing.TB, addr string, size, n int) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(binary.BigEndian.AppendUint32(nil, uint32(size))); err != nil {
		t.Fatalf("write size: %v", err)
	}
	if n > 0 {
		go nc.Write(make([]byte, n)) // may block until the server reads; the cleanup ends it
	}
	return nc
}

// closedWithin fails t unless the server closes nc within d (EOF or reset,
// with no answer).
func closedWithin(t testing.TB, nc net.Conn, d time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	nc.SetReadDeadline(began.Add(d))
	var b [1]byte
	n, err := nc.Read(b[:])
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %s", d)
	}
	if n > 0 || err == nil {
		t.Fatalf("server answered a request that never arrived whole")
	}
	return time.Since(began)
}

// waitMetric polls /metrics until ok accepts name's value.
func waitMetric(t testing.TB, ctx context.Context, p *braidtest.Proc, name string, ok func(float64) bool, labels ...string) float64 {
	t.Helper()
	for {
		v := scrapeMetrics(t, ctx, p).must(t, name, labels...)
		if ok(v) {
			return v
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s%v stayed at %v", name, labels, v)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestStalledRequestsDoNotHoldMemory: clients that announce a 100 MiB request
// and send nothing make the server allocate next to nothing, do not stop a
// normal producer and consumer, and are dropped after the request timeout.
func TestStalledRequestsDoNotHoldMemory(t *testing.T) {
	p := braidtest.Start(t, "--request-timeout", "5s")
	ctx := testCtx(t, 60*time.Second)
	const topic = "stalled"
	createStream(t, ctx, newAdmin(t, p), topic, 1, nil)

	const clients = 20
	var conns []net.Conn
	for range clients {
		conns = append(conns, stalledClient(t, p.KafkaAddr, 100<<20, 0))
	}
	began := time.Now()
	// Every prefix has arrived once each connection holds its first chunk.
	held := waitMetric(t, ctx, p, "braid_kafka_request_bytes", func(v float64) bool { return v >= clients*64<<10 })

	// A normal producer and consumer go on working meanwhile.
	prod := newProducer(t, p)
	var recs []*kgo.Record
	for i := range 50 {
		recs = append(recs, &kgo.Record{Topic: topic, Value: []byte("v" + strconv.Itoa(i))})
	}
	produce(t, ctx, prod, recs...)
	got := consume(t, ctx, p, topic, 0, kgo.NewOffset().AtStart(), len(recs))
	checkRecords(t, got, recs, false)
	if time.Since(began) > 4*time.Second { // before the stalled clients are dropped
		t.Errorf("produce and consume took %s next to stalled clients", time.Since(began))
	}

	s := scrapeMetrics(t, ctx, p)
	heap := s.must(t, "go_memstats_heap_alloc_bytes")
	t.Logf("%d clients announcing 100 MiB each: request bytes held %.0f, Go heap %.1f MiB", clients, held, heap/(1<<20))
	if held > clients*64<<10 {
		t.Errorf("request bytes held %.0f, want at most %d (one first chunk each)", held, clients*64<<10)
	}
	if heap > 256<<20 {
		t.Errorf("Go heap is %.0f MiB with %d stalled 100 MiB requests: buffers allocated before the bytes arrived", heap/(1<<20), clients)
	}

	for i, nc := range conns {
		if d := closedWithin(t, nc, 10*time.Second); i == 0 {
			t.Logf("first stalled client closed %s after the check", d)
		}
	}
	if d := time.Since(began); d < 4*time.Second {
		t.Errorf("stalled clients closed after %s, before the 5s request timeout", d)
	}
	waitMetric(t, ctx, p, "braid_kafka_slow_connections_closed_total", func(v float64) bool { return v == clients })
	waitMetric(t, ctx, p, "braid_kafka_request_bytes", func(v float64) bool { return v == 0 })
}

// TestDeliveredSizeTakenAtOnce: a request no larger than one the connection
// has already sent whole is taken from the budget in one step (no buffer
// regrown and copied as it arrives); a larger one, or one on a connection
// that has sent nothing yet, still gets only a first chunk before its bytes
// arrive.
func TestDeliveredSizeTakenAtOnce(t *testing.T) {
	p := braidtest.Start(t, "--request-timeout", "3s")
	ctx := testCtx(t, 30*time.Second)
	deliver := func() *rawConn {
		c := dialRaw(t, p.KafkaAddr)
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = strings.Repeat("a", 1<<20), "1.0"
		if resp := c.request(req, 3).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
			t.Fatalf("ApiVersions: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		return c
	}
	same, larger := deliver(), deliver()
	waitMetric(t, ctx, p, "braid_kafka_request_bytes", func(v float64) bool { return v == 0 })
	same.write(binary.BigEndian.AppendUint32(nil, 1<<20))   // under the 1 MiB + header it sent
	larger.write(binary.BigEndian.AppendUint32(nil, 4<<20)) // more than it sent
	fresh := stalledClient(t, p.KafkaAddr, 1<<20, 0)        // sent nothing yet
	const want = 1<<20 + 2*64<<10
	waitMetric(t, ctx, p, "braid_kafka_request_bytes", func(v float64) bool { return v >= want })
	time.Sleep(200 * time.Millisecond)
	if v := scrapeMetrics(t, ctx, p).must(t, "braid_kafka_request_bytes"); v != want {
		t.Errorf("request bytes held %.0f, want %d: 1 MiB at once for the size delivered before, a first chunk for the others", v, want)
	}
	for _, nc := range []net.Conn{same.nc, larger.nc, fresh} {
		closedWithin(t, nc, 10*time.Second)
	}
	waitMetric(t, ctx, p, "braid_kafka_request_bytes", func(v float64) bool { return v == 0 })
}

// TestQueuedRequestBytesBounded: request bytes held by all connections stay
// within --queued-max-request-bytes while clients send large requests and
// stall halfway; a reader over the budget waits instead of allocating.
func TestQueuedRequestBytesBounded(t *testing.T) {
	p := braidtest.Start(t, "--max-request-bytes", "1048576", "--queued-max-request-bytes", "2097152", "--request-timeout", "2s")
	ctx := testCtx(t, 60*time.Second)
	for range 5 {
		stalledClient(t, p.KafkaAddr, 1<<20, 900<<10)
	}
	// Two connections fill the budget with their whole 1 MiB buffers.
	waitMetric(t, ctx, p, "braid_kafka_request_bytes", func(v float64) bool { return v >= 2<<20-64<<10 })
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if v := scrapeMetrics(t, ctx, p).must(t, "braid_kafka_request_bytes"); v > 2<<20 {
			t.Fatalf("request bytes held %.0f, over the 2 MiB budget", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Once they are dropped for stalling, everything is given back.
	waitMetric(t, ctx, p, "braid_kafka_request_bytes", func(v float64) bool { return v == 0 })
}

// TestConnectionLimits: connections past --max-connections-per-ip and
// --max-connections are closed at once; closing one makes room again.
func TestConnectionLimits(t *testing.T) {
	p := braidtest.Start(t, "--max-connections", "4", "--max-connections-per-ip", "2")
	ctx := testCtx(t, 30*time.Second)
	_, port, _ := net.SplitHostPort(p.KafkaAddr)
	from := func(ip string) *rawConn {
		t.Helper()
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		nc, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			t.Fatalf("dial from %s: %v", ip, err)
		}
		t.Cleanup(func() { nc.Close() })
		return &rawConn{t: t, nc: nc}
	}
	works := func(c *rawConn) {
		t.Helper()
		req := kmsg.NewPtrApiVersionsRequest()
		req.ClientSoftwareName, req.ClientSoftwareVersion = "braid-e2e", "1.0"
		if resp := c.request(req, 3).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
			t.Fatalf("ApiVersions: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
	}
	refused := func(c *rawConn) {
		t.Helper()
		closedWithin(t, c.nc, 5*time.Second)
	}
	a1, a2 := from("127.0.0.1"), from("127.0.0.1")
	works(a1)
	works(a2)
	refused(from("127.0.0.1")) // third from one IP
	b1, b2 := from("127.0.0.2"), from("127.0.0.2")
	works(b1)
	works(b2)
	refused(from("127.0.0.3")) // fifth in all
	waitMetric(t, ctx, p, "braid_kafka_refused_connections_total", func(v float64) bool { return v == 2 })

	// The broker's configs show the limits under Kafka's names.
	dreq := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
	dr.ConfigNames = []string{"max.connections", "max.connections.per.ip"}
	dreq.Resources = append(dreq.Resources, dr)
	dresp := b1.request(dreq, 4).(*kmsg.DescribeConfigsResponse)
	got := map[string]string{}
	for _, cfg := range dresp.Resources[0].Configs {
		got[cfg.Name] = *cfg.Value
	}
	if got["max.connections"] != "4" || got["max.connections.per.ip"] != "2" {
		t.Errorf("broker configs %v, want max.connections 4 and max.connections.per.ip 2", got)
	}

	a1.nc.Close()
	waitMetric(t, ctx, p, "braid_kafka_connections", func(v float64) bool { return v == 3 })
	works(from("127.0.0.1"))
	works(a2)
}

// TestIdleConnectionsClosed: a connection with nothing in flight is closed
// after --connections-max-idle; one waiting on a long poll is not.
func TestIdleConnectionsClosed(t *testing.T) {
	p := braidtest.Start(t, "--connections-max-idle", "1s")
	ctx := testCtx(t, 30*time.Second)
	const topic = "idle"
	createStream(t, ctx, newAdmin(t, p), topic, 1, nil)

	// A long poll of 3s outlives the idle time: the answer still comes.
	c := dialRaw(t, p.KafkaAddr)
	req := fetchReq(topic, 3000, 1, 1<<20, 1<<20)
	began := time.Now()
	resp := c.request(req, 12).(*kmsg.FetchResponse)
	if waited := time.Since(began); waited < 2500*time.Millisecond {
		t.Fatalf("long poll answered after %s, want about 3s", waited)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("fetch: %v", kerr.ErrorForCode(code))
	}
	// Then, idle, it is closed after about 1s.
	if d := closedWithin(t, c.nc, 5*time.Second); d < 500*time.Millisecond {
		t.Fatalf("idle connection closed after %s, want about 1s", d)
	}
	waitMetric(t, ctx, p, "braid_kafka_idle_connections_closed_total", func(v float64) bool { return v >= 1 })
}

// pipeline writes reqs (at their versions) in one write and returns the
// decoded responses in order, failing t if one takes longer than wait.
func pipeline(t testing.TB, c *rawConn, wait time.Duration, reqs ...kmsg.Request) []kmsg.Response {
	t.Helper()
	var frames []byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("braid-e2e"))
	first := c.corr + 1
	for _, r := range reqs {
		c.corr++
		// AppendRequest does not append past an earlier frame in dst.
		frames = append(frames, f.AppendRequest(nil, r, c.corr)...)
	}
	c.write(frames)
	var out []kmsg.Response
	for i, r := range reqs {
		corr, body, err := c.readFrame(wait)
		if err != nil {
			t.Fatalf("response %d (%s): %v", i, kmsg.NameForKey(r.Key()), err)
		}
		if corr != first+int32(i) {
			t.Fatalf("response %d: correlation id %d, want %d", i, corr, first+int32(i))
		}
		resp := r.ResponseKind()
		resp.SetVersion(r.GetVersion())
		if resp.IsFlexible() && r.Key() != 18 {
			body = skipTags(t, body)
		}
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("decode %s: %v", kmsg.NameForKey(r.Key()), err)
		}
		out = append(out, resp)
	}
	return out
}

func offsetCommitReq(group, topic string, offset int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(8)
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset, rp.LeaderEpoch = offset, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestPipelinedOffsetCommitThenFetch: an OffsetFetch written right behind an
// OffsetCommit on one connection sees that commit.
func TestPipelinedOffsetCommitThenFetch(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	const topic = "pipelined"
	createStream(t, ctx, newAdmin(t, p), topic, 1, nil)
	c := dialRaw(t, p.KafkaAddr)
	began := time.Now()
	defer func() { t.Logf("5 pipelined rounds took %s", time.Since(began)) }()
	for i := range int64(5) {
		fetch := kmsg.NewPtrOffsetFetchRequest()
		fetch.SetVersion(7)
		fetch.Group = "g-pipelined"
		ft := kmsg.NewOffsetFetchRequestTopic()
		ft.Topic, ft.Partitions = topic, []int32{0}
		fetch.Topics = append(fetch.Topics, ft)
		resps := pipeline(t, c, 10*time.Second, offsetCommitReq("g-pipelined", topic, 100+i), fetch)
		if code := resps[0].(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("commit: %v", kerr.ErrorForCode(code))
		}
		got := resps[1].(*kmsg.OffsetFetchResponse).Topics[0].Partitions[0]
		if got.ErrorCode != 0 || got.Offset != 100+i {
			t.Fatalf("round %d: OffsetFetch behind OffsetCommit(%d) answered offset %d (%v)", i, 100+i, got.Offset, kerr.ErrorForCode(got.ErrorCode))
		}
	}
}

// TestFinishedAnswerNotHeldBehindLongPoll: an answer that is ready goes out
// at once even when a long-poll Fetch follows it on the same connection.
func TestFinishedAnswerNotHeldBehindLongPoll(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	const topic = "held"
	createStream(t, ctx, newAdmin(t, p), topic, 1, nil)
	c := dialRaw(t, p.KafkaAddr)

	fetch := fetchReq(topic, 5000, 1, 1<<20, 1<<20)

	// The commit's answer waits for an fsync, so the long poll is queued
	// behind it by the time it is ready.
	var frames []byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("braid-e2e"))
	frames = append(frames, f.AppendRequest(nil, offsetCommitReq("g-held", topic, 7), 1)...)
	frames = append(frames, f.AppendRequest(nil, fetch, 2)...)
	began := time.Now()
	c.write(frames)
	corr, _, err := c.readFrame(2 * time.Second)
	if err != nil {
		t.Fatalf("OffsetCommit answer not out within 2s while a 5s long poll waits behind it: %v", err)
	}
	if corr != 1 {
		t.Fatalf("first answer has correlation id %d, want 1", corr)
	}
	t.Logf("OffsetCommit answered after %s", time.Since(began))
	if corr, _, err = c.readFrame(10 * time.Second); err != nil || corr != 2 {
		t.Fatalf("long poll answer: corr %d, %v", corr, err)
	}
	if d := time.Since(began); d < 4*time.Second {
		t.Fatalf("long poll answered after %s, want its 5s max wait", d)
	}
}

// TestFetchUnknownPartitionsAnswersAtOnce: a Fetch whose partitions all carry
// errors is answered at once, not after its max wait.
func TestFetchUnknownPartitionsAnswersAtOnce(t *testing.T) {
	p := braidtest.Start(t)
	c := dialRaw(t, p.KafkaAddr)
	for _, v := range []int16{12, 16} {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 10000, 1, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = "no-such-topic", [16]byte{1, 2, 3}
		for part := range int32(2) {
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.PartitionMaxBytes = part, 1<<20
			ft.Partitions = append(ft.Partitions, fp)
		}
		req.Topics = append(req.Topics, ft)
		began := time.Now()
		resp := c.request(req, v).(*kmsg.FetchResponse)
		if d := time.Since(began); d > 2*time.Second {
			t.Errorf("Fetch v%d of unknown partitions answered after %s (max wait 10s)", v, d)
		}
		want := kerr.UnknownTopicOrPartition.Code
		if v >= 13 {
			want = kerr.UnknownTopicID.Code
		}
		for _, rp := range resp.Topics[0].Partitions {
			if rp.ErrorCode != want {
				t.Errorf("Fetch v%d partition %d: %v, want %v", v, rp.Partition, kerr.ErrorForCode(rp.ErrorCode), kerr.ErrorForCode(want))
			}
		}
	}
}

// batchSizes splits a record set into its batches' sizes.
func batchSizes(t testing.TB, b []byte) []int {
	t.Helper()
	var sizes []int
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("truncated batch header")
		}
		n := 12 + int(binary.BigEndian.Uint32(b[8:12]))
		if n > len(b) {
			t.Fatalf("batch of %d bytes, %d left", n, len(b))
		}
		sizes = append(sizes, n)
		b = b[n:]
	}
	return sizes
}

// TestFetchResponseCappedByServer: --fetch-max-bytes caps a response whatever
// the client asks, and a first batch larger than the cap still comes whole.
func TestFetchResponseCappedByServer(t *testing.T) {
	const capBytes = 100_000
	p := braidtest.Start(t, "--fetch-max-bytes", strconv.Itoa(capBytes))
	ctx := testCtx(t, 30*time.Second)
	const topic = "capped"
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, topic, 1, nil)
	id := topicID(t, ctx, adm, topic)
	prod := newProducer(t, p, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20))
	produce(t, ctx, prod, &kgo.Record{Topic: topic, Value: randomBytes(1, 150_000)})
	for i := range 10 {
		produce(t, ctx, prod, &kgo.Record{Topic: topic, Value: randomBytes(uint64(i+2), 30_000)})
	}
	for _, tc := range []struct {
		from    int64
		batches int
	}{{0, 1}, {1, 3}} {
		got := fetchRaw(t, ctx, prod, topic, id, 0, tc.from)
		sizes := batchSizes(t, got.RecordBatches)
		total := len(got.RecordBatches)
		t.Logf("fetch from %d asking for 1 MiB: %d batches, %d bytes", tc.from, len(sizes), total)
		if len(sizes) != tc.batches {
			t.Errorf("fetch from %d: %d batches (%v), want %d under the %d-byte cap", tc.from, len(sizes), sizes, tc.batches, capBytes)
		}
		if len(sizes) > 1 && total > capBytes {
			t.Errorf("fetch from %d: %d bytes, over the %d-byte cap", tc.from, total, capBytes)
		}
	}
}

// TestLongPollReadsOnce: a long poll woken by many small commits reads the
// records once, when it answers, not again on every wake-up.
func TestLongPollReadsOnce(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	const topic = "longpoll"
	createStream(t, ctx, newAdmin(t, p), topic, 1, nil)
	c := dialRaw(t, p.KafkaAddr)
	req := fetchReq(topic, 4000, 50<<20, 50<<20, 50<<20)

	prod := newProducer(t, p, kgo.ProducerBatchCompression(kgo.NoCompression()))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // 60 commits of about 5 KB during the poll
		defer wg.Done()
		time.Sleep(200 * time.Millisecond)
		for i := range 60 {
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: randomBytes(uint64(i), 5000)}).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	resp := c.request(req, 12).(*kmsg.FetchResponse)
	wg.Wait()
	answered := len(resp.Topics[0].Partitions[0].RecordBatches)
	read := scrapeMetrics(t, ctx, p).must(t, "braid_fetched_bytes_total", "stream", topic)
	t.Logf("one 4s long poll: answered %d record bytes, read %.0f bytes", answered, read)
	if answered < 100_000 {
		t.Fatalf("long poll answered %d bytes; the producer did not run during it", answered)
	}
	if read != float64(answered) {
		t.Errorf("the long poll read %.0f record bytes to answer %d: it re-read on wake-ups", read, answered)
	}
}

// TestClientNotReadingIsDropped: a client that pipelines fetches and never
// reads the answers is dropped after --request-timeout instead of pinning
// them in memory for ever.
func TestClientNotReadingIsDropped(t *testing.T) {
	p := braidtest.Start(t, "--request-timeout", "2s")
	ctx := testCtx(t, 60*time.Second)
	const topic = "not-reading"
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, topic, 1, nil)
	prod := newProducer(t, p, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(2<<20))
	produce(t, ctx, prod, &kgo.Record{Topic: topic, Value: randomBytes(1, 900_000)})
	prod.Close()
	adm.Close()
	waitMetric(t, ctx, p, "braid_kafka_connections", func(v float64) bool { return v == 0 })

	c := dialRaw(t, p.KafkaAddr)
	req := fetchReq(topic, 0, 1, 1<<20, 1<<20)
	var frames []byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("braid-e2e"))
	for corr := range int32(40) { // 36 MB of answers: far more than socket buffers hold
		frames = append(frames, f.AppendRequest(nil, req, corr)...)
	}
	c.write(frames)
	waitMetric(t, ctx, p, "braid_kafka_connections", func(v float64) bool { return v == 1 })
	began := time.Now()
	waitMetric(t, ctx, p, "braid_kafka_connections", func(v float64) bool { return v == 0 })
	t.Logf("connection that did not read its answers dropped after %s", time.Since(began))
}

// TestLongPollReadCommittedAcrossAbort: a read_committed long poll that
// collects records over several wake-ups must list every aborted
// transaction of what it answers, also one that began and aborted after the
// first read, so the client drops its records.
func TestLongPollReadCommittedAcrossAbort(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 30*time.Second)
	const topic = "longpoll-rc"
	createStream(t, ctx, newAdmin(t, p), topic, 1, nil)
	plain := newProducer(t, p, kgo.ProducerBatchCompression(kgo.NoCompression()))
	produce(t, ctx, plain, &kgo.Record{Topic: topic, Value: []byte("before")})

	c := dialRaw(t, p.KafkaAddr)
	req := fetchReq(topic, 3000, 50<<20, 50<<20, 50<<20)
	req.IsolationLevel = 1

	tx := txnProducer(t, p, "longpoll-rc-tx", kgo.ProducerBatchCompression(kgo.NoCompression()))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // during the poll: an aborted transaction, then a committed one
		defer wg.Done()
		time.Sleep(300 * time.Millisecond)
		for i, commit := range []kgo.TransactionEndTry{kgo.TryAbort, kgo.TryCommit} {
			if err := tx.BeginTransaction(); err != nil {
				t.Errorf("begin: %v", err)
				return
			}
			v := []byte(fmt.Sprintf("txn-%d-%v", i, bool(commit)))
			if err := tx.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: v}).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			if err := tx.EndTransaction(ctx, commit); err != nil {
				t.Errorf("end: %v", err)
				return
			}
			produce(t, ctx, plain, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("plain-%d", i))})
		}
	}()
	resp := c.request(req, 12).(*kmsg.FetchResponse)
	wg.Wait()
	fpr, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset: 0, IsolationLevel: kgo.ReadCommitted(), Topic: topic, Partition: 0,
	}, &resp.Topics[0].Partitions[0], kgo.DefaultDecompressor(), nil)
	if fpr.Err != nil {
		t.Fatal(fpr.Err)
	}
	var got []string
	for _, r := range fpr.Records {
		got = append(got, string(r.Value))
	}
	want := []string{"before", "plain-0", "txn-1-true", "plain-1"}
	if !slices.Equal(got, want) {
		t.Fatalf("read_committed long poll returned %q, want %q (aborted %v)", got, want, resp.Topics[0].Partitions[0].AbortedTransactions)
	}
}

// fetchReq is a Fetch (version 12 when encoded by hand) of partition 0 of
// topic from offset 0.
func fetchReq(topic string, maxWait, minBytes, maxBytes, partitionMaxBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, maxBytes
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = partitionMaxBytes
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	return req
}
