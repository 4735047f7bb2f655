package server

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// Config is a node's configuration. Defaults() gives the embedded default:
// data in ./braid-data, Kafka on :9092, nothing else to set.
type Config struct {
	DataDir string // default ./braid-data
	// KafkaAddr is the Kafka listener (host:port); default 127.0.0.1:9092.
	KafkaAddr string
	// AdvertisedKafkaAddr is what Metadata tells clients (host:port);
	// default: the listener's address.
	AdvertisedKafkaAddr string
	// HTTPAddr serves /healthz and /metrics; empty disables it; default
	// 127.0.0.1:9644.
	HTTPAddr string
	// KinesisAddr serves the Kinesis Data Streams API; empty disables it;
	// default 127.0.0.1:4567. KinesisRegion and KinesisAccount make stream
	// ARNs (defaults us-east-1, 000000000000).
	KinesisAddr    string
	KinesisRegion  string
	KinesisAccount string
	// KinesisCredentials is a file of "ACCESS_KEY_ID SECRET" lines; when
	// set, every Kinesis request must carry a valid SigV4 signature by one
	// of them. Default empty: unsigned requests are accepted.
	KinesisCredentials string
	// KinesisTLSCert and KinesisTLSKey (PEM files, both or neither) serve
	// the Kinesis API over TLS; default empty: cleartext HTTP/1.1 and h2c.
	KinesisTLSCert string
	KinesisTLSKey  string
	// KinesisSubscriptionTTL ends a Kinesis SubscribeToShard stream
	// (default 5m, as in AWS).
	KinesisSubscriptionTTL time.Duration
	NodeID                 int32
	// Connectors runs the node's connectors and serves /v1/connectors
	// (default on); off, the API answers 503 and nothing runs.
	Connectors bool
	// AutoCreateTopics lets Metadata create missing topics (default off);
	// DefaultPartitions is their shard count, and the count for CreateTopics
	// with -1 (default 1).
	AutoCreateTopics  bool
	DefaultPartitions int
	// CacheBytes bounds memory for recent batches (default 256 MiB).
	CacheBytes int64
	// MemoryLimit is the soft limit on the Go runtime's memory (heap,
	// stacks, runtime data): 0 (the default) sets it to CacheBytes +
	// MemoryHeadroom, -1 leaves it off. The GOMEMLIMIT environment
	// variable, when set, wins. See ApplyMemoryLimit.
	MemoryLimit int64
	// MemoryLimitFollowsIndex, set by the serve command (not a flag) when
	// the limit is the default, raises the process's soft memory limit
	// above that default by what the shard indexes hold, as they grow
	// with what is retained (see FollowIndexLimit).
	MemoryLimitFollowsIndex bool
	// MaxRequestBytes bounds one Kafka request, and the unanswered request
	// bytes one connection holds (Kafka's socket.request.max.bytes;
	// default 100 MiB).
	MaxRequestBytes int
	// QueuedMaxRequestBytes bounds the request bytes all connections hold
	// together, counted as they arrive (Kafka's queued.max.request.bytes;
	// default 512 MiB; at least MaxRequestBytes).
	QueuedMaxRequestBytes int64
	// RequestTimeout is the slow-client timeout: a request must arrive whole
	// within it from its first byte, and a response be taken within it
	// (default 30s).
	RequestTimeout time.Duration
	// ConnectionsMaxIdle closes connections without a request for this long
	// (Kafka's connections.max.idle.ms; default 10m).
	ConnectionsMaxIdle time.Duration
	// MaxConnections and MaxConnectionsPerIP refuse connections past these
	// counts (Kafka's max.connections, max.connections.per.ip); 0 is no
	// limit (defaults 10000 and 0).
	MaxConnections      int
	MaxConnectionsPerIP int
	// FetchMaxBytes caps one fetch response's record bytes (Kafka's broker
	// fetch.max.bytes; default 55 MiB).
	FetchMaxBytes int
	// WALSegmentBytes is the shared log's segment size (default 128 MiB).
	WALSegmentBytes int64
	// WALPrewrite keeps a spare log segment of written zeros ready, so
	// that the log's fsyncs write data alone (default off: its zeros
	// double the log's writes and page-cache growth, which cost more than
	// the extent conversions it saves; docs/design/storage.md, "Defaults").
	WALPrewrite bool
	// WALDirectIO writes the shared log with O_DIRECT where the
	// filesystem allows it, bypassing the page cache (default off:
	// docs/design/storage.md, "Direct I/O for the log").
	WALDirectIO bool
	// WALPageCacheBytes, if positive, is how much of the most recent
	// shared log stays in the page cache; older data is dropped from it
	// once durable, so that the cache stops growing into fresh memory
	// (default DefaultWALPageCacheBytes; 0 leaves it to the kernel;
	// docs/design/storage.md, "The log's page cache" and "Defaults").
	WALPageCacheBytes int64
	// CheckpointInterval bounds time between index checkpoints (default 30s).
	CheckpointInterval time.Duration
	// RetentionCheckInterval is how often time and size retention run
	// (default 30s).
	RetentionCheckInterval time.Duration
	// MoveInterval is the longest time closed write-ahead log data of
	// compacted streams waits before the mover copies it into shard
	// segment files for the cleaner (default 2m; it also moves as soon as
	// 1 GiB of it is closed). Other data stays in the log, written once
	// (docs/design/storage.md).
	MoveInterval time.Duration
	// CleanerInterval is how often the cleaner looks for compacted shards
	// due for a pass (default 15s); CleanerBytesPerSec is its I/O budget
	// (default 64 MiB/s).
	CleanerInterval    time.Duration
	CleanerBytesPerSec int64
	// ProducerIDExpiration forgets an idempotent producer's state on a shard
	// after this long without a batch from it (Kafka's
	// producer.id.expiration.ms; default 24h). Checked every
	// RetentionCheckInterval.
	ProducerIDExpiration time.Duration
	// TransactionalIDExpiration forgets a transactional id with no
	// transaction open after this long without a request (Kafka's
	// transactional.id.expiration.ms; default 7 days).
	TransactionalIDExpiration time.Duration
	// TransactionMaxTimeout is the longest transaction timeout a producer
	// may ask for (Kafka's transaction.max.timeout.ms; default 15m).
	TransactionMaxTimeout time.Duration
	// GroupMinSessionTimeout and GroupMaxSessionTimeout bound the session
	// timeout a classic group member may ask for (Kafka's
	// group.min.session.timeout.ms and group.max.session.timeout.ms;
	// defaults 6s and 30m).
	GroupMinSessionTimeout time.Duration
	GroupMaxSessionTimeout time.Duration
	// GroupInitialRebalanceDelay is how long an empty classic group's first
	// rebalance waits for more members to join, so that members starting
	// together land in one generation (Kafka's
	// group.initial.rebalance.delay.ms; default 3s, 0 disables it).
	GroupInitialRebalanceDelay time.Duration
	// OffsetMetadataMaxBytes bounds the metadata of one committed offset
	// (Kafka's offset.metadata.max.bytes; default 4096 bytes).
	OffsetMetadataMaxBytes int
	// StreamDefaults are broker-wide defaults for stream configs, by Kafka
	// name (e.g. retention.ms).
	StreamDefaults catalog.Configs
	LogLevel       string // debug, info, warn, error; default info
}

