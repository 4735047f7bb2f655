package kinesis

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	fastjson "github.com/segmentio/encoding/json"
)

// The door speaks two encodings of the same API (the operation's input and
// output structs are the same for both):
//
//   - awsJson 1.1 (application/x-amz-json-1.1): blobs are base64 strings,
//     timestamps numbers of epoch seconds;
//   - CBOR 1.1 (application/x-amz-cbor-1.1), the AWS SDK for Java's
//     default: blobs are CBOR byte strings, timestamps CBOR tag 1 around a
//     number of epoch MILLISECONDS. RFC 8949 says seconds, but the AWS SDKs
//     write and read milliseconds, and they are the clients.
//
// Handlers decode JSON (decode in server.go), so a CBOR request is first
// transcoded to the JSON the same request would have had: one validation
// path for both encodings. A CBOR answer is encoded from the handler's
// output struct (json field names; []byte as byte strings), then its
// timestamp fields are tagged.

const (
	contentJSON = "application/x-amz-json-1.1"
	contentCBOR = "application/x-amz-cbor-1.1"
)

// codec is a request's encoding; the answer uses the same.
type codec int

const (
	codecJSON codec = iota
	codecCBOR
)

func (c codec) contentType() string {
	if c == codecCBOR {
		return contentCBOR
	}
	return contentJSON
}

// codecOf returns the encoding a Content-Type names; ok is false for one
// the door does not speak. No Content-Type is JSON (curl, hand tests).
func codecOf(contentType string) (c codec, ok bool) {
	mt, _, _ := strings.Cut(contentType, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "", contentJSON, "application/json":
		return codecJSON, true
	case contentCBOR:
		return codecCBOR, true
	}
	return codecJSON, false
}

// timestampFields are the API's timestamp members (from the Kinesis API
// model); a CBOR answer carries them as tag 1 milliseconds.
var timestampFields = map[string]bool{
	"ApproximateArrivalTimestamp": true,
	"ChannelCreationTimestamp":    true,
	"ConsumerCreationTimestamp":   true,
	"StreamCreationTimestamp":     true,
	"Timestamp":                   true,
	"StartedAt":                   true,
	"EndedAt":                     true,
	"EarliestAllowedEndAt":        true,
}

var (
	cborDec cbor.DecMode
	cborEnc cbor.EncMode
)

func init() {
	var err error
	cborDec, err = cbor.DecOptions{
		DefaultMapType: reflect.TypeOf(map[string]any(nil)),
		// Requests are small trees: bound the work a hostile one causes
		// (the body itself is bounded by MaxRequestBytes).
		MaxNestedLevels:  32,
		MaxArrayElements: 100_000,
		MaxMapPairs:      100_000,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	cborEnc, err = cbor.EncOptions{
		// As encoding/json: omitempty omits what json would.
		OmitEmpty:               cbor.OmitEmptyGoValue,
		Time:                    cbor.TimeUnixMicro,
		TimeTag:                 cbor.EncTagRequired,
		JSONMarshalerTranscoder: transcoderFunc(jsonToCBOR),
	}.EncMode()
	if err != nil {
		panic(err)
	}
}

// cborToJSON transcodes a CBOR request body into the JSON body of the same
// request. Anything JSON cannot say (other tags, non-string keys, NaN) is a
// SerializationException.
func cborToJSON(body []byte) ([]byte, error) {
	if len(body) == 0 {
		return []byte("{}"), nil
	}
	var v any
	if err := cborDec.Unmarshal(body, &v); err != nil {
		return nil, errorf(errSerialization, "request body is not valid CBOR: %v", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, errorf(errSerialization, "request body must be a CBOR map, not %T", v)
	}
	j, err := cborValueToJSON(v)
	if err != nil {
		return nil, errorf(errSerialization, "request body: %v", err)
	}
	out, err := json.Marshal(j)
	if err != nil {
		return nil, errorf(errSerialization, "request body: %v", err)
	}
	return out, nil
}

func cborValueToJSON(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string, uint64, int64:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%v is not a number JSON can carry", x)
		}
		return x, nil
	case []byte:
		return base64.StdEncoding.EncodeToString(x), nil
	case time.Time:
		// Tag 1: the decoder read the number as seconds; it is milliseconds.
		ms := float64(x.Unix()) + float64(x.Nanosecond())/1e9
		return json.Number(fmt.Sprintf("%.3f", ms/1000)), nil
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			j, err := cborValueToJSON(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			m[k] = j
		}
		return m, nil
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			j, err := cborValueToJSON(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			a[i] = j
		}
		return a, nil
	}
	return nil, fmt.Errorf("CBOR value of type %T has no JSON form", v)
}

// encodeCBOR encodes an operation's output (or an error body).
func encodeCBOR(out any) ([]byte, error) {
	b, err := cborEnc.Marshal(out)
	if err != nil {
		return nil, err
	}
	// The output structs hold timestamps as float64 epoch seconds (for
	// JSON); rewrite them as tag 1 milliseconds in one pass over the
	// encoding, copying everything else (blobs included) as it is.
	dst := make([]byte, 0, len(b)+len(b)/16+64)
	dst, rest, err := tagTimestamps(dst, b, false)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("kinesis: %d bytes after the answer's CBOR item", len(rest))
	}
	return dst, nil
}

