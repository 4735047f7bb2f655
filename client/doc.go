// Package client is the Go SDK for Braid, a durable streaming log that
// speaks the Kafka protocol: a Producer (with atomic batches and
// hash-range routing), a group Consumer, a groupless Reader and an
// exactly-once Transformer; package admin (client/admin) manages streams,
// shards and groups.
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
// # Atomic batches
//
// ProduceBatch writes several records all or nothing, in order, to any
// shards and streams, and returns once they are durable. It runs a Kafka
// transaction on a second, transactional client, even for a one-shard
// batch, because kgo does not promise that records produced together
// travel in one record batch. Readers with isolation read_committed (the
// SDK's consumer, kgo.FetchIsolationLevel(kgo.ReadCommitted())) see a
// batch whole or not at all, through crashes of the node or the producer;
// read_uncommitted readers may see records of aborted batches. A failed
// batch returns a *BatchError matching ErrBatchAborted (nothing visible)
// or, when the commit's answer was lost, ErrBatchUnknown (all or nothing,
// not known which). A batch may hold at most WithMaxBufferedRecords records
// (ErrBatchTooLarge); batches of one producer run one at a time.
//
// # Routing
//
// Braid shards own ranges of a 128-bit hash-key space; a keyed record
// belongs to the open shard owning MD5(key), and splits and merges move
// ranges to new shards. Without further options, kgo's partitioner picks
// a shard and the server re-routes the record (on braid.routing=key
// streams), which costs the server a decode and re-encode of the batch.
// With WithAdminAddr the producer reads the shard layout of each stream it
// writes to from the admin HTTP API and sends each keyed record straight
// to its owner. It reloads a layout every WithLayoutRefreshInterval (5s),
// and at once when kgo sees the stream's shard count change or the server
// answers that it routed a batch; producing never waits for a reload,
// except a stream's first record, which waits up to 2s for the first. It
// switches to a new layout only when every record sent under the old one
// has been acknowledged (or has failed), so a key never has records in
// flight to two shards and its order holds across splits and merges.
// Until it switches, records sent to a closed shard are routed by the
// server, in order.
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
// (WithReaderAdminAddr, the node's --http-addr) for the shards and their
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
// # Metrics
//
// WithProducerHooks and WithConsumerHooks take callbacks (counts, bytes,
// latencies, errors, commits) and Producer.Stats and Consumer.Stats
// return counters and buffer use, so any metrics library plugs in
// without this module depending on one; docs/sdk.md shows Prometheus.
//
// Consumer, Reader and Transformer errors: ErrClosed after Close,
// ErrRunning for a second concurrent Run, *HandlerError (unwraps to the
// handler's error), *ConsumeError (a shard cannot be read),
// ErrUnknownStream (Reader), ErrNoAdminAddr (NewReader).
package client
