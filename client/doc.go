// Package client is the Go SDK for Braid, a durable streaming log that
// speaks the Kafka protocol. This slice holds the producer, with atomic
// batches and hash-range routing; package admin (client/admin) manages
// streams, shards and groups.
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
package client
