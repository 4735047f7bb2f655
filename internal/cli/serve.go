package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/braidstream/braid/internal/server"
)

func init() { register(newServeCommand) }

func newServeCommand() *cobra.Command {
	cfg := server.Defaults()
	var defaults []string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Braid node in the foreground",
		Long: `Run a Braid node: the Kafka protocol on --kafka-addr, /healthz and /metrics
on --http-addr, data in --data-dir. It needs no external service.

SIGTERM or Ctrl-C stops it gracefully: it stops taking requests, flushes and
fsyncs the log, writes a checkpoint and exits 0.

Examples:
  braid serve
  braid serve --data-dir /var/lib/braid --kafka-addr 0.0.0.0:9092 \
      --advertised-kafka-addr broker1.example.com:9092
  braid serve --stream-default retention.ms=86400000 --auto-create-topics`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, kv := range defaults {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--stream-default %q: want name=value", kv)
				}
				cfg.StreamDefaults[k] = v
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			var level slog.Level
			level.UnmarshalText([]byte(cfg.LogLevel))
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			// Process-wide, so set here rather than in server.Run, which
			// tests run several of in one process.
			if limit, source := server.ApplyMemoryLimit(&cfg); limit > 0 {
				logger.Info("memory limit", "bytes", limit, "from", source)
			} else {
				logger.Info("memory limit off", "from", source)
			}
			return server.Run(cmd.Context(), cfg, logger, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory holding the node's data")
	f.StringVar(&cfg.KafkaAddr, "kafka-addr", cfg.KafkaAddr, "Kafka protocol listener, host:port")
	f.StringVar(&cfg.AdvertisedKafkaAddr, "advertised-kafka-addr", "", "host:port clients are told to connect to (default: the listener's)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "HTTP listener for /healthz and /metrics, host:port (empty disables)")
	f.StringVar(&cfg.KinesisAddr, "kinesis-addr", cfg.KinesisAddr, "Kinesis Data Streams API listener, host:port (empty disables)")
	f.StringVar(&cfg.KinesisRegion, "kinesis-region", cfg.KinesisRegion, "AWS region in the stream ARNs the Kinesis API reports")
	f.StringVar(&cfg.KinesisAccount, "kinesis-account", cfg.KinesisAccount, "12-digit AWS account id in the stream ARNs the Kinesis API reports")
	f.StringVar(&cfg.KinesisCredentials, "kinesis-credentials", cfg.KinesisCredentials, "file of \"ACCESS_KEY_ID SECRET\" lines; when set, Kinesis requests must be SigV4-signed by one of them (default: unsigned requests accepted)")
	f.StringVar(&cfg.KinesisTLSCert, "kinesis-tls-cert", cfg.KinesisTLSCert, "PEM certificate file: serve the Kinesis API over TLS (with --kinesis-tls-key)")
	f.StringVar(&cfg.KinesisTLSKey, "kinesis-tls-key", cfg.KinesisTLSKey, "PEM private key file for --kinesis-tls-cert")
	f.DurationVar(&cfg.KinesisSubscriptionTTL, "kinesis-subscription-ttl", cfg.KinesisSubscriptionTTL, "how long one Kinesis SubscribeToShard stream lasts before the client must subscribe again")
	f.Int32Var(&cfg.NodeID, "node-id", cfg.NodeID, "this node's broker id")
	f.BoolVar(&cfg.Connectors, "connectors", cfg.Connectors, "run the connectors defined on this node and serve /v1/connectors (false: the API answers 503 and no connector runs)")
	f.BoolVar(&cfg.AutoCreateTopics, "auto-create-topics", cfg.AutoCreateTopics, "create a stream when a client asks for metadata of a missing one")
	f.IntVar(&cfg.DefaultPartitions, "default-partitions", cfg.DefaultPartitions, "shards of auto-created streams and of CreateTopics with -1")
	f.Int64Var(&cfg.CacheBytes, "cache-bytes", cfg.CacheBytes, "memory for recent batches, all shards together, bytes (0 means the default, 256 MiB; each shard keeps at least 256 KiB, and holds them only while a consumer reads it at its tail)")
	f.Int64Var(&cfg.MemoryLimit, "memory-limit", cfg.MemoryLimit, fmt.Sprintf("soft limit on the node's Go memory, bytes: 0 for --cache-bytes + %d MiB + what the shard indexes hold (followed as they grow with retention), -1 for none; the GOMEMLIMIT environment variable wins when set", server.MemoryHeadroom>>20))
	f.IntVar(&cfg.MaxRequestBytes, "max-request-bytes", cfg.MaxRequestBytes, "largest Kafka request accepted, and most unanswered request bytes one connection holds, bytes (Kafka's socket.request.max.bytes)")
	f.Int64Var(&cfg.QueuedMaxRequestBytes, "queued-max-request-bytes", cfg.QueuedMaxRequestBytes, "most request bytes all connections hold together, counted as they arrive; readers wait past it, bytes (Kafka's queued.max.request.bytes)")
	f.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "slow-client timeout: a request must arrive whole within it from its first byte, and a response be read within it, else the connection is closed")
	f.DurationVar(&cfg.ConnectionsMaxIdle, "connections-max-idle", cfg.ConnectionsMaxIdle, "close a connection after this long without a request and nothing in flight (Kafka's connections.max.idle.ms)")
	f.IntVar(&cfg.MaxConnections, "max-connections", cfg.MaxConnections, "refuse Kafka connections past this many open, 0 for no limit (Kafka's max.connections)")
	f.IntVar(&cfg.MaxConnectionsPerIP, "max-connections-per-ip", cfg.MaxConnectionsPerIP, "refuse Kafka connections past this many open from one IP address, 0 for no limit (Kafka's max.connections.per.ip)")
	f.IntVar(&cfg.FetchMaxBytes, "fetch-max-bytes", cfg.FetchMaxBytes, "most record bytes in one fetch response, whatever the client asks; the first batch is sent whole even if larger, bytes (Kafka's broker fetch.max.bytes)")
	f.Int64Var(&cfg.WALSegmentBytes, "wal-segment-bytes", cfg.WALSegmentBytes, "size of a write-ahead log segment, bytes")
	f.BoolVar(&cfg.WALPrewrite, "wal-prewrite", cfg.WALPrewrite, "keep a spare write-ahead log segment of written zeros ready, so that fsyncs write data alone (on ext4 and XFS the fsyncs then skip converting preallocated extents, which lowers latency at low rates, but every segment is written twice and its zeros pass through the page cache; never on copy-on-write filesystems); it takes one segment of disk while at least four are free")
	f.BoolVar(&cfg.WALDirectIO, "wal-direct-io", cfg.WALDirectIO, "write the write-ahead log with O_DIRECT, past the page cache: less CPU per byte and lower produce latency at high write rates, but reads of data older than the tail cache (--cache-bytes) then come from the disk instead of memory (falls back to the page cache where the filesystem refuses O_DIRECT)")
	f.Int64Var(&cfg.WALPageCacheBytes, "wal-page-cache-bytes", cfg.WALPageCacheBytes, "how much of the most recent write-ahead log stays in the OS page cache, bytes: older data is dropped from the cache once durable, so that writing reuses the same pages instead of growing the cache into fresh memory (less CPU per byte written, most on virtual machines that hand free memory back to the host), and consumers further behind read from the disk (in large direct reads); 0 leaves the page cache to the kernel")
	f.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", cfg.CheckpointInterval, "longest time between index checkpoints")
	f.DurationVar(&cfg.RetentionCheckInterval, "retention-check-interval", cfg.RetentionCheckInterval, "how often time and size retention (cleanup.policy=delete) run")
	f.DurationVar(&cfg.MoveInterval, "move-interval", cfg.MoveInterval, "longest time closed write-ahead log data of compacted streams waits before it is moved into shard segment files for the cleaner (other data stays in the log)")
	f.DurationVar(&cfg.CleanerInterval, "cleaner-interval", cfg.CleanerInterval, "how often the cleaner looks for compacted shards due for a pass (cleanup.policy=compact)")
	f.Int64Var(&cfg.CleanerBytesPerSec, "cleaner-bytes-per-sec", cfg.CleanerBytesPerSec, "the cleaner's I/O budget, bytes read and written per second")
	f.DurationVar(&cfg.ProducerIDExpiration, "producer-id-expiration", cfg.ProducerIDExpiration, "forget an idempotent producer's state on a shard after this long without a batch (Kafka's producer.id.expiration.ms)")
	f.DurationVar(&cfg.TransactionalIDExpiration, "transactional-id-expiration", cfg.TransactionalIDExpiration, "forget a transactional id with no open transaction after this long idle (Kafka's transactional.id.expiration.ms)")
	f.DurationVar(&cfg.TransactionMaxTimeout, "transaction-max-timeout", cfg.TransactionMaxTimeout, "longest transaction timeout a producer may ask for (Kafka's transaction.max.timeout.ms)")
	f.DurationVar(&cfg.GroupMinSessionTimeout, "group-min-session-timeout", cfg.GroupMinSessionTimeout, "shortest session timeout a classic group member may ask for (Kafka's group.min.session.timeout.ms)")
	f.DurationVar(&cfg.GroupMaxSessionTimeout, "group-max-session-timeout", cfg.GroupMaxSessionTimeout, "longest session timeout a classic group member may ask for (Kafka's group.max.session.timeout.ms)")
	f.DurationVar(&cfg.GroupInitialRebalanceDelay, "group-initial-rebalance-delay", cfg.GroupInitialRebalanceDelay, "how long an empty classic group's first rebalance waits for more members; 0 disables (Kafka's group.initial.rebalance.delay.ms)")
	f.IntVar(&cfg.OffsetMetadataMaxBytes, "offset-metadata-max-bytes", cfg.OffsetMetadataMaxBytes, "longest metadata of one committed offset, bytes (Kafka's offset.metadata.max.bytes)")
	f.StringArrayVar(&defaults, "stream-default", nil, "broker-wide stream config default, name=value (repeatable)")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	return cmd
}
