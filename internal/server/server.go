package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/braidstream/braid/internal/connect"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/group"
	"github.com/braidstream/braid/internal/kafka"
	"github.com/braidstream/braid/internal/kinesis"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/wal"
)

// Run starts a node and serves until ctx is done, then shuts down
// gracefully: stop taking requests, flush and fsync the log, write a
// checkpoint. ready, if set, is called once the node serves.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, ready func(kafkaAddr, httpAddr net.Addr)) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	// The Kinesis door's files are read before anything starts: a bad one
	// stops the node at once.
	kinOpts := kinesis.Options{Region: cfg.KinesisRegion, Account: cfg.KinesisAccount,
		SubscriptionTTL: cfg.KinesisSubscriptionTTL, Logger: logger}
	if cfg.KinesisAddr != "" {
		var err error
		if kinOpts, err = kinesisOptions(cfg, kinOpts); err != nil {
			return err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.KinesisAddr != "" {
		kinOpts.Metrics = kinesis.NewMetrics(reg)
	}
	var isReady atomic.Bool
	var served atomic.Pointer[engine.Engine] // set once recovered
	var connectors atomic.Pointer[connect.Manager]

	var httpSrv *http.Server
	var httpLn net.Listener
	if cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen http %s: %w", cfg.HTTPAddr, err)
		}
		httpLn = ln
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		// Profiles for "where does the time go"; the HTTP listener is meant
		// for operators (loopback by default).
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		pid := strconv.Itoa(os.Getpid())
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			// Which process answered: a supervisor (or braidtest) that
			// started one on a port another process holds must not take
			// that one's answer for its own.
			w.Header().Set("Braid-Pid", pid)
			if !isReady.Load() {
				http.Error(w, "recovering", http.StatusServiceUnavailable)
				return
			}
			// A node that refuses writes is not healthy, and says why:
			// "full: ..." clears by itself once space returns, "failed:
			// ..." needs a restart.
			if st, err := served.Load().Storage(); st != wal.StateOK {
				http.Error(w, fmt.Sprintf("%s: %v", st, err), http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ok\n"))
		})
		mux.HandleFunc("GET /v1/streams/{name}", func(w http.ResponseWriter, r *http.Request) {
			serveStreamState(w, r, served.Load())
		})
		registerReshard(mux, served.Load)
		connect.RegisterAPI(mux, !cfg.Connectors, connectors.Load)
		httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go httpSrv.Serve(ln)
		defer httpSrv.Close()
	}

	flushBytes := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_wal_flushed_bytes_total", Help: "Bytes written and fsync'd by the shared write-ahead log."})
	flushSeconds := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "braid_wal_flush_seconds", Help: "Duration of one group commit's fdatasync (the log writes the next commit meanwhile).",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)})
	walDropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_wal_page_cache_dropped_bytes_total", Help: "Bytes of the shared write-ahead log dropped from the page cache behind --wal-page-cache-bytes."})
	retainedShards := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_retention_trimmed_shards_total", Help: "Times retention moved a shard's log start."})
	retainedBytes := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_retention_removed_bytes_total", Help: "Bytes of shard segment files removed by retention."})
	cleanerRuns := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_cleaner_runs_total", Help: "Compaction passes that ran on a shard."})
	cleanerRead := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_cleaner_cleaned_bytes_total", Help: "Bytes of log read by compaction passes."})
	cleanerRemoved := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_cleaner_removed_bytes_total", Help: "Bytes of log removed by compaction."})
	cleanerRecords := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_cleaner_removed_records_total", Help: "Records removed by compaction."})
	movedBytes := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_mover_moved_bytes_total", Help: "Bytes the mover copied from closed write-ahead log segments into shard segment files."})
	moverRuns := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_mover_runs_total", Help: "Completed moves of closed write-ahead log data into shard segment files."})
	checkpoints := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_checkpoints_total", Help: "Index checkpoints written."})
	checkpointBytes := prometheus.NewCounter(prometheus.CounterOpts{Name: "braid_checkpoint_bytes_total", Help: "Bytes of index checkpoints written (bases and deltas)."})
	reg.MustRegister(movedBytes, moverRuns, checkpoints, checkpointBytes)
	reg.MustRegister(flushBytes, flushSeconds, walDropped, retainedShards, retainedBytes, cleanerRuns, cleanerRead, cleanerRemoved, cleanerRecords)
	reshards := newReshardMetrics(reg)

	began := time.Now()
	eng, err := engine.Open(engine.Options{
		Dir: cfg.DataDir, CacheBytes: cfg.CacheBytes, WALSegmentBytes: cfg.WALSegmentBytes, WALPrewrite: cfg.WALPrewrite,
		WALDirectIO: cfg.WALDirectIO, WALPageCacheBytes: cfg.WALPageCacheBytes,
		OnAutoscale:     autoscaleMetric(reg),
		CheckpointEvery: cfg.CheckpointInterval, RetentionEvery: cfg.RetentionCheckInterval,
		Defaults: cfg.StreamDefaults, Logger: logger,
		ProducerIDExpiration: cfg.ProducerIDExpiration, TxnIDExpiration: cfg.TransactionalIDExpiration,
		TxnMaxTimeout: cfg.TransactionMaxTimeout,
		MoveAfter:     cfg.MoveInterval,
		CleanerEvery:  cfg.CleanerInterval, CleanerBytesPerSec: cfg.CleanerBytesPerSec,
		OnClean: func(s shard.CompactStats) {
			cleanerRuns.Inc()
			cleanerRead.Add(float64(s.ReadBytes))
			cleanerRemoved.Add(float64(s.RemovedBytes))
			cleanerRecords.Add(float64(s.Removed))
		},
		OnFlush: func(n int, took time.Duration) {
			flushBytes.Add(float64(n))
			flushSeconds.Observe(took.Seconds())
		},
		OnWALDrop: func(n int64) { walDropped.Add(float64(n)) },
		OnRetention: func(s engine.RetentionStats) {
			retainedShards.Add(float64(s.ShardsTrimmed))
			retainedBytes.Add(float64(s.SegmentsBytes))
		},
		OnReshard: reshards.observe,
		OnMove: func(n int64) {
			moverRuns.Inc()
			movedBytes.Add(float64(n))
		},
		OnCheckpoint: func(n int64) { checkpoints.Inc(); checkpointBytes.Add(float64(n)) },
	})
	if err != nil {
		return err
	}
	registerEngineMetrics(reg, eng)
	reg.MustRegister(newShardCollector(eng))

	kopts := kafka.Options{
		NodeID: cfg.NodeID, MaxRequestBytes: int32(cfg.MaxRequestBytes),
		QueuedMaxRequestBytes: cfg.QueuedMaxRequestBytes, RequestTimeout: cfg.RequestTimeout,
		ConnectionsMaxIdle: cfg.ConnectionsMaxIdle, MaxConnections: cfg.MaxConnections,
		MaxConnectionsPerIP: cfg.MaxConnectionsPerIP, FetchMaxBytes: int32(cfg.FetchMaxBytes),
		AutoCreateTopics: cfg.AutoCreateTopics, DefaultPartitions: int32(cfg.DefaultPartitions),
		Logger: logger, Metrics: kafka.NewMetrics(reg),
		Groups: group.Options{
			MinSessionTimeout: cfg.GroupMinSessionTimeout, MaxSessionTimeout: cfg.GroupMaxSessionTimeout,
			InitialRebalanceDelay: cfg.GroupInitialRebalanceDelay,
		},
		OffsetMetadataMaxBytes: cfg.OffsetMetadataMaxBytes,
	}
	if cfg.AdvertisedKafkaAddr != "" {
		host, port, _ := net.SplitHostPort(cfg.AdvertisedKafkaAddr)
		p, _ := strconv.Atoi(port)
		kopts.AdvertisedHost, kopts.AdvertisedPort = host, int32(p)
	}
	ln, err := net.Listen("tcp", cfg.KafkaAddr)
	if err != nil {
		eng.Close()
		return fmt.Errorf("listen kafka %s: %w", cfg.KafkaAddr, err)
	}
	var kinLn net.Listener
	if cfg.KinesisAddr != "" {
		if kinLn, err = net.Listen("tcp", cfg.KinesisAddr); err != nil {
			ln.Close()
			eng.Close()
			return fmt.Errorf("listen kinesis %s: %w", cfg.KinesisAddr, err)
		}
	}
	ks := kafka.NewServer(eng, kopts)
	reg.MustRegister(newGroupCollector(eng, ks.Groups()))
	serveErr := make(chan error, 1)
	go func() { serveErr <- ks.Serve(ln) }()
	var kin *kinesis.Server
	if kinLn != nil {
		kin = kinesis.NewServer(eng, kinOpts)
		go func() {
			if err := kin.Serve(kinLn); err != nil {
				serveErr <- fmt.Errorf("kinesis: %w", err)
			}
		}()
	}
	served.Store(eng)
	if cfg.MemoryLimitFollowsIndex {
		followCtx, stopFollowing := context.WithCancel(ctx)
		defer stopFollowing()
		go FollowIndexLimit(followCtx, cfg.defaultMemoryLimit(), func() int64 { return indexBytes(eng) }, logger)
	}
	// Connectors talk to the node through its own Kafka listener, so they
	// start once it serves and stop (flush, final commit) before it closes.
	var mgr *connect.Manager
	if cfg.Connectors {
		mgr, err = connect.NewManager(connectorOptions(cfg, ln.Addr(), logger))
		if err != nil {
			ks.Close()
			if kin != nil {
				kin.Close()
			}
			eng.Close()
			return fmt.Errorf("connectors: %w", err)
		}
		reg.MustRegister(mgr.Collector())
		connectors.Store(mgr)
	}
	isReady.Store(true)
	var httpAddr net.Addr
	if httpLn != nil {
		httpAddr = httpLn.Addr()
	}
	kinAddr := ""
	if kinLn != nil {
		kinAddr = kinLn.Addr().String()
	}
	logger.Info("braid ready", "kafka", ln.Addr().String(), "http", fmt.Sprint(httpAddr), "kinesis", kinAddr, "data_dir", cfg.DataDir, "startup", time.Since(began))
	if ready != nil {
		ready(ln.Addr(), httpAddr)
	}

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	logger.Info("braid shutting down")
	isReady.Store(false)
	if mgr != nil {
		connectors.Store(nil)
		mgr.Close()
	}
	if kin != nil {
		kin.Close()
	}
	ks.Close()
	if cerr := eng.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close engine: %w", cerr))
	}
	if err == nil {
		logger.Info("braid stopped cleanly")
	}
	return err
}

