package client_test

// server.Restart: the consumer-side tests restart the node startServer
// started, on the same data directory and ports.

import (
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Restart SIGKILLs the node (if it runs) and starts it again on the same
// data directory and ports, waiting until it answers /healthz.
func (s *server) Restart(tb testing.TB) {
	tb.Helper()
	s.Kill()
	logs, err := os.OpenFile(s.logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	s.cmd = exec.Command(binary(tb), s.args...)
	s.cmd.Stdout, s.cmd.Stderr = logs, logs
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("restart braid: %v", err)
	}
	done := make(chan struct{})
	s.done = done
	cmd := s.cmd
	go func() { cmd.Wait(); logs.Close(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + s.HTTPAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && resp.Header.Get("Braid-Pid") == strconv.Itoa(cmd.Process.Pid) {
				return
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(s.logPath)
			tb.Fatalf("braid exited during restart:\n%s", b)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("braid not ready 30s after restart")
		}
	}
}
