package httpsource

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/connect"
)

// wireRecord is one record object of a request body.
type wireRecord struct {
	Key           json.RawMessage   `json:"key"`
	Value         json.RawMessage   `json:"value"`
	Stream        *string           `json:"stream"`
	Headers       map[string]string `json:"headers"`
	KeyEncoding   string            `json:"key_encoding"`
	ValueEncoding string            `json:"value_encoding"`
}

// parseBody decodes a request body into records stamped with now. The
// error names where the body is wrong; no records come with it.
//
// One decoder reads the whole body; only a body it refuses is read again,
// item by item, to say where it is wrong.
func parseBody(body []byte, mode string, now time.Time) ([]connect.Record, error) {
	recs, ok := parseFast(body, mode, now)
	if ok {
		return recs, nil
	}
	if _, err := parseItems(body, mode, now); err != nil {
		return nil, err
	}
	return nil, errors.New("malformed body") // the two readers disagree; not reached
}

// parseFast decodes a well-formed body; ok is false for anything else.
func parseFast(body []byte, mode string, now time.Time) (recs []connect.Record, ok bool) {
	trimmed := bytes.TrimLeft(body, jsonSpace)
	isArray := len(trimmed) > 0 && trimmed[0] == '['
	if mode == bodyValues {
		var raws []json.RawMessage
		if isArray {
			if json.Unmarshal(body, &raws) != nil {
				return nil, false
			}
		} else {
			dec := json.NewDecoder(bytes.NewReader(body))
			for {
				var raw json.RawMessage
				if err := dec.Decode(&raw); err == io.EOF {
					break
				} else if err != nil {
					return nil, false
				}
				raws = append(raws, raw)
			}
			if len(raws) != nonBlankLines(body) {
				return nil, false
			}
		}
		recs = make([]connect.Record, len(raws))
		for i, raw := range raws {
			recs[i] = connect.Record{Value: compact(raw), Timestamp: now}
		}
		return recs, true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var ws []*wireRecord
	if isArray {
		if dec.Decode(&ws) != nil || dec.More() {
			return nil, false
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, false
		}
	} else {
		for {
			var w *wireRecord
			if err := dec.Decode(&w); err == io.EOF {
				break
			} else if err != nil {
				return nil, false
			}
			ws = append(ws, w)
		}
		if len(ws) != nonBlankLines(body) {
			return nil, false
		}
	}
	recs = make([]connect.Record, len(ws))
	for i, w := range ws {
		if w == nil {
			return nil, false
		}
		r, err := w.record()
		if err != nil {
			return nil, false
		}
		r.Timestamp = now
		recs[i] = r
	}
	return recs, true
}

// jsonSpace is JSON's whitespace (bytes.TrimSpace also trims \f and \v,
// which JSON refuses).
const jsonSpace = " \t\r\n"

func blank(line []byte) bool { return len(bytes.Trim(line, jsonSpace)) == 0 }

func nonBlankLines(body []byte) int {
	n := 0
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if !blank(line) {
			n++
		}
	}
	return n
}

// parseItems reads body item by item and says where it is wrong.
func parseItems(body []byte, mode string, now time.Time) ([]connect.Record, error) {
	trimmed := bytes.TrimLeft(body, jsonSpace)
	var items []item
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, locate(body, 0, err)
		}
		for i, r := range raws {
			items = append(items, item{raw: r, where: fmt.Sprintf("record %d", i)})
		}
	} else {
		line, start := 1, 0
		for start < len(body) {
			end := bytes.IndexByte(body[start:], '\n')
			if end < 0 {
				end = len(body)
			} else {
				end += start
			}
			l := body[start:end]
			if !blank(l) {
				if !json.Valid(l) {
					var v any
					return nil, locate(body, start, json.Unmarshal(l, &v))
				}
				items = append(items, item{raw: l, where: fmt.Sprintf("line %d", line)})
			}
			line++
			start = end + 1
		}
	}
	recs := make([]connect.Record, 0, len(items))
	for _, it := range items {
		r, err := it.record(mode)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.where, err)
		}
		r.Timestamp = now
		recs = append(recs, r)
	}
	return recs, nil
}

type item struct {
	raw   json.RawMessage
	where string
}

func (it item) record(mode string) (connect.Record, error) {
	if mode == bodyValues {
		return connect.Record{Value: compact(it.raw)}, nil
	}
	if t := bytes.Trim(it.raw, jsonSpace); len(t) == 0 || t[0] != '{' {
		return connect.Record{}, errors.New(`not a record object (send {"key":..,"value":..}, or set body: values for plain values)`)
	}
	var w wireRecord
	dec := json.NewDecoder(bytes.NewReader(it.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return connect.Record{}, err
	}
	return w.record()
}

func (w *wireRecord) record() (connect.Record, error) {
	var r connect.Record
	var err error
	if r.Key, err = payload("key", w.Key, w.KeyEncoding); err != nil {
		return r, err
	}
	if r.Value, err = payload("value", w.Value, w.ValueEncoding); err != nil {
		return r, err
	}
	if w.Stream != nil {
		if err := catalog.ValidateName(*w.Stream); err != nil {
			return r, fmt.Errorf("stream: %w", err)
		}
		r.Stream = *w.Stream
	}
	names := make([]string, 0, len(w.Headers))
	for k := range w.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		r.Headers = append(r.Headers, connect.Header{Key: k, Value: []byte(w.Headers[k])})
	}
	return r, nil
}

// payload is a key's or value's bytes: nil for absent or null, the
// decoded string for base64, else the compact JSON text.
func payload(name string, raw json.RawMessage, encoding string) ([]byte, error) {
	null := len(raw) == 0 || string(raw) == "null"
	switch encoding {
	case "":
		if null {
			return nil, nil
		}
		return compact(raw), nil
	case "base64":
		if null {
			return nil, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%s: %s_encoding base64 needs a JSON string", name, name)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("%s_encoding %q: only base64", name, encoding)
	}
}

func compact(raw json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return append([]byte(nil), raw...) // validated before; not reached
	}
	return b.Bytes()
}

// locate turns a JSON syntax error at base+offset of body into one that
// names the line and column.
func locate(body []byte, base int, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return err
	}
	// Offset counts the bytes read, the bad one included.
	off := base + max(0, int(se.Offset)-1)
	if off > len(body) {
		off = len(body)
	}
	line := 1 + bytes.Count(body[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(body[:off], '\n')
	return fmt.Errorf("malformed JSON at line %d, column %d (byte offset %d): %v", line, col, off, se)
}
