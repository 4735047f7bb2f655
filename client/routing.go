package client

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Client-side routing (WithAdminAddr). The server routes a keyed record of a
// braid.routing=key stream to the open shard whose hash range owns MD5(key)
// (docs/design/resharding.md); a batch addressed elsewhere takes the
// server's slower "routed" path. The producer learns each stream's open
// ranges from the admin HTTP API (GET /v1/streams/{name}) and addresses
// every keyed record to its owner itself, so batches take the fast path.
//
// Per-key order across a reshard: a layout is applied only after every
// record sent under the previous one has been acknowledged (or has failed).
// Records sent to a shard a reshard closed are routed by the server, in the
// order of that shard's pipeline, so until the switch a key's records all
// flow through one shard; after it, through its new owner. Without the
// barrier a key's last records to the old shard could still be in flight
// when its first records to the new one land first.

// hashKey is a point of the 128-bit hash-key space, big-endian, so that
// bytes.Compare orders keys as the server's 128-bit comparison does.
type hashKey [16]byte

func keyHash(key []byte) hashKey { return md5.Sum(key) }

func parseHashKey(s string) (hashKey, error) {
	var k hashKey
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 || v.BitLen() > 128 {
		return k, fmt.Errorf("client: hash key %q is not a decimal number in [0, 2^128)", s)
	}
	v.FillBytes(k[:])
	return k, nil
}

// layout is one stream's open shards by range start, as fetched.
type layout struct {
	shards int       // all shards, closed ones included (ids are dense)
	starts []hashKey // open ranged shards' range starts, ascending
	ids    []int32   // the shard owning [starts[i], starts[i+1])
}

func (l *layout) owner(k hashKey) int32 {
	i := sort.Search(len(l.starts), func(i int) bool { return bytes.Compare(k[:], l.starts[i][:]) < 0 })
	if i == 0 {
		return -1
	}
	return l.ids[i-1]
}

func (l *layout) same(o *layout) bool {
	if o == nil || l.shards != o.shards || len(l.ids) != len(o.ids) {
		return false
	}
	for i := range l.ids {
		if l.ids[i] != o.ids[i] || l.starts[i] != o.starts[i] {
			return false
		}
	}
	return true
}

// adminStream is the part of GET /v1/streams/{name} routing needs.
type adminStream struct {
	Shards []struct {
		Shard int32  `json:"shard"`
		State string `json:"state"`
		Range *struct {
			Start string `json:"start"`
			End   string `json:"end"`
		} `json:"range"`
	} `json:"shards"`
}

func layoutOf(as *adminStream) (*layout, error) {
	l := &layout{shards: len(as.Shards)}
	type open struct {
		start hashKey
		id    int32
	}
	var opens []open
	for _, sh := range as.Shards {
		if sh.State != "open" || sh.Range == nil {
			continue
		}
		k, err := parseHashKey(sh.Range.Start)
		if err != nil {
			return nil, err
		}
		opens = append(opens, open{k, sh.Shard})
	}
	sort.Slice(opens, func(i, j int) bool { return bytes.Compare(opens[i].start[:], opens[j].start[:]) < 0 })
	for _, o := range opens {
		l.starts = append(l.starts, o.start)
		l.ids = append(l.ids, o.id)
	}
	return l, nil
}

// streamRoute is the routing state of one stream.
type streamRoute struct {
	latest  atomic.Pointer[layout] // the newest layout fetched
	fetched chan struct{}          // closed after the first fetch attempt
	seen    atomic.Int32           // kgo's partition count, from the partitioner

	mu       sync.Mutex
	cond     *sync.Cond
	active   *layout // what records are addressed by now; nil: kgo's partitioner
	gen      uint64  // bumped when active changes
	inflight map[uint64]int
	rr       atomic.Uint64 // spreads unkeyed records over open shards
}

// router keeps the layouts of the streams a producer writes to.
type router struct {
	addr  string
	every time.Duration
	http  *http.Client
	// refreshMeta asks kgo to reload metadata: a new layout names shards
	// kgo does not know yet.
	refreshMeta func()

	mu      sync.Mutex
	streams map[string]*streamRoute

	kick chan struct{}
	ctx  context.Context // done at close
	stop context.CancelFunc
	done chan struct{}
}

// firstLayoutWait bounds how long the first record to a stream waits for
// the stream's layout (as kgo holds records until it has metadata).
const firstLayoutWait = 2 * time.Second

func newRouter(addr string, every time.Duration, refreshMeta func()) *router {
	ctx, cancel := context.WithCancel(context.Background())
	// Its own transport, so that close can drop its idle connections
	// (and their goroutines).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	r := &router{addr: addr, every: every, http: &http.Client{Timeout: 5 * time.Second, Transport: tr},
		refreshMeta: refreshMeta, streams: map[string]*streamRoute{},
		kick: make(chan struct{}, 1), ctx: ctx, stop: cancel, done: make(chan struct{})}
	go r.loop(ctx)
	return r
}

