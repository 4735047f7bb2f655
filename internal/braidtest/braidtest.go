// Package braidtest starts real Braid nodes for tests: a `braid serve`
// process (built once per test binary) on free loopback ports with its own
// data directory, which tests can stop gracefully, SIGKILL and restart.
//
// Set BRAID_BIN to test a prebuilt binary instead of building one (for
// example one built with -race: a race it reports fails the test). A panic
// the server recovered from (kafka.PanicLogMessage in its log) fails the
// test too.
package braidtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/bench"
	"github.com/braidstream/braid/internal/kafka"
)

var (
	buildOnce sync.Once
	binPath   string
	binDir    string // what Main removes; empty with BRAID_BIN
	buildErr  error
)

// Main runs a test binary's tests (call it from TestMain) and removes the
// braid binary Binary built for them, which would otherwise stay in the
// temporary directory after every run.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// Binary returns the path of a braid binary built from this checkout.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("BRAID_BIN"); p != "" {
			binPath = p
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "braidtest-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir, binPath = dir, filepath.Join(dir, "braid")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/braid")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build braid: %v", buildErr)
	}
	return binPath
}

// Proc is a running (or stopped) braid serve process.
type Proc struct {
	t         testing.TB
	Dir       string
	KafkaAddr string
	HTTPAddr  string
	// KinesisAddr is the Kinesis API listener (http://KinesisAddr).
	KinesisAddr string
	Args        []string // extra serve flags
	DataDir     string   // --data-dir; Dir/data unless StartData set it

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan error
	logs *os.File
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// pickAddr is how StartData chooses its ports; a test replaces it to hand
// out a taken one.
var pickAddr = FreeAddr

// Start runs braid serve with a fresh data directory and extra flags, and
// waits until it is ready. It is killed when the test ends.
func Start(t testing.TB, args ...string) *Proc {
	t.Helper()
	return StartData(t, "", args...)
}

// StartData is Start with the data directory at dataDir (for example on a
// small tmpfs); logs stay in a temporary directory. Empty means Dir/data.
func StartData(t testing.TB, dataDir string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, Dir: t.TempDir(), KafkaAddr: pickAddr(t), HTTPAddr: pickAddr(t), KinesisAddr: pickAddr(t), Args: args, DataDir: dataDir}
	if p.DataDir == "" {
		p.DataDir = filepath.Join(p.Dir, "data")
	}
	// FreeAddr's ports are free when chosen, not reserved: another test's
	// process may take one before braid binds it. Braid then exits at
	// start, saying so; choose new ports and start again.
	for attempt := 1; ; attempt++ {
		err := p.start()
		if err == nil {
			break
		}
		if attempt < 5 && strings.Contains(p.Logs(), "address already in use") {
			t.Logf("braidtest: a port was taken before braid bound it (%v); new ports, attempt %d", err, attempt+1)
			p.KafkaAddr, p.HTTPAddr, p.KinesisAddr = pickAddr(t), pickAddr(t), pickAddr(t)
			continue
		}
		p.dumpLogs()
		t.Fatalf("braidtest: braid exited during start: %v", err)
	}
	t.Cleanup(func() {
		p.Kill()
		// A server built with -race (BRAID_BIN) reports races on its
		// stderr and keeps going; the test that drove it fails.
		logs := p.Logs()
		if strings.Contains(logs, "WARNING: DATA RACE") {
			t.Errorf("braidtest: the server reported a data race")
		}
		// A panic the Kafka door recovered from closed only one connection,
		// and clients retry past it: only the log shows the bug.
		if strings.Contains(logs, kafka.PanicLogMessage) {
			t.Errorf("braidtest: the server recovered from a panic (%q in its log)", kafka.PanicLogMessage)
		}
		if t.Failed() {
			p.dumpLogs()
		}
	})
	return p
}

// Restart starts the process again on the same directory and ports and waits
// until /healthz answers 200.
func (p *Proc) Restart() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.dumpLogs()
		p.t.Fatalf("braidtest: braid exited during start: %v", err)
	}
}

// start starts the process and waits until /healthz answers 200; it
// returns the process's exit error if braid exits first.
func (p *Proc) start() error {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.t.Fatalf("braidtest: restart of a running process")
	}
	logs, err := os.OpenFile(filepath.Join(p.Dir, "..", filepath.Base(p.Dir)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatalf("braidtest: log file: %v", err)
	}
	// Tests start many groups and expect members to join at once, as
	// Kafka's own test configs do (group.initial.rebalance.delay.ms=0); a
	// test may pass the flag again to override it.
	args := append([]string{"serve", "--data-dir", p.DataDir,
		"--kafka-addr", p.KafkaAddr, "--http-addr", p.HTTPAddr, "--kinesis-addr", p.KinesisAddr,
		"--group-initial-rebalance-delay", "0"}, p.Args...)
	cmd := exec.Command(Binary(p.t), args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("braidtest: start: %v", err)
	}
	p.cmd, p.logs, p.done = cmd, logs, make(chan error, 1)
	go func(done chan error) { done <- cmd.Wait() }(p.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.HTTPAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			// Another process on the port (see StartData) is not ready.
			// (BRAID_BIN must be braid itself, or a script that execs it.)
			if resp.StatusCode == 200 && resp.Header.Get("Braid-Pid") == strconv.Itoa(cmd.Process.Pid) {
				return nil
			}
		}
		select {
		case err := <-p.done:
			p.cmd = nil
			p.logs.Close()
			return fmt.Errorf("%v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.dumpLogsLocked()
			p.t.Fatalf("braidtest: braid not ready after 30s")
		}
	}
}

