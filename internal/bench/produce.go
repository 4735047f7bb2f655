package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// deliveryTimeout fails records a broker never acknowledges, so a
	// stuck broker ends the run with errors instead of hanging it.
	deliveryTimeout = 60 * time.Second
	// interruptFlushTimeout bounds the flush after Ctrl-C.
	interruptFlushTimeout = 10 * time.Second
)

// producers is the set of kgo clients that write during a run; each gets
// its own connections, as separate producer processes would.
type producers struct {
	clients []*kgo.Client
	pool    []byte
	once    sync.Once
}

// newProducers creates the clients and sends one warm-up record through
// each, so connection setup and metadata loading are not timed and a broker
// that rejects writes fails the run before it starts.
func newProducers(ctx context.Context, cfg Config) (*producers, error) {
	acks, err := parseAcks(cfg.Acks)
	if err != nil {
		return nil, err
	}
	codec, err := parseCompression(cfg.Compression)
	if err != nil {
		return nil, err
	}
	opts := append(baseOpts(cfg.Brokers),
		kgo.DefaultProduceTopic(cfg.Stream),
		kgo.RequiredAcks(acks),
		kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchMaxBytes(cfg.BatchMaxBytes),
		kgo.ProducerBatchCompression(codec),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
	)
	if !cfg.Idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if cfg.MaxInflight > 0 {
		opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(cfg.MaxInflight))
	}
	ps := &producers{
		pool: NewPool(PoolSize(cfg.RecordSize, int(cfg.BatchMaxBytes), cfg.Partitions), rand.Uint64()),
	}
	for range cfg.Producers {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			ps.close()
			return nil, fmt.Errorf("create producer client: %w", err)
		}
		ps.clients = append(ps.clients, cl)
	}

	wctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	errs := make([]error, len(ps.clients))
	var wg sync.WaitGroup
	for i, cl := range ps.clients {
		wg.Go(func() {
			r := &kgo.Record{Value: ps.pool[:cfg.RecordSize]}
			errs[i] = cl.ProduceSync(wctx, r).FirstErr()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		ps.close()
		return nil, fmt.Errorf("warm-up produce to %q: %w", cfg.Stream, err)
	}
	return ps, nil
}

func (ps *producers) close() {
	ps.once.Do(func() {
		for _, cl := range ps.clients {
			cl.Close()
		}
	})
}

// run produces the configured load and returns the phase's measurements.
// The clients are closed when it returns.
func (ps *producers) run(ctx context.Context, cfg Config) *Phase {
	n := len(ps.clients)
	limits := make([]int64, n)
	if cfg.Count > 0 {
		limits = Split(cfg.Count, n)
	} else {
		for i := range limits {
			limits[i] = -1
		}
	}
	capacity := max(DefaultMaxSamples/n, 1)

	var m meter
	stop := m.progress(cfg.Progress, "produce")
	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	workers := make([]*produceWorker, n)
	var wg sync.WaitGroup
	for i, cl := range ps.clients {
		expected := limits[i]
		if expected < 0 {
			expected = int64(capacity)
		}
		w := &produceWorker{
			ctx:         ctx,
			cl:          cl,
			payloads:    NewPayloads(ps.pool, cfg.RecordSize, i*len(ps.pool)/n),
			rec:         NewRecorder(capacity, expected, uint64(i)+1),
			meter:       &m,
			limit:       limits[i],
			pacer:       NewPacer(cfg.Rate / float64(n)),
			stamp:       cfg.E2ELatency,
			recordBytes: int64(cfg.RecordSize),
		}
		workers[i] = w
		wg.Go(func() { w.run(start, deadline) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	ps.close()

	p := newPhase(m.records.Load(), m.bytes.Load(), elapsed)
	p.Errors = m.errors.Load()
	recs := make([]*Recorder, n)
	for i, w := range workers {
		recs[i] = w.rec
		if w.firstErr != nil && p.FirstError == "" {
			p.FirstError = w.firstErr.Error()
		}
		p.MaxLagMs = max(p.MaxLagMs, float64(w.maxLag)/1e6)
	}
	if s := Summarize(recs...); s.Count > 0 {
		p.Latency = &s
	}
	return p
}

// produceWorker drives one client. Promise callbacks run serially on the
// client's promise goroutine, so rec and firstErr need no lock; they are
// read only after the client is flushed and closed.
type produceWorker struct {
	ctx         context.Context
	cl          *kgo.Client
	payloads    *Payloads
	rec         *Recorder
	meter       *meter
	limit       int64 // records to send; -1 = until the deadline
	pacer       Pacer
	stamp       bool
	recordBytes int64

	maxLag   time.Duration
	firstErr error
}

func (w *produceWorker) run(start, deadline time.Time) {
	// Records outlive ctx so that an interrupt stops sending but still
	// lets what was sent be acknowledged and counted.
	recCtx := context.WithoutCancel(w.ctx)
	for i := int64(0); w.limit < 0 || i < w.limit; i++ {
		if w.pacer.Paced() && w.pacer.pace(w.ctx, i, start) != nil {
			break
		}
		sent := time.Now()
		if (!deadline.IsZero() && !sent.Before(deadline)) || w.ctx.Err() != nil {
			break
		}
		w.maxLag = max(w.maxLag, w.pacer.Lag(i, sent.Sub(start)))
		v := w.payloads.Next()
		if w.stamp {
			v = Stamp(v, sent.UnixNano())
		}
		// Latency is measured from the Produce call, so time spent blocked
		// on a full client buffer counts against the record.
		w.cl.Produce(w.ctx, &kgo.Record{Value: v, Context: recCtx}, func(_ *kgo.Record, err error) {
			w.done(sent, err)
		})
	}
	fctx, cancel := context.WithCancel(w.ctx)
	if w.ctx.Err() != nil {
		fctx, cancel = context.WithTimeout(recCtx, interruptFlushTimeout)
	}
	defer cancel()
	// A failed flush leaves records buffered; closing the client fails
	// them, and an interrupted run does not count those as errors.
	_ = w.cl.Flush(fctx)
}

func (w *produceWorker) done(sent time.Time, err error) {
	lat := time.Since(sent)
	if err != nil {
		if w.ctx.Err() != nil {
			return // casualties of an interrupt, not broker errors
		}
		w.meter.errors.Add(1)
		if w.firstErr == nil {
			w.firstErr = err
		}
		return
	}
	w.rec.Record(lat)
	w.meter.add(1, w.recordBytes)
}
