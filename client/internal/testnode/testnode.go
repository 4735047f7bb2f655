// Package testnode runs a real `braid serve`, built from this checkout, for
// the SDK's tests. It lives in the client module rather than reusing the
// server's internal/braidtest so that the module requires only franz-go:
// users who import the SDK never pull the server's dependencies.
package testnode

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	braidBin  string
	buildDir  string // what Cleanup removes
	buildErr  error
)

// Main runs a test binary's tests (call it from TestMain) and removes the
// braid binary Binary built for them.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// Binary builds cmd/braid from the repository this module sits in (or
// uses BRAID_BIN) once per test binary, and returns its path.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("BRAID_BIN"); p != "" {
			braidBin = p
			return
		}
		_, here, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(here), "..", "..", "..") // client/internal/testnode
		dir, err := os.MkdirTemp("", "braid-client-test-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir, braidBin = dir, filepath.Join(dir, "braid")
		cmd := exec.Command("go", "build", "-o", braidBin, "./cmd/braid")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatalf("build braid: %v", buildErr)
	}
	return braidBin
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Node is one braid process on loopback ports and a data directory of its
// own, which Restart keeps.
type Node struct {
	KafkaAddr string
	HTTPAddr  string // the admin API and /metrics (--http-addr)

	args    []string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
}

// Start runs braid serve with args added and waits until it answers
// /healthz; it is killed when the test ends, and its log is printed if the
// test failed.
func Start(tb testing.TB, args ...string) *Node {
	tb.Helper()
	dir := tb.TempDir()
	n := &Node{KafkaAddr: FreeAddr(tb), HTTPAddr: FreeAddr(tb), logPath: filepath.Join(dir, "braid.log")}
	n.args = append([]string{"serve", "--data-dir", filepath.Join(dir, "data"),
		"--kafka-addr", n.KafkaAddr, "--http-addr", n.HTTPAddr, "--kinesis-addr", FreeAddr(tb)}, args...)
	tb.Cleanup(func() {
		n.Kill()
		if tb.Failed() {
			b, _ := os.ReadFile(n.logPath)
			tb.Logf("braid log:\n%s", b)
		}
	})
	n.launch(tb)
	return n
}

// Restart SIGKILLs the node if it runs and starts it again on the same data
// directory and ports, waiting until it answers /healthz.
func (n *Node) Restart(tb testing.TB) {
	tb.Helper()
	n.Kill()
	n.launch(tb)
}

// Kill sends SIGKILL and waits for the process to exit.
func (n *Node) Kill() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

func (n *Node) launch(tb testing.TB) {
	tb.Helper()
	logs, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(Binary(tb), n.args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		logs.Close()
		tb.Fatalf("start braid: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logs.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	// Only this process's answer counts: a port taken by another braid
	// could otherwise answer for it.
	pid := strconv.Itoa(cmd.Process.Pid)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + n.HTTPAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && resp.Header.Get("Braid-Pid") == pid {
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
