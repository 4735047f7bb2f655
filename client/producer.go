package client

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header is a record header: a key and a value.
type Header struct {
	Key   string
	Value []byte
}

// Record is one Braid record. There is no shard field: a record with a key
// goes to the shard the key routes to; one without a key goes where
// franz-go's default partitioner puts it.
type Record struct {
	Stream  string
	Key     []byte
	Value   []byte
	Headers []Header
}

// Result says where a delivered record landed.
type Result struct {
	Stream    string
	Shard     int32
	Offset    int64
	Timestamp time.Time
}

// Producer sends records to Braid streams. It is safe for concurrent use.
// Create one with NewProducer and Close it when done.
type Producer struct {
	cl *kgo.Client

	// mu orders Close against the calls that hand records to cl: a record
	// handed over before Close marked the producer closed is flushed by
	// Close; none is handed over after.
	mu     sync.RWMutex
	closed bool
}

// NewProducer returns a producer that finds the cluster through seeds
// (host:port of one or more Braid nodes' Kafka listeners). It connects
// lazily: an unreachable seed shows up as errors on produced records.
func NewProducer(seeds []string, opts ...ProducerOption) (*Producer, error) {
	if len(seeds) == 0 {
		return nil, fmt.Errorf("client: no seed addresses")
	}
	cfg := defaultProducerConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(cfg.kgoOptions(seeds)...)
	if err != nil {
		return nil, fmt.Errorf("client: new producer: %w", err)
	}
	return &Producer{cl: cl}, nil
}

func toKgo(ctx context.Context, r *Record) *kgo.Record {
	kr := &kgo.Record{Topic: r.Stream, Key: r.Key, Value: r.Value, Context: ctx}
	if len(r.Headers) > 0 {
		kr.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			kr.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return kr
}

func toResult(kr *kgo.Record) Result {
	return Result{Stream: kr.Topic, Shard: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp}
}

func checkRecord(r *Record) error {
	if r == nil {
		return ErrNilRecord
	}
	if r.Stream == "" {
		return &ProduceError{Err: ErrNoStream}
	}
	return nil
}

// enqueue hands r to the client unless the producer is closed; cb is called
// once with the outcome. It blocks while the buffer is full, until ctx is
// done.
func (p *Producer) enqueue(ctx context.Context, r *Record, cb func(*kgo.Record, error)) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	p.cl.Produce(ctx, toKgo(ctx, r), cb)
	return nil
}

// Produce sends r and returns when it is durable on the server (acks all:
// fsync'd), or with an error. Errors: ErrNilRecord, ErrClosed, or a
// *ProduceError (see the Err... variables). If ctx is done first, Produce
// returns an error matching ctx.Err(); a record already in flight by then
// may still be written.
func (p *Producer) Produce(ctx context.Context, r *Record) (Result, error) {
	if err := checkRecord(r); err != nil {
		return Result{}, err
	}
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1) // the callback never blocks
	err := p.enqueue(ctx, r, func(kr *kgo.Record, err error) {
		done <- outcome{toResult(kr), produceErr(ctx, kr.Topic, err)}
	})
	if err != nil {
		return Result{}, err
	}
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		return Result{}, &ProduceError{Stream: r.Stream, Err: ctx.Err()}
	}
}

// ProduceAsync hands r to the producer and returns at once, unless the
// buffer is full (WithMaxBufferedRecords, WithMaxBufferedBytes): then it
// blocks until room frees up. callback is called exactly once with the
// record's Result or error, including when r is nil or the producer is
// closed (then before ProduceAsync returns, on the caller's goroutine).
// Otherwise it runs on one of the producer's goroutines: keep it short
// and do not call Flush or Close from it, which would wait for the
// callback itself. Callbacks for records to the same shard run in the
// order the records were produced. callback may be nil.
func (p *Producer) ProduceAsync(r *Record, callback func(Result, error)) {
	if callback == nil {
		callback = func(Result, error) {}
	}
	if err := checkRecord(r); err != nil {
		callback(Result{}, err)
		return
	}
	err := p.enqueue(context.Background(), r, func(kr *kgo.Record, err error) {
		callback(toResult(kr), produceErr(context.Background(), kr.Topic, err))
	})
	if err != nil {
		callback(Result{}, err)
	}
}

// Flush waits until every record produced before the call has been
// acknowledged or has failed (its callback has run), or until ctx is done.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.RLock()
	closed := p.closed
	p.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("client: flush: %w", err)
	}
	return nil
}

// Close stops new records (they fail with ErrClosed from then on), waits
// for buffered ones as Flush does, and releases the connections and
// goroutines. If ctx is done before the buffer drains, records still
// buffered fail with ErrClosed and Close returns ctx's error. A second Close
// returns ErrClosed.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	p.mu.Unlock()
	err := p.cl.Flush(ctx)
	p.cl.Close()
	if err != nil {
		return fmt.Errorf("client: close: %w", err)
	}
	return nil
}
