package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/group"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/txn"
	"github.com/braidstream/braid/internal/vfs"
	"github.com/braidstream/braid/internal/wal"
)

var (
	// ErrRecordTooLarge is returned for a batch over max.message.bytes.
	ErrRecordTooLarge = errors.New("engine: record batch larger than max.message.bytes")
	// ErrDataDirInUse is returned when another process holds the directory.
	ErrDataDirInUse = errors.New("engine: data directory is in use by another process")
	// ErrControlBatch is returned for a control batch sent by a producer:
	// only the transaction coordinator writes them.
	ErrControlBatch = errors.New("engine: producers may not write control batches")
	// ErrNotTransactional is returned for a non-transactional batch in a
	// transactional produce request.
	ErrNotTransactional = errors.New("engine: a transactional produce may hold only transactional batches")
)

// Options configures an Engine. Zero fields take the defaults noted.
type Options struct {
	Dir string
	// FS is the filesystem Dir is on; default vfs.Default. Tests pass a
	// vfs.MemFS to simulate power loss, or vfs.Inject to fail operations.
	FS vfs.FS
	// CacheBytes bounds the memory kept for recent batches, all shards
	// together; default 256 MiB.
	CacheBytes int64
	// WALSegmentBytes is the size at which a WAL segment is rolled; default
	// 128 MiB.
	WALSegmentBytes int64
	// WALPrewrite keeps a spare WAL segment of written zeros ready (see
	// wal.Options.Prewrite).
	WALPrewrite bool
	// WALDirectIO writes the WAL with O_DIRECT where the filesystem allows
	// it (see wal.Options.DirectIO).
	WALDirectIO bool
	// WALPageCacheBytes is how much of the most recent WAL stays in the
	// page cache (see wal.Options.PageCacheBytes).
	WALPageCacheBytes int64
	// CheckpointEvery and CheckpointBytes bound the time and the WAL bytes
	// between index checkpoints, so restart replays at most that much;
	// defaults 30 s and 256 MiB.
	CheckpointEvery time.Duration
	CheckpointBytes int64
	// MoveAfterBytes is how much closed write-ahead log of compacted
	// streams may pile up before their batches are moved into per-shard
	// segments for the cleaner (also done for any such log older than
	// MoveAfter); defaults 1 GiB and 2 minutes. Other streams' batches
	// stay in the log unless they pin dead log (mover.go).
	// MoveBytesPerSec is the mover's I/O budget (default 128 MiB/s), so
	// that foreground writes keep the disk.
	MoveAfterBytes  int64
	MoveAfter       time.Duration
	MoveBytesPerSec int64
	// CleanerEvery is how often the cleaner looks for compacted shards due
	// for a pass (default 15 s); CleanerBytesPerSec is its I/O budget, read
	// and write together (default 64 MiB/s).
	CleanerEvery       time.Duration
	CleanerBytesPerSec int64
	// OnClean observes every cleaning pass that ran (for metrics).
	OnClean func(shard.CompactStats)
	// RetentionEvery is how often retention (cleanup.policy=delete) runs;
	// default 30 s. RetentionGrace keeps deleted segment files open that
	// long for reads under way; default 60 s.
	RetentionEvery time.Duration
	RetentionGrace time.Duration
	// ProducerIDExpiration forgets an idempotent producer's state after
	// this long without a batch (Kafka's producer.id.expiration.ms);
	// default 24 h.
	ProducerIDExpiration time.Duration
	// TxnMaxTimeout bounds the transaction timeout a producer may ask for
	// (Kafka's transaction.max.timeout.ms); default 15 minutes.
	// TxnIDExpiration forgets idle transactional ids (Kafka's
	// transactional.id.expiration.ms); default 7 days.
	TxnMaxTimeout   time.Duration
	TxnIDExpiration time.Duration
	// Defaults are broker-wide stream config defaults (Kafka names).
	Defaults catalog.Configs
	Logger   *slog.Logger
	// OnFlush observes every WAL group commit (for metrics).
	OnFlush func(bytes int, took time.Duration)
	// OnWALDrop observes the WAL bytes dropped from the page cache
	// (WALPageCacheBytes; for metrics).
	OnWALDrop func(bytes int64)
	// OnRetention observes every retention pass (for metrics).
	OnRetention func(RetentionStats)
	// OnMove observes every completed move of closed log data into shard
	// segments (bytes copied); OnCheckpoint every checkpoint written, with
	// its file's size (for metrics: a benchmark uses them to tell a
	// sustained run from a burst).
	OnMove       func(bytes int64)
	OnCheckpoint func(bytes int64)
	// OnReshard observes every split, merge or scale that changed a
	// stream's layout (kind: "split", "merge", "scale", "autoscale").
	OnReshard func(stream, kind string, took time.Duration)
	// AutoscaleEvery is how often the autoscaler samples shard write
	// rates and decides (default 1 s); OnAutoscale observes every split
	// or merge it made (op: "split" or "merge").
	AutoscaleEvery time.Duration
	OnAutoscale    func(stream, op string)
}

