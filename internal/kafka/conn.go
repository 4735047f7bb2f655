package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handlerFunc runs a decoded request in request order. It returns either a
// response, or a completion to run in the writer (which may block, e.g. on
// an fsync or a long poll), or neither (acks=0 produce: no response).
type handlerFunc func(c *conn, req kmsg.Request) (kmsg.Response, func() kmsg.Response)

type handler struct {
	min, max int16
	fn       handlerFunc
}

var handlers = map[int16]handler{}

// register adds the handler for an API key and the versions it answers.
func register(key, min, max int16, fn handlerFunc) {
	if _, dup := handlers[key]; dup {
		panic(fmt.Sprintf("kafka: API key %d registered twice", key))
	}
	handlers[key] = handler{min: min, max: max, fn: fn}
}

type pending struct {
	key     int16
	version int16
	corr    int32
	resp    kmsg.Response
	later   func() kmsg.Response
	began   time.Time
	held    int64 // request bytes taken from the budgets, given back once answered
}

type conn struct {
	s      *Server
	nc     net.Conn
	ip     string
	ctx    context.Context
	cancel context.CancelFunc
	out    chan pending
	client string
	// fetchBufs holds the memory of the fetch answer being written, given
	// back once it is (completions run one at a time, on the writer
	// goroutine).
	fetchBufs *fetchBufs
	// lastFetch is the record bytes of this connection's last fetch
	// answer (fetchOnce; on the writer goroutine too).
	lastFetch int
	// window is the log windows of a consumer of many partitions
	// catching up (fetchwindow.go; on the writer goroutine too).
	window fetchWindow

	// held bounds the request bytes this connection holds unanswered.
	held *budget
	// delivered is the largest request body this connection has sent
	// whole (readBody; on the reader goroutine).
	delivered int
	// inflight counts requests read and not yet answered; lastActive is
	// when a request last arrived or a response last went out (unix ns).
	// Together they tell an idle connection from a busy one.
	inflight   atomic.Int64
	lastActive atomic.Int64
}

func newConn(s *Server, nc net.Conn, ip string) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{s: s, nc: nc, ip: ip, ctx: ctx, cancel: cancel, out: make(chan pending, s.opts.MaxInflight),
		held: newBudget(int64(s.opts.MaxRequestBytes)), window: fetchWindow{cur: -1}}
	c.lastActive.Store(time.Now().UnixNano())
	return c
}

func (c *conn) serve() {
	m := c.s.opts.Metrics
	m.connections.Inc()
	defer m.connections.Dec()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	err := c.readLoop()
	c.cancel() // end long polls and waits: nobody will read their answers
	close(c.out)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && c.s.ctx.Err() == nil {
		c.s.opts.Logger.Info("kafka: closing connection", "remote", c.nc.RemoteAddr().String(), "client", c.client, "reason", err.Error())
	}
	<-writerDone
	c.window.release()
	c.nc.Close()
}

// firstChunk is the most a request buffer starts with: it grows (doubling)
// only as bytes arrive, so a size prefix alone never allocates much.
const firstChunk = 64 << 10

func (c *conn) readLoop() error {
	r := bufio.NewReaderSize(c.nc, 16<<10)
	var sizeBuf [4]byte
	for {
		if err := c.awaitRequest(r); err != nil {
			return err
		}
		// From its first byte, the whole request must arrive within the
		// request timeout: a client that stalls or trickles is dropped.
		deadline := time.Now().Add(c.s.opts.RequestTimeout)
		c.nc.SetReadDeadline(deadline)
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return c.readErr(err)
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > c.s.opts.MaxRequestBytes {
			c.s.opts.Metrics.badRequests.Inc()
			return fmt.Errorf("request frame of %d bytes (limit %d)", size, c.s.opts.MaxRequestBytes)
		}
		body, held, err := c.readBody(r, int(size), deadline)
		if err != nil {
			return err
		}
		c.lastActive.Store(time.Now().UnixNano())
		c.s.opts.Metrics.bytesIn.Add(float64(size + 4))
		p, err := c.handle(body)
		if reusableBody(int16(binary.BigEndian.Uint16(body))) {
			putBody(body)
		}
		if p == nil {
			c.giveBack(held)
		} else {
			p.held = held
			c.inflight.Add(1)
			c.out <- *p // answer (ApiVersions fallback) even before closing
		}
		if err != nil {
			c.s.opts.Metrics.badRequests.Inc()
			return err
		}
	}
}

