// Package bench drives a Kafka-protocol broker with franz-go and measures
// produce and consume throughput and latency. It is the engine behind
// "braid bench" and knows nothing about the command line: callers fill a
// Config, call Run and render the Result.
//
// Latencies are kept as raw samples (bounded by a reservoir) and sorted for
// percentiles instead of going into an HDR histogram: a million durations
// is 8 MiB and sorts in well under a second, and exact samples avoid bucket
// error at the tail.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config describes one benchmark run.
type Config struct {
	Brokers    []string
	Stream     string
	Partitions int // used only when the stream is created
	// StreamConfigs are set on the stream when the run creates it (e.g.
	// cleanup.policy=compact).
	StreamConfigs map[string]*string

	RecordSize int
	// Keys, when positive, keys records "k<n>" with n cycling through
	// Keys values (a compacted stream needs keys); 0 sends no key.
	Keys      int
	Count     int64         // records to produce; 0 = no limit (Duration must be set)
	Duration  time.Duration // produce for this long; 0 = no limit (Count must be set)
	Rate      float64       // records/s across all producers; 0 = as fast as possible
	Producers int

	Acks               string // all, 1 or 0
	Linger             time.Duration
	Compression        string // none, gzip, snappy, lz4 or zstd
	BatchMaxBytes      int32
	MaxBufferedRecords int // per producer; 0 = sized from partitions and batch size
	MaxInflight        int // produce requests in flight per broker; 0 = kgo default
	// Idempotent uses kgo's default idempotent producer (acks=all only; up
	// to five requests in flight per broker).
	Idempotent bool
	// TxnInterval, when positive, makes every producer transactional: it
	// commits a transaction once this long has passed since the transaction
	// began (checked at each record), and once more at the end. 0 = off.
	// Needs Idempotent and acks all. Consumers then read committed.
	TxnInterval time.Duration

	Consume                bool // read back what was produced and time it
	E2ELatency             bool // consume concurrently and record end-to-end latency
	FetchMaxBytes          int32
	FetchMaxPartitionBytes int32

	// ReshardEvery, when positive, runs a reshard storm while producing:
	// a split or merge this often through the admin HTTP API at
	// AdminAddr (see reshard.go). Needs Consume and E2ELatency off.
	ReshardEvery time.Duration
	AdminAddr    string
	// MetricsAddr, when set, is the node's HTTP address: the run then reads
	// its /metrics for the background work during the produce phase and
	// the peak resident memory (see node.go).
	MetricsAddr string
	// ConsumeFromStart makes the consume phase read the stream from its
	// first offset instead of from where this run began producing: a
	// catch-up read of what an earlier run kept.
	ConsumeFromStart bool

	Keep     bool      // keep a stream the run created
	Progress io.Writer // once-a-second progress lines; nil = quiet
}