// DefaultCacheBytes is the tail cache of Options.CacheBytes 0.
const DefaultCacheBytes = 256 << 20

func (o *Options) setDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 30 * time.Second
	}
	if o.CheckpointBytes <= 0 {
		o.CheckpointBytes = 256 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MoveAfterBytes <= 0 {
		o.MoveAfterBytes = 1 << 30
	}
	if o.MoveBytesPerSec <= 0 {
		o.MoveBytesPerSec = 128 << 20
	}
	if o.MoveAfter <= 0 {
		o.MoveAfter = 2 * time.Minute
	}
	if o.CleanerEvery <= 0 {
		o.CleanerEvery = 15 * time.Second
	}
	if o.CleanerBytesPerSec <= 0 {
		o.CleanerBytesPerSec = 64 << 20
	}
	if o.RetentionEvery <= 0 {
		o.RetentionEvery = 30 * time.Second
	}
	if o.RetentionGrace <= 0 {
		o.RetentionGrace = time.Minute
	}
	if o.AutoscaleEvery <= 0 {
		o.AutoscaleEvery = time.Second
	}
	if o.ProducerIDExpiration <= 0 {
		o.ProducerIDExpiration = 24 * time.Hour
	}
}

// Stream is a stream as the engine serves it: the catalog entry plus its
// shards and the configs the write path needs.
type Stream struct {
	*catalog.Stream
	Shards          []*shard.Shard
	MaxMessageBytes int
	SegmentBytes    int64
	LogAppendTime   bool
	Retention       shard.RetentionPolicy
	// Compact is set for cleanup.policy=compact (or compact,delete).
	Compact *shard.CompactPolicy
	// KeyRouting is set for braid.routing=key; routes are the open ranged
	// shards by range start (see route.go).
	KeyRouting bool
	routes     []route
	// KinesisThrottle is set for braid.kinesis.throttle=true: the Kinesis
	// door applies Kinesis' per-shard limits (internal/kinesis/throttle.go).
	KinesisThrottle bool
}

// Engine is an open data directory.
type Engine struct {
	opts Options
	lock io.Closer
	cat  *catalog.Catalog
	wal  *wal.WAL
	// offsets holds committed consumer-group offsets; its changes are WAL
	// frames and its state is part of every checkpoint.
	offsets *group.Offsets
	// txns is the transaction coordinator; its changes are WAL frames and
	// its state is part of every checkpoint.
	txns *txn.Coordinator

	mu      sync.Mutex                         // serialises catalog changes
	streams atomic.Pointer[map[string]*Stream] // by name; immutable, swapped

	ckptMu      sync.Mutex // one checkpoint at a time; guards ckChain
	ckChain     checkpointChain
	weighs      atomic.Int64 // the mover's walks over the log's index entries (tests)
	lastCkptPos atomic.Int64
	// ckptNeed is the oldest WAL position an index entry of the last
	// written checkpoint points at: recovery reads it, so the WAL below it
	// must stay even after the in-memory index moved on.
	ckptNeed atomic.Int64

	recovery RecoveryStats

	// layoutCh is closed and replaced whenever a new layout is installed;
	// appends that met a shard closed by a reshard wait on it.
	layoutMu      sync.Mutex
	layoutCh      chan struct{}
	routedBatches atomic.Int64
	reshards      atomic.Int64
	// autoscaleSplits and autoscaleMerges count the changes autoscale made.
	autoscaleSplits, autoscaleMerges atomic.Int64

	pidMu           sync.Mutex
	pidNext, pidEnd int64 // reserved, unused producer ids

	stop chan struct{}
	wg   sync.WaitGroup
}

