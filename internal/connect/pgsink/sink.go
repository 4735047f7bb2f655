package pgsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/braidstream/braid/internal/connect"
	"github.com/braidstream/braid/internal/connect/pgurl"
)

// Type is the postgres-sink connector type.
var Type = connect.Type{
	Name:        "postgres-sink",
	ExactlyOnce: true,
	Doc:         "writes JSON records as rows of a PostgreSQL table (insert or upsert), exactly once",
	NewSink: func(env connect.Env, config json.RawMessage) (connect.Sink, error) {
		return New(env, config)
	},
}

// OffsetsTable keeps each connector's progress, in the target database,
// updated in the transaction that writes the rows.
const OffsetsTable = "braid_connect_offsets"

// Sink is a postgres-sink. Use it through connect.Sink.
type Sink struct {
	cfg   Config
	env   connect.Env
	table pgx.Identifier
	conn  *pgx.Conn
	// cols are the table's columns in table order; nil while the table
	// does not exist (create_table makes it from the first batch).
	cols   []string
	colSet map[string]bool
	// next is the committed progress per shard: the offset after the last
	// record whose row is in the table.
	next map[connect.ShardKey]int64
}

// New checks the config; it does not connect yet (Open does).
func New(env connect.Env, raw json.RawMessage) (*Sink, error) {
	cfg, err := parseConfig(raw)
	if err != nil {
		return nil, err
	}
	if env.Name == "" {
		return nil, errors.New("postgres-sink: connector name is required")
	}
	return &Sink{cfg: cfg, env: env, table: splitTable(cfg.Table)}, nil
}

// Open connects, makes sure the offsets table exists, reads the target
// table's columns and returns the stored progress of the given shards.
func (s *Sink) Open(ctx context.Context, shards []connect.ShardKey) (map[connect.ShardKey]int64, error) {
	_ = s.Close()
	out, err := s.open(ctx, shards)
	if err != nil {
		_ = s.Close()
	}
	return out, err
}

func (s *Sink) open(ctx context.Context, shards []connect.ShardKey) (map[connect.ShardKey]int64, error) {
	pcfg, err := pgx.ParseConfig(s.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres-sink: url: %s", pgurl.RedactErr(err, s.cfg.URL))
	}
	if pcfg.RuntimeParams["application_name"] == "" {
		// Names the connector in pg_stat_activity.
		pcfg.RuntimeParams["application_name"] = pgurl.ApplicationName(s.env.Name)
	}
	conn, err := pgx.ConnectConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres-sink: connect to %s: %s", pgurl.Redacted(s.cfg.URL), pgurl.RedactErr(err, s.cfg.URL))
	}
	s.conn = conn
	if err := s.ensureOffsetsTable(ctx); err != nil {
		return nil, err
	}
	if err := s.loadColumns(ctx); err != nil {
		return nil, err
	}
	if s.cols == nil && !s.cfg.CreateTable {
		return nil, fmt.Errorf("postgres-sink: table %s does not exist (create it, or set create_table: true)", s.table.Sanitize())
	}
	if err := s.checkTable(ctx); err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, "select stream, shard, next_offset from "+OffsetsTable+" where connector = $1", s.env.Name)
	if err != nil {
		return nil, fmt.Errorf("postgres-sink: read progress: %w", err)
	}
	s.next = map[connect.ShardKey]int64{}
	for rows.Next() {
		var k connect.ShardKey
		var off int64
		if err := rows.Scan(&k.Stream, &k.Shard, &off); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres-sink: read progress: %w", err)
		}
		s.next[k] = off
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres-sink: read progress: %w", err)
	}
	out := map[connect.ShardKey]int64{}
	for _, k := range shards {
		if off, ok := s.next[k]; ok {
			out[k] = off
		}
	}
	return out, nil
}

func (s *Sink) ensureOffsetsTable(ctx context.Context) error {
	_, err := s.conn.Exec(ctx, `create table if not exists `+OffsetsTable+` (
		connector text not null,
		stream text not null,
		shard integer not null,
		next_offset bigint not null,
		primary key (connector, stream, shard))`)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		// Two sinks created it at once; the other one won.
		err = nil
	}
	if err != nil {
		return fmt.Errorf("postgres-sink: create %s: %w", OffsetsTable, err)
	}
	return nil
}

// row is one record made ready for the table.
type row struct {
	idx    int // in the slice given to Put
	shard  connect.ShardKey
	offset int64
	fields map[string]json.RawMessage
	del    bool // a tombstone: delete the row with these key columns
}

