package catalog

import (
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

var (
	ErrStreamExists  = errors.New("catalog: stream already exists")
	ErrUnknownStream = errors.New("catalog: unknown stream")
	ErrInvalidName   = errors.New("catalog: invalid stream name")
	ErrInvalidShards = errors.New("catalog: invalid shard count")
	ErrUnknownShard  = errors.New("catalog: unknown shard")
	ErrShardClosed   = errors.New("catalog: shard is closed")
	// ErrInternalStream refuses writes, deletion and growth of a stream
	// Braid keeps for Kafka clients' sake.
	ErrInternalStream = errors.New("catalog: internal stream")
)

// StreamID identifies a stream for its whole life; never reused.
type StreamID uint64

func (id StreamID) String() string { return strconv.FormatUint(uint64(id), 10) }

// ShardID is a shard's dense id within its stream, its Kafka partition number.
type ShardID int32

func (id ShardID) String() string { return strconv.FormatInt(int64(id), 10) }

// ShardState is open (takes writes) or closed (read-only, after a split or
// merge).
type ShardState string

const (
	ShardOpen   ShardState = "open"
	ShardClosed ShardState = "closed"
)

// Shard describes one shard of a stream.
type Shard struct {
	ID ShardID `json:"id"`
	// Range is the hash-key range the shard owns; nil for a shard added as a
	// Kafka partition, which no hash key routes to.
	Range    *HashRange `json:"range,omitempty"`
	Parents  []ShardID  `json:"parents,omitempty"`
	Children []ShardID  `json:"children,omitempty"`
	State    ShardState `json:"state"`
	// EndOffset is the offset after the shard's last record, set when closed.
	EndOffset int64 `json:"end_offset,omitempty"`
	// CreatedMs and ClosedMs are when the shard was created and closed
	// (Unix milliseconds; 0 in catalogs written before they were kept).
	// The Kinesis door's ListShards filters by them.
	CreatedMs int64 `json:"created_ms,omitempty"`
	ClosedMs  int64 `json:"closed_ms,omitempty"`
}

// Stream describes a stream.
type Stream struct {
	ID      StreamID `json:"id"`
	TopicID [16]byte `json:"topic_id"`
	Name    string   `json:"name"`
	Configs Configs  `json:"configs,omitempty"`
	Shards  []Shard  `json:"shards"`
	// Internal marks a stream Braid keeps itself (Kafka's is_internal);
	// clients may read it but not write, grow or delete it.
	Internal bool `json:"internal,omitempty"`
	// Kinesis holds what Kinesis clients set that Braid records but does
	// not act on (kinesis.go); nil when nothing was set.
	Kinesis *KinesisSettings `json:"kinesis,omitempty"`
	// CreatedMs is when the stream was created (Unix milliseconds; 0 in
	// catalogs written before it was kept), as Kinesis reports it.
	CreatedMs int64 `json:"created_ms,omitempty"`
	// Consumers are the stream's registered Kinesis consumers
	// (kinesis_consumers.go).
	Consumers []Consumer `json:"kinesis_consumers,omitempty"`
}

// OffsetsStream is listed to Kafka clients as the internal topic that holds
// group offsets in Kafka. Braid keeps offsets in its WAL, so the stream stays
// empty; it exists because clients and tools expect to see it (kgo skips
// internal topics when it resolves subscription regexes, and a KIP-848
// broker-side regex may match it).
const OffsetsStream = "__consumer_offsets"

// EnsureInternal creates the internal stream name with n shards if it is
// missing. A stream of that name left by an older version is marked
// internal.
func (c *Catalog) EnsureInternal(name string, n int) error {
	c.mu.Lock()
	s, ok := c.byName[name]
	c.mu.Unlock()
	if ok {
		if s.Internal {
			return nil
		}
		_, err := c.update(name, func(s *Stream) error { s.Internal = true; return nil }, false)
		return err
	}
	s, err := c.CreateStream(name, n, nil, true)
	if err != nil {
		return err
	}
	return c.add(s, true)
}

func (s *Stream) clone() *Stream {
	c := *s
	c.Configs = maps.Clone(s.Configs)
	c.Shards = slices.Clone(s.Shards)
	c.Kinesis = s.Kinesis.clone()
	for i := range c.Shards {
		c.Shards[i].Parents = slices.Clone(c.Shards[i].Parents)
		c.Shards[i].Children = slices.Clone(c.Shards[i].Children)
	}
	return &c
}

// Snapshot is the whole catalog as stored.
type Snapshot struct {
	ClusterID    string   `json:"cluster_id"`
	NextStreamID StreamID `json:"next_stream_id"`
	// NextProducerID is the first producer id not yet handed out; ids are
	// reserved in blocks so that most InitProducerId calls write nothing.
	NextProducerID int64     `json:"next_producer_id"`
	Streams        []*Stream `json:"streams"`
	// NodeConfigs and ClusterConfigs are the dynamic broker configs set
	// with AlterConfigs on this node and cluster-wide (Kafka names).
	NodeConfigs    Configs `json:"node_configs,omitempty"`
	ClusterConfigs Configs `json:"cluster_configs,omitempty"`
	// KinesisAccount is the account settings Kinesis clients set
	// (kinesis.go); nil when never set.
	KinesisAccount *KinesisAccount `json:"kinesis_account,omitempty"`
}

// Store persists catalog snapshots. Save must be atomic and durable: after it
// returns, Load returns the saved snapshot even after a crash.
type Store interface {
	Load() (*Snapshot, error) // nil, nil when nothing was saved yet
	Save(*Snapshot) error
}

// Catalog is the in-memory catalog backed by a Store.
type Catalog struct {
	store Store

	mu     sync.RWMutex
	snap   Snapshot
	byName map[string]*Stream
	byID   map[StreamID]*Stream
}

// Open loads the catalog from store, creating an empty one (with a fresh
// cluster id) if there is none.
func Open(store Store) (*Catalog, error) {
	snap, err := store.Load()
	if err != nil {
		return nil, err
	}
	if snap != nil {
		if err := snap.check(); err != nil {
			return nil, err
		}
	}
	c := &Catalog{store: store}
	if snap == nil {
		snap = &Snapshot{ClusterID: newClusterID(), NextStreamID: 1}
		if err := store.Save(snap); err != nil {
			return nil, err
		}
	}
	c.install(snap)
	return c, nil
}

// check refuses a stored snapshot that no catalog writes (found by
// FuzzCatalogLoad): a corrupt file must fail Open, not crash it.
func (s *Snapshot) check() error {
	for i, st := range s.Streams {
		if st == nil {
			return fmt.Errorf("catalog: corrupt: stream %d is null", i)
		}
	}
	return nil
}

func newClusterID() string {
	var b [16]byte
	rand.Read(b[:])
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	out := make([]byte, 22)
	for i := range out {
		out[i] = alphabet[int(b[i%16]^byte(i*7))%len(alphabet)]
	}
	return string(out)
}

func (c *Catalog) install(snap *Snapshot) {
	c.snap = *snap
	c.byName = make(map[string]*Stream, len(snap.Streams))
	c.byID = make(map[StreamID]*Stream, len(snap.Streams))
	for _, s := range snap.Streams {
		c.byName[s.Name] = s
		c.byID[s.ID] = s
	}
}

// ReserveProducerIDs durably reserves n producer ids and returns the first.
// Ids are never handed out twice, also across restarts.
func (c *Catalog) ReserveProducerIDs(n int64) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.snap
	first := next.NextProducerID
	next.NextProducerID += n
	if err := c.store.Save(&next); err != nil {
		return 0, err
	}
	c.install(&next)
	return first, nil
}

