package kinesis

import (
	"context"
	"crypto/rand"
	"crypto/tls"
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
	fastjson "github.com/segmentio/encoding/json"
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
	// ReadTimeout bounds reading one request, headers and body, so that a
	// client trickling bytes cannot hold a request open; default 30s.
	// IdleTimeout closes keep-alive connections idle this long; default
	// 10m.
	ReadTimeout time.Duration
	IdleTimeout time.Duration
	// Credentials, if not nil, are the access keys whose SigV4 signatures
	// the door accepts (sigv4.go); nil accepts unsigned requests.
	Credentials Credentials
	// TLS, if not nil, serves HTTPS (HTTP/1.1 and HTTP/2 by ALPN) instead
	// of cleartext HTTP/1.1 and h2c.
	TLS *tls.Config
	// SubscriptionTTL ends a SubscribeToShard stream; default 5 minutes,
	// as in Kinesis (tests shorten it).
	SubscriptionTTL time.Duration
	// Metrics are the collectors the door counts in (metrics.go; the
	// caller registers them with NewMetrics); nil counts in unregistered
	// ones.
	Metrics *Metrics
	Logger  *slog.Logger
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
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 30 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.SubscriptionTTL <= 0 {
		o.SubscriptionTTL = 5 * time.Minute
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
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
	// throttle holds the per-shard limits of streams with
	// braid.kinesis.throttle=true (throttle.go).
	throttle *throttle
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
	s := &Server{eng: eng, opts: opts, throttle: newThrottle(time.Now)}
	s.iterKey = iteratorKey(eng.ClusterID())
	// HTTP/1.1 and HTTP/2 on one listener: in cleartext HTTP/2 is h2c with
	// prior knowledge (the AWS SDK for JavaScript v3 prefers it), under TLS
	// it is chosen by ALPN.
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	s.http = &http.Server{
		Handler: s, Protocols: &protos, TLSConfig: opts.TLS,
		ReadHeaderTimeout: min(10*time.Second, opts.ReadTimeout), ReadTimeout: opts.ReadTimeout, IdleTimeout: opts.IdleTimeout,
	}
	if opts.Credentials == nil {
		opts.Logger.Warn("kinesis: no credentials file (--kinesis-credentials): unsigned requests accepted")
	} else {
		opts.Logger.Info("kinesis: SigV4 signatures required", "access_keys", len(opts.Credentials))
	}
	return s
}

// Serve answers requests on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	var err error
	if s.opts.TLS != nil {
		err = s.http.ServeTLS(ln, "", "")
	} else {
		err = s.http.Serve(ln)
	}
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

// ServeHTTP dispatches one API call: the request is checked (method,
// encoding, size, signature) before its operation is looked up, and
// nothing is done for a request refused.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Amzn-RequestId", newRequestID())
	c, ok := codecOf(r.Header.Get("Content-Type"))
	if r.Method != http.MethodPost {
		s.fail(w, c, errorf(errAccessDenied, "Unable to determine service/operation name to be authorized"))
		return
	}
	if !ok {
		s.fail(w, c, errorf(errSerialization, "content type %q is not supported; use %s or %s", r.Header.Get("Content-Type"), contentJSON, contentCBOR))
		return
	}
	body, err := s.readBody(w, r, c)
	if err != nil {
		s.fail(w, c, err)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	h := ops[op]
	if !ok || h == nil {
		s.fail(w, c, errorf(errUnknownOperation, "unknown operation %q", target))
		return
	}
	s.opts.Metrics.requests.WithLabelValues(op, r.Proto).Inc()
	out, err := h(context.WithValue(r.Context(), headersKey{}, r.Header), s, body)
	if err != nil {
		s.opts.Logger.Debug("kinesis: request refused", "op", op, "err", err)
		s.fail(w, c, err)
		return
	}
	if es, ok := out.(eventStream); ok {
		es.serve(w)
		return
	}
	if out == nil {
		out = struct{}{}
	}
	b, err := encodeAnswer(c, out)
	if err != nil {
		s.fail(w, c, errorf(errInternalFailure, "encode %s answer: %v", op, err))
		return
	}
	w.Header().Set("Content-Type", c.contentType())
	w.Write(b)
}

// readBody reads a request body, bounded by MaxRequestBytes, checks its
// signature and returns it as JSON (a CBOR body is transcoded, codec.go).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, c codec) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errorf(errInvalidArgument, "request body is over %d bytes", s.opts.MaxRequestBytes)
		}
		return nil, errorf(errSerialization, "read request: %v", err)
	}
	if err := s.authenticate(r, body, time.Now()); err != nil {
		return nil, err
	}
	if c == codecCBOR {
		return cborToJSON(body)
	}
	return body, nil
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
	// segmentio's decoder, not encoding/json's: on a PutRecords of 500 x
	// 1 KiB records encoding/json spent ~10 ms (validating the whole body
	// first, then unquoting every base64 string rune by rune), most of the
	// door's CPU; this one is a drop-in with the same types and errors, 17
	// times faster on that body.
	if err := fastjson.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errorf(errSerialization, "field %s: expected %s, got %s", te.Field, te.Type, te.Value)
		}
		return errorf(errSerialization, "request body is not valid JSON: %v", err)
	}
	return nil
}

// fail answers err as an AWS error, in the request's encoding.
func (s *Server) fail(w http.ResponseWriter, c codec, err error) {
	typ, status, msg := mapError(err)
	b, _ := encodeAnswer(c, map[string]string{"__type": typ, "message": msg})
	w.Header().Set("Content-Type", c.contentType())
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	w.Write(b)
}

// newRequestID makes the X-Amzn-RequestId every AWS answer carries (SDKs
// put it in their errors and logs), a random UUID.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// arn returns a stream's ARN.
func (s *Server) arn(name string) string {
	return fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", s.opts.Region, s.opts.Account, name)
}
