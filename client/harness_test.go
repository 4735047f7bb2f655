package client_test

// A small harness that runs a real `braid serve` built from this checkout.
// It is here rather than in the server's internal/braidtest so that this
// module's go.mod requires only franz-go: users who import the SDK never
// pull the server's dependencies, or a require of an unpublished version.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	buildOnce sync.Once
	braidBin  string
	buildErr  error
)

// binary builds cmd/braid from the repository this module sits in (or
// uses BRAID_BIN) once per test binary.
func binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("BRAID_BIN"); p != "" {
			braidBin = p
			return
		}
		dir, err := os.MkdirTemp("", "braid-client-test-")
		if err != nil {
			buildErr = err
			return
		}
		braidBin = filepath.Join(dir, "braid")
		cmd := exec.Command("go", "build", "-o", braidBin, "./cmd/braid")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatalf("build braid: %v", buildErr)
	}
	return braidBin
}

type server struct {
	tb        testing.TB
	KafkaAddr string
	HTTPAddr  string   // admin API (--http-addr)
	args      []string // braid's arguments, for Restart
	cmd       *exec.Cmd
	done      chan struct{}
	logPath   string
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs braid serve on loopback ports with a fresh data
// directory and waits until /healthz answers; it is killed at test end.
func startServer(tb testing.TB, args ...string) *server {
	tb.Helper()
	dir := tb.TempDir()
	s := &server{tb: tb, KafkaAddr: freeAddr(tb), logPath: filepath.Join(dir, "braid.log")}
	httpAddr := freeAddr(tb)
	s.HTTPAddr = httpAddr
	logs, err := os.Create(s.logPath)
	if err != nil {
		tb.Fatal(err)
	}
	all := append([]string{"serve", "--data-dir", filepath.Join(dir, "data"),
		"--kafka-addr", s.KafkaAddr, "--http-addr", httpAddr, "--kinesis-addr", freeAddr(tb)}, args...)
	s.args = all
	s.cmd = exec.Command(binary(tb), all...)
	s.cmd.Stdout, s.cmd.Stderr = logs, logs
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("start braid: %v", err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); logs.Close(); close(s.done) }()
	tb.Cleanup(func() {
		s.Kill()
		if tb.Failed() {
			b, _ := os.ReadFile(s.logPath)
			tb.Logf("braid log:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && resp.Header.Get("Braid-Pid") == strconv.Itoa(s.cmd.Process.Pid) {
				return s
			}
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.logPath)
			tb.Fatalf("braid exited during start:\n%s", b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("braid not ready after 30s")
		}
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (s *server) Kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// reader returns a plain kgo client for checking what the server holds.
func (s *server) reader(tb testing.TB, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.KafkaAddr)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// createStream creates a stream with shards shards and the given configs.
func (s *server) createStream(tb testing.TB, name string, shards int32, configs map[string]string) {
	tb.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = name, shards, 1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, s.reader(tb))
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		tb.Fatalf("create stream %s: %v", name, err)
	}
}

// readAll reads shard 0..shards-1 of stream from the start until want
// records came back (or 10s passed), and returns them.
func (s *server) readAll(tb testing.TB, stream string, want int) []*kgo.Record {
	tb.Helper()
	cl := s.reader(tb, kgo.ConsumeTopics(stream), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	return got
}

// endOffset returns the high watermark of stream's shard.
func (s *server) endOffset(tb testing.TB, stream string, shard int32) int64 {
	tb.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = stream
	p := kmsg.NewListOffsetsRequestTopicPartition()
	p.Partition, p.Timestamp = shard, -1
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, s.reader(tb))
	if err != nil {
		tb.Fatalf("list offsets: %v", err)
	}
	rp := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
		tb.Fatalf("list offsets: %v", err)
	}
	return rp.Offset
}
