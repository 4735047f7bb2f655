package s3sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the "config" object of an s3-sink definition.
type Config struct {
	// Endpoint is the S3 API's URL (http://127.0.0.1:9000 for a local
	// S3-compatible server); empty means AWS's own endpoint for Region.
	Endpoint string `json:"endpoint"`
	// Region is the bucket's region. Default us-east-1.
	Region string `json:"region"`
	Bucket string `json:"bucket"`
	// AccessKey and SecretKey are static credentials; when both are empty
	// the AWS SDK's default chain is used (environment, shared files,
	// instance role).
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	// PathStyle addresses the bucket as endpoint/bucket/key instead of
	// bucket.endpoint/key (most S3-compatible servers need it).
	PathStyle bool `json:"path_style"`
	// Prefix is the template of the key's folder: {stream}, {shard},
	// {dt} (yyyy-mm-dd) and {hour} (HH) of the object's first record's
	// timestamp in UTC. Default "{stream}/".
	Prefix string `json:"prefix"`
	// Format is jsonl (default) or parquet.
	Format string `json:"format"`
	// Compression is none (default), gzip, zstd or snappy. For jsonl it
	// compresses the whole object; for parquet it is the column codec.
	Compression string `json:"compression"`
	// An object is rolled (written) when its records' values reach
	// MaxBytes (default 32 MiB, counted uncompressed), when it holds
	// MaxRecords (0, the default: no limit), or MaxAge after its first
	// record arrived (default 5m; "0s" turns rolling by time off).
	MaxBytes   int64     `json:"max_bytes"`
	MaxRecords int64     `json:"max_records"`
	MaxAge     *Duration `json:"max_age"`
	// Schema fixes the parquet columns; without it they are inferred
	// from each object's records.
	Schema []Column `json:"schema"`
}

// Column is one parquet column of a configured schema.
type Column struct {
	Name string `json:"name"`
	// Type is string, int64, double, boolean or json (a nested value
	// kept as its JSON text).
	Type string `json:"type"`
}

// Duration is a time.Duration written as "30s", "5m" in a definition.
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"5m\": %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", s)
	}
	d.Duration = v
	return nil
}

const (
	defaultRegion   = "us-east-1"
	defaultPrefix   = "{stream}/"
	defaultMaxBytes = 32 << 20
	defaultMaxAge   = 5 * time.Minute
)

var (
	formats      = map[string]bool{"jsonl": true, "parquet": true}
	compressions = map[string]bool{"none": true, "gzip": true, "zstd": true, "snappy": true}
	columnTypes  = map[string]bool{"string": true, "int64": true, "double": true, "boolean": true, "json": true}
	prefixFields = map[string]bool{"stream": true, "shard": true, "dt": true, "hour": true}
)

// ParseConfig reads and checks a config object, filling in defaults.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(raw)) == 0 {
		return c, errors.New("s3-sink: config is required (bucket at least)")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("s3-sink: config: %w", err)
	}
	if c.Region == "" {
		c.Region = defaultRegion
	}
	if c.Prefix == "" {
		c.Prefix = defaultPrefix
	}
	if c.Format == "" {
		c.Format = "jsonl"
	}
	if c.Compression == "" {
		c.Compression = "none"
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = defaultMaxBytes
	}
	if c.MaxAge == nil {
		c.MaxAge = &Duration{defaultMaxAge}
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Bucket == "" {
		bad("bucket is required")
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		bad("access_key and secret_key go together (or leave both out for the AWS default chain)")
	}
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
		bad("endpoint %q must start with http:// or https://", c.Endpoint)
	}
	if !formats[c.Format] {
		bad("format %q: want jsonl or parquet", c.Format)
	}
	if !compressions[c.Compression] {
		bad("compression %q: want none, gzip, zstd or snappy", c.Compression)
	}
	if c.MaxBytes < 0 {
		bad("max_bytes %d must be positive", c.MaxBytes)
	}
	if c.MaxRecords < 0 {
		bad("max_records %d must be positive (0: no limit)", c.MaxRecords)
	}
	if _, err := parsePrefix(c.Prefix); err != nil {
		bad("%v", err)
	}
	if len(c.Schema) > 0 && c.Format != "parquet" {
		bad("schema is for format parquet only")
	}
	seen := map[string]bool{}
	for i, col := range c.Schema {
		if col.Name == "" {
			bad("schema[%d]: name is required", i)
		}
		if seen[col.Name] {
			bad("schema[%d]: column %q twice", i, col.Name)
		}
		seen[col.Name] = true
		if !columnTypes[col.Type] {
			bad("schema[%d] (%s): type %q: want string, int64, double, boolean or json", i, col.Name, col.Type)
		}
	}
	if len(errs) > 0 {
		return errors.New("s3-sink: config: " + strings.Join(errs, "; "))
	}
	return nil
}

// prefix is a parsed key template: literal text and {field}s.
type prefix struct {
	parts []prefixPart
	// root is the literal start up to its last "/": the folder all the
	// connector's keys share, where its state objects go (_braid/...).
	root string
}

type prefixPart struct {
	literal string
	field   string
}

func parsePrefix(tmpl string) (prefix, error) {
	var p prefix
	if strings.HasPrefix(tmpl, "/") {
		return p, fmt.Errorf("prefix %q must not start with /", tmpl)
	}
	rest := tmpl
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			p.parts = append(p.parts, prefixPart{literal: rest})
			break
		}
		if open > 0 {
			p.parts = append(p.parts, prefixPart{literal: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return p, fmt.Errorf("prefix %q: unclosed {", tmpl)
		}
		field := rest[open+1 : open+end]
		if !prefixFields[field] {
			return p, fmt.Errorf("prefix %q: unknown field {%s} (known: {stream}, {shard}, {dt}, {hour})", tmpl, field)
		}
		p.parts = append(p.parts, prefixPart{field: field})
		rest = rest[open+end+1:]
	}
	lit := tmpl
	if i := strings.IndexByte(lit, '{'); i >= 0 {
		lit = lit[:i]
	}
	if i := strings.LastIndexByte(lit, '/'); i >= 0 {
		p.root = lit[:i+1]
	}
	return p, nil
}

// render fills the template for one object: its stream, shard and first
// record's timestamp.
func (p prefix) render(stream string, shard int32, ts time.Time) string {
	var b strings.Builder
	ts = ts.UTC()
	for _, part := range p.parts {
		switch part.field {
		case "":
			b.WriteString(part.literal)
		case "stream":
			b.WriteString(stream)
		case "shard":
			fmt.Fprintf(&b, "%d", shard)
		case "dt":
			b.WriteString(ts.Format("2006-01-02"))
		case "hour":
			b.WriteString(ts.Format("15"))
		}
	}
	return b.String()
}
