package httpsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/braidstream/braid/internal/connect"
)

// Type is the http-sink connector type.
var Type = connect.Type{
	Name:        "http-sink",
	ExactlyOnce: false,
	Doc:         "POSTs batches of records (JSON array or JSON lines) to a URL, with an Idempotency-Key per batch",
	NewSink: func(env connect.Env, raw json.RawMessage) (connect.Sink, error) {
		return New(env, raw)
	},
}

// Retry policy for transient answers within one Put or Flush. The runtime
// adds its own, longer backoff when Put gives up.
const (
	maxAttempts     = 5
	firstBackoff    = 200 * time.Millisecond
	maxBackoff      = 5 * time.Second
	maxRetryAfter   = time.Minute
	errorBodyMax    = 512
	refusedFileName = "refused.json"
)

// ErrBroken is returned by Put and Flush after the sink returned a plain
// error for a record refused in an earlier Put: it must be opened again.
var ErrBroken = errors.New("http-sink: must be reopened after an earlier refusal")

// ErrNotOpen is returned by Put and Flush before Open or after Close.
var ErrNotOpen = errors.New("http-sink: not open")

// Sink is an http-sink. See the package doc.
type Sink struct {
	cfg    config
	name   string
	log    *slog.Logger
	client *http.Client
	// refusedPath keeps refused across restarts; "" keeps it in memory.
	refusedPath string

	putSeq  int64
	batches map[connect.ShardKey]*batch
	durable map[connect.ShardKey]int64
	// skipped holds, per shard, the offset after a record Put refused
	// with a *BadRecordError: the next call means the runtime applied its
	// error policy to it, so Durable may move past it.
	skipped map[connect.ShardKey]int64
	// refused holds, per shard, the offset of a record the target refused
	// that could not be reported from the Put that was given it.
	refused map[connect.ShardKey]int64
	broken  error
	enc     bytes.Buffer // scratch for one record
	// firstBackoff is the wait before the first retry (tests shorten it).
	firstBackoff time.Duration
}

// batch is one shard's records waiting to be sent.
type batch struct {
	recs []pending
	// data holds the encoded records, each followed by its separator
	// (',' or '\n'), so the records of any run of recs are one slice.
	data  []byte
	first time.Time
}

// pending is one encoded record, data[start:end] of its batch, and where
// the runtime gave it.
type pending struct {
	offset     int64
	start, end int
	put        int64 // the Put call (s.putSeq) that gave it
	index      int   // its index in that Put's slice
}

// size is the bytes of b's records and separators.
func (b *batch) size() int {
	if len(b.recs) == 0 {
		return 0
	}
	return b.recs[len(b.recs)-1].end - b.recs[0].start
}

// trim drops the data of records no longer in recs.
func (b *batch) trim() {
	if len(b.recs) == 0 {
		b.recs, b.data = b.recs[:0], b.data[:0]
		return
	}
	b.data = b.data[:b.recs[len(b.recs)-1].end]
}

// New builds an http-sink from its config; it does not contact the URL.
func New(env connect.Env, raw json.RawMessage) (*Sink, error) {
	cfg, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{
		cfg:     cfg,
		name:    env.Name,
		log:     log,
		client:  &http.Client{Timeout: time.Duration(cfg.Timeout)},
		refused: map[connect.ShardKey]int64{},

		firstBackoff: firstBackoff,
	}
	if env.DataDir != "" {
		s.refusedPath = filepath.Join(env.DataDir, refusedFileName)
	}
	return s, nil
}

// Open implements connect.Sink. The sink keeps no progress of its own.
func (s *Sink) Open(ctx context.Context, shards []connect.ShardKey) (map[connect.ShardKey]int64, error) {
	s.batches = map[connect.ShardKey]*batch{}
	s.durable = map[connect.ShardKey]int64{}
	s.skipped = map[connect.ShardKey]int64{}
	s.broken = nil
	if err := s.loadRefused(); err != nil {
		return nil, err
	}
	return nil, nil
}