// Put writes the records' rows and the progress they make in one
// transaction.
func (s *Sink) Put(ctx context.Context, recs []connect.Record) error {
	if s.conn == nil {
		return errors.New("postgres-sink: Put before Open")
	}
	rows := make([]row, 0, len(recs))
	bad := -1
	var badErr error
	for i := range recs {
		r := &recs[i]
		k := connect.ShardKey{Stream: r.Stream, Shard: r.Shard}
		if next, ok := s.next[k]; ok && r.Offset < next {
			continue // in the table already: a replay after a crash
		}
		del := r.Value == nil && s.cfg.Deletes
		var fields map[string]json.RawMessage
		var err error
		if del {
			fields, err = s.keyFields(r)
		} else {
			fields, err = s.fields(r)
		}
		if err != nil {
			bad, badErr = i, err
			break
		}
		rows = append(rows, row{idx: i, shard: k, offset: r.Offset, fields: fields, del: del})
	}
	if s.cols == nil && len(rows) > 0 {
		if err := s.createTable(ctx, rows); err != nil {
			return err
		}
	}
	for j := range rows {
		if err := s.checkColumns(rows[j].fields); err != nil {
			bad, badErr = rows[j].idx, err
			rows = rows[:j]
			break
		}
	}
	if len(rows) > 0 {
		n, err := s.write(ctx, rows)
		if err != nil {
			return err
		}
		if n < len(rows) {
			return &connect.BadRecordError{Index: rows[n].idx, Err: s.badRow(ctx, rows[n])}
		}
	}
	if bad >= 0 {
		return &connect.BadRecordError{Index: bad, Err: badErr}
	}
	return nil
}

// fields maps a record to column values.
func (s *Sink) fields(r *connect.Record) (map[string]json.RawMessage, error) {
	if r.Value == nil {
		return nil, errors.New("null value (a tombstone): postgres-sink writes JSON objects")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r.Value, &obj); err != nil || obj == nil {
		return nil, errors.New("value is not a JSON object")
	}
	out := obj
	if len(s.cfg.Columns) > 0 {
		out = make(map[string]json.RawMessage, len(s.cfg.Columns)+1)
		for col, path := range s.cfg.Columns {
			if v, ok := lookup(obj, path); ok {
				out[col] = v
			}
		}
	}
	if s.cfg.KeyColumn != "" {
		if r.Key == nil {
			out[s.cfg.KeyColumn] = json.RawMessage("null")
		} else {
			k, _ := json.Marshal(string(r.Key))
			out[s.cfg.KeyColumn] = k
		}
	}
	return out, nil
}

// keyFields maps a tombstone's key to the key columns.
func (s *Sink) keyFields(r *connect.Record) (map[string]json.RawMessage, error) {
	if r.Key == nil {
		return nil, errors.New("tombstone without a key: no row to delete")
	}
	if s.cfg.KeyColumn != "" && len(s.cfg.KeyColumns) == 1 && s.cfg.KeyColumns[0] == s.cfg.KeyColumn {
		k, _ := json.Marshal(string(r.Key))
		return map[string]json.RawMessage{s.cfg.KeyColumn: k}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(r.Key, &obj); err != nil || obj == nil {
		return nil, errors.New("tombstone's key is not a JSON object holding the key columns")
	}
	out := make(map[string]json.RawMessage, len(s.cfg.KeyColumns))
	for _, c := range s.cfg.KeyColumns {
		v, ok := obj[c]
		if !ok || string(v) == "null" {
			return nil, fmt.Errorf("tombstone's key has no %q", c)
		}
		out[c] = v
	}
	return out, nil
}

// lookup follows a dotted path through nested objects.
func lookup(obj map[string]json.RawMessage, path string) (json.RawMessage, bool) {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		v, ok := obj[p]
		if !ok {
			return nil, false
		}
		if i == len(parts)-1 {
			return v, true
		}
		obj = nil
		if json.Unmarshal(v, &obj) != nil || obj == nil {
			return nil, false
		}
	}
	return nil, false
}

func (s *Sink) checkColumns(fields map[string]json.RawMessage) error {
	for name := range fields {
		if !s.colSet[name] {
			return fmt.Errorf("field %q: table %s has no such column", name, s.table.Sanitize())
		}
	}
	return nil
}

