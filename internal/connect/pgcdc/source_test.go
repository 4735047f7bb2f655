package pgcdc

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/braidstream/braid/internal/connect"
	"github.com/braidstream/braid/internal/connect/pgtest"
)

// setup gives a test a schema, a connector name of its own, and drops the
// slot and publication named after it at the end.
func setup(t *testing.T) (url string, db *pgx.Conn, name string) {
	t.Helper()
	url, db = pgtest.Schema(t)
	name = fmt.Sprintf("cdc_%d", time.Now().UnixNano()%1e12)
	base := pgtest.URL(t)
	t.Cleanup(func() {
		// A new connection: a test may have restarted the server.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop slot braid_%s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		for i := 0; i < 50; i++ {
			_, err := admin.Exec(ctx, "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1", "braid_"+name)
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond) // the walsender is still exiting
		}
		_, _ = admin.Exec(ctx, "drop publication if exists braid_"+name)
	})
	return url, db, name
}

func exec(t *testing.T, db *pgx.Conn, sqls ...string) {
	t.Helper()
	for _, s := range sqls {
		if _, err := db.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// txn runs statements in one transaction.
func txn(t *testing.T, db *pgx.Conn, sqls ...string) {
	t.Helper()
	exec(t, db, append(append([]string{"begin"}, sqls...), "commit")...)
}

func open(t *testing.T, name string, cfg map[string]any, pos []byte) *Source {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	s, err := New(connect.Env{Name: name, Delivery: connect.ExactlyOnce}, raw)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.Open(ctx, pos); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// pollN polls until n records came (failing after a while) and returns
// them with the last position.
func pollN(t *testing.T, s *Source, n int) ([]connect.Record, []byte) {
	t.Helper()
	var out []connect.Record
	var pos []byte
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d records, want %d: %s", len(out), n, show(out))
		}
		recs, p, err := s.Poll(context.Background())
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		out = append(out, recs...)
		if p != nil {
			pos = p
		}
	}
	if len(out) != n {
		t.Fatalf("got %d records, want %d: %s", len(out), n, show(out))
	}
	return out, pos
}

// pollNone checks that nothing more comes for a couple of Polls.
func pollNone(t *testing.T, s *Source) {
	t.Helper()
	for i := 0; i < 2; i++ {
		recs, _, err := s.Poll(context.Background())
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		if len(recs) > 0 {
			t.Fatalf("unexpected records: %s", show(recs))
		}
	}
}

// show renders records as "stream key op after" lines, tombstones as
// "stream key <tombstone>".
func show(recs []connect.Record) string {
	var lines []string
	for _, r := range recs {
		if r.Value == nil {
			lines = append(lines, fmt.Sprintf("%s %s <tombstone>", r.Stream, r.Key))
			continue
		}
		var ev struct {
			Op     string          `json:"op"`
			Before json.RawMessage `json:"before"`
			After  json.RawMessage `json:"after"`
		}
		_ = json.Unmarshal(r.Value, &ev)
		lines = append(lines, fmt.Sprintf("%s %s %s %s %s", r.Stream, r.Key, ev.Op, ev.Before, ev.After))
	}
	return strings.Join(lines, "\n")
}

func check(t *testing.T, recs []connect.Record, want ...string) {
	t.Helper()
	if got := show(recs); got != strings.Join(want, "\n") {
		t.Fatalf("records:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func schemaOf(t *testing.T, db *pgx.Conn) string {
	t.Helper()
	var s string
	if err := db.QueryRow(context.Background(), "select current_schema()").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestChanges(t *testing.T) {
	url, db, name := setup(t)
	sch := schemaOf(t, db)
	exec(t, db,
		"create table orders (id int primary key, name text, total numeric, paid bool, doc jsonb, at timestamptz)",
		"create table audit (a int, b text, primary key (b, a))",
		"alter table audit replica identity full")
	s := open(t, name, map[string]any{"url": url, "tables": []string{sch + ".orders", sch + ".audit"}, "stream": "cdc-{table}"}, nil)

	txn(t, db,
		`insert into orders values (1, 'ann', 9.50, true, '{"x": [1, 2]}', '2024-05-01 10:00:00+00')`,
		`insert into orders (id, name) values (2, 'bob')`)
	txn(t, db,
		`update orders set name = 'anne' where id = 1`,
		`delete from orders where id = 2`,
		`insert into audit values (7, 'q')`)
	txn(t, db,
		`update orders set id = 10 where id = 1`, // the key changes
		`update audit set a = 8`,
		`delete from audit`)
	recs, _ := pollN(t, s, 10)
	check(t, recs,
		`cdc-orders {"id":1} c null {"id":1,"name":"ann","total":9.50,"paid":true,"doc":{"x":[1,2]},"at":"2024-05-01 10:00:00+00"}`,
		`cdc-orders {"id":2} c null {"id":2,"name":"bob","total":null,"paid":null,"doc":null,"at":null}`,
		`cdc-orders {"id":1} u null {"id":1,"name":"anne","total":9.50,"paid":true,"doc":{"x":[1,2]},"at":"2024-05-01 10:00:00+00"}`,
		`cdc-orders {"id":2} d {"id":2} null`,
		`cdc-orders {"id":2} <tombstone>`,
		`cdc-audit {"b":"q","a":7} c null {"a":7,"b":"q"}`,
		`cdc-orders {"id":10} u {"id":1} {"id":10,"name":"anne","total":9.50,"paid":true,"doc":{"x":[1,2]},"at":"2024-05-01 10:00:00+00"}`,
		`cdc-audit {"b":"q","a":8} u {"a":7,"b":"q"} {"a":8,"b":"q"}`,
		`cdc-audit {"b":"q","a":8} d {"a":8,"b":"q"} null`,
		`cdc-audit {"b":"q","a":8} <tombstone>`,
	)
	// Source metadata: one txid per transaction, commit order.
	var prevLSN pglogrepl.LSN
	var txids []uint32
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		var ev event
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		lsn, err := pglogrepl.ParseLSN(ev.Source.LSN)
		if err != nil || lsn < prevLSN || ev.Source.Schema != sch || ev.Source.CommitTime == "" {
			t.Fatalf("bad source %+v (previous lsn %s)", ev.Source, prevLSN)
		}
		if lsn != prevLSN {
			txids = append(txids, ev.Source.TxID)
		}
		prevLSN = lsn
		if r.Timestamp.IsZero() {
			t.Fatal("record without a timestamp")
		}
	}
	if len(txids) != 3 || !(txids[0] < txids[1] && txids[1] < txids[2]) {
		t.Fatalf("transactions %v, want 3 in order", txids)
	}
}

// TestSlotAndPublicationCreated: Open creates what is missing, and a
// second Open reuses it.
func TestSlotAndPublicationCreated(t *testing.T) {
	url, db, name := setup(t)
	sch := schemaOf(t, db)
	exec(t, db, "create table a (id int primary key)", "create table b (id int primary key)")
	s := open(t, name, map[string]any{"url": url, "tables": []string{sch + ".a"}}, nil)
	var plugin string
	if err := db.QueryRow(context.Background(), "select plugin from pg_replication_slots where slot_name = $1", "braid_"+name).Scan(&plugin); err != nil || plugin != "pgoutput" {
		t.Fatalf("slot braid_%s: plugin %q, %v", name, plugin, err)
	}
	_ = s.Close()
	// A second table in the config is added to the existing publication.
	s = open(t, name, map[string]any{"url": url, "tables": []string{sch + ".a", sch + ".b"}}, nil)
	rows, _ := db.Query(context.Background(), "select tablename::text from pg_publication_tables where pubname = $1 order by 1", "braid_"+name)
	tabs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || strings.Join(tabs, ",") != "a,b" {
		t.Fatalf("publication tables %v, %v", tabs, err)
	}
	txn(t, db, "insert into b values (1)")
	recs, _ := pollN(t, s, 1)
	check(t, recs, sch+`.b {"id":1} c null {"id":1}`)
}

// TestRestartFromPosition: a new source opened at a position gets every
// transaction after it and none at or before it, and Committed moves the
// slot.
func TestRestartFromPosition(t *testing.T) {
	url, db, name := setup(t)
	sch := schemaOf(t, db)
	exec(t, db, "create table t (id int primary key)")
	cfg := map[string]any{"url": url, "tables": []string{sch + ".t"}, "stream": "t"}
	s := open(t, name, cfg, nil)
	txn(t, db, "insert into t values (1)", "insert into t values (2)")
	_, p1 := pollN(t, s, 2)
	if err := s.Committed(context.Background(), p1); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, db, "braid_"+name, p1)
	txn(t, db, "insert into t values (3)")
	_, p2 := pollN(t, s, 1)
	_ = s.Close() // crash: p2 was never committed
	txn(t, db, "insert into t values (4)")
	txn(t, db, "insert into t values (5)")

	s = open(t, name, cfg, p1)
	recs, p := pollN(t, s, 3)
	check(t, recs, `t {"id":3} c null {"id":3}`, `t {"id":4} c null {"id":4}`, `t {"id":5} c null {"id":5}`)
	pollNone(t, s)
	_ = s.Close()

	s = open(t, name, cfg, p2)
	recs, p3 := pollN(t, s, 2)
	check(t, recs, `t {"id":4} c null {"id":4}`, `t {"id":5} c null {"id":5}`)
	if string(p3) != string(p) {
		t.Fatalf("position after the same transactions: %s, then %s", p, p3)
	}
	pollNone(t, s)
}

func waitConfirmed(t *testing.T, db *pgx.Conn, slot string, pos []byte) {
	t.Helper()
	want, _ := DecodePosition(pos)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got string
		if err := db.QueryRow(context.Background(), "select confirmed_flush_lsn::text from pg_replication_slots where slot_name = $1", slot).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if lsn, _ := pglogrepl.ParseLSN(got); lsn == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot %s confirmed %s, want %s", slot, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWholeTransactions: Polls short enough to end while a transaction
// is coming in hand out whole transactions only, and a transaction
// larger than a Poll's batch comes in one Poll.
func TestWholeTransactions(t *testing.T) {
	url, db, name := setup(t)
	sch := schemaOf(t, db)
	exec(t, db, "create table t (id int primary key, pad text)")
	s := open(t, name, map[string]any{"url": url, "tables": []string{sch + ".t"}}, nil)
	s.wait = 2 * time.Millisecond
	const n = maxPollRecords + 2000
	txn(t, db, fmt.Sprintf("insert into t select g, repeat('x', 200) from generate_series(1, %d) g", n))
	txn(t, db, "insert into t values (0, 'last')")
	var sizes []int
	total, polls := 0, 0
	deadline := time.Now().Add(30 * time.Second)
	for total < n+1 && time.Now().Before(deadline) {
		recs, _, err := s.Poll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		polls++
		if len(recs) > 0 {
			sizes = append(sizes, len(recs))
		}
		total += len(recs)
	}
	whole := map[int]bool{1: true, n: true, n + 1: true}
	for _, size := range sizes {
		if !whole[size] {
			t.Fatalf("Poll batch sizes %v (total %d, %d polls): a transaction was split", sizes, total, polls)
		}
	}
	if total != n+1 {
		t.Fatalf("got %d records, want %d", total, n+1)
	}
	t.Logf("%d polls, batch sizes %v", polls, sizes)
}

func TestOpenErrors(t *testing.T) {
	url, db, name := setup(t)
	sch := schemaOf(t, db)
	base := pgtest.URL(t)
	bad := strings.Replace(base, "braid:braid@", "braid:wrongsecret@", 1)
	cases := []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"missing table", map[string]any{"url": url, "tables": []string{sch + ".nope"}}, "does not exist"},
		{"bad password", map[string]any{"url": bad, "tables": []string{sch + ".t"}}, "password authentication failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(tc.cfg)
			s, err := New(connect.Env{Name: name}, raw)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Open(context.Background(), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "wrongsecret") {
				t.Fatalf("Open = %v, want %q (and no password)", err, tc.want)
			}
		})
	}
	var n int
	_ = db.QueryRow(context.Background(), "select count(*) from pg_replication_slots where slot_name = $1", "braid_"+name).Scan(&n)
	if n != 0 {
		t.Fatalf("a failed Open left a slot")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]string{
		"no url":         `{"tables":["a"]}`,
		"no tables":      `{"url":"postgres://h/db"}`,
		"bad table":      `{"url":"postgres://h/db","tables":["a.b.c"]}`,
		"twice":          `{"url":"postgres://h/db","tables":["a","public.a"]}`,
		"bad slot":       `{"url":"postgres://h/db","tables":["a"],"slot":"My-Slot"}`,
		"bad pub":        `{"url":"postgres://h/db","tables":["a"],"publication":"x'y"}`,
		"bad template":   `{"url":"postgres://h/db","tables":["a"],"stream":"{db}.{table}"}`,
		"unknown field":  `{"url":"postgres://h/db","tables":["a"],"slots":"x"}`,
		"bad url":        `{"url":"postgres://h:port/db","tables":["a"]}`,
		"tables not str": `{"url":"postgres://h/db","tables":"a"}`,
		"bad snapshot":   `{"url":"postgres://h/db","tables":["a"],"snapshot":"always"}`,
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := New(connect.Env{Name: "x"}, json.RawMessage(cfg)); err == nil {
				t.Fatalf("New(%s) accepted", cfg)
			}
		})
	}
	s, err := New(connect.Env{Name: "Orders.Archive-1"}, json.RawMessage(`{"url":"postgres://h/db","tables":["a"]}`))
	if err != nil || s.cfg.Slot != "braid_orders_archive_1" || s.cfg.Publication != "braid_orders_archive_1" {
		t.Fatalf("default names: %+v, %v", s, err)
	}
}