// RecoveryStats tells what the last Open did to recover.
type RecoveryStats struct {
	CheckpointAt   wal.Position // where WAL replay started
	FramesReplayed int          // WAL frames applied after the checkpoint
	BytesReplayed  int64        // WAL bytes from the checkpoint to the end
	Took           time.Duration
}

// Recovery returns what the last Open did to recover.
func (e *Engine) Recovery() RecoveryStats { return e.recovery }

// Open opens the data directory, recovering from the last checkpoint and the
// write-ahead log after it.
func Open(opts Options) (*Engine, error) {
	opts.setDefaults()
	if err := vfs.MkdirAllDurable(opts.FS, opts.Dir); err != nil {
		return nil, fmt.Errorf("engine: create data dir: %w", err)
	}
	lock, err := lockDir(opts.FS, opts.Dir)
	if err != nil {
		return nil, err
	}
	e := &Engine{opts: opts, lock: lock, stop: make(chan struct{}), offsets: group.NewOffsets(), layoutCh: make(chan struct{})}
	e.txns = txn.New(txn.Options{
		NewProducerID: e.NewProducerID, Shards: txnShards{e}, Offsets: e.offsets,
		MaxTimeout: opts.TxnMaxTimeout, IDExpiration: opts.TxnIDExpiration, Logger: opts.Logger,
	})
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	began := time.Now()
	if err := checkHasCatalog(opts.FS, opts.Dir); err != nil {
		return nil, err
	}
	e.cat, err = catalog.Open(catalog.FileStore{FS: opts.FS, Path: filepath.Join(opts.Dir, "catalog.json")})
	if err != nil {
		return nil, err
	}
	if err := e.cat.EnsureInternal(catalog.OffsetsStream, 1); err != nil {
		return nil, fmt.Errorf("engine: internal stream %s: %w", catalog.OffsetsStream, err)
	}
	ck, err := loadCheckpoint(opts.FS, opts.Dir)
	if err != nil {
		return nil, err
	}
	e.ckChain.id = ck.chain
	// The log is opened in two steps: shards need the WAL to read from, and
	// replay needs the shards; walRef lets shards reach the WAL once open.
	ref := &walRef{}
	byID := e.installStreams(ref)
	for _, snap := range ck.shards {
		if st := byID[snap.Key.Stream]; st != nil && int(snap.Key.Shard) < len(st.Shards) {
			st.Shards[snap.Key.Shard].Restore(snap)
		}
	}
	if ck.offsets != nil {
		if err := e.offsets.Restore(ck.offsets); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorruptCheckpoint, err)
		}
	}
	if ck.txns != nil {
		if err := e.txns.Restore(ck.txns); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorruptCheckpoint, err)
		}
	}
	var replayed, skipped int
	w, err := wal.Open(wal.Options{
		Dir: filepath.Join(opts.Dir, "wal"), SegmentBytes: opts.WALSegmentBytes, Prewrite: opts.WALPrewrite,
		DirectIO: opts.WALDirectIO, PageCacheBytes: opts.WALPageCacheBytes,
		Logger: opts.Logger, OnFlush: opts.OnFlush, OnDrop: opts.OnWALDrop, FS: opts.FS,
	}, ck.replayFrom, func(pos wal.Position, kind wal.Kind, body []byte) error {
		switch kind {
		case group.KindOffsets:
			replayed++
			return e.offsets.Replay(body)
		case group.KindGroup:
			replayed++
			return e.offsets.ReplayGroup(body)
		case txn.KindTxn:
			replayed++
			return e.txns.Replay(body)
		case shard.KindRouted:
			replayed++
			return replayRouted(byID, pos, body)
		}
		sh := shardForFrame(byID, body)
		if sh == nil {
			skipped++
			return nil
		}
		replayed++
		return applyFrame(sh, pos, kind, body)
	})
	if err != nil {
		return nil, err
	}
	ref.WAL = w
	e.wal = w
	// Segment files are opened once replay has rebuilt the whole index:
	// compaction frames in the log refer to files the checkpoint does not
	// know, and a file nothing refers to is removed here.
	if err := e.openSegments(byID); err != nil {
		w.Close()
		return nil, err
	}
	e.offsets.Attach(w)
	e.txns.Attach(w)
	// Transactions a crash caught between their prepare and complete
	// frames are finished before anyone can read.
	if err := e.txns.Recover(context.Background()); err != nil {
		w.Close()
		return nil, fmt.Errorf("engine: complete prepared transactions: %w", err)
	}
	// A crash between a stream's deletion (in the catalog) and the
	// deletion of its committed offsets (in the log) must not let a stream
	// recreated under the same name inherit them.
	for _, topic := range e.offsets.Topics() {
		if e.Stream(topic) == nil {
			if err := e.offsets.DeleteTopic(context.Background(), topic); err != nil {
				w.Close()
				return nil, fmt.Errorf("engine: remove committed offsets of deleted stream %q: %w", topic, err)
			}
		}
	}
	e.lastCkptPos.Store(int64(ck.replayFrom))
	e.ckptNeed.Store(int64(ck.oldestWAL()))
	e.recovery = RecoveryStats{CheckpointAt: ck.replayFrom, FramesReplayed: replayed,
		BytesReplayed: int64(w.Durable() - ck.replayFrom), Took: time.Since(began)}
	opts.Logger.Info("engine: recovered", "dir", opts.Dir, "streams", len(*e.streams.Load()),
		"checkpoint_at", ck.replayFrom, "checkpoint_deltas", ck.deltas, "frames_replayed", replayed, "frames_skipped", skipped,
		"wal_end", w.Durable(), "took", time.Since(began))
	w.Start()
	e.wg.Add(5)
	go e.background()
	go e.mover()
	go e.retention()
	go e.cleaner()
	go e.autoscaler()
	ok = true
	return e, nil
}

