package s3sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	pgzip "github.com/parquet-go/parquet-go/compress/gzip"
	psnappy "github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	pzstd "github.com/parquet-go/parquet-go/compress/zstd"
	fastjson "github.com/segmentio/encoding/json"
)

// ErrNotJSON is a record value that is not one JSON value.
var ErrNotJSON = errors.New("s3-sink: value is not JSON")

// ErrNotObject is a value parquet cannot take: not a JSON object.
var ErrNotObject = errors.New("s3-sink: parquet needs a JSON object value")

// ErrEmptyObject is {} for parquet without a configured schema.
var ErrEmptyObject = errors.New("s3-sink: parquet without a schema needs a value with at least one field")

// ErrSchema is a value a configured parquet schema refuses.
var ErrSchema = errors.New("s3-sink: value does not fit the schema")

// codec is a Format's encoding of one object's values: check refuses a
// value for good at Put, encode writes the object at roll. Both are
// deterministic: the same values give the same bytes, which is what
// lets a replay rewrite an object identically.
type codec interface {
	// check validates one value and returns what encode needs of it.
	check(value []byte) (any, error)
	encode(rows []any) ([]byte, error)
	ext() string
	contentType() string
}

func newCodec(c Config) codec {
	if c.Format == "parquet" {
		return &parquetCodec{compression: c.Compression, schema: c.Schema}
	}
	return &jsonlCodec{compression: c.Compression}
}

// jsonlCodec writes one compact JSON value per line, the whole object
// compressed with Compression. A nil value (a tombstone) is a null line.
type jsonlCodec struct{ compression string }

