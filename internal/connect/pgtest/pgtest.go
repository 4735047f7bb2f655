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
	"strings"
	"sync/atomic"
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
	f := strings.Fields(cmd)
	out, err := exec.Command(f[0], f[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("restart postgres (%s): %v\n%s", cmd, err, out)
	}
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
		_, _ = admin.Exec(context.Background(), "drop schema "+name+" cascade")
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