func lockDir(fs vfs.FS, dir string) (io.Closer, error) {
	l, err := fs.Lock(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDataDirInUse, dir, err)
	}
	return l, nil
}

// walRef forwards to the WAL once it is open; shards built before it opens
// use it only after recovery.
type walRef struct{ *wal.WAL }

func shardForFrame(byID map[uint64]*Stream, body []byte) *shard.Shard {
	if len(body) < shard.FramePrefixLen {
		return nil
	}
	return shardByKey(byID, frameKey(body))
}

func shardByKey(byID map[uint64]*Stream, key shard.Key) *shard.Shard {
	st := byID[key.Stream]
	if st == nil || key.Shard < 0 || int(key.Shard) >= len(st.Shards) {
		return nil
	}
	return st.Shards[key.Shard]
}

// replayRouted applies a routed frame: each part to its shard, the
// sequence note to the shard the producer addressed. Parts of deleted
// streams are skipped like any frame of theirs.
func replayRouted(byID map[uint64]*Stream, pos wal.Position, body []byte) error {
	f, err := shard.DecodeRouted(body)
	if err != nil {
		return err
	}
	for _, p := range f.Parts {
		if sh := shardByKey(byID, p.Key); sh != nil {
			if err := sh.ReplayRouted(p.Batch, pos+wal.HeaderLen+wal.Position(p.At)); err != nil {
				return err
			}
		}
	}
	if f.HasNote {
		if sh := shardByKey(byID, f.Origin); sh != nil {
			sh.ReplayNote(f.Note)
		}
	}
	return nil
}