// awaitRequest waits for the first byte of the next request. A connection
// with nothing in flight that stays silent for ConnectionsMaxIdle is closed.
func (c *conn) awaitRequest(r *bufio.Reader) error {
	idle := c.s.opts.ConnectionsMaxIdle
	for r.Buffered() == 0 {
		c.nc.SetReadDeadline(time.Unix(0, c.lastActive.Load()).Add(idle))
		_, err := r.Peek(1)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if c.inflight.Load() > 0 {
			c.lastActive.Store(time.Now().UnixNano()) // waiting on us is not idle
			continue
		}
		if time.Since(time.Unix(0, c.lastActive.Load())) < idle {
			continue // a response went out meanwhile
		}
		c.s.opts.Metrics.closedIdle.Inc()
		return fmt.Errorf("idle for %s (connections max idle)", idle)
	}
	return nil
}

// readBody reads a request body of size bytes, growing its buffer only as
// bytes arrive (×4 per step) and taking each growth from the connection's
// and the server's request budgets first. It returns the bytes taken.
// Bodies of 64 KiB or more live in pooled buffers (bodypool.go).
//
// A body no larger than one this connection has already sent whole is
// taken in one step: a producer sending 16 MiB requests would otherwise
// copy each one's first 5 MiB again while it grows. What a connection can
// hold without sending stays in proportion to what it sent: 4× the bytes
// of the request under way, or one request's size as large as one it
// delivered before, once, since a stall closes the connection.
func (c *conn) readBody(r *bufio.Reader, size int, deadline time.Time) ([]byte, int64, error) {
	var body []byte
	var held int64 // bytes taken: how far body may be filled
	for len(body) < size {
		if len(body) == int(held) {
			want := min(size, max(bodyGrowth*int(held), firstChunk))
			if held == 0 && size <= c.delivered {
				want = size // as large as one it sent whole before: at once
			}
			grow := int64(want) - held
			began := time.Now()
			if err := c.take(grow); err != nil {
				putBody(body)
				c.giveBack(held)
				return nil, 0, err
			}
			if waited := time.Since(began); waited > time.Millisecond {
				// Time spent waiting for memory is ours, not the client's.
				deadline = deadline.Add(waited)
				c.nc.SetReadDeadline(deadline)
			}
			held += grow
			if cap(body) < want {
				var nb []byte
				if size < firstChunk {
					nb = make([]byte, 0, size) // small: not worth a pooled 64 KiB
				} else {
					nb = getBody(want)
				}
				nb = append(nb, body...)
				putBody(body)
				body = nb
			}
		}
		n, err := r.Read(body[len(body):held])
		body = body[:len(body)+n]
		if err != nil && len(body) < size {
			putBody(body)
			c.giveBack(held)
			return nil, 0, c.readErr(err)
		}
	}
	c.delivered = max(c.delivered, size)
	return body, held, nil
}

func (c *conn) readErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.s.opts.Metrics.closedSlow.Inc()
		return fmt.Errorf("request not received within %s (request timeout)", c.s.opts.RequestTimeout)
	}
	return err
}

// take reserves n request bytes, first from the connection's share, then
// from the server-wide budget (Kafka's queued.max.request.bytes).
func (c *conn) take(n int64) error {
	wait := c.s.opts.RequestTimeout
	if err := c.held.acquire(c.ctx, n, wait); err != nil {
		return fmt.Errorf("request bytes of this connection: %w", err)
	}
	if err := c.s.queued.acquire(c.ctx, n, wait); err != nil {
		c.held.release(n)
		return fmt.Errorf("queued request bytes of the server: %w", err)
	}
	c.s.opts.Metrics.requestBytes.Add(float64(n))
	return nil
}

func (c *conn) giveBack(n int64) {
	if n == 0 {
		return
	}
	c.held.release(n)
	c.s.queued.release(n)
	c.s.opts.Metrics.requestBytes.Sub(float64(n))
}

