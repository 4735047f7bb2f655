package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
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
}

type conn struct {
	s      *Server
	nc     net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	out    chan pending
	client string
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	return &conn{s: s, nc: nc, ctx: ctx, cancel: cancel, out: make(chan pending, s.opts.MaxInflight)}
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
	c.nc.Close()
}

func (c *conn) readLoop() error {
	r := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > c.s.opts.MaxRequestBytes {
			c.s.opts.Metrics.badRequests.Inc()
			return fmt.Errorf("request frame of %d bytes (limit %d)", size, c.s.opts.MaxRequestBytes)
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		c.s.opts.Metrics.bytesIn.Add(float64(size + 4))
		p, err := c.handle(body)
		if err != nil {
			c.s.opts.Metrics.badRequests.Inc()
			if p != nil { // answer (ApiVersions fallback) before closing
				c.out <- *p
			}
			return err
		}
		if p != nil {
			c.out <- *p
		}
	}
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
	for p := range c.out {
		resp := p.resp
		if p.later != nil {
			resp = c.runLater(p)
		}
		if resp == nil || broken {
			continue // acks=0, or the connection already failed
		}
		resp.SetVersion(p.version)
		buf = append(buf[:0], 0, 0, 0, 0)
		buf = binary.BigEndian.AppendUint32(buf, uint32(p.corr))
		if resp.IsFlexible() && p.key != apiVersionsKey {
			buf = append(buf, 0) // response header v1: empty tagged fields
		}
		buf = resp.AppendTo(buf)
		binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
		if _, err := w.Write(buf); err != nil {
			broken = true
			c.nc.Close()
			continue
		}
		if len(c.out) == 0 {
			if err := w.Flush(); err != nil {
				broken = true
				c.nc.Close()
				continue
			}
		}
		c.s.opts.Metrics.bytesOut.Add(float64(len(buf)))
		c.s.opts.Metrics.observe(p.key, p.began)
		if cap(buf) > 8<<20 {
			buf = nil // do not pin a huge fetch buffer for an idle connection
		}
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
