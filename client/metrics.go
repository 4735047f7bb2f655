package client

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Metrics: callbacks and counters, so that any metrics library can be
// plugged in (docs/sdk.md shows Prometheus in a few lines) without this
// module depending on one.
//
// Hooks run on the producer's or consumer's own goroutines, in the path of
// every record: keep them short and non-blocking (incrementing a counter
// or observing a histogram is fine), and do not call the producer's or
// consumer's Flush, Commit or Close from them. No hook runs once Close has
// returned.

// ProducerHooks are optional callbacks about a Producer's records. Any of
// them may be nil.
type ProducerHooks struct {
	// OnProduced is called once for each record acknowledged by the
	// server: from Produce or ProduceAsync when its outcome is known,
	// and for each record of a ProduceBatch once the batch committed.
	// bytes counts key, value and header keys and values; latency runs
	// from the hand-off to the producer to the acknowledgement (for a
	// batch: to the commit).
	OnProduced func(stream string, shard int32, bytes int, latency time.Duration)
	// OnProduceError is called once for each record that was handed to
	// the producer and failed, with the error its caller gets, and
	// once per record of a failed ProduceBatch. Calls refused before
	// the hand-off (ErrClosed, ErrNilRecord, ErrNoStream,
	// ErrBatchTooLarge) only return their error.
	OnProduceError func(stream string, err error)
}

// WithProducerHooks sets callbacks about produced records (see
// ProducerHooks). Default: none.
func WithProducerHooks(h ProducerHooks) ProducerOption {
	return func(c *producerConfig) { c.hooks = h }
}

// ProducerStats is a snapshot of a Producer's counters (Producer.Stats).
type ProducerStats struct {
	// BufferedRecords and BufferedBytes are the records (and their
	// bytes) handed to the producer and not yet acknowledged or failed,
	// including callers blocked on a full buffer; they are bounded by
	// WithMaxBufferedRecords and WithMaxBufferedBytes.
	BufferedRecords int64
	BufferedBytes   int64
	// Produced and ProducedBytes count acknowledged records since
	// NewProducer (ProduceBatch's once committed); Errors counts failed
	// records, as ProducerHooks does.
	Produced      int64
	ProducedBytes int64
	Errors        int64
}

// producerMetrics holds a Producer's counters and gates its hooks.
type producerMetrics struct {
	hooks         ProducerHooks
	produced      atomic.Int64
	producedBytes atomic.Int64
	errors        atomic.Int64

	// mu makes Close wait for hooks that are running, and off stops
	// later ones: no hook runs after Close returns.
	mu  sync.RWMutex
	off bool
}

func (m *producerMetrics) timed() bool { return m.hooks.OnProduced != nil }

// start is when a record was handed over; zero when no hook needs it.
func (m *producerMetrics) start() time.Time {
	if m.timed() {
		return time.Now()
	}
	return time.Time{}
}

