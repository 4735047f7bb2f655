package bench

import (
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BatchCounts is what the producers sent during the produce phase, as
// franz-go reports it: produce requests written and record batches the
// broker acknowledged, with their records and bytes. The node's cost
// depends on batches as much as on bytes: at many partitions a request
// carries few records per partition, whatever the client's buffer.
type BatchCounts struct {
	Requests int64 `json:"requests"`
	Batches  int64 `json:"batches"`
	Records  int64 `json:"records"`
	// Bytes are the batches' record bytes before compression, without
	// the batch headers.
	Bytes int64 `json:"bytes"`
}

// RecordsPerBatch is the mean records per acknowledged batch (0 if none).
func (c BatchCounts) RecordsPerBatch() float64 {
	if c.Batches == 0 {
		return 0
	}
	return float64(c.Records) / float64(c.Batches)
}

// BatchesPerRequest is the mean batches per produce request (0 if none).
func (c BatchCounts) BatchesPerRequest() float64 {
	if c.Requests == 0 {
		return 0
	}
	return float64(c.Batches) / float64(c.Requests)
}

// batchHook counts through franz-go's hooks; one serves every producer.
type batchHook struct {
	requests, batches, records, bytes atomic.Int64
}

var (
	_ kgo.HookBrokerWrite         = (*batchHook)(nil)
	_ kgo.HookProduceBatchWritten = (*batchHook)(nil)
)

func (h *batchHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == int16(kmsg.Produce) && err == nil {
		h.requests.Add(1)
	}
}

func (h *batchHook) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h.batches.Add(1)
	h.records.Add(int64(m.NumRecords))
	h.bytes.Add(int64(m.UncompressedBytes))
}

func (h *batchHook) counts() BatchCounts {
	return BatchCounts{Requests: h.requests.Load(), Batches: h.batches.Load(), Records: h.records.Load(), Bytes: h.bytes.Load()}
}

// since is c minus an earlier reading.
func (c BatchCounts) since(before BatchCounts) BatchCounts {
	return BatchCounts{Requests: c.Requests - before.Requests, Batches: c.Batches - before.Batches,
		Records: c.Records - before.Records, Bytes: c.Bytes - before.Bytes}
}