// write writes rows and their progress in one transaction and returns how
// many rows it wrote: all, or those before the first row the table
// refused for good.
func (s *Sink) write(ctx context.Context, rows []row) (int, error) {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return 0, s.connErr("begin", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	for start, end := 0, 0; start < len(rows); start = end {
		end = s.chunkEnd(rows, start, len(rows))
		if err := s.insert(ctx, tx, rows[start:end]); err != nil {
			if !isRecordErr(err) {
				return 0, s.connErr("insert", err)
			}
			_ = tx.Rollback(ctx)
			return s.writeFindingBad(ctx, rows, start, end, err)
		}
	}
	if err := s.commit(ctx, tx, rows); err != nil {
		return 0, err
	}
	return len(rows), nil
}

// writeFindingBad runs after rows[start:end] failed as a batch: in a new
// transaction it writes the rows before start again, then the failed
// batch's rows one by one, each under a savepoint, up to the first one the
// table refuses; it commits what went in.
func (s *Sink) writeFindingBad(ctx context.Context, rows []row, start, end int, batchErr error) (int, error) {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return 0, s.connErr("begin", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	for i, j := 0, 0; i < start; i = j {
		j = s.chunkEnd(rows, i, start)
		if err := s.insert(ctx, tx, rows[i:j]); err != nil {
			return 0, s.connErr("insert", err)
		}
	}
	n := end
	for j := start; j < end; j++ {
		if _, err := tx.Exec(ctx, "savepoint braid_row"); err != nil {
			return 0, s.connErr("savepoint", err)
		}
		err := s.insert(ctx, tx, rows[j:j+1])
		if err == nil {
			continue
		}
		if !isRecordErr(err) {
			return 0, s.connErr("insert", err)
		}
		if _, err := tx.Exec(ctx, "rollback to savepoint braid_row"); err != nil {
			return 0, s.connErr("rollback to savepoint", err)
		}
		n = j
		break
	}
	if n == end {
		// Every row went in alone: the batch failed as a whole (two rows
		// of one upsert with keys PostgreSQL takes as equal, say).
		return 0, fmt.Errorf("postgres-sink: batch refused though each row is accepted alone: %w", batchErr)
	}
	if n == 0 {
		return 0, nil
	}
	if err := s.commit(ctx, tx, rows[:n]); err != nil {
		return 0, err
	}
	return n, nil
}

// badRow says why the table refuses r, for the BadRecordError: the
// error of inserting it alone, in a transaction rolled back.
func (s *Sink) badRow(ctx context.Context, r row) error {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return errors.New("refused by the table")
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if err := s.insert(ctx, tx, []row{r}); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return fmt.Errorf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
		}
		return err
	}
	return errors.New("refused by the table")
}

// commit records the rows' progress and commits.
func (s *Sink) commit(ctx context.Context, tx pgx.Tx, rows []row) error {
	progress := map[connect.ShardKey]int64{}
	for _, r := range rows {
		if r.offset+1 > progress[r.shard] {
			progress[r.shard] = r.offset + 1
		}
	}
	streams := make([]string, 0, len(progress))
	shards := make([]int32, 0, len(progress))
	offsets := make([]int64, 0, len(progress))
	for k, off := range progress {
		streams = append(streams, k.Stream)
		shards = append(shards, k.Shard)
		offsets = append(offsets, off)
	}
	_, err := tx.Exec(ctx, `insert into `+OffsetsTable+` (connector, stream, shard, next_offset)
		select $1, * from unnest($2::text[], $3::integer[], $4::bigint[])
		on conflict (connector, stream, shard) do update set next_offset = excluded.next_offset`,
		s.env.Name, streams, shards, offsets)
	if err != nil {
		return s.connErr("write progress", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.connErr("commit", err)
	}
	for k, off := range progress {
		s.next[k] = off
	}
	return nil
}

// insert writes rows with one statement: PostgreSQL converts the JSON to
// the column types (json_populate_recordset), so a type error is its
// judgement, not ours.
func (s *Sink) insert(ctx context.Context, tx pgx.Tx, rows []row) error {
	if rows[0].del {
		return s.delete(ctx, tx, rows)
	}
	present := map[string]bool{}
	for _, r := range rows {
		for c := range r.fields {
			present[c] = true
		}
	}
	var cols []string
	for _, c := range s.cols {
		if present[c] {
			cols = append(cols, c)
		}
	}
	if len(cols) == 0 {
		cols = []string{s.cols[0]} // all rows empty: insert defaults
	}
	if s.cfg.Mode == Upsert {
		rows = lastPerKey(rows, s.cfg.KeyColumns)
	}
	body := jsonArray(rows)
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	list := strings.Join(quoted, ", ")
	var sql strings.Builder
	fmt.Fprintf(&sql, "insert into %s (%s) select %s from json_populate_recordset(null::%s, $1::json)",
		s.table.Sanitize(), list, list, s.table.Sanitize())
	if s.cfg.Mode == Upsert {
		keys := make([]string, len(s.cfg.KeyColumns))
		isKey := map[string]bool{}
		for i, k := range s.cfg.KeyColumns {
			keys[i] = pgx.Identifier{k}.Sanitize()
			isKey[k] = true
		}
		var set []string
		for i, c := range cols {
			if !isKey[c] {
				set = append(set, quoted[i]+" = excluded."+quoted[i])
			}
		}
		fmt.Fprintf(&sql, " on conflict (%s) do ", strings.Join(keys, ", "))
		if len(set) == 0 {
			sql.WriteString("nothing")
		} else {
			sql.WriteString("update set " + strings.Join(set, ", "))
		}
	}
	_, err := tx.Exec(ctx, sql.String(), string(body))
	return err
}

// jsonArray is the rows as a JSON array of objects. The values are valid
// JSON already (cut from a decoded value), so they are written as they
// are, not encoded again.
func jsonArray(rows []row) []byte {
	body := make([]byte, 0, 64*len(rows))
	body = append(body, '[')
	for i := range rows {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, '{')
		first := true
		for name, v := range rows[i].fields {
			if !first {
				body = append(body, ',')
			}
			first = false
			q, _ := json.Marshal(name)
			body = append(body, q...)
			body = append(body, ':')
			body = append(body, v...)
		}
		body = append(body, '}')
	}
	body = append(body, ']')
	return body
}