// record counts one record's outcome (err as its caller gets it).
func (m *producerMetrics) record(stream string, shard int32, bytes int, start time.Time, err error) {
	if err != nil {
		m.errors.Add(1)
	} else {
		m.produced.Add(1)
		m.producedBytes.Add(int64(bytes))
	}
	if m.hooks.OnProduced == nil && m.hooks.OnProduceError == nil {
		return
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	switch {
	case m.off:
	case err != nil && m.hooks.OnProduceError != nil:
		m.hooks.OnProduceError(stream, err)
	case err == nil && m.hooks.OnProduced != nil:
		m.hooks.OnProduced(stream, shard, bytes, time.Since(start))
	}
}

// stop returns once no hook is running; none runs after it.
func (m *producerMetrics) stop() {
	m.mu.Lock()
	m.off = true
	m.mu.Unlock()
}

// recordBytes is the size of r as ProducerHooks reports it.
func recordBytes(r *Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// kgoRecordBytes is the size ProducerHooks and ConsumerHooks report.
func kgoRecordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// Stats returns the producer's counters. It may be called at any time,
// also after Close (the buffer is then empty).
func (p *Producer) Stats() ProducerStats {
	s := ProducerStats{
		Produced:      p.metrics.produced.Load(),
		ProducedBytes: p.metrics.producedBytes.Load(),
		Errors:        p.metrics.errors.Load(),
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		s.BufferedRecords = p.cl.BufferedProduceRecords()
		s.BufferedBytes = p.cl.BufferedProduceBytes()
	}
	return s
}

// ConsumerHooks are optional callbacks about a Consumer's messages and
// commits. Any of them may be nil.
type ConsumerHooks struct {
	// OnConsumed is called after the handler returned nil for a batch,
	// once for each stream shard in it, with the number of its
	// messages, their bytes (key, value, header keys and values) and
	// how long the handler call took.
	OnConsumed func(stream string, shard int32, records int, bytes int, handlerLatency time.Duration)
	// OnHandlerError is called when the handler returned an error for a
	// batch of records messages (they will be handed out again).
	OnHandlerError func(records int, err error)
	// OnCommit is called after each commit: the periodic ones that had
	// something to commit, and every Commit call, revoke and Close
	// commit; err is nil when every offset was committed.
	OnCommit func(err error)
}

// WithConsumerHooks sets callbacks about consumed messages and commits
// (see ConsumerHooks). Default: none. Applies to Consumer.
func WithConsumerHooks(h ConsumerHooks) ConsumerOption {
	return func(c *consumerConfig) { c.hooks = h }
}

// ConsumerStats is a snapshot of a Consumer's counters (Consumer.Stats).
type ConsumerStats struct {
	// BufferedRecords and BufferedBytes are fetched and not yet handed
	// to the handler (the read-ahead, bounded by
	// WithMaxConcurrentFetches and WithFetchMaxBytes).
	BufferedRecords int64
	BufferedBytes   int64
	// Consumed and ConsumedBytes count messages the handler returned
	// nil for since NewConsumer (a message handed out again after a
	// failure counts again); HandlerErrors counts failed handler calls.
	Consumed      int64
	ConsumedBytes int64
	HandlerErrors int64
	// Commits and CommitErrors count commits as ConsumerHooks.OnCommit
	// sees them.
	Commits      int64
	CommitErrors int64
}

type consumerMetrics struct {
	hooks         ConsumerHooks
	consumed      atomic.Int64
	consumedBytes atomic.Int64
	handlerErrors atomic.Int64
	commits       atomic.Int64
	commitErrors  atomic.Int64

	mu  sync.RWMutex // as producerMetrics.mu
	off bool
}

// handled counts a batch the handler returned from after took.
func (m *consumerMetrics) handled(recs []*kgo.Record, took time.Duration, err error) {
	if err != nil {
		m.handlerErrors.Add(1)
		if m.hooks.OnHandlerError != nil {
			m.mu.RLock()
			defer m.mu.RUnlock()
			if !m.off {
				m.hooks.OnHandlerError(len(recs), err)
			}
		}
		return
	}
	// kgo returns one shard's records together: count runs.
	total := 0
	for i := 0; i < len(recs); {
		j, bytes := i, 0
		for ; j < len(recs) && recs[j].Partition == recs[i].Partition && recs[j].Topic == recs[i].Topic; j++ {
			bytes += kgoRecordBytes(recs[j])
		}
		total += bytes
		if m.hooks.OnConsumed != nil {
			m.mu.RLock()
			if !m.off {
				m.hooks.OnConsumed(recs[i].Topic, recs[i].Partition, j-i, bytes, took)
			}
			m.mu.RUnlock()
		}
		i = j
	}
	m.consumed.Add(int64(len(recs)))
	m.consumedBytes.Add(int64(total))
}

func (m *consumerMetrics) committed(err error) {
	m.commits.Add(1)
	if err != nil {
		m.commitErrors.Add(1)
	}
	if m.hooks.OnCommit != nil {
		m.mu.RLock()
		defer m.mu.RUnlock()
		if !m.off {
			m.hooks.OnCommit(err)
		}
	}
}

func (m *consumerMetrics) stop() {
	m.mu.Lock()
	m.off = true
	m.mu.Unlock()
}

// Stats returns the consumer's counters. It may be called at any time,
// also after Close (the read-ahead is then empty).
func (c *Consumer) Stats() ConsumerStats {
	s := ConsumerStats{
		Consumed:      c.metrics.consumed.Load(),
		ConsumedBytes: c.metrics.consumedBytes.Load(),
		HandlerErrors: c.metrics.handlerErrors.Load(),
		Commits:       c.metrics.commits.Load(),
		CommitErrors:  c.metrics.commitErrors.Load(),
	}
	if !c.life.isClosed() {
		s.BufferedRecords = c.cl.BufferedFetchRecords()
		s.BufferedBytes = c.cl.BufferedFetchBytes()
	}
	return s
}
