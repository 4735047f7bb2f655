package httpsink

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	fastjson "github.com/segmentio/encoding/json"

	"github.com/braidstream/braid/internal/connect"
)

// appendRecord appends r as one compact JSON object (no line break in it,
// so it also serves as a JSON line).
func appendRecord(buf *bytes.Buffer, r *connect.Record) {
	buf.WriteString(`{"stream":`)
	appendString(buf, r.Stream)
	buf.WriteString(`,"shard":`)
	buf.WriteString(strconv.FormatInt(int64(r.Shard), 10))
	buf.WriteString(`,"offset":`)
	buf.WriteString(strconv.FormatInt(r.Offset, 10))
	buf.WriteString(`,"timestamp":`)
	if r.Timestamp.IsZero() {
		buf.WriteString("null")
	} else {
		buf.WriteByte('"')
		buf.Write(r.Timestamp.UTC().AppendFormat(buf.AvailableBuffer(), time.RFC3339Nano))
		buf.WriteByte('"')
	}
	appendPayload(buf, "key", r.Key)
	appendPayload(buf, "value", r.Value)
	buf.WriteString(`,"headers":{`)
	utf8Headers := true
	for _, h := range r.Headers {
		if !utf8.Valid(h.Value) {
			utf8Headers = false
			break
		}
	}
	for i, h := range dedupHeaders(r.Headers) {
		if i > 0 {
			buf.WriteByte(',')
		}
		appendString(buf, h.Key)
		buf.WriteByte(':')
		if utf8Headers {
			appendString(buf, string(h.Value))
		} else {
			appendBase64(buf, h.Value)
		}
	}
	buf.WriteByte('}')
	if !utf8Headers {
		buf.WriteString(`,"headers_encoding":"base64"`)
	}
	buf.WriteByte('}')
}

// dedupHeaders keeps the last header of each name, in first-seen order.
func dedupHeaders(hs []connect.Header) []connect.Header {
	if len(hs) < 2 {
		return hs
	}
	last := make(map[string]int, len(hs))
	for i, h := range hs {
		last[h.Key] = i
	}
	if len(last) == len(hs) {
		return hs
	}
	out := make([]connect.Header, 0, len(last))
	for i, h := range hs {
		if last[h.Key] == i {
			out = append(out, h)
		}
	}
	return out
}

// appendPayload writes ,"name":<JSON> when b is valid JSON (line breaks
// compacted away, so a JSON line stays one line), else ,"name":"<base64>","name_encoding":"base64".
func appendPayload(buf *bytes.Buffer, name string, b []byte) {
	buf.WriteString(`,"`)
	buf.WriteString(name)
	buf.WriteString(`":`)
	if b == nil {
		buf.WriteString("null")
		return
	}
	switch {
	case !fastjson.Valid(b):
		appendBase64(buf, b)
	case bytes.ContainsAny(b, "\r\n"):
		// Only insignificant whitespace can hold a line break: compact
		// it away so a JSON line stays one line.
		json.Compact(buf, b) //nolint:errcheck // valid, checked above
		return
	default:
		// Valid JSON is written as the producer wrote it.
		buf.Write(b)
		return
	}
	buf.WriteString(`,"`)
	buf.WriteString(name)
	buf.WriteString(`_encoding":"base64"`)
}

func appendBase64(buf *bytes.Buffer, b []byte) {
	buf.WriteByte('"')
	enc := base64.NewEncoder(base64.StdEncoding, buf)
	enc.Write(b) //nolint:errcheck // a bytes.Buffer does not fail
	enc.Close()  //nolint:errcheck
	buf.WriteByte('"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case c < 0x20:
				switch c {
				case '\n':
					buf.WriteString(`\n`)
				case '\r':
					buf.WriteString(`\r`)
				case '\t':
					buf.WriteString(`\t`)
				default:
					buf.WriteString(`\u00`)
					buf.WriteByte(hexDigits[c>>4])
					buf.WriteByte(hexDigits[c&0xf])
				}
			default:
				buf.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			buf.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not valid JavaScript source; escaped, as
			// encoding/json does.
			buf.WriteString(`\u202`)
			buf.WriteByte(hexDigits[r&0xf])
		default:
			buf.WriteString(s[i : i+size])
		}
		i += size
	}
	buf.WriteByte('"')
}