// Put implements connect.Sink.
func (s *Sink) Put(ctx context.Context, recs []connect.Record) error {
	if s.broken != nil {
		return s.broken
	}
	if s.batches == nil {
		return ErrNotOpen
	}
	s.passSkipped()
	s.putSeq++
	for i := range recs {
		r := &recs[i]
		k := connect.ShardKey{Stream: r.Stream, Shard: r.Shard}
		if off, ok := s.refused[k]; ok && r.Offset >= off {
			s.forgetRefused(k)
			if r.Offset == off {
				s.skip(k, off)
				return &connect.BadRecordError{Index: i, Err: fmt.Errorf("http-sink: %s offset %d was refused by %s before the restart", k, off, s.cfg.URL)}
			}
		}
		b := s.batches[k]
		if b == nil {
			b = &batch{}
			s.batches[k] = b
		}
		s.enc.Reset()
		appendRecord(&s.enc, r)
		enc := s.enc.Bytes()
		if len(b.recs) > 0 && s.bodyLen(b.size()+len(enc)+1) > s.cfg.BatchMaxBytes {
			if err := s.send(ctx, k); err != nil {
				return err
			}
		}
		if len(b.recs) == 0 {
			b.first = time.Now()
		}
		start := len(b.data)
		b.data = append(append(b.data, enc...), s.separator())
		b.recs = append(b.recs, pending{offset: r.Offset, start: start, end: len(b.data), put: s.putSeq, index: i})
		if len(b.recs) >= s.cfg.BatchMaxRecords || s.bodyLen(b.size()) >= s.cfg.BatchMaxBytes {
			if err := s.send(ctx, k); err != nil {
				return err
			}
		}
	}
	for k, b := range s.batches {
		if len(b.recs) > 0 && time.Since(b.first) >= time.Duration(s.cfg.BatchMaxWait) {
			if err := s.send(ctx, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// Flush implements connect.Sink.
func (s *Sink) Flush(ctx context.Context) error {
	if s.broken != nil {
		return s.broken
	}
	if s.batches == nil {
		return ErrNotOpen
	}
	s.passSkipped()
	for k, b := range s.batches {
		if len(b.recs) > 0 {
			if err := s.send(ctx, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// Durable implements connect.Sink.
func (s *Sink) Durable() map[connect.ShardKey]int64 {
	return maps.Clone(s.durable)
}

// Close implements connect.Sink.
func (s *Sink) Close() error {
	s.batches = nil
	s.client.CloseIdleConnections()
	return nil
}

// refusal is a record the target refused for good.
type refusal struct {
	rec pending
	err error
}

func (e *refusal) Error() string { return e.err.Error() }

// send delivers shard k's batch, whole or, when refused, up to the
// refused record.
func (s *Sink) send(ctx context.Context, k connect.ShardKey) error {
	b := s.batches[k]
	n, err := s.deliver(ctx, k, b.data, b.recs)
	if n > 0 {
		s.durable[k] = b.recs[n-1].offset + 1
	}
	b.recs = b.recs[n:]
	b.trim()
	var ref *refusal
	if !errors.As(err, &ref) {
		return err
	}
	if ref.rec.put == s.putSeq {
		// The runtime applies the error policy to the refused record and
		// hands the ones after it to Put again: forget those of this Put
		// already buffered, and the refused one.
		for _, ob := range s.batches {
			ob.recs = dropFromPut(ob.recs, s.putSeq, ref.rec.index)
			ob.trim()
		}
		s.skip(k, ref.rec.offset)
		return &connect.BadRecordError{Index: ref.rec.index, Err: ref.err}
	}
	s.refused[k] = ref.rec.offset
	if perr := s.saveRefused(); perr != nil {
		s.log.Warn("http-sink: keeping a refused offset", "connector", s.name, "err", perr)
	}
	s.broken = fmt.Errorf("%w: %s offset %d (given in an earlier Put) was refused: %v", ErrBroken, k, ref.rec.offset, ref.err)
	s.log.Warn("http-sink: record refused; restarting to hand it to the error policy",
		"connector", s.name, "shard", k.String(), "offset", ref.rec.offset, "err", ref.err)
	return fmt.Errorf("http-sink: %s offset %d (given in an earlier Put) was refused, restart to apply the error policy: %w", k, ref.rec.offset, ref.err)
}

// skip notes that the record at offset off of shard k was refused with a
// *BadRecordError. Durable passes it on the next call only if nothing of
// k before it waits in the buffer (then it is the next record of k).
func (s *Sink) skip(k connect.ShardKey, off int64) {
	if b := s.batches[k]; b != nil && len(b.recs) > 0 && b.recs[0].offset < off {
		return
	}
	s.skipped[k] = off + 1
}

// passSkipped moves Durable past the records refused in the last call,
// now that the runtime has applied its error policy to them.
func (s *Sink) passSkipped() {
	for k, next := range s.skipped {
		if d, ok := s.durable[k]; !ok || d < next {
			s.durable[k] = next
		}
		delete(s.skipped, k)
	}
}

// dropFromPut removes the records of Put put from index on: a suffix of
// recs, as that Put's records come last.
func dropFromPut(recs []pending, put int64, index int) []pending {
	out := recs[:0]
	for _, p := range recs {
		if p.put != put || p.index < index {
			out = append(out, p)
		}
	}
	return out
}

// deliver POSTs recs and returns how many leading records are delivered.
// A refused batch is bisected; the error is then a *refusal naming the
// refused record, recs[n].
func (s *Sink) deliver(ctx context.Context, k connect.ShardKey, data []byte, recs []pending) (int, error) {
	refusedErr, err := s.post(ctx, k, data, recs)
	if err != nil {
		return 0, err
	}
	if refusedErr == nil {
		return len(recs), nil
	}
	if len(recs) == 1 {
		return 0, &refusal{rec: recs[0], err: refusedErr}
	}
	mid := len(recs) / 2
	n, err := s.deliver(ctx, k, data, recs[:mid])
	if err != nil {
		return n, err
	}
	n2, err := s.deliver(ctx, k, data, recs[mid:])
	return mid + n2, err
}

// post sends one POST of recs, retrying transient failures. It returns
// the receiver's refusal (a 4xx that refuses the batch) or a plain error
// when the target failed.
func (s *Sink) post(ctx context.Context, k connect.ShardKey, data []byte, recs []pending) (refused, err error) {
	body := s.body(data[recs[0].start:recs[len(recs)-1].end])
	idemKey := fmt.Sprintf("%s/%s/%d/%d", s.name, k.Stream, k.Shard, recs[0].offset)
	contentType := "application/json"
	if s.cfg.Format == formatJSONL {
		contentType = "application/x-ndjson"
	}
	backoff := s.firstBackoff
	var last error
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("http-sink: %w", err)
		}
		for name, v := range s.cfg.Headers {
			req.Header.Set(name, v)
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Idempotency-Key", idemKey)
		wait := backoff
		resp, err := s.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("http-sink: POST %s: %w", s.cfg.URL, ctx.Err())
			}
			last = fmt.Errorf("POST %s: %w", s.cfg.URL, err)
		} else {
			msg := readErrorBody(resp)
			status := resp.StatusCode
			switch {
			case status >= 200 && status < 300:
				return nil, nil
			case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
				last = fmt.Errorf("POST %s: %s%s", s.cfg.URL, resp.Status, msg)
				if ra, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
					wait = ra
				}
			case status < 400 || status == http.StatusUnauthorized || status == http.StatusForbidden ||
				status == http.StatusNotFound || status == http.StatusMethodNotAllowed ||
				status == http.StatusProxyAuthRequired:
				// The URL or the credentials are wrong, not a record.
				return nil, fmt.Errorf("http-sink: POST %s: %s%s", s.cfg.URL, resp.Status, msg)
			default:
				return fmt.Errorf("POST %s: %s%s", s.cfg.URL, resp.Status, msg), nil
			}
		}
		if attempt == maxAttempts {
			return nil, fmt.Errorf("http-sink: gave up after %d attempts: %w", attempt, last)
		}
		s.log.Debug("http-sink: retrying", "connector", s.name, "shard", k.String(), "attempt", attempt, "wait", wait, "err", last)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("http-sink: %w (last: %v)", ctx.Err(), last)
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// bodyLen is the body size of a batch whose records and separators take
// recBytes: a JSON array adds its brackets and has one comma fewer.
func (s *Sink) bodyLen(recBytes int) int {
	if s.cfg.Format == formatJSONArray {
		return recBytes + 1
	}
	return recBytes
}

func (s *Sink) separator() byte {
	if s.cfg.Format == formatJSONArray {
		return ','
	}
	return '\n'
}

// body is a POST's body for records (each followed by its separator). It
// is a copy: the transport may still read a body after Do returns, while
// the batch's data is reused.
func (s *Sink) body(records []byte) []byte {
	if s.cfg.Format == formatJSONL {
		return append([]byte(nil), records...)
	}
	body := make([]byte, 0, len(records)+1)
	body = append(body, '[')
	body = append(body, records[:len(records)-1]...)
	return append(body, ']')
}

// readErrorBody reads the start of a non-2xx answer for the error
// message, and drains the rest so the connection can be reused.
func readErrorBody(resp *http.Response) string {
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) //nolint:errcheck
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyMax))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) //nolint:errcheck
	msg := strings.TrimSpace(string(b))
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return 0, false
	}
	return max(0, min(d, maxRetryAfter)), true
}

// refusedFile is the form of refusedPath.
type refusedFile struct {
	Refused []refusedEntry `json:"refused"`
}

type refusedEntry struct {
	Stream string `json:"stream"`
	Shard  int32  `json:"shard"`
	Offset int64  `json:"offset"`
}

func (s *Sink) loadRefused() error {
	if s.refusedPath == "" {
		return nil
	}
	b, err := os.ReadFile(s.refusedPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("http-sink: %w", err)
	}
	var f refusedFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("http-sink: %s: %w", s.refusedPath, err)
	}
	for _, e := range f.Refused {
		s.refused[connect.ShardKey{Stream: e.Stream, Shard: e.Shard}] = e.Offset
	}
	return nil
}

func (s *Sink) forgetRefused(k connect.ShardKey) {
	delete(s.refused, k)
	if err := s.saveRefused(); err != nil {
		s.log.Warn("http-sink: forgetting a refused offset", "connector", s.name, "err", err)
	}
}

// saveRefused writes refused atomically (temp file, fsync, rename).
func (s *Sink) saveRefused() error {
	if s.refusedPath == "" {
		return nil
	}
	var f refusedFile
	for k, off := range s.refused {
		f.Refused = append(f.Refused, refusedEntry{Stream: k.Stream, Shard: k.Shard, Offset: off})
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp := s.refusedPath + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := fh.Write(b); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, s.refusedPath)
}