func (j *jsonlCodec) check(value []byte) (any, error) {
	if value == nil {
		return []byte("null"), nil
	}
	if !fastjson.Valid(value) {
		var b bytes.Buffer
		err := json.Compact(&b, value) // for its message: where the value breaks
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if !bytes.ContainsAny(value, "\r\n") {
		return value, nil // one line already: written as the producer wrote it
	}
	// Only insignificant whitespace can hold a line break: compact it
	// away so the value stays one line.
	var b bytes.Buffer
	json.Compact(&b, value) //nolint:errcheck // valid, checked above
	return b.Bytes(), nil
}

func (j *jsonlCodec) encode(rows []any) ([]byte, error) {
	var out bytes.Buffer
	var w io.Writer = &out
	var closer io.Closer
	switch j.compression {
	case "gzip":
		gz, _ := gzip.NewWriterLevel(&out, gzip.DefaultCompression)
		w, closer = gz, gz
	case "zstd":
		zw, err := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		w, closer = zw, zw
	case "snappy":
		sw := snappy.NewBufferedWriter(&out)
		w, closer = sw, sw
	}
	for _, r := range rows {
		line := r.([]byte)
		if _, err := w.Write(line); err != nil {
			return nil, err
		}
		if _, err := w.Write([]byte{'\n'}); err != nil {
			return nil, err
		}
	}
	if closer != nil {
		if err := closer.Close(); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}

func (j *jsonlCodec) ext() string {
	switch j.compression {
	case "gzip":
		return ".jsonl.gz"
	case "zstd":
		return ".jsonl.zst"
	case "snappy":
		return ".jsonl.sz"
	}
	return ".jsonl"
}

func (j *jsonlCodec) contentType() string { return "application/x-ndjson" }

// kind is a parquet column's type.
type kind int

const (
	kindNull kind = iota
	kindString
	kindInt64
	kindDouble
	kindBoolean
	kindJSON
)

var kindNames = map[string]kind{"string": kindString, "int64": kindInt64, "double": kindDouble, "boolean": kindBoolean, "json": kindJSON}

// kindOf classifies one raw JSON field value.
func kindOf(raw json.RawMessage) kind {
	switch raw[0] {
	case 'n':
		return kindNull
	case '"':
		return kindString
	case 't', 'f':
		return kindBoolean
	case '{', '[':
		return kindJSON
	}
	if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return kindInt64
	}
	return kindDouble
}

// merge is the column type of two fields' types: the same type stays,
// int64 and double give double, anything else gives string.
func merge(a, b kind) kind {
	switch {
	case a == kindNull:
		return b
	case b == kindNull || a == b:
		return a
	case (a == kindInt64 && b == kindDouble) || (a == kindDouble && b == kindInt64):
		return kindDouble
	}
	return kindString
}

// parquetCodec writes a parquet file with one row group per object. Its
// columns are the configured schema, or else the union of the top-level
// fields of the object's values, each optional, typed by merge.
type parquetCodec struct {
	compression string
	schema      []Column
	schemaTypes map[string]string // schema's name -> type
}

func (p *parquetCodec) check(value []byte) (any, error) {
	if !fastjson.Valid(value) {
		return nil, ErrNotJSON
	}
	fields, ok := objectFields(value)
	if !ok {
		return nil, ErrNotObject
	}
	if p.schema == nil {
		if len(fields) == 0 {
			// A file of objects that are all {} would have no column,
			// and parquet counts rows by their columns: the records
			// would vanish.
			return nil, ErrEmptyObject
		}
		return fields, nil
	}
	if p.schemaTypes == nil {
		p.schemaTypes = map[string]string{}
		for _, c := range p.schema {
			p.schemaTypes[c.Name] = c.Type
		}
	}
	for _, f := range fields {
		typ, ok := p.schemaTypes[f.name]
		if !ok {
			continue
		}
		got, want := kindOf(f.raw), kindNames[typ]
		if got == kindNull || got == want || want == kindJSON || (want == kindDouble && got == kindInt64) {
			continue
		}
		return nil, fmt.Errorf("%w: field %q is %s, the schema says %s", ErrSchema, f.name, kindName(got), typ)
	}
	return fields, nil
}

// field is one top-level field of a JSON object value.
type field struct {
	name string
	raw  json.RawMessage
}

// objectFields splits a valid JSON value into its top-level fields, in
// order (a repeated name: the last one counts, as in encoding/json); ok
// is false for a value that is not an object. It scans instead of
// decoding into a map: a map per record was most of the parquet path's
// time.
func objectFields(v []byte) (fields []field, ok bool) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return nil, false
	}
	fields = make([]field, 0, 8)
	i = skipSpace(v, i+1)
	if v[i] == '}' {
		return fields, true
	}
	for {
		end := stringEnd(v, i)
		name := string(v[i+1 : end-1])
		if bytes.IndexByte(v[i:end], '\\') >= 0 {
			if err := json.Unmarshal(v[i:end], &name); err != nil {
				return nil, false
			}
		}
		i = skipSpace(v, skipSpace(v, end)+1) // past the colon
		vend := valueEnd(v, i)
		fields = append(fields, field{name: name, raw: v[i:vend]})
		i = skipSpace(v, vend)
		if v[i] != ',' {
			return fields, true // the closing brace
		}
		i = skipSpace(v, i+1)
	}
}

