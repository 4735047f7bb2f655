package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
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
	// txnEndTimeout bounds one EndTransaction. Its context is never the
	// run's: cancelling an EndTransaction leaves its outcome unknown.
	txnEndTimeout = 30 * time.Second
)

// producers is the set of kgo clients that write during a run; each gets
// its own connections, as separate producer processes would.
type producers struct {
	clients []*kgo.Client
	pool    []byte
	once    sync.Once
	hook    batchHook
}

// txnIDPrefix names the transactional ids of one run, with a random part so
// that concurrent or repeated runs never fence each other.
func txnIDPrefix() string {
	return fmt.Sprintf("braid-bench-%016x", rand.Uint64())
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
	opts = append(opts, kgo.WithHooks(&ps.hook))
	prefix := txnIDPrefix()
	for i := range cfg.Producers {
		copts := opts
		if cfg.TxnInterval > 0 {
			copts = append(slices.Clip(opts), kgo.TransactionalID(fmt.Sprintf("%s-%d", prefix, i)))
		}
		cl, err := kgo.NewClient(copts...)
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
			r := &kgo.Record{Key: []byte("warm-up"), Value: ps.pool[:cfg.RecordSize]}
			errs[i] = warmUp(wctx, cl, r, cfg.TxnInterval > 0)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		ps.close()
		return nil, fmt.Errorf("warm-up produce to %q: %w", cfg.Stream, err)
	}
	return ps, nil
}

