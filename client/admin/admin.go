package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors, matched with errors.Is; each wraps the cause (a *kerr.Error, or
// the admin API's message).
var (
	// ErrStreamExists: CreateStream of a stream that exists.
	ErrStreamExists = errors.New("admin: stream already exists")
	// ErrUnknownStream: the stream does not exist.
	ErrUnknownStream = errors.New("admin: unknown stream")
	// ErrUnknownGroup: the consumer group does not exist.
	ErrUnknownGroup = errors.New("admin: unknown group")
	// ErrInvalid: the server refused the request as invalid (a bad
	// config, shard count, split point or merge pair); nothing changed.
	ErrInvalid = errors.New("admin: invalid request")
	// ErrNoAdminAddr: the call needs the admin HTTP address and New was
	// given none.
	ErrNoAdminAddr = errors.New("admin: no admin HTTP address")
)

// Option configures a Client (New).
type Option func(*config)

type config struct {
	clientID    string
	httpTimeout time.Duration
	kgoOpts     []kgo.Opt
}

// WithClientID sets the Kafka client id. Default "braid-go-admin".
func WithClientID(id string) Option { return func(c *config) { c.clientID = id } }

// WithHTTPTimeout bounds one admin HTTP request. Default 30s (a reshard
// under load may take a while).
func WithHTTPTimeout(d time.Duration) Option { return func(c *config) { c.httpTimeout = d } }

// WithKgoOptions passes franz-go options to the Kafka client.
func WithKgoOptions(opts ...kgo.Opt) Option {
	return func(c *config) { c.kgoOpts = append(c.kgoOpts, opts...) }
}

// Client manages streams and groups of one Braid cluster.
type Client struct {
	kcl  *kgo.Client
	adm  *kadm.Client
	addr string
	http *http.Client
}

// New returns a Client that reaches the Kafka listeners through seeds and
// the admin HTTP API at adminAddr (host:port of `braid serve
// --http-addr`; "" if only the Kafka operations are needed).
func New(seeds []string, adminAddr string, opts ...Option) (*Client, error) {
	if len(seeds) == 0 {
		return nil, errors.New("admin: no seed addresses")
	}
	cfg := config{clientID: "braid-go-admin", httpTimeout: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.httpTimeout <= 0 {
		return nil, fmt.Errorf("admin: HTTP timeout %v: want more than 0", cfg.httpTimeout)
	}
	kcl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID(cfg.clientID)}, cfg.kgoOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	return &Client{kcl: kcl, adm: kadm.NewClient(kcl), addr: adminAddr, http: &http.Client{Timeout: cfg.httpTimeout}}, nil
}

// Close releases the connections.
func (c *Client) Close() { c.kcl.Close() }

// kafkaErr classifies a Kafka error about stream.
func kafkaErr(op, stream string, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		sentinel = ErrStreamExists
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		sentinel = ErrUnknownStream
	case errors.Is(err, kerr.InvalidConfig), errors.Is(err, kerr.InvalidPartitions), errors.Is(err, kerr.InvalidRequest),
		errors.Is(err, kerr.InvalidTopicException), errors.Is(err, kerr.PolicyViolation), errors.Is(err, kerr.InvalidReplicationFactor):
		sentinel = ErrInvalid
	case errors.Is(err, kerr.GroupIDNotFound):
		sentinel = ErrUnknownGroup
	}
	if sentinel != nil {
		return fmt.Errorf("admin: %s %q: %w: %w", op, stream, sentinel, err)
	}
	return fmt.Errorf("admin: %s %q: %w", op, stream, err)
}

// CreateStream creates a stream with shards shards (their hash ranges
// split the key space evenly) and the given stream configs. Unless configs
// sets braid.routing, the stream routes keyed records by key
// (braid.routing=key), as streams made by `braid stream create` do.
func (c *Client) CreateStream(ctx context.Context, name string, shards int32, configs map[string]string) error {
	if shards < 1 {
		return fmt.Errorf("admin: create %q: %w: %d shards, want at least 1", name, ErrInvalid, shards)
	}
	cfg := map[string]*string{"braid.routing": kadm.StringPtr("key")}
	for k, v := range configs {
		cfg[k] = kadm.StringPtr(v)
	}
	resp, err := c.adm.CreateTopic(ctx, shards, 1, cfg, name)
	if err == nil {
		err = resp.Err
	}
	return kafkaErr("create", name, err)
}

// DeleteStream deletes a stream and its data.
func (c *Client) DeleteStream(ctx context.Context, name string) error {
	resp, err := c.adm.DeleteTopic(ctx, name)
	if err == nil {
		err = resp.Err
	}
	if err == nil {
		// kgo caches metadata: forget the stream, or ListStreams
		// would still list it for a while.
		c.kcl.PurgeTopicsFromClient(name)
	}
	return kafkaErr("delete", name, err)
}

