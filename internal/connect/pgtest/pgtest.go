// Package pgtest finds the PostgreSQL server the postgres connectors'
// tests run against (BRAID_TEST_POSTGRES_URL, set by .ci/postgres.sh) and
// gives each test a fresh schema of its own. Tests only.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URL returns the test server's URL. Without BRAID_TEST_POSTGRES_URL the
// test is skipped, except in CI (CI set, as .ci/run does): there a skipped
// test would read as a pass, so it fails.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("BRAID_TEST_POSTGRES_URL")
	if u != "" {
		share(t)
		return u
	}
	if os.Getenv("CI") != "" {
		t.Fatal("BRAID_TEST_POSTGRES_URL not set in CI (.ci/run starts PostgreSQL with .ci/postgres.sh)")
	}
	t.Skip("BRAID_TEST_POSTGRES_URL not set (eval \"$(bash .ci/postgres.sh)\")")
	return ""
}

// Restart restarts the test server with the command .ci/postgres.sh
// printed (BRAID_TEST_POSTGRES_RESTART); it skips the test without one.
func Restart(t testing.TB) {
	t.Helper()
	cmd := os.Getenv("BRAID_TEST_POSTGRES_RESTART")
	if cmd == "" {
		t.Skip("BRAID_TEST_POSTGRES_RESTART not set")
	}
	URL(t) // holds the shared lock for the rest of the test
	lock.Lock()
	defer lock.Unlock()
	// Wait for the tests of other packages (other processes) to finish
	// theirs; they start no new one until the restart is over.
	if err := syscall.Flock(int(lock.f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", lock.f.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.f.Fd()), syscall.LOCK_SH) }()
	f := strings.Fields(cmd)
	out, err := exec.Command(f[0], f[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("restart postgres (%s): %v\n%s", cmd, err, out)
	}
}

// lock keeps a restart from pulling the server from under a test of
// another package (go test runs packages in parallel processes): every
// test that uses the server holds a shared flock on one file, a restart
// an exclusive one. Tests of one package run one at a time, so one
// process holds one lock, counted by the tests that hold it.
var lock struct {
	sync.Mutex
	f *os.File
	n int
}

func share(t testing.TB) {
	lock.Lock()
	defer lock.Unlock()
	if lock.n == 0 {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "braid-postgres-tests.lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatalf("postgres test lock: %v", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
			f.Close()
			t.Fatalf("postgres test lock: %v", err)
		}
		lock.f = f
	}
	lock.n++
	t.Cleanup(func() {
		lock.Lock()
		defer lock.Unlock()
		lock.n--
		if lock.n == 0 {
			_ = lock.f.Close() // releases the flock
			lock.f = nil
		}
	})
}

var seq atomic.Int64

// Schema creates a schema named after the test (dropped at the end) and
// returns the server's URL with search_path set to it, plus a connection
// for the test's own queries.
func Schema(t testing.TB) (string, *pgx.Conn) {
	t.Helper()
	base := URL(t)
	name := fmt.Sprintf("t_%d_%d", time.Now().UnixNano()%1e9, seq.Add(1))
	ctx := context.Background()
	admin := Connect(t, base)
	if _, err := admin.Exec(ctx, "create schema "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A new connection: a test may have restarted the server.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			_, _ = c.Exec(ctx, "drop schema "+name+" cascade")
			_ = c.Close(ctx)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), Connect(t, u.String())
}

// Connect opens a connection closed at the end of the test.
func Connect(t testing.TB, u string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connect %s: %v", u, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// DropReplicationAtEnd removes, when the test ends, the replication slot
// and publication a postgres-cdc connector named name creates (both
// braid_<name>). Call it before starting braid: cleanups run last first,
// so this one runs once braid is stopped and the slot is no longer in use
// (it retries while the walsender lets go).
func DropReplicationAtEnd(t testing.TB, name string) {
	t.Helper()
	base := URL(t)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		for i := 0; i < 50; i++ {
			if _, err := c.Exec(context.Background(), "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1", "braid_"+name); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = c.Exec(context.Background(), "drop publication if exists braid_"+name)
	})
}