// warmUp sends r synchronously. A transactional client sends it in a
// transaction of its own, which also gets the producer id and epoch from
// the coordinator before the clock starts.
func warmUp(ctx context.Context, cl *kgo.Client, r *kgo.Record, txn bool) error {
	if !txn {
		return cl.ProduceSync(ctx, r).FirstErr()
	}
	if err := cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		// Abort so an open transaction does not hold back the stream's
		// last stable offset until it times out.
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), txnEndTimeout)
		defer cancel()
		if aerr := cl.EndTransaction(ectx, kgo.TryAbort); aerr != nil {
			err = errors.Join(err, fmt.Errorf("abort transaction: %w", aerr))
		}
		return err
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), txnEndTimeout)
	defer cancel()
	if err := cl.EndTransaction(ectx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
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
	before := ps.hook.counts() // the warm-up's are not the run's
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
			txnInterval: cfg.TxnInterval,
			keys:        cfg.Keys,
			worker:      i,
			workers:     n,
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
	batches := ps.hook.counts().since(before)
	p.Batches = &batches
	if cfg.TxnInterval > 0 {
		p.Transactions = &TxnCounts{}
	}
	recs := make([]*Recorder, n)
	for i, w := range workers {
		recs[i] = w.rec
		if p.Transactions != nil {
			p.Transactions.Committed += w.txns.Committed
			p.Transactions.Failed += w.txns.Failed
		}
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
//
// A transactional worker also keeps, in acked, the records of the open
// transaction that the broker acknowledged. The worker goroutine reads it,
// and touches rec and firstErr, only between a successful Flush (which
// returns after every promise has run) and its next Produce, when no
// promise can be running.
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
	txnInterval time.Duration // 0 = not transactional
	keys        int           // records are keyed k0..k<keys-1>; 0 = no key
	worker      int           // this worker's index among workers
	workers     int

	maxLag   time.Duration
	firstErr error
	acked    int64 // records acknowledged in the open transaction
	txns     TxnCounts
}

func (w *produceWorker) run(start, deadline time.Time) {
	// Records outlive ctx so that an interrupt stops sending but still
	// lets what was sent be acknowledged and counted.
	recCtx := context.WithoutCancel(w.ctx)
	txn := w.txnInterval > 0
	var txnBegan time.Time
	if txn {
		if err := w.cl.BeginTransaction(); err != nil {
			w.fatal(fmt.Errorf("begin transaction: %w", err))
			return
		}
		txnBegan = time.Now()
	}
	for i := int64(0); w.limit < 0 || i < w.limit; i++ {
		if w.pacer.Paced() && w.pacer.pace(w.ctx, i, start) != nil {
			break
		}
		sent := time.Now()
		if (!deadline.IsZero() && !sent.Before(deadline)) || w.ctx.Err() != nil {
			break
		}
		if txn && sent.Sub(txnBegan) >= w.txnInterval {
			// The flush and commit stall this producer, as they would
			// an application; that cost is what a transactional run
			// measures.
			if !w.endTxn(true) {
				return
			}
			sent = time.Now()
			txnBegan = sent
		}
		w.maxLag = max(w.maxLag, w.pacer.Lag(i, sent.Sub(start)))
		v := w.payloads.Next()
		if w.stamp {
			v = Stamp(v, sent.UnixNano())
		}
		// Latency is measured from the Produce call, so time spent blocked
		// on a full client buffer counts against the record.
		// The record's timestamp is the call's time, which the client
		// would read from the clock again otherwise.
		r := &kgo.Record{Value: v, Context: recCtx, Timestamp: sent}
		if w.keys > 0 {
			// Workers interleave so together they cycle through every key.
			r.Key = strconv.AppendInt([]byte{'k'}, (i*int64(w.workers)+int64(w.worker))%int64(w.keys), 10)
		}
		w.cl.Produce(w.ctx, r, func(_ *kgo.Record, err error) {
			w.done(sent, err)
		})
	}
	if txn {
		w.endTxn(false)
		return
	}
	// A failed flush leaves records buffered; closing the client fails
	// them, and an interrupted run does not count those as errors.
	_ = w.flush()
}

// flush waits for every buffered record to be acknowledged or failed.
// After an interrupt it waits at most interruptFlushTimeout more.
func (w *produceWorker) flush() error {
	if w.ctx.Err() == nil {
		err := w.cl.Flush(w.ctx)
		if err == nil || w.ctx.Err() == nil {
			return err
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), interruptFlushTimeout)
	defer cancel()
	return w.cl.Flush(fctx)
}

// endTxn flushes and commits the open transaction and, if next, begins
// another. It reports whether the worker may go on producing.
//
// Records count as produced only once their transaction committed: a
// record the broker acknowledged in a transaction that then failed is
// never visible to a read_committed consumer, so it counts as an error.
// Their latency samples (Produce to acknowledgement) are kept either way.
func (w *produceWorker) endTxn(next bool) bool {
	if err := w.flush(); err != nil {
		// Only an interrupt ends a flush early. Promises may still be
		// running, so acked is not ours to read; the records are lost
		// with the aborted transaction, uncounted like other casualties
		// of an interrupt.
		actx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), txnEndTimeout)
		defer cancel()
		_ = w.cl.AbortBufferedRecords(actx)
		_ = w.cl.EndTransaction(actx, kgo.TryAbort)
		return false
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), txnEndTimeout)
	defer cancel()
	acked := w.acked
	w.acked = 0
	if err := w.cl.EndTransaction(ectx, kgo.TryCommit); err != nil {
		w.txns.Failed++
		if w.ctx.Err() == nil {
			w.meter.errors.Add(acked)
			w.fail(fmt.Errorf("commit transaction: %w", err))
		}
		// Abort so the failed transaction does not hold back the last
		// stable offset (and with it every read_committed consumer)
		// until the broker times it out. kgo documents TryAbort as the
		// retry for every commit error it leaves recoverable.
		if aerr := w.cl.EndTransaction(ectx, kgo.TryAbort); aerr != nil {
			w.fatal(fmt.Errorf("abort transaction after a failed commit: %w", aerr))
			return false
		}
	} else {
		w.txns.Committed++
		w.meter.add(acked, acked*w.recordBytes)
	}
	if !next {
		return false
	}
	if err := w.cl.BeginTransaction(); err != nil {
		w.fatal(fmt.Errorf("begin transaction: %w", err))
		return false
	}
	return true
}

// fail keeps the first error of the worker.
func (w *produceWorker) fail(err error) {
	if w.firstErr == nil {
		w.firstErr = err
	}
}

// fatal records an error that stops the worker. It counts as one error so
// that a run cut short this way cannot pass for a clean one.
func (w *produceWorker) fatal(err error) {
	if w.ctx.Err() != nil {
		return
	}
	w.meter.errors.Add(1)
	w.fail(err)
}

func (w *produceWorker) done(sent time.Time, err error) {
	lat := time.Since(sent)
	if err != nil {
		if w.ctx.Err() != nil {
			return // casualties of an interrupt, not broker errors
		}
		w.meter.errors.Add(1)
		w.fail(err)
		return
	}
	w.rec.Record(lat)
	if w.txnInterval > 0 {
		w.acked++ // counted when the transaction commits
		return
	}
	w.meter.add(1, w.recordBytes)
}