func (r *router) close() {
	r.stop()
	<-r.done
	r.http.CloseIdleConnections()
}

// refreshSoon asks for a refresh of every stream's layout without waiting.
func (r *router) refreshSoon() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *router) loop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
		r.mu.Lock()
		names := make([]string, 0, len(r.streams))
		for name := range r.streams {
			names = append(names, name)
		}
		r.mu.Unlock()
		for _, name := range names {
			r.fetch(ctx, name, r.stream(name))
		}
		// Kicks come from every routed acknowledgement; one refresh
		// answers a burst of them.
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *router) stream(name string) *streamRoute {
	r.mu.Lock()
	defer r.mu.Unlock()
	sr := r.streams[name]
	if sr == nil {
		sr = &streamRoute{fetched: make(chan struct{}), inflight: map[uint64]int{}}
		sr.cond = sync.NewCond(&sr.mu)
		r.streams[name] = sr
		go func() {
			ctx, cancel := context.WithTimeout(r.ctx, firstLayoutWait)
			defer cancel()
			r.fetch(ctx, name, sr)
			close(sr.fetched)
		}()
	}
	return sr
}

// fetch loads name's layout from the admin API. A failure keeps the last
// layout: the server routes whatever it addresses wrongly.
func (r *router) fetch(ctx context.Context, name string, sr *streamRoute) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+"/v1/streams/"+url.PathEscape(name), nil)
	if err != nil {
		return
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return
	}
	var as adminStream
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&as); err != nil {
		return
	}
	l, err := layoutOf(&as)
	if err != nil || len(l.ids) == 0 {
		return
	}
	if l.same(sr.latest.Load()) {
		return
	}
	sr.latest.Store(l)
	if s := int(sr.seen.Load()); s != 0 && l.shards > s {
		r.refreshMeta()
	}
}

// assign picks the shard for a record with key on stream (-1: let kgo's
// partitioner choose) and returns the function to call once the record's
// outcome is known. It waits, at a layout change, for the records sent
// under the previous layout (until ctx is done), and for the first record
// to a stream, for the first fetch of its layout.
func (r *router) assign(ctx context.Context, stream string, key []byte) (int32, func(), error) {
	sr := r.stream(stream)
	select {
	case <-sr.fetched:
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	sr.mu.Lock()
	if l := sr.latest.Load(); l != nil && l != sr.active {
		// kgo must know every shard of the layout before records go
		// there; seen 0: kgo has no metadata yet, and will have this
		// layout's when it loads.
		if s := int(sr.seen.Load()); s != 0 && l.shards > s {
			r.refreshMeta()
		} else {
			if err := sr.drain(ctx); err != nil {
				sr.mu.Unlock()
				return 0, nil, err
			}
			if l != sr.active {
				sr.active = l
				sr.gen++
			}
		}
	}
	part := int32(-1)
	if l := sr.active; l != nil {
		if key != nil {
			part = l.owner(keyHash(key))
		} else {
			part = l.ids[int(sr.rr.Add(1)/64)%len(l.ids)]
		}
	}
	gen := sr.gen
	sr.inflight[gen]++
	sr.mu.Unlock()
	return part, func() {
		sr.mu.Lock()
		sr.inflight[gen]--
		if sr.inflight[gen] == 0 {
			delete(sr.inflight, gen)
			sr.cond.Broadcast()
		}
		sr.mu.Unlock()
	}, nil
}

// drain waits, with sr.mu held, until no record is in flight, or ctx is
// done.
func (sr *streamRoute) drain(ctx context.Context) error {
	if len(sr.inflight) == 0 {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		sr.mu.Lock()
		sr.cond.Broadcast()
		sr.mu.Unlock()
	})
	defer stop()
	for len(sr.inflight) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		sr.cond.Wait()
	}
	return nil
}

// routePartitioner addresses a record to the shard assign chose
// (kgo.Record.Partition >= 0), else to murmur2(key) for a keyed record (as
// kgo's default does: the server routes it) and round robin for the rest.
type routePartitioner struct {
	r *router
}

func (p routePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &routeTopicPartitioner{r: p.r, topic: topic, keyed: kgo.StickyKeyPartitioner(nil).ForTopic(topic)}
}

type routeTopicPartitioner struct {
	r     *router
	topic string
	keyed kgo.TopicPartitioner
	rr    int
	sr    *streamRoute
}

func (*routeTopicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

// Partition runs under kgo's lock of the topic's partitions.
func (p *routeTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if p.sr == nil && p.r != nil {
		p.sr = p.r.stream(p.topic)
	}
	if p.sr != nil && int(p.sr.seen.Load()) != n {
		p.sr.seen.Store(int32(n))
		if l := p.sr.latest.Load(); l == nil || l.shards != n {
			p.r.refreshSoon()
		}
	}
	switch {
	case r.Partition >= 0 && int(r.Partition) < n:
		return int(r.Partition)
	case r.Key != nil:
		return p.keyed.Partition(r, n)
	}
	p.rr++
	return p.rr % n
}
