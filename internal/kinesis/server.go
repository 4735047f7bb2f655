package kinesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/braidstream/braid/internal/engine"
)

// Options configures the door.
type Options struct {
	// Region and Account make stream ARNs; defaults us-east-1 and
	// 000000000000.
	Region  string
	Account string
	// MaxRequestBytes bounds one request body; default 10 MiB (PutRecords'
	// 5 MiB of data, base64-encoded, with room for the JSON around it).
	MaxRequestBytes int64
	// SubscriptionTTL ends a SubscribeToShard stream; default 5 minutes,
	// as in Kinesis (tests shorten it).
	SubscriptionTTL time.Duration
	Logger          *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Account == "" {
		o.Account = "000000000000"
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = 10 << 20
	}
	if o.SubscriptionTTL <= 0 {
		o.SubscriptionTTL = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server serves the Kinesis API on an engine.
type Server struct {
	eng  *engine.Engine
	opts Options
	http *http.Server
	// iterKey signs shard iterators (iterator.go).
	iterKey []byte
	// subs ends SubscribeToShard streams on Close (subscribe_to_shard.go).
	subs subscriptions
}

// handler is one operation: it decodes its input from the request body
// and returns its output, or an error that errmap.go turns into an AWS
// error.
type handler func(ctx context.Context, s *Server, body []byte) (any, error)

var (
	opsMu sync.Mutex
	ops   = map[string]handler{}
)

// register adds an operation; each operation's file calls it from init.
func register(name string, h handler) {
	opsMu.Lock()
	defer opsMu.Unlock()
	if _, dup := ops[name]; dup {
		panic("kinesis: operation registered twice: " + name)
	}
	ops[name] = h
}

// NewServer returns a door on eng.
func NewServer(eng *engine.Engine, opts Options) *Server {
	opts.setDefaults()
	s := &Server{eng: eng, opts: opts}
	s.iterKey = iteratorKey(eng.ClusterID())
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	return s
}

// Serve answers requests on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the listener and waits briefly for requests under way.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.http.Shutdown(ctx)
}

const targetPrefix = "Kinesis_20131202."

// ServeHTTP dispatches one API call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.fail(w, errorf(errSerialization, "the Kinesis API takes POST, not %s", r.Method))
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	h := ops[op]
	if !ok || h == nil {
		s.fail(w, errorf(errUnknownOperation, "unknown operation %q", target))
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/x-amz-json-1.1") && !strings.HasPrefix(ct, "application/json") {
		s.fail(w, errorf(errSerialization, "content type %q is not supported; use application/x-amz-json-1.1", ct))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(w, errorf(errInvalidArgument, "request body is over %d bytes", s.opts.MaxRequestBytes))
			return
		}
		s.fail(w, errorf(errSerialization, "read request: %v", err))
		return
	}
	out, err := h(context.WithValue(r.Context(), headersKey{}, r.Header), s, body)
	if err != nil {
		s.opts.Logger.Debug("kinesis: request refused", "op", op, "err", err)
		s.fail(w, err)
		return
	}
	if es, ok := out.(eventStream); ok {
		es.serve(w)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if out == nil {
		out = struct{}{}
	}
	if err := json.NewEncoder(w).Encode(out); err != nil {
		s.opts.Logger.Debug("kinesis: write response", "op", op, "err", err)
	}
}

// headersKey is the context key of the request's HTTP headers, for the
// few operations that read one (X-Braid-Atomic in put_records.go).
type headersKey struct{}

// requestHeader returns the named HTTP header of the request ctx serves.
func requestHeader(ctx context.Context, name string) string {
	h, _ := ctx.Value(headersKey{}).(http.Header)
	return h.Get(name)
}

// decode reads an operation's JSON input strictly enough to catch
// mistakes: unknown fields are ignored (as AWS does, for newer SDKs), but
// the body must be one JSON object of the right shapes.
func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errorf(errSerialization, "field %s: expected %s, got %s", te.Field, te.Type, te.Value)
		}
		return errorf(errSerialization, "request body is not valid JSON: %v", err)
	}
	return nil
}

// fail answers err as an AWS error.
func (s *Server) fail(w http.ResponseWriter, err error) {
	typ, status, msg := mapError(err)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

// arn returns a stream's ARN.
func (s *Server) arn(name string) string {
	return fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", s.opts.Region, s.opts.Account, name)
}
