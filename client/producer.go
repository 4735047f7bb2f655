package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	// router routes keyed records to their shards (WithAdminAddr); nil
	// without an admin address.
	router *router
	cfg    producerConfig
	seeds  []string
	batch  batcher // ProduceBatch's transactional client

	// stop is cancelled when Close stops waiting (its ctx ended) or is
	// done: callers blocked on a full buffer, and records still buffered,
	// then fail with ErrClosed instead of holding Close up.
	stop       context.Context
	cancelStop context.CancelFunc

	// mu guards closed and pending (callers between the closed check and
	// the hand-off to cl). Close waits on idle until pending is 0, so no
	// record reaches cl after cl.Close. The hand-off itself, which blocks
	// while the buffer is full, runs without mu.
	mu      sync.Mutex
	idle    *sync.Cond
	closed  bool
	pending int

	metrics producerMetrics
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
	p := &Producer{cfg: cfg, seeds: seeds}
	p.metrics.hooks = cfg.hooks
	p.batch.id = cfg.transactionalID
	if p.batch.id == "" {
		p.batch.id = newTransactionalID(cfg.clientID)
	}
	var extra []kgo.Opt
	var built atomic.Pointer[kgo.Client]
	if cfg.adminAddr != "" {
		p.router = newRouter(cfg.adminAddr, cfg.layoutRefresh, func() {
			if cl := built.Load(); cl != nil {
				cl.ForceMetadataRefresh()
			}
		})
		extra = append(extra, kgo.RecordPartitioner(routePartitioner{p.router}))
	}
	cl, err := kgo.NewClient(append(extra, cfg.kgoOptions(seeds)...)...)
	if err != nil {
		if p.router != nil {
			p.router.close()
		}
		return nil, fmt.Errorf("client: new producer: %w", err)
	}
	p.cl = cl
	built.Store(cl)
	p.stop, p.cancelStop = context.WithCancel(context.Background())
	p.idle = sync.NewCond(&p.mu)
	return p, nil
}

func toKgo(ctx context.Context, r *Record) *kgo.Record {
	kr := new(kgo.Record)
	fillKgo(kr, ctx, r)
	return kr
}

// fillKgo sets kr to r, produced under ctx.
func fillKgo(kr *kgo.Record, ctx context.Context, r *Record) {
	*kr = kgo.Record{Topic: r.Stream, Key: r.Key, Value: r.Value, Context: ctx}
	if len(r.Headers) > 0 {
		kr.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			kr.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
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

// enqueue hands kr to the client unless the producer is closed; cb is
// called once with the outcome. It blocks while the buffer is full, until
// ctx is done.
func (p *Producer) enqueue(ctx context.Context, kr *kgo.Record, cb func(*kgo.Record, error)) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.pending++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.pending--
		if p.pending == 0 {
			p.idle.Broadcast()
		}
		p.mu.Unlock()
	}()

	if p.router != nil {
		part, release, err := p.router.assign(ctx, kr.Topic, kr.Key)
		if err != nil {
			if p.stop.Err() != nil {
				return ErrClosed
			}
			return &ProduceError{Stream: kr.Topic, Err: err}
		}
		kr.Partition = part
		inner := cb
		cb = func(kr *kgo.Record, err error) {
			release()
			if err == nil && kr.Offset < 0 {
				// The server routed the batch (it answers offset
				// -1): the layout moved under us.
				p.router.refreshSoon()
			}
			inner(kr, err)
		}
	}
	p.cl.Produce(ctx, kr, cb)
	return nil
}

// produceErr classifies the error for a record produced with the caller's
// ctx (Background for ProduceAsync).
func (p *Producer) produceErr(ctx context.Context, stream string, err error) error {
	if err != nil && ctx.Err() == nil && p.stop.Err() != nil && errors.Is(err, context.Canceled) {
		return &ProduceError{Stream: stream, Err: fmt.Errorf("%w: %w", ErrClosed, err)}
	}
	return produceErr(ctx, stream, err)
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
	// The record lives until ctx is done or Close gives up on it.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(p.stop, cancel)()
	done := make(chan outcome, 1) // the callback never blocks
	start := p.metrics.start()
	err := p.enqueue(rctx, toKgo(rctx, r), func(kr *kgo.Record, err error) {
		err = p.produceErr(ctx, kr.Topic, err)
		p.metrics.record(kr.Topic, kr.Partition, kgoRecordBytes(kr), start, err)
		done <- outcome{toResult(kr), err}
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
	a := &asyncRecord{Context: p.stop, p: p, callback: callback, start: p.metrics.start()}
	fillKgo(&a.kr, a, r)
	if err := p.enqueue(a, &a.kr, asyncPromise); err != nil {
		callback(Result{}, err)
	}
}

// asyncRecord is one ProduceAsync record: the kgo record and what its
// outcome needs, in one allocation instead of a record and a closure. It
// is the record's context (the producer's stop context underneath), which
// is how asyncPromise, shared by all, finds it.
type asyncRecord struct {
	context.Context
	kr       kgo.Record
	p        *Producer
	callback func(Result, error)
	start    time.Time
}

func asyncPromise(kr *kgo.Record, err error) {
	a := kr.Context.(*asyncRecord)
	err = a.p.produceErr(context.Background(), kr.Topic, err)
	a.p.metrics.record(kr.Topic, kr.Partition, kgoRecordBytes(kr), a.start, err)
	a.callback(toResult(kr), err)
}

// Flush waits until every record produced before the call has been
// acknowledged or has failed (its callback has run), or until ctx is done.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
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
// goroutines. Records produced while Close runs may fail with ErrClosed.
// If ctx is done before the buffer drains, records still buffered (and
// callers blocked on a full buffer) fail with ErrClosed and Close returns
// ctx's error. In that case a record already sent to a node that does not
// answer may have its ProduceAsync callback called after Close returned
// (with an error): franz-go fails it only when its request gives up. A
// second Close returns ErrClosed.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	p.mu.Unlock()

	defer context.AfterFunc(ctx, p.cancelStop)()
	err := p.cl.Flush(ctx)
	p.mu.Lock()
	for p.pending > 0 {
		p.idle.Wait()
	}
	p.mu.Unlock()
	p.cl.Close()
	p.closeBatcher()
	if p.router != nil {
		p.router.close()
	}
	p.cancelStop()
	p.metrics.stop()
	if err != nil {
		return fmt.Errorf("client: close: %w", err)
	}
	return nil
}
