// Package client is the Go SDK for Braid, a durable streaming log that
// speaks the Kafka protocol: a Producer, a group Consumer, a groupless
// Reader and an exactly-once Transformer (an admin client comes later).
//
// # Producing
//
// Create one Producer per process and share it: it is safe for concurrent
// use, keeps its connections open, and batches records from every caller.
//
//	p, err := client.NewProducer([]string{"127.0.0.1:9092"})
//	if err != nil { ... }
//	defer p.Close(context.Background())
//
//	res, err := p.Produce(ctx, &client.Record{Stream: "orders", Key: []byte("user-7"), Value: body})
//
// Produce returns when the record is durable: the node has fsync'd it
// (Kafka's acks=all), and res says which shard and offset it got.
// ProduceAsync returns at once and calls a callback exactly once with the
// outcome, on one of the producer's goroutines; Flush waits for every
// record produced so far. Close flushes, then releases everything; any call
// after Close returns ErrClosed.
//
// Records with a key go to the shard the key routes to, so that one key's
// records stay in order; records without a key are spread over shards.
//
// # Delivery
//
// Idempotence is on by default: the producer retries failed requests
// (with franz-go's backoff) without writing a record twice, and a
// stream's records from one producer stay in the order they were produced
// per shard. Retries stop at the delivery timeout (WithDeliveryTimeout,
// default 2 minutes), when the record fails with ErrDeliveryTimeout. The
// producer holds at most WithMaxBufferedRecords records (and
// WithMaxBufferedBytes bytes) in memory; past that, Produce and
// ProduceAsync block until acknowledgements free room.
//
// # Errors
//
// Errors are typed: test them with errors.Is (ErrClosed, ErrNilRecord,
// ErrNoStream, ErrRecordTooLarge, ErrUnknownStream, ErrDeliveryTimeout,
// context.Canceled) and errors.As (*ProduceError, which names the stream
// and unwraps to the cause, for example a franz-go *kerr.Error).
//
// # Options
//
// NewProducer takes ProducerOption values (WithLinger, WithCompression, …);
// each documents its default. WithKgoOptions passes franz-go options
// through for what this package does not cover.
//
// # Consuming in a group
//
// A Consumer is a member of a consumer group; the group's members share
// the shards of the streams they read. It is driven by a handler:
//
//	c, err := client.NewConsumer(seeds, "billing", []string{"orders"})
//	if err != nil { ... }
//	defer c.Close(context.Background())
//	err = c.Run(ctx, func(ctx context.Context, msgs []client.Message) error {
//		return store(ctx, msgs) // nil: done with msgs
//	})
//
// Why Run(ctx, handler) and not Poll: the SDK must know when a record has
// been processed, not only fetched, to commit it. With a handler it does:
// an offset is committed only after the handler returned nil for its
// record (at-least-once), a rebalance waits until the running handler
// returns (so shards move with everything handled committed, and no
// handler works on a shard this member lost), and a failed batch is
// rewound and handed out again. A Poll API would leave all three to the
// caller, and the easy mistake (commit what was polled) loses records on a
// crash.
//
// Commits run every WithCommitInterval (default 1s), when shards are
// revoked, and in Close; WithManualCommit leaves the timing to Commit(ctx)
// (revoke and Close still commit what was handled). A Message has Stream,
// Shard, Offset, Key, Value, Headers and Timestamp; one shard's messages
// come in offset order. WithOnAssigned and WithOnRevoked report shards as
// they come and go. Read-ahead is bounded (WithMaxConcurrentFetches ×
// WithFetchMaxBytes): a slow handler stops fetching, not memory.
// Aborted transactions are never handed out (read_committed).
//
// Splits and merges need nothing from the handler: the Braid node holds a
// child shard back from the group until the group has committed its
// parents to their end (the lineage gate), so a key's records reach the
// handlers in the order they were written. Duplicates are possible after
// a crash or a failed commit (at-least-once); reordering is not.
//
// # Reading a whole stream
//
// A Reader reads every shard of one stream without a group and without
// commits, walking the lineage itself: it asks a node's admin API
// (WithAdminAddr, the node's --http-addr) for the shards and their
// parents, and reads a child only after its parents are read to their
// end. Use it for tools, replays and tests; use a Consumer to share work
// or to resume after a restart.
//
// # Exactly-once pipelines
//
// A Transformer reads input streams in a group, calls a TransformFunc per
// batch, and produces its output and commits the batch's input offsets in
// one transaction:
//
//	t, err := client.NewTransformer(seeds, "enrich", []string{"orders"}, "enrich-0", enrich)
//	err = t.Run(ctx)
//
// Readers of the output that read committed data (this package's do) see
// each input's output once, whatever process dies when. Restart a dead
// instance with the same transactional id: it fences its predecessor and
// aborts the transaction that was open, before it reads anything.
//
// Consumer, Reader and Transformer errors: ErrClosed after Close,
// ErrRunning for a second concurrent Run, *HandlerError (unwraps to the
// handler's error), *ConsumeError (a shard cannot be read),
// ErrUnknownStream (Reader), ErrNoAdminAddr (NewReader).
package client
