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
