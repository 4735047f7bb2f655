package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TransformFunc turns a batch of input messages into the records to
// produce for them (any number, to any streams; nil for none). An error
// aborts the batch: none of its output is visible and its input is read
// again.
type TransformFunc func(ctx context.Context, in []Message) ([]*Record, error)

// Transformer is an exactly-once consume-transform-produce pipeline: it
// reads input streams as a member of a consumer group and, for each batch,
// produces the TransformFunc's output and commits the batch's input
// offsets in one Braid transaction. Readers of the output that read
// committed data (every Consumer and Reader of this package) see each
// input's output exactly once, even if a pipeline process dies at any
// point and another one (or the same, restarted) takes over with the same
// transactional ID: the newcomer fences the dead one and its open
// transaction is aborted.
//
// Built on franz-go's GroupTransactSession: a rebalance during a batch
// aborts the batch rather than committing work on shards this member may
// no longer own.
type Transformer struct {
	sess *kgo.GroupTransactSession
	fn   TransformFunc
	cfg  consumerConfig

	life runGate // Run and Close meet here
}

// endTimeout bounds how long ending one transaction (flush, offsets,
// EndTxn) may take; it is not cut short by Run's ctx, because an End
// interrupted midway leaves the transactional client unusable.
const endTimeout = time.Minute

// NewTransformer returns a pipeline reading the streams in as group,
// writing with transactionalID. The transactional ID names the pipeline
// instance across restarts: give a restarted instance the same ID (so it
// fences its predecessor) and concurrent instances different ones.
func NewTransformer(seeds []string, group string, in []string, transactionalID string, fn TransformFunc, opts ...ConsumerOption) (*Transformer, error) {
	if err := checkConsumerArgs(seeds, group, in); err != nil {
		return nil, err
	}
	switch {
	case transactionalID == "":
		return nil, fmt.Errorf("client: empty transactional id")
	case fn == nil:
		return nil, fmt.Errorf("client: nil transform func")
	}
	cfg := defaultConsumerConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &Transformer{fn: fn, cfg: cfg}
	kopts := append(cfg.fetchOptions(seeds),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in...),
		kgo.HeartbeatInterval(time.Second),
		kgo.TransactionalID(transactionalID),
		kgo.RequireStableFetchOffsets(),
		kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, a map[string][]int32) {
			if cfg.onAssigned != nil {
				cfg.onAssigned(ctx, a)
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, r map[string][]int32) {
			if cfg.onRevoked != nil && len(r) > 0 {
				cfg.onRevoked(ctx, r)
			}
		}),
	)
	sess, err := kgo.NewGroupTransactSession(append(kopts, cfg.kgoOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("client: new transformer: %w", err)
	}
	t.sess = sess
	return t, nil
}

// Run reads, transforms and commits batch after batch until ctx is done
// (ctx's error; a batch whose output is being committed is finished
// first), Close is called (nil), the TransformFunc fails (a *HandlerError;
// the batch was aborted) or the transaction cannot be completed (an error
// that retrying in this process will not fix: Close the Transformer; a new
// one with the same transactional ID starts over from the committed
// offsets). One Run at a time (else ErrRunning).
func (t *Transformer) Run(ctx context.Context) error {
	runCtx, end, err := t.life.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	// Take the transactional ID over before reading: InitProducerId
	// fences a predecessor that died with a transaction open and aborts
	// it. Left to the first transaction (franz-go's default), the group's
	// offset fetch would wait for that transaction (RequireStable), the
	// first transaction would never begin, and the pipeline would stall
	// until the dead one's transaction timed out.
	for {
		_, _, err := t.sess.Client().ProducerID(runCtx)
		if err == nil {
			break
		}
		if runCtx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil // Close
		}
		if !retriable(err) {
			return fmt.Errorf("client: init transactional producer: %w", err)
		}
		// The node is unreachable or busy for now (restarting, say):
		// try again, as kgo does for other requests.
		select {
		case <-runCtx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	for {
		if err := t.batch(runCtx); err != nil {
			return err
		}
		if runCtx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil // Close
		}
	}
}

// batch polls one batch and runs it through one transaction.
func (t *Transformer) batch(ctx context.Context) error {
	fs := t.sess.PollRecords(ctx, t.cfg.maxPollRecords)
	if ctx.Err() != nil {
		return nil // nothing begun; what was polled is read again
	}
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) ||
			errors.Is(fe.Err, kgo.ErrClientClosed) || retriable(fe.Err) {
			continue
		}
		return &ConsumeError{Stream: fe.Topic, Shard: fe.Partition, Err: fe.Err}
	}
	recs := fs.Records()
	if len(recs) == 0 {
		return nil
	}
	if err := t.sess.Begin(); err != nil {
		return fmt.Errorf("client: begin transaction: %w", err)
	}
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	abort := func(cause error) error {
		if _, err := t.sess.End(endCtx, kgo.TryAbort); err != nil {
			return fmt.Errorf("client: abort transaction: %w (after %w)", err, cause)
		}
		return cause
	}
	out, err := t.fn(ctx, toMessages(recs))
	if err != nil {
		return abort(&HandlerError{Err: err})
	}
	var (
		failMu  sync.Mutex
		failed  error
		produce = func(_ *kgo.Record, err error) {
			if err != nil {
				failMu.Lock()
				failed = firstErr(failed, err)
				failMu.Unlock()
			}
		}
	)
	for _, r := range out {
		if err := checkRecord(r); err != nil {
			return abort(&HandlerError{Err: err})
		}
		t.sess.Produce(endCtx, toKgo(endCtx, r), produce)
	}
	if err := t.sess.Client().Flush(endCtx); err != nil {
		return abort(fmt.Errorf("client: flush transaction: %w", err))
	}
	if failed != nil {
		return abort(produceErr(endCtx, "", failed))
	}
	// Not committed without an error: a rebalance aborted the batch and
	// the session went back to the committed offsets; go on.
	if _, err := t.sess.End(endCtx, kgo.TryCommit); err != nil {
		return fmt.Errorf("client: end transaction: %w", err)
	}
	return nil
}

// firstErr keeps the first error.
func firstErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

// Close stops Run (a batch being committed is finished first, unless ctx
// ends), leaves the group and releases the connections and goroutines. An
// open transaction is aborted. A second Close returns ErrClosed.
func (t *Transformer) Close(ctx context.Context) error {
	err := t.life.close(ctx)
	switch {
	case errors.Is(err, ErrClosed):
		return err
	case err != nil:
		err = fmt.Errorf("client: close transformer: %w", err)
	}
	t.sess.Close()
	return err
}
