package connect_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/connect/pgtest"
)

// TestPostgresCDCToSinkSurvivesSIGKILL: rows inserted into a PostgreSQL
// table go through postgres-cdc into a stream and through postgres-sink
// into another table, exactly once each, across a SIGKILL of braid while
// both connectors run.
func TestPostgresCDCToSinkSurvivesSIGKILL(t *testing.T) {
	url, db := pgtest.Schema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var schema string
	if err := db.QueryRow(ctx, "select current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"create table src (id int primary key, name text)",
		"create table dst (id int, name text)", // no key: a duplicate would show
	} {
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	name := fmt.Sprintf("cdc%d", time.Now().UnixNano()%1e9)
	base := pgtest.URL(t)
	// Registered before braid starts, so it runs after braid stopped.
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

	p := braidtest.Start(t)
	p.CreateStream(ctx, "pgchanges", 2, nil)
	pgMustPost(t, p, fmt.Sprintf(`
name: %s
type: postgres-cdc
stream: pgchanges
delivery: exactly-once
config: {url: %q, tables: [%s.src], stream: pgchanges}
`, name, url, schema))
	pgMustPost(t, p, fmt.Sprintf(`
name: topg
type: postgres-sink
streams: [pgchanges]
delivery: exactly-once
config: {url: %q, table: dst, columns: {id: after.id, name: after.name}}
`, url))

	const n = 2000
	written := make(chan struct{})
	go func() {
		defer close(written)
		w, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Error(err)
			return
		}
		defer w.Close(context.Background())
		for i := 0; i < n; i += 10 {
			_, err := w.Exec(ctx, "insert into src select g, 'row ' || g from generate_series($1::int, $2::int) g", i, i+9)
			if err != nil {
				t.Error(err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	count := func(q string) int {
		var c int
		if err := db.QueryRow(ctx, q).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	deadline := time.Now().Add(30 * time.Second)
	for count("select count(*) from dst") < 300 {
		if time.Now().After(deadline) {
			_, src := pgCall(t, p, "GET", "/v1/connectors/"+name, "")
			_, snk := pgCall(t, p, "GET", "/v1/connectors/topg", "")
			t.Fatalf("no rows in the target\nsource: %s\nsink: %s", src, snk)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Kill()
	atKill := count("select count(*) from dst")
	if atKill >= n {
		t.Fatalf("all %d rows were through before the kill", atKill)
	}
	t.Logf("killed braid with %d rows in the target", atKill)
	time.Sleep(200 * time.Millisecond)
	p.Restart()
	<-written
	deadline = time.Now().Add(60 * time.Second)
	for count("select count(*) from dst") < n {
		if time.Now().After(deadline) {
			_, src := pgCall(t, p, "GET", "/v1/connectors/"+name, "")
			_, snk := pgCall(t, p, "GET", "/v1/connectors/topg", "")
			t.Fatalf("target has %d of %d rows\nsource: %s\nsink: %s", count("select count(*) from dst"), n, src, snk)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // a duplicate would come late
	if got, distinct := count("select count(*) from dst"), count("select count(distinct id) from dst"); got != n || distinct != n {
		t.Fatalf("target has %d rows, %d distinct ids, want %d each", got, distinct, n)
	}
	// And the stream has each change once (read_committed).
	var ids []string
	for shard := int32(0); shard < 2; shard++ {
		for _, r := range p.ReadPartition(ctx, "pgchanges", shard, true) {
			ids = append(ids, string(r.Key))
		}
	}
	if len(ids) != n {
		t.Fatalf("stream has %d changes, want %d (%s...)", len(ids), n, strings.Join(ids[:min(5, len(ids))], " "))
	}
}

// pgCall sends a request to braid's admin API and returns the status and
// body. (Named apart from the runtime's own e2e helpers.)
func pgCall(t *testing.T, p *braidtest.Proc, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.HTTPAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func pgMustPost(t *testing.T, p *braidtest.Proc, definition string) {
	t.Helper()
	if code, b := pgCall(t, p, "POST", "/v1/connectors", definition); code != http.StatusCreated {
		t.Fatalf("POST /v1/connectors: %d: %s\n%s", code, b, definition)
	}
}
