package admin_test

// A real `braid serve` built from this checkout (as ../harness_test.go
// does for package client; test files cannot be shared across packages).

import (
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
)

var (
	buildOnce sync.Once
	braidBin  string
	buildErr  error
)

func binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("BRAID_BIN"); p != "" {
			braidBin = p
			return
		}
		dir, err := os.MkdirTemp("", "braid-admin-test-")
		if err != nil {
			buildErr = err
			return
		}
		braidBin = filepath.Join(dir, "braid")
		cmd := exec.Command("go", "build", "-o", braidBin, "./cmd/braid")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatalf("build braid: %v", buildErr)
	}
	return braidBin
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs braid serve and returns its Kafka and HTTP addresses;
// it is killed at test end.
func startServer(tb testing.TB) (kafkaAddr, httpAddr string) {
	tb.Helper()
	dir := tb.TempDir()
	kafkaAddr, httpAddr = freeAddr(tb), freeAddr(tb)
	logPath := filepath.Join(dir, "braid.log")
	logs, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(binary(tb), "serve", "--data-dir", filepath.Join(dir, "data"),
		"--kafka-addr", kafkaAddr, "--http-addr", httpAddr, "--kinesis-addr", freeAddr(tb))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logs.Close(); close(done) }()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		if tb.Failed() {
			b, _ := os.ReadFile(logPath)
			tb.Logf("braid log:\n%s", b)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && resp.Header.Get("Braid-Pid") == strconv.Itoa(cmd.Process.Pid) {
				return kafkaAddr, httpAddr
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			tb.Fatalf("braid exited during start:\n%s", b)
		case <-time.After(20 * time.Millisecond):
		}
	}
	tb.Fatal("braid not ready after 30s")
	return "", ""
}
