package pgsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The target table: its columns, the config's check against it, and
// create_table.

// loadColumns reads the table's columns; none if it does not exist.
func (s *Sink) loadColumns(ctx context.Context) error {
	rows, err := s.conn.Query(ctx, `select attname from pg_attribute
		where attrelid = to_regclass($1) and attnum > 0 and not attisdropped order by attnum`, s.table.Sanitize())
	if err != nil {
		return fmt.Errorf("postgres-sink: read columns of %s: %w", s.table.Sanitize(), err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("postgres-sink: read columns of %s: %w", s.table.Sanitize(), err)
	}
	s.setColumns(cols)
	return nil
}

func (s *Sink) setColumns(cols []string) {
	if len(cols) == 0 {
		s.cols, s.colSet = nil, nil
		return
	}
	s.cols = cols
	s.colSet = make(map[string]bool, len(cols))
	for _, c := range cols {
		s.colSet[c] = true
	}
}

// checkTable checks an existing table against the config: mapped and key
// columns exist, and an upsert has a unique index on its key.
func (s *Sink) checkTable(ctx context.Context) error {
	if s.cols == nil {
		return nil
	}
	var want []string
	for col := range s.cfg.Columns {
		want = append(want, col)
	}
	want = append(want, s.cfg.KeyColumns...)
	if s.cfg.KeyColumn != "" {
		want = append(want, s.cfg.KeyColumn)
	}
	for _, c := range want {
		if !s.colSet[c] {
			return fmt.Errorf("postgres-sink: table %s has no column %q", s.table.Sanitize(), c)
		}
	}
	if s.cfg.Mode != Upsert {
		return nil
	}
	var ok bool
	err := s.conn.QueryRow(ctx, `select exists (
		select 1 from pg_index i where i.indrelid = to_regclass($1) and i.indisunique and i.indpred is null
		and i.indexprs is null
		and (select array_agg(a.attname::text order by a.attname) from pg_attribute a
		     where a.attrelid = i.indrelid and a.attnum = any(i.indkey))
		  = (select array_agg(k order by k) from unnest($2::text[]) k))`,
		s.table.Sanitize(), s.cfg.KeyColumns).Scan(&ok)
	if err != nil {
		return fmt.Errorf("postgres-sink: read indexes of %s: %w", s.table.Sanitize(), err)
	}
	if !ok {
		return fmt.Errorf("postgres-sink: mode upsert needs a primary key or unique index on %s (%s)",
			s.table.Sanitize(), strings.Join(s.cfg.KeyColumns, ", "))
	}
	return nil
}

// createTable creates the table from the first batch: ColumnTypes where
// given, else a type inferred from the JSON values.
func (s *Sink) createTable(ctx context.Context, rows []row) error {
	var order []string
	kinds := map[string]string{}
	for _, r := range rows {
		names := make([]string, 0, len(r.fields))
		for c := range r.fields {
			names = append(names, c)
		}
		sort.Strings(names)
		for _, c := range names {
			if _, ok := kinds[c]; !ok {
				order = append(order, c)
			}
			kinds[c] = widen(kinds[c], jsonKind(r.fields[c]))
		}
	}
	for _, k := range s.cfg.KeyColumns {
		if _, ok := kinds[k]; !ok {
			order = append(order, k)
			kinds[k] = ""
		}
	}
	defs := make([]string, len(order))
	for i, c := range order {
		typ := s.cfg.ColumnTypes[c]
		if typ == "" {
			typ = sqlType(kinds[c])
		}
		defs[i] = pgx.Identifier{c}.Sanitize() + " " + typ
	}
	if s.cfg.Mode == Upsert {
		keys := make([]string, len(s.cfg.KeyColumns))
		for i, k := range s.cfg.KeyColumns {
			keys[i] = pgx.Identifier{k}.Sanitize()
		}
		defs = append(defs, "primary key ("+strings.Join(keys, ", ")+")")
	}
	sql := "create table if not exists " + s.table.Sanitize() + " (" + strings.Join(defs, ", ") + ")"
	if _, err := s.conn.Exec(ctx, sql); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return fmt.Errorf("postgres-sink: create table: %s: %w", sql, err)
		}
		return s.connErr("create table", err)
	}
	if s.env.Logger != nil {
		s.env.Logger.Info("postgres-sink: created table", "sql", sql)
	}
	if err := s.loadColumns(ctx); err != nil {
		return err
	}
	return s.checkTable(ctx)
}

// jsonKind is the kind of a JSON value: bool, int, number, string, json
// (object or array) or "" (null).
func jsonKind(v json.RawMessage) string {
	if len(v) == 0 {
		return ""
	}
	switch v[0] {
	case 't', 'f':
		return "bool"
	case '"':
		return "string"
	case '{', '[':
		return "json"
	case 'n':
		return ""
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		if _, err := n.Int64(); err == nil {
			return "int"
		}
	}
	return "number"
}

// widen is the kind that holds values of both kinds.
func widen(a, b string) string {
	switch {
	case a == b || b == "":
		return a
	case a == "":
		return b
	case (a == "int" && b == "number") || (a == "number" && b == "int"):
		return "number"
	}
	return "string"
}

func sqlType(kind string) string {
	switch kind {
	case "bool":
		return "boolean"
	case "int":
		return "bigint"
	case "number":
		return "double precision"
	case "json":
		return "jsonb"
	}
	return "text"
}
