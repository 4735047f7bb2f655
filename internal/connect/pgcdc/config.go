package pgcdc

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/braidstream/braid/internal/connect/pgurl"
)

// Config is the connector's "config" object.
type Config struct {
	// URL is the PostgreSQL connection URL; its user needs the
	// REPLICATION attribute (and to own the tables to create a
	// publication).
	URL string `json:"url"`
	// Tables are the tables to stream, "schema.table" (or "table" for
	// public.table).
	Tables []string `json:"tables"`
	// Publication is the publication to read (default braid_<connector>);
	// created if missing.
	Publication string `json:"publication"`
	// Slot is the logical replication slot (default braid_<connector>);
	// created if missing.
	Slot string `json:"slot"`
	// Stream names the records' stream from {schema} and {table}
	// (default "{schema}.{table}").
	Stream string `json:"stream"`
	// Snapshot is "initial" (the default: on a first start, the rows
	// already in the tables come first, as op "r") or "never".
	Snapshot string `json:"snapshot"`
}

var (
	pgName        = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
	unsafeForSlot = regexp.MustCompile(`[^a-z0-9_]`)
)

// table is one configured table.
type table struct{ schema, name string }

func (t table) String() string        { return t.schema + "." + t.name }
func (t table) ident() pgx.Identifier { return pgx.Identifier{t.schema, t.name} }

func parseConfig(connector string, raw json.RawMessage) (Config, []table, error) {
	var c Config
	if len(raw) == 0 {
		return c, nil, errors.New("postgres-cdc: config is required (url, tables)")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, nil, fmt.Errorf("postgres-cdc: config: %w", err)
	}
	if c.URL == "" {
		return c, nil, errors.New("postgres-cdc: config: url is required")
	}
	if _, err := pgx.ParseConfig(c.URL); err != nil {
		return c, nil, fmt.Errorf("postgres-cdc: config: url: %s", pgurl.RedactErr(err, c.URL))
	}
	if len(c.Tables) == 0 {
		return c, nil, errors.New("postgres-cdc: config: tables is required (schema.table, ...)")
	}
	var tables []table
	seen := map[table]bool{}
	for _, s := range c.Tables {
		parts := strings.Split(s, ".")
		var t table
		switch {
		case len(parts) == 1 && parts[0] != "":
			t = table{"public", parts[0]}
		case len(parts) == 2 && parts[0] != "" && parts[1] != "":
			t = table{parts[0], parts[1]}
		default:
			return c, nil, fmt.Errorf("postgres-cdc: config: table %q: want schema.table", s)
		}
		if seen[t] {
			return c, nil, fmt.Errorf("postgres-cdc: config: table %s listed twice", t)
		}
		seen[t] = true
		tables = append(tables, t)
	}
	def := "braid_" + unsafeForSlot.ReplaceAllString(strings.ToLower(connector), "_")
	if len(def) > 63 {
		def = def[:63]
	}
	if c.Publication == "" {
		c.Publication = def
	}
	if c.Slot == "" {
		c.Slot = def
	}
	if !pgName.MatchString(c.Publication) {
		return c, nil, fmt.Errorf("postgres-cdc: config: publication %q: want [a-z0-9_]{1,63}", c.Publication)
	}
	if !pgName.MatchString(c.Slot) {
		return c, nil, fmt.Errorf("postgres-cdc: config: slot %q: want [a-z0-9_]{1,63}", c.Slot)
	}
	switch c.Snapshot {
	case "":
		c.Snapshot = "initial"
	case "initial", "never":
	default:
		return c, nil, fmt.Errorf("postgres-cdc: config: snapshot %q: want initial or never", c.Snapshot)
	}
	if c.Stream == "" {
		c.Stream = "{schema}.{table}"
	}
	rest := strings.NewReplacer("{schema}", "", "{table}", "").Replace(c.Stream)
	if strings.ContainsAny(rest, "{}") {
		return c, nil, fmt.Errorf("postgres-cdc: config: stream %q: only {schema} and {table} can be filled in", c.Stream)
	}
	return c, tables, nil
}

func (c Config) streamFor(schema, name string) string {
	return strings.NewReplacer("{schema}", schema, "{table}", name).Replace(c.Stream)
}
