package client_test

// Admin API helpers (metrics, POST) for the tests of routing, atomic
// batches and faults.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// node is a server with the admin API helpers the routing, batch and
// fault tests use; Restart comes from testnode.Node.
type node struct {
	*server
}

// startNode runs braid serve as startServer does.
func startNode(tb testing.TB, args ...string) *node {
	tb.Helper()
	return &node{startServer(tb, args...)}
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