// TestQuietTableDoesNotPinWAL: writes to other tables move the position
// (from keepalives, with no transaction open), so confirming it lets
// PostgreSQL recycle WAL although the streamed table is quiet.
func TestQuietTableDoesNotPinWAL(t *testing.T) {
	url, db, name := setup(t)
	sch := schemaOf(t, db)
	exec(t, db, "create table t (id int primary key)", "create table other (id int)")
	s := open(t, name, map[string]any{"url": url, "tables": []string{sch + ".t"}}, nil)
	txn(t, db, "insert into t values (1)")
	_, p1 := pollN(t, s, 1)
	start, _ := DecodePosition(p1)
	txn(t, db, "insert into other select generate_series(1, 1000)")
	var lsnAfter string
	if err := db.QueryRow(context.Background(), "select pg_current_wal_lsn()::text").Scan(&lsnAfter); err != nil {
		t.Fatal(err)
	}
	after, _ := pglogrepl.ParseLSN(lsnAfter)
	var pos []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, p, err := s.Poll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 {
			t.Fatalf("records of a table not streamed: %s", show(recs))
		}
		if lsn, _ := DecodePosition(p); lsn >= after {
			pos = p
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("position stayed at %s (started at %s), WAL is at %s", p, start, after)
		}
	}
	if err := s.Committed(context.Background(), pos); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, db, "braid_"+name, pos)
	// And nothing is lost: a change after it still comes.
	txn(t, db, "insert into t values (2)")
	recs, _ := pollN(t, s, 1)
	check(t, recs, sch+`.t {"id":2} c null {"id":2}`)
}

