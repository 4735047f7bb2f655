package kafka

import (
	"hash/crc32"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

func crcOf(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// openEngine opens an engine with opts, closed when the test ends (after
// the server and client serve starts: cleanups run last first).
func openEngine(t testing.TB, opts engine.Options) *engine.Engine {
	t.Helper()
	eng, err := engine.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// createStream creates stream name with its partitions on eng.
func createStream(t testing.TB, eng *engine.Engine, name string, partitions int) *catalog.Stream {
	t.Helper()
	st, err := eng.CreateStream(name, partitions, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// serve starts a Kafka server on eng at a loopback port and returns it with
// a franz-go client of it; both stop when the test ends.
func serve(t *testing.T, eng *engine.Engine) (*Server, *kgo.Client) {
	t.Helper()
	s := NewServer(eng, Options{}) // its own, unregistered metrics
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return s, cl
}
