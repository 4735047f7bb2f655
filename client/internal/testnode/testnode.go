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
	"strings"
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

// pickAddr is how Start chooses its ports; a test replaces it to hand out
// a taken one.
var pickAddr = FreeAddr

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
	n := &Node{logPath: filepath.Join(dir, "braid.log")}
	tb.Cleanup(func() {
		n.Kill()
		if tb.Failed() {
			b, _ := os.ReadFile(n.logPath)
			tb.Logf("braid log:\n%s", b)
		}
	})
	// FreeAddr's ports are free when chosen, not reserved: another test's
	// process may take one before braid binds it (seen in CI: "bind:
	// address already in use"). Braid then exits at start, saying so;
	// choose new ports and start again.
	for attempt := 1; ; attempt++ {
		n.KafkaAddr, n.HTTPAddr = pickAddr(tb), pickAddr(tb)
		n.args = append([]string{"serve", "--data-dir", filepath.Join(dir, "data"),
			"--kafka-addr", n.KafkaAddr, "--http-addr", n.HTTPAddr, "--kinesis-addr", pickAddr(tb)}, args...)
		out, err := n.launch(tb)
		if err == nil {
			return n
		}
		if attempt < 5 && strings.Contains(out, "address already in use") {
			tb.Logf("testnode: a port was taken before braid bound it; new ports, attempt %d", attempt+1)
			continue
		}
		tb.Fatalf("braid exited during start:\n%s", out)
	}
}

// Restart SIGKILLs the node if it runs and starts it again on the same data
// directory and ports, waiting until it answers /healthz.
func (n *Node) Restart(tb testing.TB) {
	tb.Helper()
	n.Kill()
	if out, err := n.launch(tb); err != nil {
		tb.Fatalf("braid exited during restart:\n%s", out)
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (n *Node) Kill() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// launch starts the process and waits until it answers /healthz. If it
// exits first, launch returns what it logged this time and an error.
func (n *Node) launch(tb testing.TB) (string, error) {
	tb.Helper()
	logs, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	var logged int64 // where this start's lines begin
	if fi, err := logs.Stat(); err == nil {
		logged = fi.Size()
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
				return "", nil
			}
		}
		select {
		case <-done:
			n.cmd = nil
			b, _ := os.ReadFile(n.logPath)
			return string(b[min(int(logged), len(b)):]), fmt.Errorf("braid exited during start")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("braid not ready after 60s")
		}
	}
}