// handle parses the request header and runs the handler.
func (c *conn) handle(body []byte) (p *pending, err error) {
	hr := &headerReader{b: body}
	key, version, corr := hr.int16(), hr.int16(), hr.int32()
	clientID := hr.nullableString()
	if hr.err != nil {
		return nil, fmt.Errorf("malformed request header: %w", hr.err)
	}
	c.client = clientID
	began := time.Now()
	h, ok := handlers[key]
	if !ok {
		return nil, fmt.Errorf("unsupported API key %d", key)
	}
	if version < h.min || version > h.max {
		if key == apiVersionsKey {
			// KIP-511: answer in v0 with the versions we do support, so the
			// client can retry with one of them.
			resp := apiVersionsResponse(kerr.UnsupportedVersion.Code)
			return &pending{key: key, version: 0, corr: corr, resp: resp, began: began}, nil
		}
		return nil, fmt.Errorf("unsupported version %d of API key %d (%s)", version, key, kmsg.NameForKey(key))
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(hr)
		if hr.err != nil {
			return nil, fmt.Errorf("malformed request header tags: %w", hr.err)
		}
	}
	if err := req.ReadFrom(hr.b); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(key), version, err)
	}
	defer func() {
		if v := recover(); v != nil {
			c.recovered("handler", key, version, v)
			p, err = nil, fmt.Errorf("internal error handling %s", kmsg.NameForKey(key))
		}
	}()
	resp, later := h.fn(c, req)
	if resp == nil && later == nil {
		c.s.opts.Metrics.observe(key, began)
		return nil, nil
	}
	return &pending{key: key, version: version, corr: corr, resp: resp, later: later, began: began}, nil
}

func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	var buf []byte
	broken := false
	fail := func() {
		broken = true
		c.nc.Close()
	}
	for p := range c.out {
		resp := p.resp
		if p.later != nil {
			// A completion may wait (an fsync, a long poll): answers
			// already finished must not wait in the buffer behind it.
			if w.Buffered() > 0 && !broken {
				c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.RequestTimeout))
				if err := w.Flush(); err != nil {
					fail()
				}
			}
			resp = c.runLater(p)
		}
		if resp != nil && !broken { // nil: acks=0, or the completion failed
			resp.SetVersion(p.version)
			buf = append(buf[:0], 0, 0, 0, 0)
			buf = binary.BigEndian.AppendUint32(buf, uint32(p.corr))
			if resp.IsFlexible() && p.key != apiVersionsKey {
				buf = append(buf, 0) // response header v1: empty tagged fields
			}
			// A client that does not take its answers within the request
			// timeout is dropped, so it cannot pin their memory.
			c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.RequestTimeout))
			var sent int
			if bufs, ok := spliceLarge(buf, resp); ok {
				// Record bytes go out from where they lie: written after
				// what is buffered, in one writev.
				sent = int(binary.BigEndian.Uint32(bufs[0])) + 4
				buf = bufs[0][:0] // the header buffer, kept for the next answer
				if err := w.Flush(); err != nil {
					fail()
				} else if _, err := bufs.WriteTo(c.nc); err != nil {
					fail()
				}
			} else {
				buf = resp.AppendTo(buf)
				binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
				sent = len(buf)
				if _, err := w.Write(buf); err != nil {
					fail()
				} else if len(c.out) == 0 {
					if err := w.Flush(); err != nil {
						fail()
					}
				}
			}
			if !broken {
				c.s.opts.Metrics.bytesOut.Add(float64(sent))
				c.s.opts.Metrics.observe(p.key, p.began)
				c.lastActive.Store(time.Now().UnixNano())
			}
			if cap(buf) > 8<<20 {
				buf = nil // do not pin a huge fetch buffer for an idle connection
			}
		}
		if c.fetchBufs != nil {
			c.fetchBufs.release() // the answer is out: nothing points into them
			c.fetchBufs = nil
		}
		c.giveBack(p.held)
		c.inflight.Add(-1)
	}
}

func (c *conn) runLater(p pending) (resp kmsg.Response) {
	defer func() {
		if v := recover(); v != nil {
			c.recovered("completion", p.key, p.version, v)
			resp = nil
			c.nc.Close()
		}
	}()
	return p.later()
}

// headerReader reads the request header fields; it implements
// kmsg.TagReader so kmsg can skip the header's tagged fields.
type headerReader struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *headerReader) span(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *headerReader) int16() int16 {
	if b := r.span(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *headerReader) int32() int32 {
	if b := r.span(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *headerReader) nullableString() string {
	n := r.int16()
	if n < 0 {
		return ""
	}
	return string(r.span(int(n)))
}

// Uvarint implements kmsg.TagReader.
func (r *headerReader) Uvarint() uint32 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<31 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return uint32(v)
}

// Span implements kmsg.TagReader.
func (r *headerReader) Span(n int) []byte { return r.span(n) }

// Ok lets kmsg.SkipTags stop early on a truncated header.
func (r *headerReader) Ok() bool { return r.err == nil }
