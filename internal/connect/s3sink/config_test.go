package s3sink

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"bucket": "b"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "us-east-1" || c.Prefix != "{stream}/" || c.Format != "jsonl" || c.Compression != "none" ||
		c.MaxBytes != 32<<20 || c.MaxRecords != 0 || c.MaxAge.Duration != 5*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	for _, tc := range []struct{ name, cfg, want string }{
		{"empty", ``, "config is required"},
		{"no bucket", `{}`, "bucket is required"},
		{"unknown field", `{"bucket": "b", "buckt": "c"}`, `unknown field "buckt"`},
		{"format", `{"bucket": "b", "format": "csv"}`, `format "csv"`},
		{"compression", `{"bucket": "b", "compression": "lz4"}`, `compression "lz4"`},
		{"prefix field", `{"bucket": "b", "prefix": "{stream}/{day}/"}`, "unknown field {day}"},
		{"prefix brace", `{"bucket": "b", "prefix": "{stream/"}`, "unclosed {"},
		{"prefix slash", `{"bucket": "b", "prefix": "/x/"}`, "must not start with /"},
		{"max_age", `{"bucket": "b", "max_age": "soon"}`, "invalid duration"},
		{"max_age number", `{"bucket": "b", "max_age": 5}`, "a duration is a string"},
		{"negative", `{"bucket": "b", "max_bytes": -1}`, "max_bytes -1"},
		{"half credentials", `{"bucket": "b", "access_key": "a"}`, "go together"},
		{"endpoint", `{"bucket": "b", "endpoint": "localhost:9000"}`, "must start with http"},
		{"schema on jsonl", `{"bucket": "b", "schema": [{"name": "a", "type": "string"}]}`, "format parquet only"},
		{"schema type", `{"bucket": "b", "format": "parquet", "schema": [{"name": "a", "type": "date"}]}`, `type "date"`},
		{"schema twice", `{"bucket": "b", "format": "parquet", "schema": [{"name": "a", "type": "string"}, {"name": "a", "type": "json"}]}`, `column "a" twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.cfg))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseConfig(%s) = %v, want an error saying %q", tc.cfg, err, tc.want)
			}
		})
	}
}

func TestPrefix(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 7*3600)) // 2026-01-01T20:04:05Z
	for _, tc := range []struct{ tmpl, want, root string }{
		{"{stream}/", "orders/", ""},
		{"archive/{stream}/dt={dt}/hour={hour}/", "archive/orders/dt=2026-01-01/hour=20/", "archive/"},
		{"a/b/x-{shard}-{stream}", "a/b/x-7-orders", "a/b/"},
		{"flat/", "flat/", "flat/"},
	} {
		p, err := parsePrefix(tc.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.render("orders", 7, ts); got != tc.want || p.root != tc.root {
			t.Errorf("%s: render %q root %q, want %q, %q", tc.tmpl, got, p.root, tc.want, tc.root)
		}
	}
}
