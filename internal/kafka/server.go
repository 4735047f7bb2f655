package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/group"
)

// Options configures the Kafka door.
type Options struct {
	// AdvertisedHost and AdvertisedPort are what Metadata tells clients to
	// connect to; default: the listener's address.
	AdvertisedHost string
	AdvertisedPort int32
	NodeID         int32
	// MaxRequestBytes bounds one request frame (Kafka's
	// socket.request.max.bytes); default 100 MiB.
	MaxRequestBytes int32
	// AutoCreateTopics lets Metadata create missing topics when the client
	// asks for it; off by default. DefaultPartitions is their shard count.
	AutoCreateTopics  bool
	DefaultPartitions int32
	// QueuedMaxRequestBytes bounds the request bytes held by all
	// connections together, counted as they arrive and until answered
	// (Kafka's queued.max.request.bytes); default 512 MiB. One connection
	// holds at most MaxRequestBytes.
	QueuedMaxRequestBytes int64
	// RequestTimeout is the slow-client timeout: once its first byte has
	// arrived, a request must arrive whole within it, and each response
	// must be taken by the client within it; default 30s.
	RequestTimeout time.Duration
	// ConnectionsMaxIdle closes a connection with nothing in flight after
	// this long without a request (Kafka's connections.max.idle.ms);
	// default 10m.
	ConnectionsMaxIdle time.Duration
	// MaxConnections and MaxConnectionsPerIP refuse (close at once)
	// connections past these counts (Kafka's max.connections and
	// max.connections.per.ip); 0 means no limit. Defaults: 10000, none.
	MaxConnections      int
	MaxConnectionsPerIP int
	// FetchMaxBytes caps the record bytes of one fetch response whatever
	// the client asks (Kafka's broker fetch.max.bytes); default 55 MiB.
	// The first batch is returned whole even if larger (KIP-74).
	FetchMaxBytes int32
	// MaxInflight bounds pipelined requests per connection; default 64.
	MaxInflight int
	// Groups configures the classic group protocol (session timeout
	// bounds, initial rebalance delay).
	Groups group.Options
	// OffsetMetadataMaxBytes bounds the metadata of one committed offset
	// (Kafka's offset.metadata.max.bytes); default 4096.
	OffsetMetadataMaxBytes int
	Logger                 *slog.Logger
	Metrics                *Metrics
}

// Server serves the Kafka protocol over an engine.
type Server struct {
	opts   Options
	eng    *engine.Engine
	groups *group.Coordinator

	// queued bounds request bytes held by all connections.
	queued *budget

	mu    sync.Mutex
	ln    net.Listener
	conns map[*conn]struct{}
	perIP map[string]int
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc

	topics atomic.Pointer[topicsCache] // see consumerTopics

	remainMu sync.Mutex
	remain   map[remainKey]bool // see readsRemain
}

// NewServer returns a server for eng.
func NewServer(eng *engine.Engine, opts Options) *Server {
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = 100 << 20
	}
	if opts.DefaultPartitions <= 0 {
		opts.DefaultPartitions = 1
	}
	if opts.QueuedMaxRequestBytes <= 0 {
		opts.QueuedMaxRequestBytes = 512 << 20
	}
	opts.QueuedMaxRequestBytes = max(opts.QueuedMaxRequestBytes, int64(opts.MaxRequestBytes))
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 30 * time.Second
	}
	if opts.ConnectionsMaxIdle <= 0 {
		opts.ConnectionsMaxIdle = 10 * time.Minute
	}
	if opts.FetchMaxBytes <= 0 {
		opts.FetchMaxBytes = 55 << 20
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 64
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.OffsetMetadataMaxBytes <= 0 {
		opts.OffsetMetadataMaxBytes = 4096
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{opts: opts, eng: eng, groups: group.NewCoordinator(eng.Offsets(), opts.Groups),
		queued: newBudget(opts.QueuedMaxRequestBytes),
		conns:  map[*conn]struct{}{}, perIP: map[string]int{}, ctx: ctx, stop: stop, remain: map[remainKey]bool{}}
	s.groups.EnableConsumerProtocol(group.ConsumerOptions{Topics: s.consumerTopics})
	s.groups.SetLineageGate(s.lineageGate, filterAssignment)
	return s
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	if s.opts.AdvertisedHost == "" || s.opts.AdvertisedPort == 0 {
		host, port, _ := net.SplitHostPort(ln.Addr().String())
		if s.opts.AdvertisedHost == "" {
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				host = "127.0.0.1"
			}
			s.opts.AdvertisedHost = host
		}
		if s.opts.AdvertisedPort == 0 {
			p, _ := strconv.Atoi(port)
			s.opts.AdvertisedPort = int32(p)
		}
	}
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errors.ErrUnsupported) {
				continue
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.opts.Logger.Warn("kafka: accept failed", "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		ip, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
		c := newConn(s, nc, ip)
		s.mu.Lock()
		if reason := s.refuseLocked(ip); reason != "" {
			s.mu.Unlock()
			s.opts.Metrics.refused.Inc()
			s.opts.Logger.Debug("kafka: connection refused", "remote", nc.RemoteAddr().String(), "reason", reason)
			c.cancel()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.perIP[ip]++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
		}()
	}
}

// refuseLocked says why a new connection from ip is over a limit, or "".
func (s *Server) refuseLocked(ip string) string {
	if n := s.opts.MaxConnections; n > 0 && len(s.conns) >= n {
		return fmt.Sprintf("%d connections open (max connections)", len(s.conns))
	}
	if n := s.opts.MaxConnectionsPerIP; n > 0 && s.perIP[ip] >= n {
		return fmt.Sprintf("%d connections open from %s (max connections per ip)", s.perIP[ip], ip)
	}
	return ""
}

// Groups returns the group coordinator (for metrics and tools).
func (s *Server) Groups() *group.Coordinator { return s.groups }

// Close stops accepting, closes every connection and waits for them.
func (s *Server) Close() error {
	s.stop()
	s.groups.Close()
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) String() string {
	return fmt.Sprintf("kafka server %s:%d", s.opts.AdvertisedHost, s.opts.AdvertisedPort)
}
