package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Atomic batches. A batch is written in a Kafka transaction on a second,
// transactional kgo client, even when all its records go to one shard:
// kgo does not promise that records produced together travel in one record
// batch (linger, the batch byte bound and a request already in flight all
// cut batches), and only a record batch, or a transaction, is atomic in the
// log. Read_committed readers see a committed batch whole and an aborted one
// not at all; read_uncommitted readers may see aborted records.

// txnEndWait bounds committing or aborting a transaction; it is not cut
// short by the caller's ctx, which would leave the outcome unknown.
const txnEndWait = 15 * time.Second

// batcher owns the transactional client; one batch runs at a time.
type batcher struct {
	mu sync.Mutex
	cl *kgo.Client // nil until the first batch, and after a failure
	id string
}

func newTransactionalID(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + "-batch-" + hex.EncodeToString(b[:])
}

func (p *Producer) txnClient() (*kgo.Client, error) {
	if p.batch.cl != nil {
		return p.batch.cl, nil
	}
	cfg := p.cfg
	cfg.idempotent = true // transactions need it
	opts := []kgo.Opt{kgo.TransactionalID(p.batch.id), kgo.TransactionTimeout(cfg.txnTimeout)}
	if p.router != nil {
		opts = append(opts, kgo.RecordPartitioner(routePartitioner{p.router}))
	}
	cl, err := kgo.NewClient(append(opts, cfg.kgoOptionsFor(p.seeds, true)...)...)
	if err != nil {
		return nil, fmt.Errorf("client: transactional client: %w", err)
	}
	p.batch.cl = cl
	return cl, nil
}

// dropTxnClient closes the transactional client after a failure whose
// transaction state is unclear; the next batch starts a new one with the
// same transactional id, which fences and aborts whatever the old one left
// open.
func (p *Producer) dropTxnClient() {
	if p.batch.cl != nil {
		p.batch.cl.Close()
		p.batch.cl = nil
	}
}

// ProduceBatch writes recs all or nothing, in order (per shard, in the
// order given), and returns when they are durable and visible to
// read_committed readers, with one Result per record. Records may go to
// any shards and streams. On error nothing of the batch is visible to
// read_committed readers (ErrBatchAborted), except when the commit's answer
// was lost (ErrBatchUnknown: all or nothing, not known which). Errors:
// ErrClosed, ErrEmptyBatch, ErrBatchTooLarge, or a *BatchError (naming
// the record when one record caused it, unwrapping to its cause such as
// ErrNilRecord, ErrNoStream, ErrRecordTooLarge, ErrUnknownStream or ctx's
// error). Batches run one at a time per producer.
func (p *Producer) ProduceBatch(ctx context.Context, recs []*Record) (results []Result, err error) {
	if len(recs) == 0 {
		return nil, &BatchError{Index: -1, Err: ErrEmptyBatch}
	}
	var bytes int64
	for i, r := range recs {
		if err := checkRecord(r); err != nil {
			return nil, &BatchError{Index: i, Err: err}
		}
		bytes += int64(recordBytes(r))
	}
	if len(recs) > p.cfg.maxRecords || (p.cfg.maxBytes > 0 && bytes > p.cfg.maxBytes) {
		return nil, &BatchError{Index: -1, Err: fmt.Errorf("%w: %d records, %d bytes; the producer buffers at most %d records and %d bytes (0: no bound)",
			ErrBatchTooLarge, len(recs), bytes, p.cfg.maxRecords, p.cfg.maxBytes)}
	}

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
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
	start := p.metrics.start()
	defer func() {
		for i, r := range recs {
			var shard int32 = -1
			if err == nil {
				shard = results[i].Shard
			}
			p.metrics.record(r.Stream, shard, recordBytes(r), start, err)
		}
	}()

	p.batch.mu.Lock()
	defer p.batch.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(p.stop, cancel)()

	cl, err := p.txnClient()
	if err != nil {
		return nil, &BatchError{Index: -1, Err: fmt.Errorf("%w: %w", ErrBatchAborted, err)}
	}
	if err := cl.BeginTransaction(); err != nil {
		p.dropTxnClient()
		return nil, &BatchError{Index: -1, Err: fmt.Errorf("%w: begin transaction: %w", ErrBatchAborted, err)}
	}

	results = make([]Result, len(recs))
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, r := range recs {
		kr := toKgo(ctx, r)
		release := func() {}
		if p.router != nil {
			part, rel, err := p.router.assign(ctx, r.Stream, r.Key)
			if err != nil {
				errs[i] = err
				break
			}
			kr.Partition, release = part, rel
		}
		wg.Add(1)
		cl.Produce(ctx, kr, func(kr *kgo.Record, err error) {
			release()
			results[i], errs[i] = toResult(kr), err
			wg.Done()
		})
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-ctx.Done():
		// Records may be in flight, and kgo waits for their fate; a
		// transactional client cannot cancel them. Closing the client
		// fails them; the transaction is aborted by the server's
		// timeout or fenced by the next batch's client.
		p.dropTxnClient()
		<-all
		cause := ctx.Err()
		if p.stop.Err() != nil {
			cause = fmt.Errorf("%w: %w", ErrClosed, cause)
		}
		return nil, &BatchError{Index: -1, Err: fmt.Errorf("%w: %w", ErrBatchAborted, cause)}
	}

	fail := -1
	for i, err := range errs {
		if err != nil {
			fail = i
			break
		}
	}
	endCtx, endCancel := context.WithTimeout(context.WithoutCancel(ctx), txnEndWait)
	defer endCancel()
	if fail >= 0 {
		cause := p.produceErr(ctx, recs[fail].Stream, errs[fail])
		if p.stop.Err() != nil && ctx.Err() != nil {
			cause = fmt.Errorf("%w: %w", ErrClosed, cause)
		}
		if err := cl.AbortBufferedRecords(endCtx); err != nil {
			p.dropTxnClient()
		} else if err := cl.EndTransaction(endCtx, kgo.TryAbort); err != nil {
			p.dropTxnClient()
		}
		return nil, &BatchError{Index: fail, Err: fmt.Errorf("%w: %w", ErrBatchAborted, cause)}
	}
	if err := cl.EndTransaction(endCtx, kgo.TryCommit); err != nil {
		if errors.Is(err, kerr.OperationNotAttempted) || errors.Is(err, kerr.TransactionAbortable) {
			// The commit was refused before it was written.
			if aerr := cl.EndTransaction(endCtx, kgo.TryAbort); aerr != nil {
				p.dropTxnClient()
			}
			return nil, &BatchError{Index: -1, Err: fmt.Errorf("%w: commit: %w", ErrBatchAborted, err)}
		}
		// The commit may or may not have been written; the next
		// batch's client fences whatever is left open.
		p.dropTxnClient()
		return nil, &BatchError{Index: -1, Err: fmt.Errorf("%w: commit: %w", ErrBatchUnknown, err)}
	}
	return results, nil
}

// closeBatcher releases the transactional client (Close).
func (p *Producer) closeBatcher() {
	p.batch.mu.Lock()
	defer p.batch.mu.Unlock()
	p.dropTxnClient()
}
