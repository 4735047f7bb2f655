package pgsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/braidstream/braid/internal/connect"
	"github.com/braidstream/braid/internal/connect/pgtest"
)

func rec(shard int32, off int64, key, value string) connect.Record {
	r := connect.Record{Stream: "orders", Shard: shard, Offset: off, Timestamp: time.Unix(1700000000, 0)}
	if key != "" {
		r.Key = []byte(key)
	}
	if value != "" {
		r.Value = []byte(value)
	}
	return r
}

var shard0 = connect.ShardKey{Stream: "orders", Shard: 0}

func openSink(t testing.TB, name string, cfg map[string]any) *Sink {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(connect.Env{Name: name, Delivery: connect.ExactlyOnce}, raw)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustOpen(t *testing.T, s *Sink) map[connect.ShardKey]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.Open(ctx, []connect.ShardKey{shard0, {Stream: "orders", Shard: 1}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return got
}

func exec(t *testing.T, c *pgx.Conn, sql string) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// dump returns the table's rows as "a|b|c" strings in the order given.
func dump(t *testing.T, c *pgx.Conn, query string) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func put(t *testing.T, s *Sink, recs ...connect.Record) {
	t.Helper()
	if err := s.Put(context.Background(), recs); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func TestInsert(t *testing.T) {
	url, db := pgtest.Schema(t)
	exec(t, db, "create table orders (id int not null, customer text, total numeric, paid boolean, at timestamptz)")
	s := openSink(t, "ins", map[string]any{"url": url, "table": "orders"})
	if got := mustOpen(t, s); len(got) != 0 {
		t.Fatalf("Open on a fresh table returned progress %v", got)
	}
	put(t, s,
		rec(0, 0, "", `{"id":1,"customer":"ann","total":9.5,"paid":true,"at":"2024-05-01T10:00:00Z"}`),
		rec(0, 1, "", `{"id":2,"customer":"bob","total":"12.25"}`),
		rec(1, 7, "", `{"id":3}`),
	)
	equal(t, "rows", dump(t, db, "select id, coalesce(customer,'-'), coalesce(total::text,'-'), coalesce(paid::text,'-'), coalesce(to_char(at at time zone 'UTC','YYYY-MM-DD HH24:MI'),'-') from orders order by id"),
		[]string{"1|ann|9.5|true|2024-05-01 10:00", "2|bob|12.25|-|-", "3|-|-|-|-"})
	d := s.Durable()
	if d[shard0] != 2 || d[connect.ShardKey{Stream: "orders", Shard: 1}] != 8 {
		t.Fatalf("Durable = %v, want orders/0:2 orders/1:8", d)
	}
	equal(t, "progress", dump(t, db, "select connector, stream, shard, next_offset from braid_connect_offsets order by shard"),
		[]string{"ins|orders|0|2", "ins|orders|1|8"})
}

func TestUpsert(t *testing.T) {
	t.Run("record key", func(t *testing.T) {
		url, db := pgtest.Schema(t)
		s := openSink(t, "up", map[string]any{"url": url, "table": "customers", "mode": "upsert", "create_table": true})
		mustOpen(t, s)
		// The same key twice in one Put, and again in the next.
		put(t, s, rec(0, 0, "c1", `{"name":"ann","n":1}`), rec(0, 1, "c2", `{"name":"bob","n":1}`), rec(0, 2, "c1", `{"name":"ann","n":2}`))
		put(t, s, rec(0, 3, "c2", `{"name":"bobby","n":3}`))
		equal(t, "rows", dump(t, db, "select key, name, n from customers order by key"), []string{"c1|ann|2", "c2|bobby|3"})
	})
	t.Run("key columns", func(t *testing.T) {
		url, db := pgtest.Schema(t)
		exec(t, db, "create table stock (sku text, site int, qty int not null, note text, primary key (sku, site))")
		s := openSink(t, "up2", map[string]any{"url": url, "table": "stock", "mode": "upsert", "key_columns": []string{"sku", "site"},
			"columns": map[string]string{"sku": "item.sku", "site": "site", "qty": "count"}})
		mustOpen(t, s)
		put(t, s,
			rec(0, 0, "", `{"item":{"sku":"a"},"site":1,"count":5}`),
			rec(0, 1, "", `{"item":{"sku":"a"},"site":2,"count":6}`),
			rec(0, 2, "", `{"item":{"sku":"a"},"site":1,"count":7,"ignored":true}`),
		)
		equal(t, "rows", dump(t, db, "select sku, site, qty from stock order by sku, site"), []string{"a|1|7", "a|2|6"})
	})
	t.Run("no unique key", func(t *testing.T) {
		url, db := pgtest.Schema(t)
		exec(t, db, "create table plain (key text, v int)")
		s := openSink(t, "up3", map[string]any{"url": url, "table": "plain", "mode": "upsert"})
		_, err := s.Open(context.Background(), nil)
		if err == nil || !strings.Contains(err.Error(), "unique index") {
			t.Fatalf("Open = %v, want an error about the missing unique index", err)
		}
	})
}

func TestCreateTable(t *testing.T) {
	url, db := pgtest.Schema(t)
	s := openSink(t, "ct", map[string]any{"url": url, "table": "events", "create_table": true,
		"column_types": map[string]string{"amount": "numeric(10,2)"}})
	mustOpen(t, s)
	put(t, s,
		rec(0, 0, "", `{"id":1,"ratio":0.5,"ok":true,"name":"x","tags":["a"],"meta":{"k":1},"amount":1.25,"none":null}`),
		rec(0, 1, "", `{"id":2,"ratio":1,"ok":false,"name":"y","amount":2}`),
	)
	equal(t, "columns", dump(t, db, "select column_name, data_type from information_schema.columns where table_name='events' and table_schema=current_schema() order by column_name"),
		[]string{"amount|numeric", "id|bigint", "meta|jsonb", "name|text", "none|text", "ok|boolean", "ratio|double precision", "tags|jsonb"})
	equal(t, "rows", dump(t, db, "select id, ratio, ok, name, coalesce(tags::text,'-'), amount::text from events order by id"),
		[]string{"1|0.5|true|x|[\"a\"]|1.25", "2|1|false|y|-|2.00"})
	// Without create_table a missing table is Open's clear error.
	s2 := openSink(t, "ct2", map[string]any{"url": url, "table": "missing"})
	if _, err := s2.Open(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Open of a missing table = %v", err)
	}
}

// TestExactlyOnceAcrossCrash: a sink that wrote rows and went away without
// the runtime committing anything is followed by a new one; it reports the
// table's progress, and a replay from there, or from before it, writes
// each row once.
func TestExactlyOnceAcrossCrash(t *testing.T) {
	url, db := pgtest.Schema(t)
	exec(t, db, "create table orders (id int, shard int)")
	recs := func(shard int32, from, to int64) []connect.Record {
		var out []connect.Record
		for o := from; o < to; o++ {
			out = append(out, rec(shard, o, "", fmt.Sprintf(`{"id":%d,"shard":%d}`, o, shard)))
		}
		return out
	}
	s := openSink(t, "eo", map[string]any{"url": url, "table": "orders", "batch_size": 3})
	mustOpen(t, s)
	put(t, s, recs(0, 0, 10)...)
	put(t, s, recs(1, 0, 4)...)
	_ = s.Close() // "crash": no Flush, nothing committed by the runtime

	s2 := openSink(t, "eo", map[string]any{"url": url, "table": "orders", "batch_size": 3})
	got := mustOpen(t, s2)
	if got[shard0] != 10 || got[connect.ShardKey{Stream: "orders", Shard: 1}] != 4 || len(got) != 2 {
		t.Fatalf("Open after crash = %v, want orders/0:10 orders/1:4", got)
	}
	// The runtime starts at the returned offsets...
	put(t, s2, recs(0, 10, 15)...)
	// ...and a replay from older offsets (a group offset behind the
	// table's) must not write rows twice.
	put(t, s2, append(recs(0, 5, 20), recs(1, 0, 6)...)...)
	equal(t, "duplicates", dump(t, db, "select shard, id, count(*) from orders group by shard, id having count(*) > 1"), nil)
	equal(t, "counts", dump(t, db, "select shard, count(*), max(id) from orders group by shard order by shard"), []string{"0|20|19", "1|6|5"})
	// Another connector on the same table has its own progress.
	s3 := openSink(t, "other", map[string]any{"url": url, "table": "orders"})
	if got := mustOpen(t, s3); len(got) != 0 {
		t.Fatalf("another connector's Open = %v, want no progress", got)
	}
}

func TestBadRecord(t *testing.T) {
	good := func(off int64) connect.Record {
		return rec(0, off, "", fmt.Sprintf(`{"id":%d,"name":"n%d"}`, off, off))
	}
	cases := []struct {
		name  string
		bad   string
		cause string
	}{
		{"type error", `{"id":"x","name":"a"}`, "invalid input syntax"},
		{"not null", `{"id":5}`, "null value"},
		{"check", `{"id":-1,"name":"a"}`, "check constraint"},
		{"unknown column", `{"id":5,"name":"a","color":"red"}`, "no such column"},
		{"not json", `not json`, "not a JSON object"},
		{"not an object", `[1,2]`, "not a JSON object"},
		{"tombstone", ``, "tombstone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url, db := pgtest.Schema(t)
			exec(t, db, "create table items (id int check (id >= 0), name text not null)")
			s := openSink(t, "bad", map[string]any{"url": url, "table": "items", "batch_size": 2})
			mustOpen(t, s)
			// The bad record is in the second batch of two.
			recs := []connect.Record{good(0), good(1), good(2), rec(0, 3, "", tc.bad), good(4), good(5)}
			err := s.Put(context.Background(), recs)
			var bre *connect.BadRecordError
			if !errors.As(err, &bre) || bre.Index != 3 {
				t.Fatalf("Put = %v, want BadRecordError index 3", err)
			}
			if !strings.Contains(bre.Error(), tc.cause) {
				t.Fatalf("error %q does not say %q", bre, tc.cause)
			}
			equal(t, "rows before it", dump(t, db, "select id from items order by id"), []string{"0", "1", "2"})
			if d := s.Durable()[shard0]; d != 3 {
				t.Fatalf("Durable = %d, want 3", d)
			}
			// The runtime goes on with the records after it.
			put(t, s, recs[4:]...)
			equal(t, "rows", dump(t, db, "select id from items order by id"), []string{"0", "1", "2", "4", "5"})
			equal(t, "progress", dump(t, db, "select next_offset from braid_connect_offsets"), []string{"6"})
		})
	}
	t.Run("first record", func(t *testing.T) {
		url, db := pgtest.Schema(t)
		exec(t, db, "create table items (id int, name text not null)")
		s := openSink(t, "bad0", map[string]any{"url": url, "table": "items"})
		mustOpen(t, s)
		err := s.Put(context.Background(), []connect.Record{rec(0, 0, "", `{"id":1}`), good(1)})
		var bre *connect.BadRecordError
		if !errors.As(err, &bre) || bre.Index != 0 {
			t.Fatalf("Put = %v, want BadRecordError index 0", err)
		}
		equal(t, "rows", dump(t, db, "select id from items"), nil)
	})
}

func TestBadCredentials(t *testing.T) {
	base := pgtest.URL(t)
	u := strings.Replace(base, "braid:braid@", "braid:wrongsecret@", 1)
	if u == base {
		t.Skip("test URL has no braid:braid credentials to spoil")
	}
	s := openSink(t, "cred", map[string]any{"url": u, "table": "t"})
	_, err := s.Open(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("Open = %v, want password authentication failed", err)
	}
	if strings.Contains(err.Error(), "wrongsecret") {
		t.Fatalf("error shows the password: %v", err)
	}
	// Nothing listens on port 1.
	s = openSink(t, "cred", map[string]any{"url": "postgres://braid:wrongsecret@127.0.0.1:1/braid?connect_timeout=5", "table": "t"})
	_, err = s.Open(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "wrongsecret") {
		t.Fatalf("Open of a closed port = %v, want connection refused (and no password)", err)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]string{
		"no url":            `{"table":"t"}`,
		"no table":          `{"url":"postgres://h/db"}`,
		"bad mode":          `{"url":"postgres://h/db","table":"t","mode":"merge"}`,
		"unknown field":     `{"url":"postgres://h/db","table":"t","tabel":"x"}`,
		"keys for insert":   `{"url":"postgres://h/db","table":"t","key_columns":["id"]}`,
		"bad batch":         `{"url":"postgres://h/db","table":"t","batch_size":-1}`,
		"deletes on insert": `{"url":"postgres://h/db","table":"t","deletes":true}`,
		"bad url":           `{"url":"postgres://h:notaport/db","table":"t"}`,
		"unmapped key":      `{"url":"postgres://h/db","table":"t","mode":"upsert","key_columns":["id"],"columns":{"a":"a"}}`,
		"three-part table":  `{"url":"postgres://h/db","table":"a.b.c"}`,
		"not an object":     `[]`,
		"key column mapped": `{"url":"postgres://h/db","table":"t","key_column":"k","columns":{"k":"x"}}`,
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := New(connect.Env{Name: "x"}, json.RawMessage(cfg)); err == nil {
				t.Fatalf("New(%s) accepted", cfg)
			}
		})
	}
}