// Result is what a run measured. Phases that did not run are nil.
type Result struct {
	Stream        string          `json:"stream"`
	Partitions    int             `json:"partitions"`
	CreatedStream bool            `json:"created_stream"`
	DeletedStream bool            `json:"deleted_stream"`
	Settings      Settings        `json:"settings"`
	Produce       *Phase          `json:"produce,omitempty"`
	Consume       *Phase          `json:"consume,omitempty"`
	E2ELatency    *LatencySummary `json:"e2e_latency,omitempty"`
	Reshard       *ReshardSummary `json:"reshard,omitempty"`
	// Node is what the node's metrics said (nil without MetricsAddr).
	Node *NodeStats `json:"node,omitempty"`
	// ClientCPUSeconds is the CPU time (user and system) this process
	// spent during the produce phase: the producers' side of the cost.
	ClientCPUSeconds float64 `json:"client_cpu_seconds,omitempty"`
	// Note, when set, says why the figures are burst figures (NoteShortRun,
	// NoteNoBackground); Burst is true then.
	Note        string `json:"note,omitempty"`
	Burst       bool   `json:"burst"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

// Settings echoes the configuration in the result so a saved JSON report
// says how it was produced.
type Settings struct {
	RecordSize         int     `json:"record_size"`
	Keys               int     `json:"keys,omitempty"`
	Count              int64   `json:"count,omitempty"`
	Duration           string  `json:"duration,omitempty"`
	Rate               float64 `json:"rate,omitempty"`
	Producers          int     `json:"producers"`
	Acks               string  `json:"acks"`
	Linger             string  `json:"linger"`
	Compression        string  `json:"compression"`
	BatchMaxBytes      int32   `json:"batch_max_bytes"`
	MaxBufferedRecords int     `json:"max_buffered_records"`
	MaxInflight        int     `json:"max_inflight,omitempty"`
	Idempotent         bool    `json:"idempotent"`
	TxnInterval        string  `json:"txn_interval,omitempty"`
}

// Phase is the outcome of producing or consuming.
type Phase struct {
	Records       int64           `json:"records"`
	Bytes         int64           `json:"bytes"`
	Errors        int64           `json:"errors"`
	FirstError    string          `json:"first_error,omitempty"`
	Elapsed       time.Duration   `json:"-"`
	Seconds       float64         `json:"elapsed_seconds"`
	RecordsPerSec float64         `json:"records_per_sec"`
	MBPerSec      float64         `json:"mb_per_sec"` // 10^6 bytes of keys and values
	Latency       *LatencySummary `json:"latency,omitempty"`
	// MaxLagMs is, in fixed-rate mode, the furthest any send fell behind
	// schedule; a large value means the rate was not sustained.
	MaxLagMs float64 `json:"max_schedule_lag_ms,omitempty"`
	// Transactions is set on the produce phase of a transactional run.
	Transactions *TxnCounts `json:"transactions,omitempty"`
	// Batches is set on the produce phase: requests and batches sent.
	Batches *BatchCounts `json:"batches,omitempty"`
}

// TxnCounts counts the transactions of a transactional produce phase.
// Records count as produced only once their transaction committed; the
// records of a failed transaction count as errors even if the broker had
// acknowledged them, because a read_committed consumer never sees them.
type TxnCounts struct {
	Committed int64 `json:"committed"`
	// Failed transactions are those whose commit was refused or whose
	// outcome is unknown; the producer then tries to abort them.
	Failed int64 `json:"failed"`
}

func newPhase(records, bytes int64, elapsed time.Duration) *Phase {
	p := &Phase{Records: records, Bytes: bytes, Elapsed: elapsed, Seconds: elapsed.Seconds()}
	if s := elapsed.Seconds(); s > 0 {
		p.RecordsPerSec = float64(records) / s
		p.MBPerSec = float64(bytes) / 1e6 / s
	}
	return p
}

// ErrInterrupted is returned (wrapped) when ctx ends a run early; the
// partial Result is still returned alongside it.
var ErrInterrupted = errors.New("benchmark interrupted")

// ErrTxnNeedsIdempotence refuses a transactional run without an idempotent
// acks=all producer, which Kafka transactions are built on.
var ErrTxnNeedsIdempotence = errors.New("transactions need an idempotent producer with acks all")

// cleanupTimeout bounds stream deletion, which must run even after the
// run's context was cancelled.
const cleanupTimeout = 30 * time.Second

// Run executes the benchmark described by cfg.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	var node *nodeScraper
	if cfg.MetricsAddr != "" {
		// A wrong address fails the run before it creates anything.
		node = newNodeScraper(cfg.MetricsAddr)
		if _, err := node.scrape(ctx); err != nil {
			return nil, err
		}
	}
	adm, err := newAdmin(cfg.Brokers)
	if err != nil {
		return nil, err
	}
	defer adm.Close()

	parts, created, err := ensureStream(ctx, adm, cfg.Stream, cfg.Partitions, cfg.StreamConfigs)
	if err != nil {
		return nil, err
	}
	// An existing stream keeps its own partition count; size buffers and
	// the payload pool for what is really there.
	cfg.Partitions = parts
	if cfg.MaxBufferedRecords <= 0 {
		cfg.MaxBufferedRecords = autoMaxBuffered(cfg.RecordSize, int(cfg.BatchMaxBytes), parts)
	}
	res = &Result{Stream: cfg.Stream, Partitions: parts, CreatedStream: created, Settings: cfg.settings()}
	if created && !cfg.Keep {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			if derr := deleteStream(cctx, adm, cfg.Stream); derr != nil {
				err = errors.Join(err, derr)
			} else if res != nil {
				res.DeletedStream = true
			}
		}()
	}

	prods, err := newProducers(ctx, cfg)
	if err != nil {
		return res, err
	}
	from, err := endOffsets(ctx, adm, cfg.Stream)
	if err != nil {
		prods.close()
		return res, err
	}

	var e2e *e2eConsumer
	if cfg.E2ELatency {
		if e2e, err = startE2E(ctx, cfg, from); err != nil {
			prods.close()
			return res, err
		}
	}

	var before nodeSample
	if node != nil {
		if before, err = node.scrape(ctx); err != nil {
			prods.close()
			if e2e != nil {
				e2e.finish(nil)
			}
			return res, err
		}
		sampleCtx, stopSampling := context.WithCancel(ctx)
		sampled := make(chan struct{})
		go func() { defer close(sampled); node.sampleRSS(sampleCtx) }()
		defer func() {
			stopSampling()
			<-sampled
			if res.Node != nil {
				res.Node.PeakRSSBytes = node.peak()
			}
		}()
	}

	var stormDone chan *ReshardSummary
	stormCtx, stopStorm := context.WithCancel(ctx)
	if cfg.ReshardEvery > 0 {
		stormDone = make(chan *ReshardSummary, 1)
		go func() { stormDone <- storm(stormCtx, cfg, parts) }()
	}
	cpuBefore := processCPU()
	res.Produce = prods.run(ctx, cfg)
	res.ClientCPUSeconds = processCPU() - cpuBefore
	stopStorm()
	if stormDone != nil {
		res.Reshard = <-stormDone
	}
	interrupted := ctx.Err() != nil
	if node != nil && !interrupted {
		after, serr := node.scrape(ctx)
		if serr != nil {
			err = serr
		} else {
			d := backgroundDelta(before, after)
			res.Node = &d
		}
	}
	if !interrupted {
		res.Note = burstNote(res.Node, res.Produce.Elapsed)
		res.Burst = res.Note != ""
	}

	var to map[int32]int64
	if !interrupted && err == nil {
		to, err = settledEndOffsets(ctx, adm, cfg.Stream, cfg.Acks == "0")
	}
	if e2e != nil {
		// A nil target (interrupt or offset failure) stops the consumer.
		summary, eerr := e2e.finish(to)
		if summary.Count > 0 {
			res.E2ELatency = &summary
		}
		if eerr != nil && !interrupted && err == nil {
			err = eerr
		}
	}
	if err != nil {
		return res, err
	}
	if !interrupted && cfg.Consume {
		consumeFrom := from
		if cfg.ConsumeFromStart {
			if consumeFrom, err = startOffsets(ctx, adm, cfg.Stream); err != nil {
				return res, err
			}
		}
		res.Consume, err = consumePhase(ctx, cfg, consumeFrom, to)
		interrupted = ctx.Err() != nil
		if err != nil && !interrupted {
			return res, err
		}
	}
	if interrupted {
		res.Interrupted = true
		return res, fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	}
	return res, nil
}

func (cfg *Config) normalize() error {
	switch {
	case len(cfg.Brokers) == 0:
		return errors.New("no brokers")
	case cfg.Stream == "":
		return errors.New("no stream name")
	case cfg.Partitions < 1:
		return fmt.Errorf("partitions must be at least 1, got %d", cfg.Partitions)
	case cfg.RecordSize < 1:
		return fmt.Errorf("record size must be at least 1, got %d", cfg.RecordSize)
	case cfg.Count < 0 || cfg.Duration < 0 || cfg.Rate < 0:
		return errors.New("count, duration and rate must not be negative")
	case cfg.Count == 0 && cfg.Duration == 0:
		return errors.New("set a record count or a duration")
	case cfg.Producers < 1:
		return fmt.Errorf("producers must be at least 1, got %d", cfg.Producers)
	case cfg.BatchMaxBytes < 1 || cfg.FetchMaxBytes < 1 || cfg.FetchMaxPartitionBytes < 1:
		return errors.New("batch and fetch sizes must be positive")
	case cfg.E2ELatency && cfg.RecordSize < stampLen:
		return fmt.Errorf("end-to-end latency needs records of at least %d bytes to carry the send time", stampLen)
	case int64(cfg.RecordSize) > int64(cfg.BatchMaxBytes):
		return fmt.Errorf("record size %d exceeds batch max bytes %d", cfg.RecordSize, cfg.BatchMaxBytes)
	case cfg.ReshardEvery > 0 && (cfg.Consume || cfg.E2ELatency):
		return errors.New("a reshard storm measures produce only: turn the consume phase and end-to-end latency off")
	case cfg.ReshardEvery > 0 && cfg.AdminAddr == "":
		return errors.New("a reshard storm needs the node's admin HTTP address")
	case cfg.TxnInterval < 0:
		return fmt.Errorf("transaction interval must not be negative, got %s", cfg.TxnInterval)
	}
	acks, err := parseAcks(cfg.Acks)
	if err != nil {
		return err
	}
	if cfg.TxnInterval > 0 && (!cfg.Idempotent || acks != kgo.AllISRAcks()) {
		return fmt.Errorf("%w (got idempotent %v, acks %s)", ErrTxnNeedsIdempotence, cfg.Idempotent, cfg.Acks)
	}
	if _, err := parseCompression(cfg.Compression); err != nil {
		return err
	}
	return nil
}

// autoMaxBuffered sizes the producer buffer to hold a few full batches for
// every partition: enough that batching never starves, yet small enough
// that in unpaced runs latency reflects the broker rather than the depth
// of a client-side queue.
func autoMaxBuffered(recordSize, batchMaxBytes, partitions int) int {
	n := 4 * partitions * batchMaxBytes / max(recordSize, 1)
	return max(n, 10_000)
}

func (cfg *Config) settings() Settings {
	s := Settings{
		RecordSize:         cfg.RecordSize,
		Keys:               cfg.Keys,
		Count:              cfg.Count,
		Rate:               cfg.Rate,
		Producers:          cfg.Producers,
		Acks:               cfg.Acks,
		Linger:             cfg.Linger.String(),
		Compression:        cfg.Compression,
		BatchMaxBytes:      cfg.BatchMaxBytes,
		MaxBufferedRecords: cfg.MaxBufferedRecords,
		MaxInflight:        cfg.MaxInflight,
		Idempotent:         cfg.Idempotent,
	}
	if cfg.Duration > 0 {
		s.Duration = cfg.Duration.String()
	}
	if cfg.TxnInterval > 0 {
		s.TxnInterval = cfg.TxnInterval.String()
	}
	return s
}

func parseAcks(s string) (kgo.Acks, error) {
	switch s {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("acks %q: want all, 1 or 0", s)
}

func parseCompression(s string) (kgo.CompressionCodec, error) {
	switch s {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", s)
}