// installStreams rebuilds the stream map from the catalog, keeping the shard
// objects of streams that still exist, and returns the streams by id.
func (e *Engine) installStreams(log shard.Log) map[uint64]*Stream {
	old := map[string]*Stream{}
	if p := e.streams.Load(); p != nil {
		old = *p
	}
	next := make(map[string]*Stream)
	byID := make(map[uint64]*Stream)
	all := e.cat.Streams()
	total := 0
	for _, cs := range all {
		total += len(cs.Shards)
	}
	cacheLimit := max(256<<10, e.opts.CacheBytes/int64(max(total, 1)))
	defaults := e.Defaults()
	for _, cs := range all {
		st := &Stream{Stream: cs}
		prev := old[cs.Name]
		if prev != nil && prev.ID != cs.ID {
			prev = nil
		}
		for _, sh := range cs.Shards {
			var s *shard.Shard
			if prev != nil && int(sh.ID) < len(prev.Shards) {
				s = prev.Shards[sh.ID]
			} else {
				s = shard.New(shard.Key{Stream: uint64(cs.ID), Shard: int32(sh.ID)}, log, cacheLimit, e.opts.FS,
					e.shardDir(uint64(cs.ID), int32(sh.ID)))
			}
			s.SetClosed(sh.State == catalog.ShardClosed)
			s.SetCacheLimit(cacheLimit)
			st.Shards = append(st.Shards, s)
		}
		st.MaxMessageBytes = int(cs.Configs.Int("max.message.bytes", defaults))
		st.SegmentBytes = cs.Configs.Int("segment.bytes", defaults)
		st.Retention = shard.RetentionPolicy{Ms: -1, Bytes: -1}
		if strings.Contains(cs.Configs.Get("cleanup.policy", defaults), "delete") {
			st.Retention = shard.RetentionPolicy{
				Ms:    cs.Configs.Int("retention.ms", defaults),
				Bytes: cs.Configs.Int("retention.bytes", defaults),
			}
		}
		st.LogAppendTime = cs.Configs.Get("message.timestamp.type", defaults) == "LogAppendTime"
		if strings.Contains(cs.Configs.Get("cleanup.policy", defaults), "compact") {
			ratio, _ := strconv.ParseFloat(cs.Configs.Get("min.cleanable.dirty.ratio", defaults), 64)
			st.Compact = &shard.CompactPolicy{
				SegmentBytes:    st.SegmentBytes,
				SegmentMs:       cs.Configs.Int("segment.ms", defaults),
				MinLagMs:        cs.Configs.Int("min.compaction.lag.ms", defaults),
				MaxLagMs:        cs.Configs.Int("max.compaction.lag.ms", defaults),
				DeleteRetention: cs.Configs.Int("delete.retention.ms", defaults),
				MinDirtyRatio:   ratio,
			}
		}
		st.KeyRouting = cs.Configs.Get(catalog.RoutingConfig, defaults) == "key"
		st.KinesisThrottle = strings.EqualFold(cs.Configs.Get(catalog.KinesisThrottleConfig, defaults), "true")
		st.routes = buildRoutes(cs)
		next[cs.Name] = st
		byID[uint64(cs.ID)] = st
	}
	e.streams.Store(&next)
	e.signalLayout()
	return byID
}

// Txns returns the transaction coordinator.
func (e *Engine) Txns() *txn.Coordinator { return e.txns }

// Dir returns the data directory.
func (e *Engine) Dir() string { return e.opts.Dir }

// Offsets returns the store of committed consumer-group offsets.
func (e *Engine) Offsets() *group.Offsets { return e.offsets }

// ClusterID returns the cluster id stored in the catalog.
func (e *Engine) ClusterID() string { return e.cat.ClusterID() }

// Defaults returns the broker-wide stream config defaults: the server's
// flags overlaid by the dynamic broker configs.
func (e *Engine) Defaults() catalog.Configs { return e.ConfigLayers().StreamDefaults() }

// ConfigLayers returns the broker-level sources of config values.
func (e *Engine) ConfigLayers() catalog.ConfigLayers {
	node, cluster := e.cat.DynamicConfigs()
	return catalog.ConfigLayers{Node: node, Cluster: cluster, Static: e.opts.Defaults}
}