// TestConnectionLoss: a terminated backend is a plain error (the runtime
// retries), and a new sink goes on where the table says.
func TestConnectionLoss(t *testing.T) {
	url, db := pgtest.Schema(t)
	exec(t, db, "create table t (id int)")
	s := openSink(t, "loss", map[string]any{"url": url, "table": "t"})
	mustOpen(t, s)
	put(t, s, rec(0, 0, "", `{"id":0}`))
	var pid uint32
	if err := db.QueryRow(context.Background(), "select pid from pg_stat_activity where application_name = 'braid-connect-loss'").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	exec(t, db, fmt.Sprintf("select pg_terminate_backend(%d)", pid))
	err := s.Put(context.Background(), []connect.Record{rec(0, 1, "", `{"id":1}`)})
	var bre *connect.BadRecordError
	if err == nil || errors.As(err, &bre) {
		t.Fatalf("Put on a terminated connection = %v, want a plain error", err)
	}
	_ = s.Close()
	s2 := openSink(t, "loss", map[string]any{"url": url, "table": "t"})
	if got := mustOpen(t, s2); got[shard0] != 1 {
		t.Fatalf("Open = %v, want orders/0:1", got)
	}
	put(t, s2, rec(0, 1, "", `{"id":1}`))
	equal(t, "rows", dump(t, db, "select id from t order by id"), []string{"0", "1"})
}