// RestartTimed restarts the node and returns how long it took until
// /healthz answered 200.
func (p *Proc) RestartTimed() time.Duration {
	began := time.Now()
	p.Restart()
	return time.Since(began)
}

// Kill sends SIGKILL and waits for the process to die. No-op if stopped.
func (p *Proc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.cmd = nil
	p.logs.Close()
}

// Stop sends SIGTERM and returns the exit error (nil for exit 0).
func (p *Proc) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Signal(syscall.SIGKILL)
		err = fmt.Errorf("braidtest: no exit 30s after SIGTERM (%v)", <-p.done)
	}
	p.cmd = nil
	p.logs.Close()
	return err
}

// Logs returns what the process has logged so far, across restarts.
func (p *Proc) Logs() string {
	b, _ := os.ReadFile(filepath.Join(p.Dir, "..", filepath.Base(p.Dir)+".log"))
	return string(b)
}

func (p *Proc) dumpLogs() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dumpLogsLocked()
}

func (p *Proc) dumpLogsLocked() {
	logs := p.Logs()
	if lines := strings.Split(logs, "\n"); len(lines) > 80 {
		logs = strings.Join(lines[len(lines)-80:], "\n")
	}
	p.t.Logf("braid logs (last lines):\n%s", logs)
}

// Client returns a franz-go client seeded with the node, closed at test end.
// Idempotent writes are off unless opts turn them on: exactly-once has its
// own tests.
func (p *Proc) Client(opts ...kgo.Opt) *kgo.Client {
	p.t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(p.KafkaAddr), kgo.DisableIdempotentWrite(),
		kgo.RetryTimeout(30 * time.Second)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		p.t.Fatalf("braidtest: client: %v", err)
	}
	p.t.Cleanup(cl.Close)
	return cl
}

// Admin returns a kadm client for the node.
func (p *Proc) Admin() *kadm.Client { return kadm.NewClient(p.Client()) }

// CreateStream creates a stream with n shards and fails the test on error.
func (p *Proc) CreateStream(ctx context.Context, name string, n int32, configs map[string]*string) {
	p.t.Helper()
	resp, err := p.Admin().CreateTopic(ctx, n, 1, configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		p.t.Fatalf("braidtest: create stream %s: %v", name, err)
	}
}

// PostJSON posts body (encoded as JSON) to the node's admin HTTP API at
// path and decodes the answer into out (if not nil). It returns the HTTP
// status; err is set only when no answer came.
func (p *Proc) PostJSON(path string, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	resp, err := http.Post("http://"+p.HTTPAddr+path, "application/json", bytes.NewReader(b))
	return readJSON(resp, err, path, out)
}

// GetJSON gets path from the node's admin HTTP API into out.
func (p *Proc) GetJSON(path string, out any) (int, error) {
	resp, err := http.Get("http://" + p.HTTPAddr + path)
	return readJSON(resp, err, path, out)
}

// readJSON decodes an admin API answer into out (if not nil) and returns
// its status.
func readJSON(resp *http.Response, err error, path string, out any) (int, error) {
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out == nil {
		return resp.StatusCode, nil
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.StatusCode, fmt.Errorf("decode %s answer %q: %w", path, data, err)
	}
	return resp.StatusCode, nil
}

// MetricSum returns the sum of every sample of the metric named name on the
// node's /metrics (0 if it has none), and fails the test if /metrics does
// not answer or a sample does not parse.
func (p *Proc) MetricSum(ctx context.Context, name string) float64 {
	p.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.HTTPAddr+"/metrics", nil)
	if err != nil {
		p.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("braidtest: GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("braidtest: GET /metrics: status %d", resp.StatusCode)
	}
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			p.t.Fatalf("braidtest: /metrics: %q: %v", line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		p.t.Fatalf("braidtest: read /metrics: %v", err)
	}
	return sum
}

// Kinesis returns an AWS SDK Kinesis client for the node's Kinesis door,
// with static test credentials (the door accepts unsigned and signed
// requests alike unless credentials are configured).
//
// Its transport copies each request body before sending it. With the
// SDK's default HTTP client over plain HTTP/1.1, an answer sometimes lost
// its connection right after the call returned ("use of closed network
// connection" while decoding a 200 answer: SubscribeToShard often,
// GetRecords rarely, also in CI); the server's bytes, read with net/http
// directly, were whole. The suspect, not proven: the SDK closes the
// request body as soon as RoundTrip returns (smithy-go
// transport/http/client.go), racing net/http's write loop, which then
// closes the connection. With the copy no run failed; the SDK's own
// decoding still reads every answer.
func (p *Proc) Kinesis() *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String("http://" + p.KinesisAddr),
		Credentials:      credentials.StaticCredentialsProvider{Value: aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}},
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: bench.CopyBody{RT: http.DefaultTransport}},
	})
}
