package kafka

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestBodyClass(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{0, 0}, {firstChunk, 0}, {firstChunk + 1, 1}, {4 * firstChunk, 1},
		{4*firstChunk + 1, 2}, {maxBodyClass, bodyClasses - 1}, {maxBodyClass + 1, -1},
	} {
		if got := bodyClass(tc.n); got != tc.class {
			t.Errorf("bodyClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
	}
	b := getBody(3 * firstChunk)
	if cap(b) != 4*firstChunk || len(b) != 0 {
		t.Fatalf("getBody(3×64 KiB): len %d cap %d, want 0 and 256 KiB", len(b), cap(b))
	}
	if b := getBody(maxBodyClass + 1); cap(b) != maxBodyClass+1 {
		t.Fatalf("past the largest class: cap %d, want exactly the size", cap(b))
	}
}

// TestKeptBodies: large buffers given back are kept, up to the class's
// bound, and handed out again before any other; small classes are not.
func TestKeptBodies(t *testing.T) {
	const c = 4
	size := firstChunk << (2 * c)
	limit := keptBytes[c] / size
	if limit < 2 || keptBytes[0] != 0 {
		t.Fatalf("kept: %d buffers of class %d, %d bytes of class 0", limit, c, keptBytes[0])
	}
	var held [][]byte
	for range limit + 1 {
		held = append(held, getBody(size))
	}
	mine := map[*byte]bool{}
	for _, b := range held {
		mine[&b[:1][0]] = true
		putBody(b)
	}
	kept.Lock()
	n, bytes := len(kept.bufs[c]), kept.bytes[c]
	kept.Unlock()
	if n != limit || bytes != limit*size {
		t.Fatalf("%d buffers of %d bytes kept after %d given back, want %d", n, bytes, limit+1, limit)
	}
	for range limit {
		if b := getBody(size); !mine[&b[:1][0]] || cap(b) != size || len(b) != 0 {
			t.Fatalf("a buffer not among those given back (cap %d, len %d)", cap(b), len(b))
		}
	}
	putBody(getBody(firstChunk))
	kept.Lock()
	small := len(kept.bufs[0])
	kept.Unlock()
	if small != 0 {
		t.Fatalf("%d buffers of the smallest class kept", small)
	}
}

// TestReusedProduceBodiesKeepRecords sends produce requests large enough to
// be read into pooled buffers, one after the other on one connection, so
// each reuses the buffer of the one before; then reads every record back.
// A record kept by reference into its request (the cache not copying,
// say) would show the next request's bytes.
func TestReusedProduceBodiesKeepRecords(t *testing.T) {
	s := newTestServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.opts.AdvertisedPort = int32(ln.Addr().(*net.TCPAddr).Port)
	go s.Serve(ln)
	t.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()), kgo.DefaultProduceTopic("reuse"),
		kgo.ProducerLinger(20*time.Millisecond), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("reuse"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	const requests, perRequest = 6, 200 // 200 KiB a request: a pooled class
	var want [][]byte
	for range requests {
		recs := make([]*kgo.Record, perRequest)
		for i := range recs {
			v := make([]byte, 1024)
			for j := range v {
				v[j] = byte(rand.Uint32())
			}
			want = append(want, v)
			recs[i] = &kgo.Record{Value: v}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	var got [][]byte
	for len(got) < len(want) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch after %d records: %v", len(got), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r.Value) })
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d of %d came back changed: a request buffer was reused while a record still pointed into it", i, len(want))
		}
	}
}
