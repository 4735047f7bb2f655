package crashtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// resender is an idempotent producer spoken in raw Produce requests, so
// that the test decides when a batch is resent: it writes one batch of
// keyed records to partition 0 (closed after the first reshard, so routed)
// just before each kill, and resends it, byte for byte, after the
// restart, as a client that lost the answer does. The resend must be
// answered as a duplicate: the batch's sequence note, which lives in the
// shard addressed even though its records went elsewhere, must come back
// from the log (or a checkpoint) after the crash.
type resender struct {
	stream string
	pid    int64
	epoch  int16
	seq    int32
	keySeq []int
	last   []byte // the last batch sent and acknowledged
}

func newResender(t *testing.T, ctx context.Context, proc *braidtest.Proc, stream string) *resender {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	resp, err := req.RequestWith(ctx, proc.Client())
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		t.Fatalf("init producer id: %v", err)
	}
	return &resender{stream: stream, pid: resp.ProducerID, epoch: resp.ProducerEpoch, keySeq: make([]int, 8)}
}

// send writes the next batch (acks=all); its values go to the ledger once
// acknowledged.
func (r *resender) send(t *testing.T, ctx context.Context, proc *braidtest.Proc, led *keyLedger) {
	t.Helper()
	var vals []string
	var recs []kmsg.Record
	for k := range r.keySeq {
		key := fmt.Sprintf("raw-k%d", k)
		val := fmt.Sprintf("%s#%d", key, r.keySeq[k])
		r.keySeq[k]++
		vals = append(vals, val)
		recs = append(recs, kmsg.Record{OffsetDelta: int32(k), Key: []byte(key), Value: []byte(val + ";raw")})
	}
	b := keyedBatch(r.pid, r.epoch, r.seq, recs)
	r.seq += int32(len(recs))
	if code := r.produce(t, ctx, proc, b); code != 0 {
		t.Fatalf("raw idempotent produce: %v", kerr.ErrorForCode(code))
	}
	led.mu.Lock()
	for _, v := range vals {
		led.acked[v] = true
	}
	led.mu.Unlock()
	r.last = b
}

// resend sends the last batch again; it must be a duplicate (error 0,
// nothing written: verifyKeyed finds any value written twice).
func (r *resender) resend(t *testing.T, ctx context.Context, proc *braidtest.Proc) {
	t.Helper()
	if r.last == nil {
		return
	}
	if code := r.produce(t, ctx, proc, r.last); code != 0 {
		t.Errorf("resend of an acknowledged idempotent batch after the restart: %v, want it taken as a duplicate", kerr.ErrorForCode(code))
	}
}

func (r *resender) produce(t *testing.T, ctx context.Context, proc *braidtest.Proc, b []byte) int16 {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = r.stream
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	cl := proc.Client(kgo.RequestRetries(0))
	defer cl.Close()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("raw produce: %v", err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// keyedBatch encodes an uncompressed idempotent RecordBatch v2.
func keyedBatch(pid int64, epoch int16, seq int32, recs []kmsg.Record) []byte {
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(len(recs) - 1), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(len(recs))}
	for _, rec := range recs {
		body := rec.AppendTo(nil)[1:] // encoded with Length 0: one varint byte
		rec.Length = int32(len(body))
		rb.Records = rec.AppendTo(rb.Records)
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