func skipSpace(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

// stringEnd is the index after the string that opens at v[i].
func stringEnd(v []byte, i int) int {
	for i++; v[i] != '"'; i++ {
		if v[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// valueEnd is the index after the value that starts at v[i].
func valueEnd(v []byte, i int) int {
	switch v[i] {
	case '"':
		return stringEnd(v, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch v[i] {
			case '"':
				i = stringEnd(v, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for ; i < len(v); i++ { // a number, true, false or null
		switch v[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}

func kindName(k kind) string {
	for n, v := range kindNames {
		if v == k {
			return n
		}
	}
	return "null"
}

func (p *parquetCodec) columns(rows []any) map[string]kind {
	cols := map[string]kind{}
	if len(p.schema) > 0 {
		for _, c := range p.schema {
			cols[c.Name] = kindNames[c.Type]
		}
		return cols
	}
	for _, r := range rows {
		for _, f := range r.([]field) {
			cols[f.name] = merge(cols[f.name], kindOf(f.raw))
		}
	}
	for name, k := range cols {
		if k == kindNull { // only nulls seen: a string column of nulls
			cols[name] = kindString
		}
	}
	return cols
}

func (p *parquetCodec) encode(rows []any) ([]byte, error) {
	cols := p.columns(rows)
	group := parquet.Group{}
	for name, k := range cols {
		var n parquet.Node
		switch k {
		case kindString:
			n = parquet.String()
		case kindInt64:
			n = parquet.Leaf(parquet.Int64Type)
		case kindDouble:
			n = parquet.Leaf(parquet.DoubleType)
		case kindBoolean:
			n = parquet.Leaf(parquet.BooleanType)
		case kindJSON:
			n = parquet.JSON()
		}
		group[name] = parquet.Optional(n)
	}
	schema := parquet.NewSchema("record", group)
	// The schema's leaf columns, in its (sorted) column order.
	names := make([]string, 0, len(cols))
	for _, path := range schema.Columns() {
		names = append(names, path[0])
	}
	if !sort.StringsAreSorted(names) {
		return nil, errors.New("s3-sink: parquet columns out of order")
	}
	var out bytes.Buffer
	w := parquet.NewWriter(&out, schema, parquet.Compression(parquetCompression(p.compression)))
	index := make(map[string]int, len(names))
	for i, name := range names {
		index[name] = i
	}
	kinds := make([]kind, len(names))
	for i, name := range names {
		kinds[i] = cols[name]
	}
	batch := make([]parquet.Row, 0, 256)
	raws := make([]json.RawMessage, len(names))
	for _, r := range rows {
		clear(raws)
		for _, f := range r.([]field) {
			if i, ok := index[f.name]; ok {
				raws[i] = f.raw
			}
		}
		row := make(parquet.Row, len(names))
		for i, raw := range raws {
			v, err := parquetValue(kinds[i], raw)
			if err != nil {
				return nil, err
			}
			if v.IsNull() {
				row[i] = v.Level(0, 0, i)
			} else {
				row[i] = v.Level(0, 1, i)
			}
		}
		batch = append(batch, row)
		if len(batch) == cap(batch) {
			if _, err := w.WriteRows(batch); err != nil {
				return nil, err
			}
			batch = batch[:0]
		}
	}
	if _, err := w.WriteRows(batch); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// parquetValue converts one raw field to its column's type; a field of
// another type in a string column is kept as its JSON text.
func parquetValue(k kind, raw json.RawMessage) (parquet.Value, error) {
	if raw == nil || kindOf(raw) == kindNull {
		return parquet.NullValue(), nil
	}
	switch k {
	case kindString:
		if kindOf(raw) == kindString {
			if bytes.IndexByte(raw, '\\') < 0 { // nothing escaped: the text between the quotes
				return parquet.ValueOf(string(raw[1 : len(raw)-1])), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return parquet.Value{}, err
			}
			return parquet.ValueOf(s), nil
		}
		return parquet.ValueOf(compact(raw)), nil
	case kindInt64:
		n, err := strconv.ParseInt(string(raw), 10, 64)
		return parquet.ValueOf(n), err
	case kindDouble:
		f, err := strconv.ParseFloat(string(raw), 64)
		return parquet.ValueOf(f), err
	case kindBoolean:
		return parquet.ValueOf(raw[0] == 't'), nil
	}
	return parquet.ValueOf([]byte(compact(raw))), nil
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func parquetCompression(name string) compress.Codec {
	switch name {
	case "gzip":
		return &pgzip.Codec{}
	case "zstd":
		return &pzstd.Codec{}
	case "snappy":
		return &psnappy.Codec{}
	}
	return &uncompressed.Codec{}
}

func (p *parquetCodec) ext() string         { return ".parquet" }
func (p *parquetCodec) contentType() string { return "application/vnd.apache.parquet" }
