// Package client is the Go SDK for Braid, a durable streaming log that
// speaks the Kafka protocol. This first slice holds the producer; a
// consumer and an admin client come later.
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
package client