// DefaultWALPageCacheBytes is how much of the most recent log the page
// cache keeps by default: 1 GiB, several seconds of writes at the disk's
// speed, so that consumers near the tail read from memory while the
// cache's pages are reused warm instead of growing into fresh memory
// (docs/design/storage.md, "Defaults").
const DefaultWALPageCacheBytes = 1 << 30

// Defaults returns the embedded default configuration.
func Defaults() Config {
	return Config{
		DataDir:                    "./braid-data",
		KafkaAddr:                  "127.0.0.1:9092",
		HTTPAddr:                   "127.0.0.1:9644",
		KinesisAddr:                "127.0.0.1:4567",
		KinesisRegion:              "us-east-1",
		KinesisAccount:             "000000000000",
		KinesisSubscriptionTTL:     5 * time.Minute,
		DefaultPartitions:          1,
		CacheBytes:                 engine.DefaultCacheBytes,
		MaxRequestBytes:            100 << 20,
		QueuedMaxRequestBytes:      512 << 20,
		RequestTimeout:             30 * time.Second,
		ConnectionsMaxIdle:         10 * time.Minute,
		MaxConnections:             10000,
		FetchMaxBytes:              55 << 20,
		WALSegmentBytes:            128 << 20,
		WALPageCacheBytes:          DefaultWALPageCacheBytes,
		Connectors:                 true,
		CheckpointInterval:         30 * time.Second,
		RetentionCheckInterval:     30 * time.Second,
		MoveInterval:               2 * time.Minute,
		CleanerInterval:            15 * time.Second,
		CleanerBytesPerSec:         64 << 20,
		ProducerIDExpiration:       24 * time.Hour,
		TransactionalIDExpiration:  7 * 24 * time.Hour,
		TransactionMaxTimeout:      15 * time.Minute,
		GroupMinSessionTimeout:     6 * time.Second,
		GroupMaxSessionTimeout:     30 * time.Minute,
		GroupInitialRebalanceDelay: 3 * time.Second,
		OffsetMetadataMaxBytes:     4096,
		StreamDefaults:             catalog.Configs{},
		LogLevel:                   "info",
	}
}