func registerEngineMetrics(reg *prometheus.Registry, eng *engine.Engine) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_memory_limit_bytes",
		Help: "The process's soft memory limit (0: none): --memory-limit, GOMEMLIMIT, or --cache-bytes + 768 MiB + what the shard indexes hold."},
		func() float64 {
			if limit := debug.SetMemoryLimit(-1); limit < math.MaxInt64 {
				return float64(limit)
			}
			return 0
		}))
	// Internal streams (catalog.OffsetsStream) are Braid's own: they are
	// not counted, so a new node reports 0.
	userStreams := func() (streams, shards int) {
		for _, st := range eng.Streams() {
			if !st.Internal {
				streams++
				shards += len(st.Shards)
			}
		}
		return streams, shards
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_streams", Help: "Streams on this node, internal ones not counted."},
		func() float64 { n, _ := userStreams(); return float64(n) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_shards", Help: "Shards of the streams on this node, internal ones not counted."},
		func() float64 { _, n := userStreams(); return float64(n) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "braid_read_page_cache_dropped_bytes_total", Help: "Bytes that catch-up reads read from disk and then dropped from the page cache behind them."},
		func() float64 { return float64(shard.ReadDroppedBytes()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "braid_read_direct_bytes_total", Help: "Bytes that catch-up reads took from direct read-ahead, read from disk past the page cache."},
		func() float64 { return float64(shard.ReadDirectBytes()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "braid_read_window_bytes_total", Help: "Bytes that fetches of many partitions took from log windows, ranges of the log read past the page cache."},
		func() float64 { return float64(shard.ReadWindowBytes()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "braid_read_direct_waits_total", Help: "Catch-up reads that waited for direct read-ahead's device reads (the device, not the consumer, was their bound)."},
		func() float64 { return float64(shard.ReadDirectWaits()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_read_direct_buffer_bytes", Help: "Memory that direct read-ahead for catch-up reads holds (at most 128 MiB)."},
		func() float64 { return float64(shard.ReadDirectBufferBytes()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_wal_durable_position_bytes", Help: "Bytes ever made durable in the shared log."},
		func() float64 { return float64(eng.DurablePosition()) }))
	for _, st := range []wal.State{wal.StateOK, wal.StateFull, wal.StateFailed} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "braid_storage_state",
			Help:        "1 for the storage state the node is in: ok, full (out of disk space: writes refused until space returns) or failed (an fsync failed: writes refused until a restart).",
			ConstLabels: prometheus.Labels{"state": st.String()}},
			func() float64 {
				if cur, _ := eng.Storage(); cur == st {
					return 1
				}
				return 0
			}))
	}
}

// kinesisOptions loads the Kinesis door's credentials and TLS files.
func kinesisOptions(cfg Config, o kinesis.Options) (kinesis.Options, error) {
	if cfg.KinesisCredentials != "" {
		creds, err := kinesis.LoadCredentials(cfg.KinesisCredentials)
		if err != nil {
			return o, fmt.Errorf("kinesis credentials: %w", err)
		}
		o.Credentials = creds
	}
	if cfg.KinesisTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.KinesisTLSCert, cfg.KinesisTLSKey)
		if err != nil {
			return o, fmt.Errorf("kinesis tls: %w", err)
		}
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return o, nil
}
