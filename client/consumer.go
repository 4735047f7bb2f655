package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Message is one record read from a Braid stream.
type Message struct {
	Stream    string
	Shard     int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []Header
	Timestamp time.Time
}

func toMessage(r *kgo.Record) Message {
	m := Message{Stream: r.Topic, Shard: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	if len(r.Headers) > 0 {
		m.Headers = make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			m.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return m
}

func toMessages(recs []*kgo.Record) []Message {
	msgs := make([]Message, len(recs))
	for i, r := range recs {
		msgs[i] = toMessage(r)
	}
	return msgs
}

// Handler processes a batch of messages. Messages of one shard come in
// offset order; a batch may hold several shards. Returning nil says the
// whole batch is processed: only then may its offsets be committed.
type Handler func(ctx context.Context, msgs []Message) error

// Consumer reads streams as a member of a consumer group: the group's
// members share the streams' shards, and Braid hands out a child shard of
// a split or merge only once the group has read its parents to their end
// (the lineage gate), so one key's records reach the handlers in the
// order they were written. Delivery is at least once: an offset is
// committed only after the handler returned nil for its record.
//
// Create one with NewConsumer, call Run, and Close it when done.
type Consumer struct {
	cl  *kgo.Client
	cfg consumerConfig

	life runGate // Run and Close meet here

	metrics consumerMetrics
}

// NewConsumer returns a consumer of streams in group, finding the cluster
// through seeds (host:port of Braid nodes' Kafka listeners). It joins the
// group when Run first polls. A group that has never committed starts at
// the beginning of every shard.
func NewConsumer(seeds []string, group string, streams []string, opts ...ConsumerOption) (*Consumer, error) {
	if err := checkConsumerArgs(seeds, group, streams); err != nil {
		return nil, err
	}
	cfg := defaultConsumerConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Consumer{cfg: cfg}
	c.metrics.hooks = cfg.hooks
	kopts := append(cfg.fetchOptions(seeds),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(streams...),
		// Braid's coordinator asks for a rebalance when the lineage
		// gate releases a child shard; members learn it on their next
		// heartbeat (franz-go's default interval: 3s).
		kgo.HeartbeatInterval(time.Second),
		// Rebalances wait until the handler has returned and its
		// records are marked, so revoke commits exactly what was
		// handled and no handler runs on a shard it no longer owns.
		kgo.BlockRebalanceOnPoll(),
		kgo.AutoCommitMarks(),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		kgo.AutoCommitCallback(c.autoCommitted),
	)
	interval := cfg.commitInterval
	if cfg.manualCommit {
		// kgo keeps marks only with autocommit on (AutoCommitMarks
		// and DisableAutoCommit exclude each other), so manual commit
		// is an autocommit whose tick never comes.
		interval = time.Duration(math.MaxInt64)
	}
	kopts = append(kopts, kgo.AutoCommitInterval(interval))
	cl, err := kgo.NewClient(append(kopts, cfg.kgoOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("client: new consumer: %w", err)
	}
	c.cl = cl
	return c, nil
}

func checkConsumerArgs(seeds []string, group string, streams []string) error {
	switch {
	case len(seeds) == 0:
		return fmt.Errorf("client: no seed addresses")
	case group == "":
		return fmt.Errorf("client: empty group name")
	case len(streams) == 0:
		return fmt.Errorf("client: no streams to consume")
	}
	for _, s := range streams {
		if s == "" {
			return fmt.Errorf("client: empty stream name in %q", streams)
		}
	}
	return nil
}

func (c *Consumer) assigned(ctx context.Context, _ *kgo.Client, a map[string][]int32) {
	if c.cfg.onAssigned != nil {
		c.cfg.onAssigned(ctx, a)
	}
}

// revoked commits what the handler returned from on the revoked shards
// (all marks: the handler is not running, BlockRebalanceOnPoll) before the
// next owner reads them.
func (c *Consumer) revoked(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
	c.commit(ctx, cl) // a failure means duplicates for the next owner, never loss
	if c.cfg.onRevoked != nil && len(r) > 0 {
		c.cfg.onRevoked(ctx, r)
	}
}

// lost: the session ended without a clean revoke; committing is
// pointless (the generation is gone), telling the user is not.
func (c *Consumer) lost(ctx context.Context, _ *kgo.Client, l map[string][]int32) {
	if c.cfg.onRevoked != nil && len(l) > 0 {
		c.cfg.onRevoked(ctx, l)
	}
}

// Run polls the group's shards and calls handler with each batch until ctx
// is done (it then returns ctx's error), Close is called (it returns nil),
// or handler returns an error (Run returns it wrapped in a
// *HandlerError). Records of a batch whose handler failed, or that was
// polled when ctx ended, are not committed and are handed out again by the
// next Run. Only one Run may be active at a time (else ErrRunning); after
// Close, Run returns ErrClosed.
//
// handler is called from Run's goroutine, one batch at a time, never at
// the same time as a rebalance callback; while it runs, this consumer
// does not give up shards, so it should return within the group's
// rebalance timeout (franz-go's default: 1 minute).
func (c *Consumer) Run(ctx context.Context, handler Handler) error {
	if handler == nil {
		return fmt.Errorf("client: nil handler")
	}
	runCtx, end, err := c.life.begin(ctx)
	if err != nil {
		return err
	}
	defer end()

	for {
		fs := c.cl.PollRecords(runCtx, c.cfg.maxPollRecords)
		err := c.handle(runCtx, fs, handler)
		c.cl.AllowRebalance()
		if err != nil {
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

// handle runs handler on the polled records and marks them for commit if
// it returns nil; otherwise it rewinds the shards to the batch's first
// records so that they are read again. It runs while rebalances are
// blocked (BlockRebalanceOnPoll), as SetOffsets requires.
func (c *Consumer) handle(ctx context.Context, fs kgo.Fetches, handler Handler) error {
	for _, fe := range fs.Errors() {
		if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) ||
			errors.Is(fe.Err, kgo.ErrClientClosed) || retriable(fe.Err) {
			continue // shutdown, or kgo retries it
		}
		c.rewind(fs.Records())
		return &ConsumeError{Stream: fe.Topic, Shard: fe.Partition, Err: fe.Err}
	}
	recs := fs.Records()
	if len(recs) == 0 {
		return nil
	}
	if ctx.Err() != nil {
		c.rewind(recs)
		return nil
	}
	start := time.Now()
	err := handler(ctx, toMessages(recs))
	c.metrics.handled(recs, time.Since(start), err)
	if err != nil {
		c.rewind(recs)
		return &HandlerError{Err: err}
	}
	c.cl.MarkCommitRecords(lastOfEachShard(recs)...)
	return nil
}

// lastOfEachShard returns, of each run of one shard's records in recs, the
// last: kgo commits the offset after the highest record marked per shard,
// so marking these marks all, without kgo sorting and looking up every
// record under its lock.
func lastOfEachShard(recs []*kgo.Record) []*kgo.Record {
	var lasts []*kgo.Record
	for i, r := range recs {
		if i+1 == len(recs) || recs[i+1].Partition != r.Partition || recs[i+1].Topic != r.Topic {
			lasts = append(lasts, r)
		}
	}
	return lasts
}

// rewind sets each shard in recs back to its first record in recs.
func (c *Consumer) rewind(recs []*kgo.Record) {
	if len(recs) == 0 {
		return
	}
	to := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range recs {
		ps := to[r.Topic]
		if ps == nil {
			ps = map[int32]kgo.EpochOffset{}
			to[r.Topic] = ps
		}
		if _, ok := ps[r.Partition]; !ok {
			ps[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
		}
	}
	c.cl.SetOffsets(to)
}

// commit commits what the handler returned from and counts it.
func (c *Consumer) commit(ctx context.Context, cl *kgo.Client) error {
	err := cl.CommitMarkedOffsets(ctx)
	c.metrics.committed(err)
	return err
}

// autoCommitted counts a periodic commit (kgo calls it only when there was
// something to commit).
func (c *Consumer) autoCommitted(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err == nil {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if perr := kerr.ErrorForCode(p.ErrorCode); perr != nil && err == nil {
					err = perr
				}
			}
		}
	}
	c.metrics.committed(err)
}

// Commit commits, synchronously, the offsets after the last records the
// handler returned from. It is the only periodic commit under
// WithManualCommit; without it, it commits now rather than at the next
// interval.
func (c *Consumer) Commit(ctx context.Context) error {
	if c.life.isClosed() {
		return ErrClosed
	}
	if err := c.commit(ctx, c.cl); err != nil {
		return fmt.Errorf("client: commit: %w", err)
	}
	return nil
}

// Close stops Run (waiting for a running handler to return), commits what
// the handler returned from, leaves the group (its shards go to the other
// members at once, not after a session timeout) and releases the
// connections and goroutines. If ctx ends first, Close stops waiting,
// releases everything and returns ctx's error: records handled since the
// last commit are then read again by the shards' next owner. A second
// Close returns ErrClosed.
func (c *Consumer) Close(ctx context.Context) error {
	err := c.life.close(ctx)
	if errors.Is(err, ErrClosed) {
		return err
	}
	if err == nil {
		err = c.commit(ctx, c.cl)
	}
	if err == nil {
		// Leaving revokes every shard: revoked commits again (nothing
		// new) and tells the user.
		err = c.cl.LeaveGroupContext(ctx)
	}
	c.cl.CloseAllowingRebalance()
	c.metrics.stop()
	if err != nil {
		return fmt.Errorf("client: close consumer: %w", err)
	}
	return nil
}