// TestSnapshot: on a first start the rows already there come first (op
// "r"), consistent with the stream that follows: a change committed
// while the snapshot is read comes after it as a change, not in it. A
// source that stopped in the middle of the snapshot takes it again; one
// that stopped after it does not.
func TestSnapshot(t *testing.T) {
	url, db, name := setup(t)
	sch := schemaOf(t, db)
	exec(t, db,
		"create table a (id int primary key, v text)",
		"create table b (k text primary key)",
		"insert into a select g, 'v' || g from generate_series(1, 5) g",
		"insert into b values ('x')")
	cfg := map[string]any{"url": url, "tables": []string{sch + ".a", sch + ".b"}, "stream": "{table}"}
	s := open(t, name, cfg, nil)
	s.batch = 2
	recs, pos, err := s.Poll(context.Background())
	if err != nil || len(recs) != 2 || string(pos) != snapshotPosition {
		t.Fatalf("first snapshot Poll: %d records, position %q, %v", len(recs), pos, err)
	}
	_ = s.Close() // stopped in the middle of the snapshot

	s = open(t, name, cfg, pos)
	s.batch = 2
	// Committed after the new slot's consistent point, before the
	// snapshot is read: not in the snapshot, but streamed after it.
	txn(t, db, "insert into a values (6, 'v6')", "delete from b")
	snapRecs, _ := pollN(t, s, 6)
	check(t, snapRecs,
		`a {"id":1} r null {"id":1,"v":"v1"}`,
		`a {"id":2} r null {"id":2,"v":"v2"}`,
		`a {"id":3} r null {"id":3,"v":"v3"}`,
		`a {"id":4} r null {"id":4,"v":"v4"}`,
		`a {"id":5} r null {"id":5,"v":"v5"}`,
		`b {"k":"x"} r null {"k":"x"}`,
	)
	var ev event
	if err := json.Unmarshal(snapRecs[0].Value, &ev); err != nil || !ev.Source.Snapshot {
		t.Fatalf("snapshot row's source %+v, %v", ev.Source, err)
	}
	changes, pos := pollN(t, s, 3)
	check(t, changes,
		`a {"id":6} c null {"id":6,"v":"v6"}`,
		`b {"k":"x"} d {"k":"x"} null`,
		`b {"k":"x"} <tombstone>`,
	)
	if _, err := DecodePosition(pos); err != nil {
		t.Fatalf("position after the snapshot and a change: %q, want an LSN", pos)
	}
	_ = s.Close()

	// Stopped after the snapshot: no snapshot again.
	s = open(t, name, cfg, pos)
	txn(t, db, "insert into a values (7, 'v7')")
	recs, _ = pollN(t, s, 1)
	check(t, recs, `a {"id":7} c null {"id":7,"v":"v7"}`)
	pollNone(t, s)
}