// ClusterID returns the id generated when the catalog was first created.
func (c *Catalog) ClusterID() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.snap.ClusterID
}

// Stream returns a copy of the named stream.
func (c *Catalog) Stream(name string) (*Stream, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownStream, name)
	}
	return s.clone(), nil
}

// StreamByTopicID returns a copy of the stream with the given Kafka topic id.
func (c *Catalog) StreamByTopicID(id [16]byte) (*Stream, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.snap.Streams {
		if s.TopicID == id {
			return s.clone(), nil
		}
	}
	return nil, fmt.Errorf("%w: topic id %x", ErrUnknownStream, id)
}

// Streams returns copies of all streams sorted by name.
func (c *Catalog) Streams() []*Stream {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*Stream, 0, len(c.snap.Streams))
	for _, s := range c.snap.Streams {
		out = append(out, s.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// ValidateName checks a stream name against the rules shared by Kafka topic
// names and Kinesis stream names.
func ValidateName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	case len(name) > 249:
		return fmt.Errorf("%w: %d characters, at most 249", ErrInvalidName, len(name))
	case !validName.MatchString(name):
		return fmt.Errorf("%w: %q may only hold ASCII letters, digits, '.', '_' and '-'", ErrInvalidName, name)
	}
	return nil
}

// MaxShards bounds the shards of one stream.
const MaxShards = 100000