// SetBrokerConfigs changes dynamic broker configs (see
// catalog.Catalog.SetDynamicConfigs); stream defaults among them apply to
// every stream at once.
func (e *Engine) SetBrokerConfigs(cluster bool, set map[string]*string, replace, validateOnly bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.cat.SetDynamicConfigs(cluster, set, replace, validateOnly)
	if err == nil && !validateOnly {
		e.installStreams(e.wal)
	}
	return err
}

// Stream returns the named stream, or nil.
func (e *Engine) Stream(name string) *Stream { return (*e.streams.Load())[name] }

// StreamByTopicID returns the stream with the given Kafka topic id, or nil.
func (e *Engine) StreamByTopicID(id [16]byte) *Stream {
	for _, st := range *e.streams.Load() {
		if st.TopicID == id {
			return st
		}
	}
	return nil
}

// Streams returns all streams.
func (e *Engine) Streams() map[string]*Stream { return *e.streams.Load() }

// CreateStream creates a stream with n shards. Autoscale configs at odds
// with each other are refused (catalog.Configs.CheckAutoscale).
func (e *Engine) CreateStream(name string, n int, configs catalog.Configs, validateOnly bool) (*catalog.Stream, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !validateOnly && e.Stream(name) == nil && slices.Contains(e.offsets.Topics(), name) {
		// A deleted stream's offsets whose removal failed (the log refused
		// writes): a new stream of that name must not inherit them.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.offsets.DeleteTopic(ctx, name); err != nil {
			return nil, fmt.Errorf("engine: create stream %q: remove the committed offsets a deleted stream of that name left: %w", name, err)
		}
	}
	// Each config alone is checked first, so that a bad value is reported
	// as such and not as a mismatch between autoscale configs.
	if _, err := e.cat.CreateStream(name, n, configs, true); err != nil {
		return nil, err
	}
	if err := configs.CheckAutoscale(e.Defaults()); err != nil {
		return nil, err
	}
	s, err := e.cat.CreateStream(name, n, configs, validateOnly)
	if err == nil && !validateOnly {
		e.installStreams(e.wal)
		e.opts.Logger.Info("stream created", "stream", name, "shards", n)
	}
	return s, err
}

