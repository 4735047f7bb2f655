package client

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ConsumerOption configures the reading side of the SDK: a Consumer
// (NewConsumer), a Reader (NewReader) and a Transformer (NewTransformer).
// An option that does not apply to one of them is ignored by it; each
// option says where it applies.
type ConsumerOption func(*consumerConfig)

// Shards maps a stream to shards of it, in rebalance callbacks.
type Shards map[string][]int32

type consumerConfig struct {
	clientID             string
	manualCommit         bool
	commitInterval       time.Duration
	onAssigned           func(context.Context, Shards)
	onRevoked            func(context.Context, Shards)
	maxPollRecords       int
	maxConcurrentFetches int
	fetchMaxBytes        int32
	adminAddr            string
	refresh              time.Duration
	kgoOpts              []kgo.Opt
	hooks                ConsumerHooks
}

func defaultConsumerConfig() consumerConfig {
	return consumerConfig{
		clientID:             "braid-go",
		commitInterval:       time.Second,
		maxPollRecords:       1000,
		maxConcurrentFetches: 4,
		fetchMaxBytes:        16 << 20,
		refresh:              time.Second,
	}
}

func (c *consumerConfig) validate() error {
	switch {
	case c.commitInterval < 100*time.Millisecond:
		return fmt.Errorf("client: commit interval %v: want at least 100ms", c.commitInterval)
	case c.maxPollRecords < 1:
		return fmt.Errorf("client: max poll records %d: want at least 1", c.maxPollRecords)
	case c.maxConcurrentFetches < 1:
		return fmt.Errorf("client: max concurrent fetches %d: want at least 1", c.maxConcurrentFetches)
	case c.fetchMaxBytes < 1 || c.fetchMaxBytes > 512<<20:
		return fmt.Errorf("client: fetch max bytes %d: want 1 to 512 MiB", c.fetchMaxBytes)
	case c.refresh <= 0:
		return fmt.Errorf("client: lineage refresh %v: want more than 0", c.refresh)
	}
	if c.adminAddr != "" {
		if _, _, err := net.SplitHostPort(c.adminAddr); err != nil {
			return fmt.Errorf("client: admin address %q: want host:port: %w", c.adminAddr, err)
		}
	}
	return nil
}

// WithConsumerClientID sets the client id the server logs and reports.
// Default "braid-go". Applies to all.
func WithConsumerClientID(id string) ConsumerOption {
	return func(c *consumerConfig) { c.clientID = id }
}

// WithManualCommit turns the periodic commit off: offsets are committed by
// Consumer.Commit, when shards are revoked and by Close, and each time
// only up to the last record a handler returned from. Default: commit
// every WithCommitInterval. Applies to Consumer.
func WithManualCommit() ConsumerOption {
	return func(c *consumerConfig) { c.manualCommit = true }
}

// WithCommitInterval sets how often a Consumer commits what its handler
// has returned from. Default 1s, shorter than franz-go's 5s because on
// Braid a commit at the end of a closed shard is what lets the group
// read that shard's children (the lineage gate). At least 100ms (franz-go's
// floor). Applies to Consumer.
func WithCommitInterval(d time.Duration) ConsumerOption {
	return func(c *consumerConfig) { c.commitInterval = d }
}

// WithOnAssigned sets a callback called with the shards the group gave
// this consumer, before any of their records reach the handler. It runs
// on franz-go's group goroutine, never at the same time as the handler:
// keep it short. Applies to Consumer and Transformer.
func WithOnAssigned(fn func(ctx context.Context, assigned Shards)) ConsumerOption {
	return func(c *consumerConfig) { c.onAssigned = fn }
}

// WithOnRevoked sets a callback called with the shards taken away from
// this consumer (by a rebalance, by Close, or lost with the group
// session), after what the handler returned from was committed and
// before anyone else reads them. Like WithOnAssigned it never runs at the
// same time as the handler. Applies to Consumer and Transformer.
func WithOnRevoked(fn func(ctx context.Context, revoked Shards)) ConsumerOption {
	return func(c *consumerConfig) { c.onRevoked = fn }
}

// WithMaxPollRecords bounds how many messages one handler call gets.
// Default 1000. Applies to all.
func WithMaxPollRecords(n int) ConsumerOption {
	return func(c *consumerConfig) { c.maxPollRecords = n }
}

// WithMaxConcurrentFetches bounds the fetch requests in flight (franz-go's
// MaxConcurrentFetches). Together with WithFetchMaxBytes it bounds the
// memory read ahead of the handler: about n × fetch max bytes; fetching
// pauses while that much waits unhandled. Default 4. Applies to all.
func WithMaxConcurrentFetches(n int) ConsumerOption {
	return func(c *consumerConfig) { c.maxConcurrentFetches = n }
}

// WithFetchMaxBytes bounds the bytes one fetch response may hold. Default
// 16 MiB. Applies to all.
func WithFetchMaxBytes(n int32) ConsumerOption {
	return func(c *consumerConfig) { c.fetchMaxBytes = n }
}

// WithReaderAdminAddr sets the host:port of a Braid node's admin HTTP listener
// (braid serve --http-addr), where a Reader learns the stream's shards and
// lineage. Required by NewReader; ignored by the others.
func WithReaderAdminAddr(addr string) ConsumerOption {
	return func(c *consumerConfig) { c.adminAddr = addr }
}

// WithLineageRefresh sets how often a Reader asks the admin API for the
// stream's layout, to see shards closed and children opened by a reshard
// while it reads. Default 1s. Applies to Reader.
func WithLineageRefresh(d time.Duration) ConsumerOption {
	return func(c *consumerConfig) { c.refresh = d }
}

// WithConsumerKgoOptions passes franz-go options through, applied after
// the ones this package sets (so they win). It is an escape hatch:
// options about commits, rebalances or isolation may break what this
// package documents. Applies to all.
func WithConsumerKgoOptions(opts ...kgo.Opt) ConsumerOption {
	return func(c *consumerConfig) { c.kgoOpts = append(c.kgoOpts, opts...) }
}

// fetchOptions are the options every reading client shares: read_committed
// (aborted transactions are never handed out), a bounded read-ahead,
// reading from the start of a shard that has no committed offset, and
// metadata refreshed every 2s (franz-go: 5 minutes) because a reshard adds
// shards that must be seen soon, not minutes later, and fetches that wait
// at most 500ms for data (Kafka's Java default; franz-go's is 5s): a fetch
// in flight delays the next one, which is how newly assigned shards are
// first read, by up to that long.
func (c *consumerConfig) fetchOptions(seeds []string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(c.clientID),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.MaxConcurrentFetches(c.maxConcurrentFetches),
		kgo.FetchMaxBytes(c.fetchMaxBytes),
		kgo.BrokerMaxReadBytes(max(c.fetchMaxBytes*2, 100<<20)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.MetadataMaxAge(2 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
	}
}
