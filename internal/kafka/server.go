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

	mu    sync.Mutex
	ln    net.Listener
	conns map[*conn]struct{}
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc

	topics atomic.Pointer[topicsCache] // see consumerTopics
}

// NewServer returns a server for eng.
func NewServer(eng *engine.Engine, opts Options) *Server {
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = 100 << 20
	}
	if opts.DefaultPartitions <= 0 {
		opts.DefaultPartitions = 1
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
		conns: map[*conn]struct{}{}, ctx: ctx, stop: stop}
	s.groups.EnableConsumerProtocol(group.ConsumerOptions{Topics: s.consumerTopics})
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
		c := newConn(s, nc)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
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