func checkAddr(name, addr string, optional bool) error {
	if addr == "" {
		if optional {
			return nil
		}
		return fmt.Errorf("%s: must be set (host:port)", name)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %v", name, addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%s %q: bad port", name, addr)
	}
	return nil
}

// Validate reports every problem with the configuration at once.
var kinesisAccount = regexp.MustCompile(`^[0-9]{12}$`)

func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir: must be set"))
	}
	if err := checkAddr("kafka addr", c.KafkaAddr, false); err != nil {
		errs = append(errs, err)
	}
	if err := checkAddr("advertised kafka addr", c.AdvertisedKafkaAddr, true); err != nil {
		errs = append(errs, err)
	}
	if err := checkAddr("http addr", c.HTTPAddr, true); err != nil {
		errs = append(errs, err)
	}
	if err := checkAddr("kinesis addr", c.KinesisAddr, true); err != nil {
		errs = append(errs, err)
	}
	if c.KinesisAddr != "" && (c.KinesisRegion == "" || !kinesisAccount.MatchString(c.KinesisAccount)) {
		errs = append(errs, fmt.Errorf("kinesis region %q / account %q: the region must be set and the account be 12 digits", c.KinesisRegion, c.KinesisAccount))
	}
	if (c.KinesisTLSCert == "") != (c.KinesisTLSKey == "") {
		errs = append(errs, fmt.Errorf("kinesis tls cert %q / key %q: give both or neither", c.KinesisTLSCert, c.KinesisTLSKey))
	}
	if c.KinesisSubscriptionTTL < time.Second || c.KinesisSubscriptionTTL > time.Hour {
		errs = append(errs, fmt.Errorf("kinesis subscription ttl %s: must be 1s to 1h", c.KinesisSubscriptionTTL))
	}
	if c.NodeID < 0 {
		errs = append(errs, fmt.Errorf("node id %d: must be >= 0", c.NodeID))
	}
	if c.DefaultPartitions < 1 || c.DefaultPartitions > catalog.MaxShards {
		errs = append(errs, fmt.Errorf("default partitions %d: must be 1 to %d", c.DefaultPartitions, catalog.MaxShards))
	}
	if c.WALPageCacheBytes < 0 {
		errs = append(errs, fmt.Errorf("wal page cache bytes %d: must be >= 0 (0 leaves the page cache to the kernel)", c.WALPageCacheBytes))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("cache bytes %d: must be >= 0", c.CacheBytes))
	}
	if c.MemoryLimit < -1 || (c.MemoryLimit > 0 && c.MemoryLimit < c.cacheBytes()+minMemoryHeadroom) {
		errs = append(errs, fmt.Errorf("memory limit %d: must be 0 (cache bytes + %d MiB), -1 (off), or at least cache bytes + %d MiB (%d)",
			c.MemoryLimit, MemoryHeadroom>>20, minMemoryHeadroom>>20, c.cacheBytes()+minMemoryHeadroom))
	}
	if c.MaxRequestBytes < 1024 || c.MaxRequestBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("max request bytes %d: must be 1 KiB to 1 GiB", c.MaxRequestBytes))
	}
	if c.QueuedMaxRequestBytes < int64(c.MaxRequestBytes) {
		errs = append(errs, fmt.Errorf("queued max request bytes %d: must be at least max request bytes (%d)", c.QueuedMaxRequestBytes, c.MaxRequestBytes))
	}
	if c.RequestTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("request timeout %s: must be at least 100ms", c.RequestTimeout))
	}
	if c.ConnectionsMaxIdle < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("connections max idle %s: must be at least 100ms", c.ConnectionsMaxIdle))
	}
	if c.MaxConnections < 0 {
		errs = append(errs, fmt.Errorf("max connections %d: must be >= 0 (0: no limit)", c.MaxConnections))
	}
	if c.MaxConnectionsPerIP < 0 {
		errs = append(errs, fmt.Errorf("max connections per ip %d: must be >= 0 (0: no limit)", c.MaxConnectionsPerIP))
	}
	if c.FetchMaxBytes < 1024 || c.FetchMaxBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("fetch max bytes %d: must be 1 KiB to 1 GiB", c.FetchMaxBytes))
	}
	if c.WALSegmentBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("wal segment bytes %d: must be at least 1 MiB", c.WALSegmentBytes))
	}
	if c.RetentionCheckInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("retention check interval %s: must be at least 10ms", c.RetentionCheckInterval))
	}
	if c.MoveInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("move interval %s: must be at least 100ms", c.MoveInterval))
	}
	if c.CleanerInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("cleaner interval %s: must be at least 10ms", c.CleanerInterval))
	}
	if c.CleanerBytesPerSec < 1<<20 {
		errs = append(errs, fmt.Errorf("cleaner bytes per sec %d: must be at least 1 MiB", c.CleanerBytesPerSec))
	}
	if c.CheckpointInterval < time.Second {
		errs = append(errs, fmt.Errorf("checkpoint interval %s: must be at least 1s", c.CheckpointInterval))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"producer id expiration", c.ProducerIDExpiration},
		{"transactional id expiration", c.TransactionalIDExpiration},
		{"transaction max timeout", c.TransactionMaxTimeout},
	} {
		if d.v < time.Second {
			errs = append(errs, fmt.Errorf("%s %s: must be at least 1s", d.name, d.v))
		}
	}
	if c.GroupMinSessionTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("group min session timeout %s: must be at least 1ms", c.GroupMinSessionTimeout))
	}
	if c.GroupMaxSessionTimeout < c.GroupMinSessionTimeout {
		errs = append(errs, fmt.Errorf("group max session timeout %s: must be at least the min session timeout %s", c.GroupMaxSessionTimeout, c.GroupMinSessionTimeout))
	}
	if c.GroupInitialRebalanceDelay < 0 || c.GroupInitialRebalanceDelay > 5*time.Minute {
		errs = append(errs, fmt.Errorf("group initial rebalance delay %s: must be 0 to 5m", c.GroupInitialRebalanceDelay))
	}
	if c.OffsetMetadataMaxBytes < 1 || c.OffsetMetadataMaxBytes > 1<<20 {
		errs = append(errs, fmt.Errorf("offset metadata max bytes %d: must be 1 to 1 MiB", c.OffsetMetadataMaxBytes))
	}
	for k, v := range c.StreamDefaults {
		if err := catalog.ValidateConfig(k, v); err != nil {
			errs = append(errs, fmt.Errorf("stream default: %w", err))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log level %q: must be debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// cacheBytes is the tail cache the node runs with: CacheBytes, or the
// engine's default for 0.
func (c Config) cacheBytes() int64 {
	if c.CacheBytes > 0 {
		return c.CacheBytes
	}
	return engine.DefaultCacheBytes
}