// ListStreams returns the names of the user streams, sorted.
func (c *Client) ListStreams(ctx context.Context) ([]string, error) {
	td, err := c.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin: list streams: %w", err)
	}
	var names []string
	for _, d := range td {
		if d.Err == nil {
			names = append(names, d.Topic)
		}
	}
	sort.Strings(names)
	return names, nil
}

// AlterStream sets stream configs (for example retention.ms or
// braid.routing), leaving the others as they are. Nothing changes if one
// is invalid.
func (c *Client) AlterStream(ctx context.Context, name string, set map[string]string) error {
	if len(set) == 0 {
		return fmt.Errorf("admin: alter %q: %w: no configs", name, ErrInvalid)
	}
	var alters []kadm.AlterConfig
	for k, v := range set {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)})
	}
	resps, err := c.adm.AlterTopicConfigs(ctx, alters, name)
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = resps.On(name, nil); err == nil {
			err = r.Err
		}
	}
	return kafkaErr("alter", name, err)
}

// StreamConfigs returns a stream's configs that are set on it or on the
// node (not Kafka's built-in defaults).
func (c *Client) StreamConfigs(ctx context.Context, name string) (map[string]string, error) {
	rcs, err := c.adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return nil, kafkaErr("describe configs", name, err)
	}
	rc, err := rcs.On(name, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return nil, kafkaErr("describe configs", name, err)
	}
	out := map[string]string{}
	for _, cf := range rc.Configs {
		if cf.Value != nil {
			out[cf.Key] = *cf.Value
		}
	}
	return out, nil
}

// httpCall sends one admin API request and decodes a 200 answer into out.
func (c *Client) httpCall(ctx context.Context, method, path, stream string, body, out any) error {
	if c.addr == "" {
		return ErrNoAdminAddr
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.addr+path, rd)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin: admin API at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin: admin API at %s: %w", c.addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		var sentinel error
		switch resp.StatusCode {
		case http.StatusNotFound:
			sentinel = ErrUnknownStream
		case http.StatusBadRequest:
			sentinel = ErrInvalid
		}
		if sentinel != nil {
			return fmt.Errorf("admin: stream %q: %w: %s", stream, sentinel, msg)
		}
		return fmt.Errorf("admin: stream %q: admin API answered %s: %s", stream, resp.Status, msg)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("admin: admin API answer: %w", err)
	}
	return nil
}

func streamPath(name string, op string) string {
	p := "/v1/streams/" + url.PathEscape(name)
	if op != "" {
		p += "/" + op
	}
	return p
}

// ShardState says whether a shard takes writes.
type ShardState string

// Shard states.
const (
	ShardOpen   ShardState = "open"
	ShardClosed ShardState = "closed"
)

// HashRange is an inclusive range of the 128-bit hash-key space: a keyed
// record belongs to the open shard whose range holds MD5(key) read as a
// big-endian number.
type HashRange struct {
	Start, End *big.Int
}

// Shard is one shard of a stream, open or closed (closed shards stay
// readable and listed, for lineage).
type Shard struct {
	ID            int32
	State         ShardState
	Range         *HashRange // nil for a shard added as a Kafka partition
	Parents       []int32
	Children      []int32
	LogStart      int64
	HighWatermark int64
	// EndOffset is where a closed shard's records end; -1 while open.
	EndOffset int64
}

// Stream is what DescribeStream returns.
type Stream struct {
	Name      string
	Routing   string // "key" or "partition"
	Compacted bool
	Shards    []Shard
}

// Open returns the ids of the open shards.
func (s *Stream) Open() []int32 {
	var ids []int32
	for _, sh := range s.Shards {
		if sh.State == ShardOpen {
			ids = append(ids, sh.ID)
		}
	}
	return ids
}

type wireRange struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type wireShard struct {
	Shard         int32      `json:"shard"`
	State         string     `json:"state"`
	Range         *wireRange `json:"range"`
	Parents       []int32    `json:"parents"`
	Children      []int32    `json:"children"`
	LogStart      int64      `json:"log_start"`
	HighWatermark int64      `json:"high_watermark"`
	EndOffset     *int64     `json:"end_offset"`
}

func (w wireShard) shard() (Shard, error) {
	s := Shard{ID: w.Shard, State: ShardState(w.State), Parents: w.Parents, Children: w.Children,
		LogStart: w.LogStart, HighWatermark: w.HighWatermark, EndOffset: -1}
	if w.EndOffset != nil {
		s.EndOffset = *w.EndOffset
	}
	if w.Range != nil {
		start, ok1 := new(big.Int).SetString(w.Range.Start, 10)
		end, ok2 := new(big.Int).SetString(w.Range.End, 10)
		if !ok1 || !ok2 {
			return s, fmt.Errorf("admin: shard %d: bad hash range %q-%q", w.Shard, w.Range.Start, w.Range.End)
		}
		s.Range = &HashRange{start, end}
	}
	return s, nil
}

