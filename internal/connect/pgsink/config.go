package pgsink

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/braidstream/braid/internal/connect/pgurl"
)

// Mode is how rows are written.
type Mode string

const (
	// Insert appends every record as a new row.
	Insert Mode = "insert"
	// Upsert inserts a row or replaces the one with the same key.
	Upsert Mode = "upsert"
)

// Config is the connector's "config" object.
type Config struct {
	// URL is the PostgreSQL connection URL (postgres://user:pass@host/db).
	URL string `json:"url"`
	// Table is "table" or "schema.table".
	Table string `json:"table"`
	// Mode is insert (the default) or upsert.
	Mode Mode `json:"mode"`
	// KeyColumns are the columns an upsert matches rows by; they need a
	// unique index (create_table makes them the primary key). Default:
	// [KeyColumn].
	KeyColumns []string `json:"key_columns"`
	// KeyColumn, if set, gets the record's key as text. Default in upsert
	// mode without key_columns: "key".
	KeyColumn string `json:"key_column"`
	// Columns maps a column to a field path of the record's JSON value
	// ("customer.id" reads a nested field). Default: every top-level
	// field into the column of the same name.
	Columns map[string]string `json:"columns"`
	// CreateTable creates the table if it does not exist, with the column
	// types of ColumnTypes or else inferred from the first batch.
	CreateTable bool `json:"create_table"`
	// ColumnTypes gives SQL types for create_table ({"total": "numeric"}).
	ColumnTypes map[string]string `json:"column_types"`
	// BatchSize is the number of rows per INSERT statement (default 500).
	BatchSize int `json:"batch_size"`
	// Deletes (mode upsert) makes a tombstone (a record with a null
	// value) delete the row with its key: the record key in key_column,
	// or, with key_columns, the record key as a JSON object holding them
	// (as postgres-cdc writes keys). Default: a tombstone is refused.
	Deletes bool `json:"deletes"`
}

const defaultBatchSize = 500

// parseConfig reads and checks a config object; it does not connect.
func parseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if len(raw) == 0 {
		return c, errors.New("postgres-sink: config is required (url, table)")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("postgres-sink: config: %w", err)
	}
	if c.URL == "" {
		return c, errors.New("postgres-sink: config: url is required")
	}
	if _, err := pgx.ParseConfig(c.URL); err != nil {
		return c, fmt.Errorf("postgres-sink: config: url: %v", pgurl.RedactErr(err, c.URL))
	}
	if c.Table == "" {
		return c, errors.New("postgres-sink: config: table is required")
	}
	if len(strings.Split(c.Table, ".")) > 2 {
		return c, fmt.Errorf("postgres-sink: config: table %q: want table or schema.table", c.Table)
	}
	switch c.Mode {
	case "":
		c.Mode = Insert
	case Insert, Upsert:
	default:
		return c, fmt.Errorf("postgres-sink: config: mode %q: want insert or upsert", c.Mode)
	}
	if c.Mode == Upsert && len(c.KeyColumns) == 0 {
		if c.KeyColumn == "" {
			c.KeyColumn = "key"
		}
		c.KeyColumns = []string{c.KeyColumn}
	}
	if c.Deletes && c.Mode != Upsert {
		return c, errors.New("postgres-sink: config: deletes is for mode upsert")
	}
	if c.Mode == Insert && len(c.KeyColumns) > 0 {
		return c, errors.New("postgres-sink: config: key_columns is for mode upsert")
	}
	for col, path := range c.Columns {
		if col == "" || path == "" {
			return c, fmt.Errorf("postgres-sink: config: columns: empty column or path (%q: %q)", col, path)
		}
		if col == c.KeyColumn {
			return c, fmt.Errorf("postgres-sink: config: column %q is both key_column and in columns", col)
		}
	}
	if len(c.Columns) > 0 {
		for _, k := range c.KeyColumns {
			if _, ok := c.Columns[k]; !ok && k != c.KeyColumn {
				return c, fmt.Errorf("postgres-sink: config: key column %q is neither key_column nor in columns", k)
			}
		}
	}
	switch {
	case c.BatchSize == 0:
		c.BatchSize = defaultBatchSize
	case c.BatchSize < 0 || c.BatchSize > 100000:
		return c, fmt.Errorf("postgres-sink: config: batch_size %d: want 1..100000", c.BatchSize)
	}
	return c, nil
}

// splitTable splits "schema.table" (schema may be absent).
func splitTable(name string) pgx.Identifier {
	return pgx.Identifier(strings.Split(name, "."))
}