// TestPostgresRestart: the server restarts between two Puts.
func TestPostgresRestart(t *testing.T) {
	url, db := pgtest.Schema(t)
	exec(t, db, "create table t (id int)")
	s := openSink(t, "restart", map[string]any{"url": url, "table": "t"})
	mustOpen(t, s)
	put(t, s, rec(0, 0, "", `{"id":0}`))
	pgtest.Restart(t)
	err := s.Put(context.Background(), []connect.Record{rec(0, 1, "", `{"id":1}`)})
	var bre *connect.BadRecordError
	if err == nil || errors.As(err, &bre) {
		t.Fatalf("Put across a restart = %v, want a plain error", err)
	}
	_ = s.Close()
	s2 := openSink(t, "restart", map[string]any{"url": url, "table": "t"})
	if got := mustOpen(t, s2); got[shard0] != 1 {
		t.Fatalf("Open = %v, want orders/0:1", got)
	}
	put(t, s2, rec(0, 1, "", `{"id":1}`))
	db2 := pgtest.Connect(t, url)
	equal(t, "rows", dump(t, db2, "select id from t order by id"), []string{"0", "1"})
}

// TestTargetFault: a refusal that is not about the record (here a trigger
// raising insufficient_privilege, as a revoked grant would) is a plain
// error, so the runtime retries instead of dead-lettering good records.
func TestTargetFault(t *testing.T) {
	url, db := pgtest.Schema(t)
	exec(t, db, "create table t (id int)")
	exec(t, db, `create function deny() returns trigger language plpgsql as $$
		begin raise exception 'no inserts today' using errcode = 'insufficient_privilege'; end $$`)
	exec(t, db, "create trigger deny before insert on t for each row execute function deny()")
	s := openSink(t, "fault", map[string]any{"url": url, "table": "t"})
	mustOpen(t, s)
	err := s.Put(context.Background(), []connect.Record{rec(0, 0, "", `{"id":0}`), rec(0, 1, "", `{"id":1}`)})
	var bre *connect.BadRecordError
	if err == nil || errors.As(err, &bre) || !strings.Contains(err.Error(), "no inserts today") {
		t.Fatalf("Put = %v, want a plain error", err)
	}
	if d := s.Durable(); len(d) != 0 {
		t.Fatalf("Durable = %v after a failed Put", d)
	}
	equal(t, "progress", dump(t, db, "select next_offset from braid_connect_offsets"), nil)
}

