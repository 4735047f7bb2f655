package client_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/braidstream/braid/client"
)

// faultProxy forwards TCP connections to a node; while faulty, it delays
// chunks of bytes at random and drops connections at random.
type faultProxy struct {
	ln       net.Listener
	upstream atomic.Pointer[string]
	faulty   atomic.Bool
	stalled  atomic.Bool // hold every byte until unstalled
	dropped  atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

func newFaultProxy(t *testing.T) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, conns: map[net.Conn]bool{}}
	done := make(chan struct{})
	go p.serve(done)
	t.Cleanup(func() {
		ln.Close()
		<-done
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

// dropAll closes every proxied connection, mid-request or mid-response.
func (p *faultProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		p.dropped.Add(1)
	}
}

func (p *faultProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *faultProxy) serve(done chan struct{}) {
	defer close(done)
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", *p.upstream.Load())
		if err != nil {
			c.Close()
			continue
		}
		p.track(c, true)
		p.track(up, true)
		closeBoth := func() {
			c.Close()
			up.Close()
			p.track(c, false)
			p.track(up, false)
		}
		go p.pipe(c, up, closeBoth)
		go p.pipe(up, c, closeBoth)
	}
}

func (p *faultProxy) pipe(dst, src net.Conn, closeBoth func()) {
	defer closeBoth()
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		for p.stalled.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 && p.faulty.Load() {
			if rand.IntN(100) < 30 {
				time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
			}
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}

// Through a proxy that drops connections and delays bytes at random for a
// few seconds, sync and async keyed records: every record's outcome is
// reported exactly once, every acknowledged record reads back exactly
// once, and no record is written twice (idempotence), failed ones
// included.
func TestProduceThroughFaultProxy(t *testing.T) {
	px := newFaultProxy(t)
	n := startNode(t, "--advertised-kafka-addr", px.Addr())
	up := n.KafkaAddr
	px.upstream.Store(&up)
	n.createStream(t, "fp", 3, map[string]string{"braid.routing": "key"})
	p, err := client.NewProducer([]string{px.Addr()}, client.WithAdminAddr(n.HTTPAddr),
		client.WithDeliveryTimeout(8*time.Second), client.WithLinger(2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctxFor(t, 10*time.Second))

	const syncN, asyncN = 300, 4000
	var mu sync.Mutex
	outcomes := map[string]int{} // id -> times reported
	acked := map[string]bool{}
	var failures []error
	report := func(id string, err error) {
		mu.Lock()
		defer mu.Unlock()
		outcomes[id]++
		if err == nil {
			acked[id] = true
		} else {
			failures = append(failures, err)
		}
	}
	// Faults for 3s: delays, and every connection dropped every
	// 100-400ms.
	px.faulty.Store(true)
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		end := time.Now().Add(3 * time.Second)
		for time.Now().Before(end) {
			time.Sleep(time.Duration(100+rand.IntN(300)) * time.Millisecond)
			px.dropAll()
		}
		px.faulty.Store(false)
	}()
	defer func() { <-faultsDone }()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := ctxFor(t, 60*time.Second)
		for i := range syncN {
			id := fmt.Sprintf("s%d", i)
			_, err := p.Produce(ctx, &client.Record{Stream: "fp", Key: fmt.Appendf(nil, "k%d", i%17), Value: []byte(id)})
			report(id, err)
		}
	}()
	for i := range asyncN {
		id := fmt.Sprintf("a%d", i)
		p.ProduceAsync(&client.Record{Stream: "fp", Key: fmt.Appendf(nil, "k%d", i%17), Value: []byte(id)},
			func(_ client.Result, err error) { report(id, err) })
		if i%100 == 0 {
			time.Sleep(50 * time.Millisecond) // spread over the faulty window
		}
	}
	wg.Wait()
	<-faultsDone
	if err := p.Flush(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	px.faulty.Store(false)

	// A stall longer than a second producer's delivery timeout: its
	// records fail, and each failure is reported.
	p2, err := client.NewProducer([]string{px.Addr()}, client.WithDeliveryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(ctxFor(t, 10*time.Second))
	if _, err := p2.Produce(ctxFor(t, 10*time.Second), &client.Record{Stream: "fp", Value: []byte("warm")}); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	px.stalled.Store(true)
	const stallN = 200
	for i := range stallN {
		id := fmt.Sprintf("t%d", i)
		p2.ProduceAsync(&client.Record{Stream: "fp", Key: fmt.Appendf(nil, "k%d", i%17), Value: []byte(id)},
			func(_ client.Result, err error) { report(id, err) })
	}
	time.Sleep(2500 * time.Millisecond)
	px.dropAll() // the requests held are lost: kgo retries, past the timeout
	px.stalled.Store(false)
	if err := p2.Flush(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(failures) == 0 {
		t.Fatal("no record failed through a stall longer than the delivery timeout")
	}
	t.Logf("%d connections dropped; %d acknowledged, %d failed", px.dropped.Load(), len(acked), len(failures))
	if len(failures) > 0 {
		t.Logf("first failure: %v", failures[0])
	}
	if px.dropped.Load() == 0 {
		t.Fatal("the proxy dropped no connection: the test tested nothing")
	}
	if len(outcomes) != syncN+asyncN+stallN {
		t.Fatalf("%d records had an outcome reported, want %d", len(outcomes), syncN+asyncN+stallN)
	}
	for id, c := range outcomes {
		if c != 1 {
			t.Fatalf("record %s: outcome reported %d times", id, c)
		}
	}
	for _, err := range failures {
		var pe *client.ProduceError
		if !errors.As(err, &pe) || !errors.Is(err, client.ErrDeliveryTimeout) {
			t.Errorf("failure not typed as a delivery timeout: %v", err)
			break
		}
	}

	var total int64
	for sh := range int32(3) {
		total += n.endOffset(t, "fp", sh)
	}
	recs := n.readAll(t, "fp", int(total))
	if int64(len(recs)) < total {
		t.Fatalf("read %d records, the shards hold %d", len(recs), total)
	}
	seen := map[string]int{}
	for _, r := range recs {
		seen[string(r.Value)]++
	}
	for id, c := range seen {
		if c > 1 {
			t.Errorf("record %s written %d times", id, c)
		}
	}
	for id := range acked {
		if seen[id] != 1 {
			t.Errorf("acknowledged record %s read %d times", id, seen[id])
		}
	}
}
