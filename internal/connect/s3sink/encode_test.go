package s3sink

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestParquetEmptyObjects: without a schema {} is refused (a file of
// them would have no column and so no rows); with one it is a row of
// nulls.
func TestParquetEmptyObjects(t *testing.T) {
	if _, err := (&parquetCodec{}).check([]byte(`{ }`)); !errors.Is(err, ErrEmptyObject) {
		t.Fatalf("{} without a schema: %v, want ErrEmptyObject", err)
	}
	c := &parquetCodec{compression: "zstd", schema: []Column{{Name: "a", Type: "int64"}}}
	var rows []any
	for _, v := range []string{`{}`, `{"b": 1}`} {
		r, err := c.check([]byte(v))
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	body, err := c.encode(rows)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != 2 {
		t.Fatalf("%d rows, want 2", f.NumRows())
	}
}

// A JSON lines value stays one line: one already on one line is written as
// the producer wrote it; line breaks (whitespace only, in valid JSON) are
// compacted away; anything not JSON is refused.
func TestJSONLValueOneLine(t *testing.T) {
	j := &jsonlCodec{}
	for _, c := range []struct{ in, want string }{
		{`{"a": 1, "b": [1, 2]}`, `{"a": 1, "b": [1, 2]}`},
		{"{\n  \"a\": 1,\r\n  \"s\": \"x\\ny\"\n}", `{"a":1,"s":"x\ny"}`},
		{`"text"`, `"text"`},
	} {
		got, err := j.check([]byte(c.in))
		if err != nil || string(got.([]byte)) != c.want {
			t.Errorf("check(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`{"a": }`, "not json", `{"a": 1} {"b": 2}`} {
		if _, err := j.check([]byte(bad)); !errors.Is(err, ErrNotJSON) {
			t.Errorf("check(%q): %v, want ErrNotJSON", bad, err)
		}
	}
}