// TestDeletes: with deletes, a tombstone deletes the row with its key, in
// order with the writes around it; the key is the record key in
// key_column, or a JSON key holding key_columns (postgres-cdc's keys).
func TestDeletes(t *testing.T) {
	tomb := func(off int64, key string) connect.Record { return rec(0, off, key, "") }
	t.Run("record key", func(t *testing.T) {
		url, db := pgtest.Schema(t)
		s := openSink(t, "del", map[string]any{"url": url, "table": "kv", "mode": "upsert", "create_table": true, "deletes": true, "batch_size": 2})
		mustOpen(t, s)
		put(t, s,
			rec(0, 0, "a", `{"v":1}`), rec(0, 1, "b", `{"v":1}`), tomb(2, "a"),
			rec(0, 3, "a", `{"v":2}`), tomb(4, "b"), tomb(5, "c"), rec(0, 6, "c", `{"v":3}`))
		equal(t, "rows", dump(t, db, "select key, v from kv order by key"), []string{"a|2", "c|3"})
		equal(t, "progress", dump(t, db, "select next_offset from braid_connect_offsets"), []string{"7"})
	})
	t.Run("json key", func(t *testing.T) {
		url, db := pgtest.Schema(t)
		exec(t, db, "create table orders (id int primary key, name text)")
		s := openSink(t, "del2", map[string]any{"url": url, "table": "orders", "mode": "upsert", "deletes": true,
			"key_columns": []string{"id"}, "columns": map[string]string{"id": "after.id", "name": "after.name"}})
		mustOpen(t, s)
		put(t, s,
			rec(0, 0, `{"id":1}`, `{"op":"c","after":{"id":1,"name":"x"}}`),
			rec(0, 1, `{"id":2}`, `{"op":"c","after":{"id":2,"name":"y"}}`),
			tomb(2, `{"id":1}`))
		equal(t, "rows", dump(t, db, "select id, name from orders"), []string{"2|y"})
		err := s.Put(context.Background(), []connect.Record{tomb(3, `{"other":1}`), tomb(4, `{"id":2}`)})
		var bre *connect.BadRecordError
		if !errors.As(err, &bre) || bre.Index != 0 || !strings.Contains(err.Error(), `no "id"`) {
			t.Fatalf("tombstone without the key column: %v", err)
		}
	})
}
