package kafka

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/engine"
)

// requestFrame encodes a request body with a v1/v2 request header, as a
// client would (without the size prefix).
func requestFrame(req kmsg.Request, corr int32) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "fuzz"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

func newTestServer(t testing.TB) *Server {
	eng := openEngine(t, engine.Options{Dir: t.TempDir()})
	s := NewServer(eng, Options{AdvertisedHost: "127.0.0.1", AdvertisedPort: 9092, AutoCreateTopics: true,
		Logger: slog.New(slog.NewTextHandler(&lastLog, &slog.HandlerOptions{Level: slog.LevelError}))})
	return s
}

// lastLog keeps the test servers' latest error log line: a recovered panic
// is reported with its stack.
var lastLog lockedBuffer

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b[:0], p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// panics returns how many panics s's connections recovered from.
func panics(s *Server) float64 {
	var m dto.Metric
	if err := s.opts.Metrics.panics.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// FuzzRequest drives arbitrary bytes through the whole request path: header
// parsing, kmsg decoding, the handler against a real engine, and response
// encoding. Nothing may panic, not even a panic the connection recovers
// from; a request either fails to decode (the connection would be closed)
// or yields a response that encodes.
func FuzzRequest(f *testing.F) {
	for key, h := range handlers {
		for _, v := range []int16{h.min, h.max} {
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			f.Add(requestFrame(req, 1))
		}
	}
	f.Add(requestFrame(createTopicRequest(), 2))
	f.Add(requestFrame(produceRequest(validBatch()), 3))
	f.Add(requestFrame(fetchRequest(), 4))

	s := newTestServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		before := panics(s)
		defer func() {
			if panics(s) != before {
				t.Fatalf("the request caused a recovered panic: %s", lastLog.String())
			}
		}()
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		c := newConn(s, a, "pipe")
		p, err := c.handle(body)
		if err != nil || p == nil {
			return
		}
		resp := p.resp
		if p.later != nil {
			// End long polls and durability waits at once: only the path
			// matters here, not the wait.
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			c.ctx = ctx
			resp = c.runLater(*p)
		}
		if resp != nil {
			resp.SetVersion(p.version)
			resp.AppendTo(nil)
		}
	})
}

// validBatch returns one uncompressed RecordBatch v2 with two records.
func validBatch() []byte {
	var recs []byte
	for i := range 2 {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Key, r.Value = []byte("k"), []byte("value")
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	rb := kmsg.NewRecordBatch()
	rb.Magic, rb.LastOffsetDelta, rb.NumRecords = 2, 1, 2
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.Records = recs
	raw := rb.AppendTo(nil)
	rb.Length = int32(len(raw) - 12)
	raw = rb.AppendTo(nil)
	crc := crcOf(raw[21:])
	binary.BigEndian.PutUint32(raw[17:], crc)
	return raw
}

// TestFuzzSeedsAreMeaningful checks that the fuzz seeds reach the deep paths:
// the topic is created and the produced batch is accepted and fetched.
func TestFuzzSeedsAreMeaningful(t *testing.T) {
	s := newTestServer(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := newConn(s, a, "pipe")
	run := func(req kmsg.Request) kmsg.Response {
		p, err := c.handle(requestFrame(req, 1))
		if err != nil {
			t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
		}
		if p.later != nil {
			return p.later()
		}
		return p.resp
	}
	if code := run(createTopicRequest()).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create topic: code %d", code)
	}
	prod := produceRequest(validBatch())
	pr := run(prod).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if pr.ErrorCode != 0 || pr.BaseOffset != 0 {
		t.Fatalf("produce: code %d base %d", pr.ErrorCode, pr.BaseOffset)
	}
	// A corrupted copy is refused and changes nothing.
	bad := validBatch()
	bad[len(bad)-1] ^= 1
	if code := run(produceRequest(bad)).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 2 { // CORRUPT_MESSAGE
		t.Fatalf("corrupt batch: code %d, want 2", code)
	}
	fr := run(fetchRequest()).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if fr.ErrorCode != 0 || fr.HighWatermark != 2 || len(fr.RecordBatches) != len(validBatch()) {
		t.Fatalf("fetch: code %d hw %d %d bytes", fr.ErrorCode, fr.HighWatermark, len(fr.RecordBatches))
	}
}

// The seed requests: create stream "fz", produce a batch to it, fetch it.

func createTopicRequest() *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(5)
	topic := kmsg.NewCreateTopicsRequestTopic()
	topic.Topic, topic.NumPartitions, topic.ReplicationFactor = "fz", 2, 1
	req.Topics = append(req.Topics, topic)
	return req
}

func produceRequest(records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "fz"
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = records
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

func fetchRequest() *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	t := kmsg.NewFetchRequestTopic()
	t.Topic = "fz"
	p := kmsg.NewFetchRequestTopicPartition()
	p.PartitionMaxBytes = 1 << 20
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	req.MaxBytes = 1 << 20
	return req
}
