package client_test

// A node that keeps its data directory and ports across a SIGKILL and a
// restart, and knows its admin HTTP address: for the tests of routing,
// atomic batches and admin. (harness_test.go's startServer hides both.)

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

type node struct {
	*server
	HTTPAddr string
	dir      string
	args     []string
}

// startNode runs braid serve as startServer does and returns a node that
// can be restarted on the same data directory and ports.
func startNode(tb testing.TB, args ...string) *node {
	tb.Helper()
	n := &node{dir: tb.TempDir(), HTTPAddr: freeAddr(tb), args: args}
	n.server = &server{tb: tb, KafkaAddr: freeAddr(tb)}
	kinesis := freeAddr(tb)
	n.args = append([]string{"serve", "--data-dir", filepath.Join(n.dir, "data"),
		"--kafka-addr", n.KafkaAddr, "--http-addr", n.HTTPAddr, "--kinesis-addr", kinesis}, args...)
	n.launch(tb)
	tb.Cleanup(func() {
		n.Kill()
		if tb.Failed() {
			b, _ := os.ReadFile(n.logPath)
			tb.Logf("braid log (last run):\n%s", b)
		}
	})
	return n
}

// Restart SIGKILLs the node if it runs and starts it again on the same
// data directory and ports.
func (n *node) Restart(tb testing.TB) {
	tb.Helper()
	n.Kill()
	n.launch(tb)
}

func (n *node) launch(tb testing.TB) {
	tb.Helper()
	n.logPath = filepath.Join(n.dir, fmt.Sprintf("braid-%d.log", time.Now().UnixNano()))
	logs, err := os.Create(n.logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(binary(tb), n.args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start braid: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logs.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + n.HTTPAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && resp.Header.Get("Braid-Pid") == strconv.Itoa(cmd.Process.Pid) {
				return
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(n.logPath)
			tb.Fatalf("braid exited during start:\n%s", b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("braid not ready after 60s")
		}
	}
}

// metric returns the value of an unlabelled Prometheus metric.
func (n *node) metric(tb testing.TB, name string) float64 {
	tb.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr + "/metrics")
	if err != nil {
		tb.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	tb.Fatalf("metric %s not exported", name)
	return 0
}

// post sends a JSON body to the admin API and fails the test unless it
// answers 200.
func (n *node) post(tb testing.TB, path string, body any) {
	tb.Helper()
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+n.HTTPAddr+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		tb.Fatalf("POST %s: %s: %s", path, resp.Status, out)
	}
}
