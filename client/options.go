package client

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Compression names a codec for record batches.
type Compression string

// The codecs Braid accepts.
const (
	CompressionNone   Compression = "none"
	CompressionSnappy Compression = "snappy"
	CompressionLZ4    Compression = "lz4"
	CompressionZstd   Compression = "zstd"
	CompressionGzip   Compression = "gzip"
)

func (c Compression) codec() (kgo.CompressionCodec, error) {
	switch c {
	case CompressionNone:
		return kgo.NoCompression(), nil
	case CompressionSnappy:
		return kgo.SnappyCompression(), nil
	case CompressionLZ4:
		return kgo.Lz4Compression(), nil
	case CompressionZstd:
		return kgo.ZstdCompression(), nil
	case CompressionGzip:
		return kgo.GzipCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("client: unknown compression %q (want none, snappy, lz4, zstd or gzip)", string(c))
}

// Acks says when a non-idempotent producer counts a record as delivered.
type Acks int

const (
	// AcksLeader: the node received the record (not yet fsync'd).
	AcksLeader Acks = 1
	// AcksNone: the record was sent; nothing is waited for.
	AcksNone Acks = 0
)

// ProducerOption configures a Producer (NewProducer).
type ProducerOption func(*producerConfig)

type producerConfig struct {
	clientID        string
	linger          time.Duration
	maxRecords      int
	maxBytes        int64
	batchMaxBytes   int32
	compression     Compression
	deliveryTimeout time.Duration
	idempotent      bool
	acks            Acks
	adminAddr       string
	layoutRefresh   time.Duration
	transactionalID string
	txnTimeout      time.Duration
	kgoOpts         []kgo.Opt
	hooks           ProducerHooks
}

func defaultProducerConfig() producerConfig {
	return producerConfig{
		clientID:        "braid-go",
		linger:          10 * time.Millisecond,
		maxRecords:      50000,
		maxBytes:        0,
		batchMaxBytes:   1 << 20,
		compression:     CompressionNone,
		deliveryTimeout: 2 * time.Minute,
		idempotent:      true,
		layoutRefresh:   5 * time.Second,
		txnTimeout:      40 * time.Second,
	}
}

func (c *producerConfig) validate() error {
	switch {
	case c.linger < 0:
		return fmt.Errorf("client: linger %v is negative", c.linger)
	case c.maxRecords < 1:
		return fmt.Errorf("client: max buffered records %d: want at least 1", c.maxRecords)
	case c.maxBytes < 0:
		return fmt.Errorf("client: max buffered bytes %d is negative", c.maxBytes)
	case c.batchMaxBytes < 1:
		return fmt.Errorf("client: batch max bytes %d: want at least 1", c.batchMaxBytes)
	case c.deliveryTimeout <= 0:
		return fmt.Errorf("client: delivery timeout %v: want more than 0", c.deliveryTimeout)
	case c.txnTimeout < time.Second:
		return fmt.Errorf("client: transaction timeout %v: want at least 1s", c.txnTimeout)
	case c.layoutRefresh <= 0:
		return fmt.Errorf("client: layout refresh interval %v: want more than 0", c.layoutRefresh)
	case !c.idempotent && c.acks != AcksLeader && c.acks != AcksNone:
		return fmt.Errorf("client: acks %d: want AcksLeader (1) or AcksNone (0)", c.acks)
	}
	_, err := c.compression.codec()
	return err
}

// WithClientID sets the client id the server logs and reports. Default
// "braid-go".
func WithClientID(id string) ProducerOption {
	return func(c *producerConfig) { c.clientID = id }
}

// WithLinger sets how long a partly filled batch waits for more records
// before it is sent. Default 10ms (franz-go's); 0 sends at once (records
// still batch while a request is in flight).
func WithLinger(d time.Duration) ProducerOption {
	return func(c *producerConfig) { c.linger = d }
}

// WithMaxBufferedRecords bounds how many records may wait unacknowledged in
// memory; Produce and ProduceAsync block when it is reached, until room
// frees up (Produce also stops waiting when its ctx is done). Default
// 50000 (franz-go's).
func WithMaxBufferedRecords(n int) ProducerOption {
	return func(c *producerConfig) { c.maxRecords = n }
}

// WithMaxBufferedBytes bounds the bytes (keys, values, headers) of records
// waiting unacknowledged in memory, blocking as WithMaxBufferedRecords
// does. Default 0: no byte bound, only the record bound.
func WithMaxBufferedBytes(n int64) ProducerOption {
	return func(c *producerConfig) { c.maxBytes = n }
}

// WithBatchMaxBytes sets the largest record batch sent to one shard in
// bytes; a record that cannot fit alone fails with ErrRecordTooLarge.
// Default 1 MiB.
func WithBatchMaxBytes(n int32) ProducerOption {
	return func(c *producerConfig) { c.batchMaxBytes = n }
}

// WithCompression sets the batch codec. Default CompressionNone.
func WithCompression(codec Compression) ProducerOption {
	return func(c *producerConfig) { c.compression = codec }
}

// WithDeliveryTimeout bounds how long a record may take from ProduceAsync or
// Produce to its acknowledgement, retries included (retries and backoff
// are franz-go's defaults; this bounds them). A record that runs out of
// time fails with ErrDeliveryTimeout, even one that was in flight: its
// fate is then unknown (it may have been written), and producing it again
// may write it twice. Default 2 minutes.
func WithDeliveryTimeout(d time.Duration) ProducerOption {
	return func(c *producerConfig) { c.deliveryTimeout = d }
}

// WithoutIdempotence turns idempotent writes off and acknowledges with acks
// instead of "all" (on Braid: fsync'd). Retries may then write a record
// twice, and a record counts as delivered before it is durable. Default:
// idempotent, acks all.
func WithoutIdempotence(acks Acks) ProducerOption {
	return func(c *producerConfig) { c.idempotent, c.acks = false, acks }
}

// WithAdminAddr turns client-side routing on: the producer reads each
// stream's shard layout from the Braid admin HTTP API at addr (host:port of
// `braid serve --http-addr`) and sends every keyed record straight to the
// open shard owning MD5(key), the server's own rule, following splits and
// merges (see the package docs, "Routing"). Unkeyed records are spread
// over open shards. Default: off; kgo's partitioner chooses and the server
// routes keyed records of braid.routing=key streams itself.
//
// At a layout change, producing to that stream waits until the records
// sent under the old layout are acknowledged (usually one round trip):
// so do not produce to a stream from a ProduceAsync callback of a record
// of the same stream, which could wait for callbacks queued behind its
// own.
func WithAdminAddr(addr string) ProducerOption {
	return func(c *producerConfig) { c.adminAddr = addr }
}

// WithLayoutRefreshInterval sets how often the producer reloads the shard
// layouts of the streams it writes to (WithAdminAddr). It reloads sooner
// when kgo sees a stream's shard count change or the server reports it
// routed a batch. Default 5s.
func WithLayoutRefreshInterval(d time.Duration) ProducerOption {
	return func(c *producerConfig) { c.layoutRefresh = d }
}

// WithTransactionalID sets the Kafka transactional id of ProduceBatch's
// transactions. Give a producer that restarts the same id as before to
// have its first batch abort whatever batch the previous run left open
// (otherwise the server aborts it when its transaction timeout passes).
// Two live producers must not share one: the newer fences the older.
// Default: the client id, "-batch-" and 16 random hex digits.
func WithTransactionalID(id string) ProducerOption {
	return func(c *producerConfig) { c.transactionalID = id }
}

// WithTransactionTimeout sets how long the server lets a ProduceBatch
// transaction stay open before it aborts it: the longest a batch left
// open by a crashed producer holds back read_committed readers of its
// shards. At least 1s, at most the server's --transaction-max-timeout.
// Default 40s (franz-go's).
func WithTransactionTimeout(d time.Duration) ProducerOption {
	return func(c *producerConfig) { c.txnTimeout = d }
}

// WithKgoOptions passes franz-go options through, applied after the ones
// above (so they win). It is an escape hatch: options that change
// delivery semantics (acks, idempotence, transactions, manual flushing)
// may break what this package documents.
func WithKgoOptions(opts ...kgo.Opt) ProducerOption {
	return func(c *producerConfig) { c.kgoOpts = append(c.kgoOpts, opts...) }
}

func (c *producerConfig) kgoOptions(seeds []string) []kgo.Opt {
	return c.kgoOptionsFor(seeds, false)
}

// kgoOptionsFor builds the options of the producer's client, or with txn of
// ProduceBatch's transactional one (kgo forbids cancelling in-flight
// records there: a batch's transaction is aborted instead).
func (c *producerConfig) kgoOptionsFor(seeds []string, txn bool) []kgo.Opt {
	codec, _ := c.compression.codec()
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(c.clientID),
		kgo.ProducerLinger(c.linger),
		kgo.MaxBufferedRecords(c.maxRecords),
		kgo.ProducerBatchMaxBytes(c.batchMaxBytes),
		kgo.ProducerBatchCompression(codec),
		kgo.RecordDeliveryTimeout(c.deliveryTimeout),
	}
	if !txn {
		// Without this, kgo never fails an idempotent record that may be
		// in flight (it waits to learn its fate, for ever if the node is
		// gone), and the delivery timeout would not bound anything.
		opts = append(opts, kgo.AllowIdempotentProduceCancellation())
	}
	if c.maxBytes > 0 {
		opts = append(opts, kgo.MaxBufferedBytes(int(c.maxBytes)))
	}
	if c.idempotent {
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	} else {
		acks := kgo.LeaderAck()
		if c.acks == AcksNone {
			acks = kgo.NoAck()
		}
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.RequiredAcks(acks))
	}
	return append(opts, c.kgoOpts...)
}
