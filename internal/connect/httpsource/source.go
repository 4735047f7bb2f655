package httpsource

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/braidstream/braid/internal/connect"
)

// Type is the http-source connector type.
var Type = connect.Type{
	Name:        "http-source",
	ExactlyOnce: false,
	Doc:         "an ingest endpoint: POSTed JSON records are answered 200 once durable in Braid (at-least-once)",
	NewSource: func(env connect.Env, raw json.RawMessage) (connect.Source, error) {
		return New(env, raw)
	},
}

const (
	// pollMaxWait is how long Poll waits for a request.
	pollMaxWait = time.Second
	// pollMaxRecords and pollMaxBytes end a Poll's batch once reached;
	// a batch always holds at least one whole request.
	pollMaxRecords = 10000
	pollMaxBytes   = 16 << 20
	// queueFactor x max_body_bytes may wait for Poll before callers get 503.
	queueFactor = 8
	// retryAfterSeconds is told to callers answered 503.
	retryAfterSeconds = "1"
)

// ErrClosed answers callers whose request the source could not finish.
var ErrClosed = errors.New("http-source: closed")

// Source is an http-source. See the package doc.
type Source struct {
	cfg    config
	name   string
	log    *slog.Logger
	listen func(network, addr string) (net.Listener, error)

	srv    *http.Server
	ln     net.Listener
	served chan struct{}

	mu       sync.Mutex
	queue    []*request // received, not yet polled
	queued   int64      // body bytes in queue
	inflight []*request // polled, waiting for Committed
	seq      uint64     // the position: requests handed to Poll so far
	closed   bool
	notify   chan struct{} // a request was queued (capacity 1)
}

// request is one POST waiting for its answer.
type request struct {
	recs  []connect.Record
	bytes int64
	seq   uint64
	ctx   context.Context // the caller's; done when it gave up
	// status is set, under Source.mu, just before done is closed.
	status int
	done   chan struct{}
}

// New builds an http-source from its config; it does not listen yet.
func New(env connect.Env, raw json.RawMessage) (*Source, error) {
	cfg, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{cfg: cfg, name: env.Name, log: log, listen: net.Listen, notify: make(chan struct{}, 1)}, nil
}

// Addr is the listener's address once open.
func (s *Source) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Open implements connect.Source: it continues the counter from pos and
// starts listening.
func (s *Source) Open(ctx context.Context, pos []byte) error {
	if s.srv != nil {
		return errors.New("http-source: already open")
	}
	if pos != nil {
		if len(pos) != 8 {
			return fmt.Errorf("http-source: position of %d bytes, want 8", len(pos))
		}
		s.seq = binary.BigEndian.Uint64(pos)
	}
	ln, err := s.listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("http-source: listen %s: %w", s.cfg.Listen, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(s.cfg.Path, s.serve)
	s.ln = ln
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// No write timeout: a request is held until its records are
		// durable, however long that takes; its caller decides.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http-source: serve", "connector", s.name, "err", err)
		}
	}()
	s.log.Info("http-source: listening", "connector", s.name, "addr", ln.Addr().String(), "path", s.cfg.Path)
	return nil
}

// Poll implements connect.Source: whole requests, in arrival order.
func (s *Source) Poll(ctx context.Context) ([]connect.Record, []byte, error) {
	timer := time.NewTimer(pollMaxWait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, nil, ErrClosed
		}
		recs, pos := s.takeLocked()
		s.mu.Unlock()
		if recs != nil {
			return recs, pos, nil
		}
		select {
		case <-s.notify:
		case <-timer.C:
			return nil, nil, nil
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// takeLocked moves whole requests from the queue to inflight, skipping
// those whose caller gave up (nothing of theirs is written).
func (s *Source) takeLocked() ([]connect.Record, []byte) {
	var recs []connect.Record
	var bytes int64
	taken := 0
	for taken < len(s.queue) {
		r := s.queue[taken]
		if len(recs) > 0 && (len(recs)+len(r.recs) > pollMaxRecords || bytes+r.bytes > pollMaxBytes) {
			break
		}
		taken++
		s.queued -= r.bytes
		if r.ctx.Err() != nil {
			continue
		}
		s.seq++
		r.seq = s.seq
		s.inflight = append(s.inflight, r)
		recs = append(recs, r.recs...)
		bytes += r.bytes
	}
	s.queue = s.queue[taken:]
	if len(s.queue) > 0 {
		s.wake()
	}
	if recs == nil {
		return nil, nil
	}
	return recs, encodePos(s.seq)
}

func encodePos(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// Committed implements connect.Source: the requests up to pos are
// durable in Braid; their callers get 200.
func (s *Source) Committed(ctx context.Context, pos []byte) error {
	if len(pos) != 8 {
		return fmt.Errorf("http-source: position of %d bytes, want 8", len(pos))
	}
	upTo := binary.BigEndian.Uint64(pos)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < len(s.inflight) && s.inflight[n].seq <= upTo {
		s.inflight[n].finishLocked(http.StatusOK)
		n++
	}
	s.inflight = s.inflight[n:]
	return nil
}

// Close implements connect.Source: callers not yet answered get 503.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, r := range s.queue {
		r.finishLocked(http.StatusServiceUnavailable)
	}
	for _, r := range s.inflight {
		r.finishLocked(http.StatusServiceUnavailable)
	}
	s.queue, s.inflight, s.queued = nil, nil, 0
	s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.served
	return err
}

func (r *request) finishLocked(status int) {
	r.status = status
	close(r.done)
}

func (s *Source) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Source) serve(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != s.cfg.Path {
		writeError(w, http.StatusNotFound, "no such path; POST records to "+s.cfg.Path)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "POST records to "+s.cfg.Path)
		return
	}
	if s.cfg.AuthToken != "" {
		want := "Bearer " + s.cfg.AuthToken
		if subtle.ConstantTimeCompare([]byte(req.Header.Get("Authorization")), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="braid"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
	}
	if req.ContentLength > s.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes, over max_body_bytes %d", req.ContentLength, s.cfg.MaxBodyBytes))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over max_body_bytes %d", s.cfg.MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	recs, err := parseBody(body, s.cfg.Body, time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(recs) == 0 {
		writeJSON(w, http.StatusOK, map[string]int{"accepted": 0})
		return
	}
	r := &request{recs: recs, bytes: int64(len(body)), ctx: req.Context(), done: make(chan struct{})}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		s.unavailable(w, "the source is closed")
		return
	case s.queued+r.bytes > queueFactor*s.cfg.MaxBodyBytes:
		s.mu.Unlock()
		s.unavailable(w, "too many records waiting to be written")
		return
	}
	s.queue = append(s.queue, r)
	s.queued += r.bytes
	s.wake()
	s.mu.Unlock()

	select {
	case <-r.done:
	case <-req.Context().Done():
		// The caller is gone. If the request was not polled yet, Poll
		// skips it; if it was, its records are written anyway.
		return
	}
	if r.status == http.StatusOK {
		writeJSON(w, http.StatusOK, map[string]int{"accepted": len(recs)})
		return
	}
	s.unavailable(w, "the source stopped before the records were durable; retry")
}

func (s *Source) unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", retryAfterSeconds)
	writeError(w, http.StatusServiceUnavailable, msg)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the caller may be gone
}