// DescribeStream returns a stream's shards with their hash ranges,
// lineage and state (admin HTTP API).
func (c *Client) DescribeStream(ctx context.Context, name string) (*Stream, error) {
	var w struct {
		Name      string      `json:"name"`
		Routing   string      `json:"routing"`
		Compacted bool        `json:"compacted"`
		Shards    []wireShard `json:"shards"`
	}
	if err := c.httpCall(ctx, http.MethodGet, streamPath(name, ""), name, nil, &w); err != nil {
		return nil, err
	}
	st := &Stream{Name: w.Name, Routing: w.Routing, Compacted: w.Compacted}
	for _, ws := range w.Shards {
		s, err := ws.shard()
		if err != nil {
			return nil, err
		}
		st.Shards = append(st.Shards, s)
	}
	return st, nil
}

// Reshard is the outcome of Split, Merge or Scale: the shards closed and
// opened, and how long the server took. The new layout is in force when it
// returns.
type Reshard struct {
	Closed []int32
	Opened []int32
	Took   time.Duration
}

func (c *Client) reshard(ctx context.Context, name, op string, body any) (*Reshard, error) {
	var w struct {
		Closed []int32 `json:"closed"`
		Open   []int32 `json:"open"`
		TookMs float64 `json:"took_ms"`
	}
	if err := c.httpCall(ctx, http.MethodPost, streamPath(name, op), name, body, &w); err != nil {
		return nil, err
	}
	return &Reshard{Closed: w.Closed, Opened: w.Open, Took: time.Duration(w.TookMs * float64(time.Millisecond))}, nil
}

// Split closes open shard and opens two children that share its range,
// cut at hash key at (nil: the middle of the range; otherwise
// start < at <= end).
func (c *Client) Split(ctx context.Context, name string, shard int32, at *big.Int) (*Reshard, error) {
	body := map[string]any{"shard": shard}
	if at != nil {
		body["at"] = at.String()
	}
	return c.reshard(ctx, name, "split", body)
}

// Merge closes two open shards with adjacent ranges and opens one child
// owning both ranges.
func (c *Client) Merge(ctx context.Context, name string, a, b int32) (*Reshard, error) {
	return c.reshard(ctx, name, "merge", map[string]any{"shards": []int32{a, b}})
}

// Scale brings the stream to n open shards with even ranges, in one
// change (splits and merges).
func (c *Client) Scale(ctx context.Context, name string, n int) (*Reshard, error) {
	return c.reshard(ctx, name, "scale", map[string]any{"shards": n})
}

// GroupListing is one group in ListGroups.
type GroupListing struct {
	Name  string
	State string // Stable, Empty, PreparingRebalance, ...
}

// ListGroups returns the consumer groups, sorted by name.
func (c *Client) ListGroups(ctx context.Context) ([]GroupListing, error) {
	gs, err := c.adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin: list groups: %w", err)
	}
	var out []GroupListing
	for _, g := range gs.Sorted() {
		out = append(out, GroupListing{Name: g.Group, State: g.State})
	}
	return out, nil
}

// Member is one member of a group.
type Member struct {
	ID       string
	ClientID string
	Host     string
}

// ShardLag is a group's position on one shard.
type ShardLag struct {
	Stream    string
	Shard     int32
	Committed int64 // -1: nothing committed
	End       int64 // the shard's end offset (high watermark)
	Lag       int64 // End - Committed (End - log start when nothing is committed)
	Member    string
}

// Group is what DescribeGroup returns.
type Group struct {
	Name    string
	State   string
	Members []Member
	// Lag lists every shard the group has committed on or is assigned,
	// sorted by stream and shard.
	Lag []ShardLag
	// TotalLag sums Lag.
	TotalLag int64
}

// DescribeGroup returns a group's state, members and lag per shard.
func (c *Client) DescribeGroup(ctx context.Context, name string) (*Group, error) {
	lags, err := c.adm.Lag(ctx, name)
	if err != nil {
		return nil, kafkaErr("describe group", name, err)
	}
	l, ok := lags[name]
	if !ok {
		return nil, fmt.Errorf("admin: describe group %q: %w", name, ErrUnknownGroup)
	}
	if err := l.Error(); err != nil {
		return nil, kafkaErr("describe group", name, err)
	}
	if l.State == "Dead" {
		return nil, fmt.Errorf("admin: describe group %q: %w", name, ErrUnknownGroup)
	}
	g := &Group{Name: name, State: l.State}
	for _, m := range l.Members {
		g.Members = append(g.Members, Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost})
	}
	for _, ml := range l.Lag.Sorted() {
		sl := ShardLag{Stream: ml.Topic, Shard: ml.Partition, Committed: ml.Commit.At, End: ml.End.Offset, Lag: ml.Lag}
		if ml.Member != nil {
			sl.Member = ml.Member.MemberID
		}
		g.Lag = append(g.Lag, sl)
		if ml.Lag > 0 {
			g.TotalLag += ml.Lag
		}
	}
	return g, nil
}
