package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Reader reads one whole stream without a consumer group: every shard, from
// its start, following the stream's lineage itself. A shard created by a
// split or merge is read only after all its parents were read to their
// end, so one key's records reach the handler in the order they were
// written, across any reshards. It learns the lineage from a node's admin
// HTTP API (WithReaderAdminAddr), every WithLineageRefresh.
//
// A Reader commits nothing: its position lives in memory. Use a Consumer
// to share the work or to resume where a previous process stopped.
type Reader struct {
	seeds  []string
	stream string
	cfg    consumerConfig
	hc     *http.Client
	gate   *lineage // owned by the running Run

	life runGate // Run and Close meet here

	mu sync.Mutex // guards cl
	cl *kgo.Client
}

// NewReader returns a reader of stream through seeds (host:port of Braid
// nodes' Kafka listeners). WithReaderAdminAddr is required (else
// ErrNoAdminAddr). It connects when Run starts.
func NewReader(seeds []string, stream string, opts ...ConsumerOption) (*Reader, error) {
	switch {
	case len(seeds) == 0:
		return nil, fmt.Errorf("client: no seed addresses")
	case stream == "":
		return nil, fmt.Errorf("client: empty stream name")
	}
	cfg := defaultConsumerConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.adminAddr == "" {
		return nil, ErrNoAdminAddr
	}
	return &Reader{seeds: seeds, stream: stream, cfg: cfg, hc: &http.Client{Timeout: 10 * time.Second}, gate: newLineage()}, nil
}

// Run reads the stream and calls handler with each batch, until ctx is done
// (it returns ctx's error), Close is called (nil), the handler fails (a
// *HandlerError; the batch is handed out again by the next Run) or the
// stream cannot be read (for example ErrUnknownStream). The next Run
// goes on where this one stopped. One Run at a time (else ErrRunning).
func (r *Reader) Run(ctx context.Context, handler Handler) error {
	if handler == nil {
		return fmt.Errorf("client: nil handler")
	}
	runCtx, end, err := r.life.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	err = r.run(runCtx, handler)
	switch {
	case err == nil || runCtx.Err() == nil:
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return nil // Close
}

func (r *Reader) run(ctx context.Context, handler Handler) error {
	if err := r.refresh(ctx); err != nil {
		return err
	}
	cl, err := r.client()
	if err != nil {
		return err
	}
	refreshed := time.Now()
	for {
		r.settle(cl)
		pollCtx, cancel := context.WithDeadline(ctx, refreshed.Add(r.cfg.refresh))
		fs := cl.PollRecords(pollCtx, r.cfg.maxPollRecords)
		cancel()
		if ctx.Err() != nil {
			r.rewind(cl, fs.Records())
			return ctx.Err()
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) ||
				errors.Is(fe.Err, kgo.ErrClientClosed) || retriable(fe.Err) {
				continue
			}
			r.rewind(cl, fs.Records())
			return &ConsumeError{Stream: fe.Topic, Shard: fe.Partition, Err: fe.Err}
		}
		var recs []*kgo.Record
		for _, rec := range fs.Records() {
			if !rec.Attrs.IsControl() {
				recs = append(recs, rec)
			}
		}
		if len(recs) > 0 {
			if err := handler(ctx, toMessages(recs)); err != nil {
				r.rewind(cl, fs.Records())
				return &HandlerError{Err: err}
			}
		}
		for _, rec := range fs.Records() {
			r.gate.advance(rec.Partition, rec.Offset)
		}
		if time.Since(refreshed) >= r.cfg.refresh {
			// If the admin API is down for now, read on with the
			// layout known and ask again later; a stream deleted
			// while read ends the Run.
			if err := r.refresh(ctx); errors.Is(err, ErrUnknownStream) {
				return err
			}
			refreshed = time.Now()
		}
	}
}

func (r *Reader) refresh(ctx context.Context) error {
	l, err := fetchLayout(ctx, r.hc, r.cfg.adminAddr, r.stream)
	if err != nil {
		return err
	}
	r.gate.update(l)
	return nil
}

// client returns the kgo client, creating it on the first Run: it is a
// direct consumer of the shards the lineage lets it read first.
func (r *Reader) client() (*kgo.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cl != nil {
		return r.cl, nil
	}
	add, _ := r.gate.settle()
	start := map[int32]kgo.Offset{}
	for id, at := range add {
		start[id] = kgo.NewOffset().At(at)
	}
	opts := append(r.cfg.fetchOptions(r.seeds),
		// Control records count towards a shard's end (see advance);
		// they are not handed to the handler.
		kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.stream: start}))
	cl, err := kgo.NewClient(append(opts, r.cfg.kgoOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("client: new reader: %w", err)
	}
	r.cl = cl
	return cl, nil
}

func (r *Reader) settle(cl *kgo.Client) {
	add, drop := r.gate.settle()
	if len(drop) > 0 {
		cl.RemoveConsumePartitions(map[string][]int32{r.stream: drop})
	}
	if len(add) > 0 {
		start := map[int32]kgo.Offset{}
		for id, at := range add {
			start[id] = kgo.NewOffset().At(at)
		}
		cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{r.stream: start})
	}
}

// rewind sets each shard in recs back to its first record there, so that
// the next Run hands them out again.
func (r *Reader) rewind(cl *kgo.Client, recs []*kgo.Record) {
	to := map[string]map[int32]kgo.EpochOffset{}
	for _, rec := range recs {
		ps := to[rec.Topic]
		if ps == nil {
			ps = map[int32]kgo.EpochOffset{}
			to[rec.Topic] = ps
		}
		if _, ok := ps[rec.Partition]; !ok {
			ps[rec.Partition] = kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset}
		}
	}
	if len(to) > 0 {
		cl.SetOffsets(to)
	}
}

// Close stops Run (waiting for a running handler to return, or for ctx)
// and releases the connections and goroutines. A second Close returns
// ErrClosed.
func (r *Reader) Close(ctx context.Context) error {
	err := r.life.close(ctx)
	switch {
	case errors.Is(err, ErrClosed):
		return err
	case err != nil:
		err = fmt.Errorf("client: close reader: %w", err)
	}
	r.mu.Lock()
	cl := r.cl
	r.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
	r.hc.CloseIdleConnections()
	return err
}