// DeleteStream deletes a stream; its data in the log is skipped from now on
// and reclaimed with the log segments that hold it.
func (e *Engine) DeleteStream(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.Stream(name)
	_, err := e.cat.DeleteStream(name)
	if err == nil {
		e.installStreams(e.wal)
		e.opts.Logger.Info("stream deleted", "stream", name)
		if st != nil {
			e.removeStreamFiles(st)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if oerr := e.offsets.DeleteTopic(ctx, name); oerr != nil {
			e.opts.Logger.Error("engine: remove committed offsets of deleted stream", "stream", name, "err", oerr)
		}
	}
	return err
}

// AddShards grows a stream to total shards.
func (e *Engine) AddShards(name string, total int, validateOnly bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.cat.AddShards(name, total, validateOnly)
	if err == nil && !validateOnly {
		e.installStreams(e.wal)
	}
	return err
}

// SetConfigs changes a stream's configs (see catalog.Catalog.SetConfigs).
// A change that leaves the stream's autoscale configs at odds with each
// other (catalog.Configs.CheckAutoscale) is refused and changes nothing.
func (e *Engine) SetConfigs(name string, set map[string]*string, replace, validateOnly bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.setConfigsLocked(name, set, replace, validateOnly)
}

func (e *Engine) setConfigsLocked(name string, set map[string]*string, replace, validateOnly bool) error {
	if replace || catalog.TouchesAutoscale(set) {
		after, err := e.cat.SetConfigs(name, set, replace, true)
		if err != nil {
			return err
		}
		if err := after.Configs.CheckAutoscale(e.Defaults()); err != nil {
			return err
		}
	}
	_, err := e.cat.SetConfigs(name, set, replace, validateOnly)
	if err == nil && !validateOnly {
		e.installStreams(e.wal)
	}
	return err
}

// Produce validates and appends the batches of one shard's produce request.
// It returns the base offset of the first batch (-1 when a batch was
// routed elsewhere, see route.go), the number of records and the log
// position to wait for; nothing is appended if any batch is invalid.
// inTxn is nil for a produce without a transactional id; otherwise every
// batch must be transactional and inTxn must accept its producer and epoch
// for the shard addressed (add false) and for every shard records are
// routed to (add true: the server adds it to the open transaction).
func (e *Engine) Produce(st *Stream, sh *shard.Shard, records []byte, inTxn func(shard int32, pid int64, epoch int16, add bool) error) (first shard.Offset, n int, end wal.Position, err error) {
	if st.Internal {
		return 0, 0, 0, fmt.Errorf("%w: %q is written by Braid only", catalog.ErrInternalStream, st.Name)
	}
	batches, err := shard.SplitBatches(records)
	if err != nil {
		return 0, 0, 0, err
	}
	id := sh.Key().Shard
	headers := make([]shard.Header, len(batches))
	for i, b := range batches {
		if len(b) > st.MaxMessageBytes {
			return 0, 0, 0, fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, len(b), st.MaxMessageBytes)
		}
		if headers[i], err = shard.Validate(b); err != nil {
			return 0, 0, 0, err
		}
		if st.Compact != nil {
			if err := shard.CheckKeys(b, headers[i]); err != nil {
				return 0, 0, 0, err
			}
		}
		h := headers[i]
		switch {
		case h.Control():
			return 0, 0, 0, ErrControlBatch
		case inTxn == nil && h.Transactional():
			return 0, 0, 0, shard.ErrTransactional
		case inTxn != nil && !h.Transactional():
			return 0, 0, 0, ErrNotTransactional
		case inTxn != nil:
			if err := inTxn(id, h.ProducerID, h.ProducerEpoch, false); err != nil {
				return 0, 0, 0, err
			}
		}
		n += int(headers[i].NumRecords)
	}
	appendTime := int64(-1)
	if st.LogAppendTime {
		appendTime = time.Now().UnixMilli()
	}
	for i, b := range batches {
		var base shard.Offset
		var at wal.Position
		var dup bool
		if st.Routed(id) {
			base, at, dup, err = e.produceRouted(st.Name, id, b, headers[i], appendTime, inTxn)
		} else {
			var res shard.AppendResult
			keep, data := sh.CachesTail(), b
			if keep {
				// Copy so the request buffer is not pinned by the cache.
				data = append([]byte(nil), b...)
			}
			res, err = sh.Append(data, headers[i], appendTime, keep)
			if errors.Is(err, shard.ErrClosed) {
				// Closed by a reshard since st was read.
				base, at, dup, err = e.produceRouted(st.Name, id, b, headers[i], appendTime, inTxn)
			} else {
				base, at, dup = res.Base, res.End, res.Duplicate
			}
		}
		if err != nil {
			return 0, 0, 0, err
		}
		if i == 0 || base < 0 {
			first = base
		}
		if dup {
			n -= int(headers[i].NumRecords)
		}
		end = max(end, at)
	}
	return first, n, end, nil
}

// RoutedBatches counts produced batches whose records the server routed to
// shards other than the one addressed.
func (e *Engine) RoutedBatches() int64 { return e.routedBatches.Load() }

// producerIDBlock is how many producer ids one catalog write reserves.
const producerIDBlock = 1000

// NewProducerID hands out a producer id never used before on this node,
// for an idempotent producer (epoch 0).
func (e *Engine) NewProducerID() (int64, error) {
	e.pidMu.Lock()
	defer e.pidMu.Unlock()
	if e.pidNext == e.pidEnd {
		first, err := e.cat.ReserveProducerIDs(producerIDBlock)
		if err != nil {
			return 0, err
		}
		e.pidNext, e.pidEnd = first, first+producerIDBlock
	}
	id := e.pidNext
	e.pidNext++
	return id, nil
}

// WaitDurable waits until the log is fsync'd up to end.
func (e *Engine) WaitDurable(ctx context.Context, end wal.Position) error {
	return e.wal.WaitDurable(ctx, end)
}

// WaitWritten waits until the log is written to the kernel up to end.
func (e *Engine) WaitWritten(ctx context.Context, end wal.Position) error {
	return e.wal.WaitWritten(ctx, end)
}