// CreateStream adds a stream with n shards splitting the hash-key space
// evenly. validateOnly checks without changing anything.
func (c *Catalog) CreateStream(name string, n int, configs Configs, validateOnly bool) (*Stream, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	// Errors come in Kafka's order: name, existence, partitions, configs.
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byName[name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrStreamExists, name)
	}
	if n < 1 || n > MaxShards {
		return nil, fmt.Errorf("%w: %d (must be 1 to %d)", ErrInvalidShards, n, MaxShards)
	}
	for k, v := range configs {
		if err := ValidateConfig(k, v); err != nil {
			return nil, err
		}
	}
	now := time.Now().UnixMilli()
	s := &Stream{ID: c.snap.NextStreamID, Name: name, Configs: maps.Clone(configs), CreatedMs: now}
	rand.Read(s.TopicID[:])
	for i, r := range SplitEvenly(n) {
		s.Shards = append(s.Shards, Shard{ID: ShardID(i), Range: &r, State: ShardOpen, CreatedMs: now})
	}
	if validateOnly {
		return s.clone(), nil
	}
	if err := c.addLocked(s); err != nil {
		return nil, err
	}
	return s.clone(), nil
}

// add saves a new stream built by CreateStream with validateOnly, marked
// internal or not.
func (c *Catalog) add(s *Stream, internal bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byName[s.Name]; ok {
		return fmt.Errorf("%w: %q", ErrStreamExists, s.Name)
	}
	s.ID, s.Internal = c.snap.NextStreamID, internal
	return c.addLocked(s)
}

func (c *Catalog) addLocked(s *Stream) error {
	next := c.snap
	next.NextStreamID++
	next.Streams = append(slices.Clone(c.snap.Streams), s)
	if err := c.store.Save(&next); err != nil {
		return err
	}
	c.install(&next)
	return nil
}

// DeleteStream removes the named stream and returns what it was.
func (c *Catalog) DeleteStream(name string) (*Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownStream, name)
	}
	if s.Internal {
		return nil, fmt.Errorf("%w: %q cannot be deleted", ErrInternalStream, name)
	}
	next := c.snap
	next.Streams = slices.DeleteFunc(slices.Clone(c.snap.Streams), func(o *Stream) bool { return o == s })
	if err := c.store.Save(&next); err != nil {
		return nil, err
	}
	c.install(&next)
	return s.clone(), nil
}

// update saves a changed copy of one stream.
func (c *Catalog) update(name string, change func(s *Stream) error, validateOnly bool) (*Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownStream, name)
	}
	s := old.clone()
	if err := change(s); err != nil {
		return nil, err
	}
	if validateOnly {
		return s, nil
	}
	next := c.snap
	next.Streams = slices.Clone(c.snap.Streams)
	for i, o := range next.Streams {
		if o == old {
			next.Streams[i] = s
		}
	}
	if err := c.store.Save(&next); err != nil {
		return nil, err
	}
	c.install(&next)
	return s.clone(), nil
}

// AddShards grows a stream to total shards, as Kafka's CreatePartitions does.
// The new shards own no hash range: Kafka producers choose partitions
// themselves, and the hash-key space stays with the shards that own it.
func (c *Catalog) AddShards(name string, total int, validateOnly bool) (*Stream, error) {
	return c.update(name, func(s *Stream) error {
		if s.Internal {
			return fmt.Errorf("%w: %q cannot be grown", ErrInternalStream, name)
		}
		if total <= len(s.Shards) {
			return fmt.Errorf("%w: stream %q has %d shards, cannot shrink to %d", ErrInvalidShards, name, len(s.Shards), total)
		}
		if total > MaxShards {
			return fmt.Errorf("%w: %d (at most %d)", ErrInvalidShards, total, MaxShards)
		}
		for id := len(s.Shards); id < total; id++ {
			s.Shards = append(s.Shards, Shard{ID: ShardID(id), State: ShardOpen})
		}
		return nil
	}, validateOnly)
}

// SetConfigs replaces (replace=true) or edits a stream's explicit configs.
// In edit mode a nil value deletes the name, restoring its default.
// An unknown stream is reported before any bad config, as Kafka does.
func (c *Catalog) SetConfigs(name string, set map[string]*string, replace, validateOnly bool) (*Stream, error) {
	return c.update(name, func(s *Stream) error {
		for k, v := range set {
			if v == nil {
				if _, ok := Specs[k]; !ok {
					return fmt.Errorf("%w: unknown config %q", ErrInvalidConfig, k)
				}
				continue
			}
			if err := ValidateConfig(k, *v); err != nil {
				return err
			}
		}
		if replace || s.Configs == nil {
			s.Configs = Configs{}
		}
		for k, v := range set {
			if v == nil {
				delete(s.Configs, k)
			} else {
				s.Configs[k] = *v
			}
		}
		return nil
	}, validateOnly)
}