func TestSnapshotNever(t *testing.T) {
	url, db, name := setup(t)
	sch := schemaOf(t, db)
	exec(t, db, "create table a (id int primary key)", "insert into a values (1)")
	s := open(t, name, map[string]any{"url": url, "tables": []string{sch + ".a"}, "stream": "a", "snapshot": "never"}, nil)
	txn(t, db, "insert into a values (2)")
	recs, _ := pollN(t, s, 1)
	check(t, recs, `a {"id":2} c null {"id":2}`)
}

// TestUnchangedToast: an update that leaves a large (TOASTed) value alone
// does not carry it; the event leaves the column out of "after" rather
// than writing a wrong null.
func TestUnchangedToast(t *testing.T) {
	url, db, name := setup(t)
	sch := schemaOf(t, db)
	exec(t, db, "create table t (id int primary key, n int, big text)",
		"alter table t alter column big set storage external",
		"insert into t select 1, 0, string_agg(md5(g::text), '') from generate_series(1, 200) g")
	s := open(t, name, map[string]any{"url": url, "tables": []string{sch + ".t"}, "stream": "t", "snapshot": "never"}, nil)
	txn(t, db, "update t set n = 1")
	recs, _ := pollN(t, s, 1)
	check(t, recs, `t {"id":1} u null {"id":1,"n":1}`)
}