// Changed returns a channel closed when new data may have become visible.
func (e *Engine) Changed() <-chan struct{} { return e.wal.Changed() }

// DeleteRecords advances a shard's log start offset durably.
func (e *Engine) DeleteRecords(ctx context.Context, sh *shard.Shard, to shard.Offset) (shard.Offset, error) {
	start, end, err := sh.DeleteRecords(to)
	if err != nil {
		return start, err
	}
	return start, e.wal.WaitDurable(ctx, end)
}

// Close checkpoints and closes the engine; everything appended is fsync'd.
func (e *Engine) Close() error {
	close(e.stop)
	e.wg.Wait()
	err := e.wal.Close()
	if err == nil {
		err = e.checkpoint()
	}
	for _, st := range e.Streams() {
		for _, sh := range st.Shards {
			sh.CloseFiles()
		}
	}
	e.lock.Close()
	return err
}

func (e *Engine) background() {
	defer e.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
		}
		e.dropIdleCaches()
		e.txns.Tick(context.Background())
		grown := int64(e.wal.Durable()) - e.lastCkptPos.Load()
		if grown > 0 && (grown >= e.opts.CheckpointBytes || time.Since(last) >= e.opts.CheckpointEvery) {
			if err := e.checkpoint(); err != nil {
				e.opts.Logger.Error("engine: checkpoint failed", "err", err)
				continue
			}
			last = time.Now()
		}
		e.reclaimWAL()
	}
}

// cacheIdle is how long a shard keeps its tail cache without appends.
const cacheIdle = 30 * time.Second

// dropIdleCaches frees the tail caches of shards nobody writes to any more,
// so a node with many quiet shards does not keep their last bytes in
// memory; after a large release the memory is handed back to the OS.
func (e *Engine) dropIdleCaches() {
	var freed int64
	for _, st := range e.Streams() {
		for _, sh := range st.Shards {
			freed += sh.DropCacheIfIdle(cacheIdle)
		}
	}
	if freed >= 32<<20 {
		debug.FreeOSMemory()
		e.opts.Logger.Debug("engine: released idle shard caches", "bytes", freed)
	}
}

// reclaimWAL removes WAL segments that no shard and no recovery needs.
func (e *Engine) reclaimWAL() {
	need := min(wal.Position(e.lastCkptPos.Load()), wal.Position(e.ckptNeed.Load()), e.oldestNeeded())
	if n, err := e.wal.RemoveBefore(need); err != nil {
		e.opts.Logger.Error("engine: reclaim WAL", "err", err)
	} else if n > 0 {
		e.opts.Logger.Info("engine: reclaimed WAL segments", "count", n, "before", need)
	}
}

// Storage reports whether the node takes writes: wal.StateOK, or
// wal.StateFull (out of space; it resumes by itself once space returns) or
// wal.StateFailed (an fsync failed; it needs a restart), with the error.
func (e *Engine) Storage() (wal.State, error) { return e.wal.Health() }

// DurablePosition returns how far the shared log is fsync'd.
func (e *Engine) DurablePosition() wal.Position { return e.wal.Durable() }

// txnShards is how the transaction coordinator reaches shards.
type txnShards struct{ e *Engine }

func (t txnShards) shard(p txn.Partition) *shard.Shard {
	st := t.e.Stream(p.Topic)
	if st == nil || p.Partition < 0 || int(p.Partition) >= len(st.Shards) {
		return nil
	}
	return st.Shards[p.Partition]
}

func (t txnShards) Exists(p txn.Partition) bool { return t.shard(p) != nil }

func (t txnShards) WriteMarker(p txn.Partition, pid int64, epoch int16, commit bool) (wal.Position, bool, error) {
	sh := t.shard(p)
	if sh == nil {
		return 0, false, nil // deleted with the transaction open: nothing to mark
	}
	res, err := sh.AppendMarker(pid, epoch, commit, 0, time.Now().UnixMilli())
	if errors.Is(err, shard.ErrNotInTransaction) {
		return 0, false, nil
	}
	return res.End, err == nil, err
}