// chunkEnd is where the statement that starts at rows[from] ends: after
// batch_size rows, at limit, or where writes and deletes change.
func (s *Sink) chunkEnd(rows []row, from, limit int) int {
	end := min(from+s.cfg.BatchSize, limit)
	for i := from + 1; i < end; i++ {
		if rows[i].del != rows[from].del {
			return i
		}
	}
	return end
}

// delete deletes the rows with the tombstones' keys.
func (s *Sink) delete(ctx context.Context, tx pgx.Tx, rows []row) error {
	var cond []string
	for _, k := range s.cfg.KeyColumns {
		q := pgx.Identifier{k}.Sanitize()
		cond = append(cond, "t."+q+" = d."+q)
	}
	sql := fmt.Sprintf("delete from %s t using json_populate_recordset(null::%s, $1::json) d where %s",
		s.table.Sanitize(), s.table.Sanitize(), strings.Join(cond, " and "))
	_, err := tx.Exec(ctx, sql, string(jsonArray(rows)))
	return err
}

// lastPerKey keeps, of rows with the same key, the last: one upsert
// statement may not touch a row twice.
func lastPerKey(rows []row, keys []string) []row {
	seen := make(map[string]int, len(rows))
	out := make([]row, 0, len(rows))
	var b strings.Builder
	for _, r := range rows {
		b.Reset()
		for _, k := range keys {
			b.Write(r.fields[k])
			b.WriteByte(0)
		}
		if i, ok := seen[b.String()]; ok {
			out[i] = r
			continue
		}
		seen[b.String()] = len(out)
		out = append(out, r)
	}
	return out
}

// isRecordErr says whether PostgreSQL refused a row for its content: a
// data exception (22), an integrity constraint (23: not null, check,
// unique, foreign key), a program limit (54: row too large), a datatype
// mismatch or undefined column.
func isRecordErr(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch {
	case strings.HasPrefix(pgErr.Code, "22"), strings.HasPrefix(pgErr.Code, "23"), strings.HasPrefix(pgErr.Code, "54"):
		return true
	case pgErr.Code == "42804", pgErr.Code == "42703":
		return true
	}
	return false
}

func (s *Sink) connErr(what string, err error) error {
	return fmt.Errorf("postgres-sink: %s: %w", what, err)
}

// Flush has nothing to do: Put commits.
func (s *Sink) Flush(ctx context.Context) error { return nil }

// Durable is the progress committed with the rows.
func (s *Sink) Durable() map[connect.ShardKey]int64 {
	return maps.Clone(s.next)
}

// Close closes the connection.
func (s *Sink) Close() error {
	if s.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.conn.Close(ctx)
	s.conn = nil
	return err
}