// cborHead splits the head of the CBOR item at b: its major type, its
// argument (a length, count, tag number or integer) and its size.
func cborHead(b []byte) (major byte, arg uint64, size int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, io.ErrUnexpectedEOF
	}
	major, ai := b[0]>>5, b[0]&0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), 1, nil
	case ai <= 27:
		n := 1 << (ai - 24)
		if len(b) < 1+n {
			return 0, 0, 0, io.ErrUnexpectedEOF
		}
		for _, c := range b[1 : 1+n] {
			arg = arg<<8 | uint64(c)
		}
		return major, arg, 1 + n, nil
	}
	// Indefinite lengths and reserved values: the encoder writes neither.
	return 0, 0, 0, fmt.Errorf("kinesis: unexpected CBOR head %#x in an answer", b[0])
}

// tagTimestamps appends the CBOR item at the start of src to dst, with
// every number under a timestamp field name tagged; isTimestamp says the
// item is the value of such a field.
func tagTimestamps(dst, src []byte, isTimestamp bool) ([]byte, []byte, error) {
	major, arg, size, err := cborHead(src)
	if err != nil {
		return nil, nil, err
	}
	switch major {
	case 0, 1, 7: // integers, floats, simple values
		if major == 7 && size == 1 {
			break // false, true, null
		}
		if isTimestamp {
			if ms, ok := epochMillis(major, arg, size); ok {
				dst = append(dst, 0xc1) // tag 1
				if ms >= 0 {
					dst = appendHead(dst, 0, uint64(ms))
				} else {
					dst = appendHead(dst, 1, uint64(-1-ms))
				}
				return dst, src[size:], nil
			}
		}
	case 2, 3: // byte and text strings: copied whole
		if uint64(len(src)-size) < arg {
			return nil, nil, io.ErrUnexpectedEOF
		}
		size += int(arg)
	case 4, 5: // arrays and maps
		dst = append(dst, src[:size]...)
		src = src[size:]
		for i := uint64(0); i < arg; i++ {
			tagged := false
			if major == 5 { // key, then value
				kMajor, kLen, kSize, err := cborHead(src)
				if err != nil {
					return nil, nil, err
				}
				if kMajor == 3 && uint64(len(src)-kSize) >= kLen {
					tagged = timestampFields[string(src[kSize:kSize+int(kLen)])]
				}
				if dst, src, err = tagTimestamps(dst, src, false); err != nil {
					return nil, nil, err
				}
			}
			if dst, src, err = tagTimestamps(dst, src, tagged); err != nil {
				return nil, nil, err
			}
		}
		return dst, src, nil
	case 6: // tags: the tagged item follows
		if arg == 1 {
			// A time.Time, which the encoder writes as tag 1 seconds:
			// rewritten as tag 1 milliseconds like the float64 fields.
			if cm, _, _, err := cborHead(src[size:]); err == nil && (cm == 0 || cm == 1 || cm == 7) {
				return tagTimestamps(dst, src[size:], true)
			}
		}
		dst = append(dst, src[:size]...)
		return tagTimestamps(dst, src[size:], false)
	}
	if len(src) < size {
		return nil, nil, io.ErrUnexpectedEOF
	}
	return append(dst, src[:size]...), src[size:], nil
}

// epochMillis reads a number of epoch seconds from a CBOR head and
// returns it in milliseconds.
func epochMillis(major byte, arg uint64, size int) (int64, bool) {
	switch {
	case major == 0 && arg <= math.MaxInt64/1000:
		return int64(arg) * 1000, true
	case major == 1 && arg <= math.MaxInt64/1000:
		return (-1 - int64(arg)) * 1000, true
	case major == 7 && size == 9:
		return int64(math.Round(math.Float64frombits(arg) * 1000)), true
	case major == 7 && size == 5:
		return int64(math.Round(float64(math.Float32frombits(uint32(arg))) * 1000)), true
	}
	return 0, false
}

// appendHead appends a CBOR head of the shortest form.
func appendHead(dst []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(dst, m|byte(arg))
	case arg <= math.MaxUint8:
		return append(dst, m|24, byte(arg))
	case arg <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(arg))
	case arg <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(arg))
	}
	return binary.BigEndian.AppendUint64(append(dst, m|27), arg)
}

type transcoderFunc func(io.Writer, io.Reader) error

func (f transcoderFunc) Transcode(w io.Writer, r io.Reader) error { return f(w, r) }

// jsonToCBOR lets output types with their own MarshalJSON be encoded in
// CBOR: their JSON is transcoded (numbers stay numbers).
func jsonToCBOR(w io.Writer, r io.Reader) error {
	d := json.NewDecoder(r)
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return err
	}
	b, err := cborEnc.Marshal(jsonNumbers(v))
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func jsonNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = jsonNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonNumbers(e)
		}
	}
	return v
}

// encodeAnswer encodes out in codec c.
func encodeAnswer(c codec, out any) ([]byte, error) {
	if c == codecCBOR {
		return encodeCBOR(out)
	}
	b, err := fastjson.Marshal(out) // see decode: GetRecords answers are as big
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
