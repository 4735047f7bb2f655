package connect_test

import (
	"context"
	"fmt"
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
// into another table, exactly once each, across a SIGKILL of braid and
// then a restart of PostgreSQL while both connectors run.
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
	// Before braid starts, so it runs after braid stopped.
	pgtest.DropReplicationAtEnd(t, name)

	p := braidtest.Start(t)
	p.CreateStream(ctx, "pgchanges", 2, nil)
	mustCall(t, p, "POST", "/v1/connectors", fmt.Sprintf(`
name: %s
type: postgres-cdc
stream: pgchanges
delivery: exactly-once
config: {url: %q, tables: [%s.src], stream: pgchanges}
`, name, url, schema), http.StatusCreated, nil)
	mustCall(t, p, "POST", "/v1/connectors", fmt.Sprintf(`
name: topg
type: postgres-sink
streams: [pgchanges]
delivery: exactly-once
config: {url: %q, table: dst, columns: {id: after.id, name: after.name}}
`, url), http.StatusCreated, nil)

	// Rows 0..999 go in while braid runs and is killed (the second half
	// only once it was killed, so the kill is always mid-run); rows
	// 1000..1999 after PostgreSQL restarted under both connectors.
	const n = 2000
	killed := make(chan struct{})
	insert := func(conn *pgx.Conn, from, to int) error {
		for i := from; i < to; i += 10 {
			if _, err := conn.Exec(ctx, "insert into src select g, 'row ' || g from generate_series($1::int, $2::int) g", i, i+9); err != nil {
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		w, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Error(err)
			return
		}
		defer w.Close(context.Background())
		if err := insert(w, 0, n/4); err != nil {
			t.Error(err)
			return
		}
		select {
		case <-killed:
		case <-ctx.Done():
			return
		}
		if err := insert(w, n/4, n/2); err != nil {
			t.Error(err)
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
			_, src := call(t, p, "GET", "/v1/connectors/"+name, "", nil)
			_, snk := call(t, p, "GET", "/v1/connectors/topg", "", nil)
			t.Fatalf("no rows in the target\nsource: %s\nsink: %s", src, snk)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Kill()
	close(killed)
	t.Logf("killed braid with %d rows in the target", count("select count(*) from dst"))
	time.Sleep(200 * time.Millisecond)
	p.Restart()
	<-written
	// PostgreSQL restarts under both connectors: the source's replication
	// connection and the sink's connection drop; both retry and go on
	// from their positions.
	t.Logf("restarting PostgreSQL with %d rows in the target", count("select count(*) from dst"))
	pgtest.Restart(t)
	db = pgtest.Connect(t, url) // the old connection died with the server
	if err := insert(db, n/2, n); err != nil {
		t.Fatalf("insert after the PostgreSQL restart: %v", err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for count("select count(*) from dst") < n {
		if time.Now().After(deadline) {
			_, src := call(t, p, "GET", "/v1/connectors/"+name, "", nil)
			_, snk := call(t, p, "GET", "/v1/connectors/topg", "", nil)
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
