package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/braidstream/braid/internal/connect"
)

// steps turns JSON text of a transforms list into Parse's input.
func steps(t testing.TB, list string) []json.RawMessage {
	t.Helper()
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(list), &raw); err != nil {
		t.Fatalf("test transforms %s: %v", list, err)
	}
	return raw
}

func mustParse(t testing.TB, list string) Chain {
	t.Helper()
	c, err := Parse(steps(t, list))
	if err != nil {
		t.Fatalf("Parse(%s): %v", list, err)
	}
	return c
}

var testTime = time.Date(2026, 11, 30, 17, 4, 5, 123456789, time.FixedZone("CET", 3600))

func testRecord(value string) *connect.Record {
	return &connect.Record{Stream: "orders", Shard: 3, Offset: 42, Timestamp: testTime, Value: []byte(value)}
}

func TestApply(t *testing.T) {
	const order = `{"id":7,"status":"paid","total":12.5,"customer":{"name":"Ann","ssn":"123","address":{"city":"Oslo","zip":"0150"}},"items":[{"sku":"a"}]}`
	for _, tc := range []struct {
		name       string
		transforms string
		value      string
		want       string // the value after; "" with drop or err set
		drop       bool
		err        string
	}{
		{"select top-level fields in document order", `[{"select":["total","id"]}]`, order,
			`{"id":7,"total":12.5}`, false, ""},
		{"select nested path keeps its parent", `[{"select":["id","customer.address.city"]}]`, order,
			`{"id":7,"customer":{"address":{"city":"Oslo"}}}`, false, ""},
		{"select a whole object and a path inside it", `[{"select":["customer.name","customer"]}]`, order,
			`{"customer":{"name":"Ann","ssn":"123","address":{"city":"Oslo","zip":"0150"}}}`, false, ""},
		{"select missing fields gives an empty object", `[{"select":["nope"]}]`, order, `{}`, false, ""},
		{"select through a non-object drops it", `[{"select":["id","status.x"]}]`, order, `{"id":7}`, false, ""},
		{"drop nested and missing", `[{"drop":["customer.ssn","nope","items.sku","customer.address"]}]`, order,
			`{"id":7,"status":"paid","total":12.5,"customer":{"name":"Ann"},"items":[{"sku":"a"}]}`, false, ""},
		{"rename keeps the position", `[{"rename":{"total":"amount","customer.name":"full_name"}}]`, order,
			`{"id":7,"status":"paid","amount":12.5,"customer":{"full_name":"Ann","ssn":"123","address":{"city":"Oslo","zip":"0150"}},"items":[{"sku":"a"}]}`, false, ""},
		{"rename a missing field", `[{"rename":{"nope":"x"}}]`, `{"a":1}`, `{"a":1}`, false, ""},
		{"rename onto an existing field", `[{"rename":{"total":"id"}}]`, order, "", false, `transform 0 (rename): rename "total" to "id": the field "id" exists already`},
		{"the brief's chain", `[{"select":["id","total","customer"]},{"drop":["customer.ssn"]},{"rename":{"total":"amount"}},` +
			`{"insert_metadata":{"stream":"_stream","shard":"_shard","offset":"_offset","timestamp":"_ts"}},{"filter":{"field":"amount","op":"eq","value":12.5}}]`,
			order, `{"id":7,"amount":12.5,"customer":{"name":"Ann","address":{"city":"Oslo","zip":"0150"}},"_stream":"orders","_shard":3,"_offset":42,"_ts":"2026-11-30T16:04:05.123Z"}`, false, ""},
		{"metadata replaces in place and nests", `[{"insert_metadata":{"offset":"id","stream":"meta.stream"}}]`, `{"id":"x","b":true}`,
			`{"id":42,"b":true,"meta":{"stream":"orders"}}`, false, ""},
		{"metadata into an existing object", `[{"insert_metadata":{"shard":"customer.shard"}}]`, `{"customer":{"a":1}}`,
			`{"customer":{"a":1,"shard":3}}`, false, ""},
		{"metadata through a non-object", `[{"insert_metadata":{"shard":"customer.x.shard"}}]`, `{"customer":{"x":[1]}}`,
			"", false, `transform 0 (insert_metadata): shard to "customer.x.shard": the field "customer.x" is not an object`},
		{"filter eq keeps", `[{"filter":{"field":"status","op":"eq","value":"paid"}}]`, order, order, false, ""},
		{"filter eq drops", `[{"filter":{"field":"status","op":"eq","value":"open"}}]`, order, "", true, ""},
		{"filter eq on a missing field drops", `[{"filter":{"field":"nope","op":"eq","value":null}}]`, order, "", true, ""},
		{"filter eq null", `[{"filter":{"field":"x","op":"eq","value":null}}]`, `{"x":null}`, `{"x":null}`, false, ""},
		{"filter numbers by value", `[{"filter":{"field":"id","op":"eq","value":7.0}}]`, `{"id":7e0}`, `{"id":7e0}`, false, ""},
		{"filter number is not a string", `[{"filter":{"field":"id","op":"eq","value":"7"}}]`, `{"id":7}`, "", true, ""},
		{"filter nested object equal", `[{"filter":{"field":"c","op":"eq","value":{"b":[1,2],"a":"x"}}}]`, `{"c":{"a":"x","b":[1,2.0]}}`,
			`{"c":{"a":"x","b":[1,2.0]}}`, false, ""},
		{"filter ne on a missing field keeps", `[{"filter":{"field":"nope","op":"ne","value":1}}]`, `{"a":1}`, `{"a":1}`, false, ""},
		{"filter ne drops the equal", `[{"filter":{"field":"customer.name","op":"ne","value":"Ann"}}]`, order, "", true, ""},
		{"filter in", `[{"filter":{"field":"status","op":"in","value":["open","paid"]}}]`, order, order, false, ""},
		{"filter in drops", `[{"filter":{"field":"status","op":"in","value":["open","void"]}}]`, order, "", true, ""},
		{"filter exists nested", `[{"filter":{"field":"customer.address.zip","op":"exists"}}]`, order, order, false, ""},
		{"filter not_exists drops", `[{"filter":{"field":"customer.ssn","op":"not_exists"}}]`, order, "", true, ""},
		{"filter before a change keeps bytes", `[{"filter":{"field":"a","op":"exists"}}]`, "{ \"a\" : 1 }\n", "{ \"a\" : 1 }\n", false, ""},
		{"filter after drop sees the drop", `[{"drop":["a"]},{"filter":{"field":"a","op":"exists"}}]`, `{"a":1}`, "", true, ""},
		{"escaped keys survive", `[{"select":["é","q\"k"]}]`, `{"\u00e9":1,"q\"k":2,"z":3}`, `{"\u00e9":1,"q\"k":2}`, false, ""},
		{"renamed key is quoted", `[{"rename":{"a":"new \"name\""}}]`, `{"a":1}`, `{"new \"name\"":1}`, false, ""},
		{"a duplicate key reads as its last value", `[{"drop":["b"]},{"filter":{"field":"a","op":"eq","value":2}}]`, `{"a":1,"b":0,"a":2}`,
			`{"a":2}`, false, ""},
		{"whitespace inside values kept", `[{"drop":["b"]}]`, "{\"a\" : [1, 2],\n \"b\":0}", `{"a":[1, 2]}`, false, ""},
		{"not an object: array", `[{"drop":["a"]}]`, `[1]`, "", false, ErrNotObject.Error() + ": it is an array"},
		{"not an object: invalid JSON", `[{"drop":["a"]}]`, `{"a":tru}`, "", false, ErrNotObject.Error() + ": not valid JSON"},
		{"not an object: empty (a tombstone)", `[{"drop":["a"]}]`, ``, "", false, ErrNotObject.Error() + ": the value is empty"},
		{"not an object: null", `[{"drop":["a"]}]`, ` null `, "", false, ErrNotObject.Error() + ": it is null"},
		{"not an object: a number", `[{"drop":["a"]}]`, `-1`, "", false, ErrNotObject.Error() + ": it is a number"},
		{"not an object: a string", `[{"drop":["a"]}]`, `"{}"`, "", false, ErrNotObject.Error() + ": it is a string"},
		{"empty chain leaves anything alone", `[]`, `not json`, `not json`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.transforms)
			r := testRecord(tc.value)
			before := append([]byte(nil), r.Value...)
			keep, err := c.Apply(r)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Apply = %v, %v; want an error containing %q", keep, err, tc.err)
				}
				if keep {
					t.Errorf("keep = true with an error")
				}
			case err != nil:
				t.Fatalf("Apply: %v", err)
			case keep == tc.drop:
				t.Fatalf("keep = %v, want %v; value %s", keep, !tc.drop, r.Value)
			case !tc.drop && string(r.Value) != tc.want:
				t.Errorf("value\n got  %s\n want %s", r.Value, tc.want)
			}
			if tc.value != string(before) {
				t.Errorf("the input bytes were written to")
			}
		})
	}
}

// A step that changes nothing must leave r.Value the very slice it was.
func TestApplyDoesNotReencodeUnchanged(t *testing.T) {
	for _, list := range []string{
		`[{"filter":{"field":"a","op":"eq","value":1}}]`,
		`[{"drop":["nope","a.b.c"]},{"rename":{"zz":"y"}},{"select":["a","b"]}]`,
	} {
		c := mustParse(t, list)
		r := testRecord(`{"a":1, "b": {"c":2}}`)
		orig := r.Value
		if keep, err := c.Apply(r); err != nil || !keep {
			t.Fatalf("%s: Apply = %v, %v", list, keep, err)
		}
		if &r.Value[0] != &orig[0] || len(r.Value) != len(orig) {
			t.Errorf("%s: value re-encoded to %s though nothing changed", list, r.Value)
		}
	}
}

func TestApplyErrNotObjectIs(t *testing.T) {
	c := mustParse(t, `[{"select":["a"]}]`)
	if _, err := c.Apply(testRecord(`[]`)); !errors.Is(err, ErrNotObject) {
		t.Fatalf("Apply on an array: %v, want ErrNotObject", err)
	}
}

func TestMetadataZeroTimestamp(t *testing.T) {
	c := mustParse(t, `[{"insert_metadata":{"timestamp":"ts"}}]`)
	r := &connect.Record{Value: []byte(`{}`)}
	if keep, err := c.Apply(r); err != nil || !keep || string(r.Value) != `{"ts":null}` {
		t.Fatalf("Apply = %v, %v, value %s; want {\"ts\":null}", keep, err, r.Value)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, transforms, err string
	}{
		{"not an object", `[{"select":["a"]}, "select"]`, "transform 1: want an object with one of the keys select, drop, rename, insert_metadata, filter"},
		{"two keys", `[{"select":["a"],"drop":["b"]}]`, "transform 0: want exactly one of select, drop, rename, insert_metadata, filter, got 2 keys (drop, select)"},
		{"no keys", `[{}]`, "transform 0: want exactly one of"},
		{"unknown kind", `[{"select":["a"]},{"drop":["a"]},{"script":"x"}]`, `transform 2: unknown transform "script"`},
		{"select not a list", `[{"select":"a"}]`, "transform 0: select: want a list of field paths"},
		{"select empty", `[{"select":[]}]`, "transform 0: select: empty list of field paths"},
		{"drop empty path part", `[{"drop":["a..b"]}]`, `transform 0: drop: field path "a..b" has an empty part`},
		{"drop empty path", `[{"drop":[""]}]`, "transform 0: drop: empty field path"},
		{"rename not an object", `[{"rename":["a"]}]`, "transform 0: rename: want an object of field names"},
		{"rename empty", `[{"rename":{}}]`, "transform 0: rename: empty object"},
		{"rename to a path", `[{"rename":{"a":"b.c"}}]`, `transform 0: rename: "a": new name "b.c" has a dot`},
		{"rename to nothing", `[{"rename":{"a":""}}]`, `transform 0: rename: "a": empty new name`},
		{"rename to itself", `[{"rename":{"x.a":"a"}}]`, `transform 0: rename: "x.a": renamed to itself`},
		{"rename two to one", `[{"rename":{"a":"c","b":"c"}}]`, `transform 0: rename: "a" and "b" are both renamed to "c"`},
		{"rename a swap", `[{"rename":{"a":"b","b":"a"}}]`, "one is renamed to the other's name; use two rename steps"},
		{"rename a chain", `[{"rename":{"a":"b","b":"c"}}]`, "one is renamed to the other's name"},
		{"rename inside a rename", `[{"rename":{"c":"d","c.x":"y"}}]`, `transform 0: rename: "c.x" and "c" in one rename: the first is inside the second`},
		{"metadata unknown", `[{"insert_metadata":{"key":"k"}}]`, `transform 0: insert_metadata: unknown metadata "key"; metadata are stream, shard, offset, timestamp`},
		{"metadata empty path", `[{"insert_metadata":{"offset":""}}]`, "transform 0: insert_metadata: offset: empty field path"},
		{"metadata overlap", `[{"insert_metadata":{"offset":"m","shard":"m.s"}}]`, `shard and offset go to overlapping fields "m.s" and "m"`},
		{"metadata same field", `[{"insert_metadata":{"offset":"m","stream":"m"}}]`, "overlapping fields"},
		{"filter unknown op", `[{"filter":{"field":"a","op":"gt","value":1}}]`, `transform 0: filter: unknown op "gt"; ops are eq, ne, in, exists, not_exists`},
		{"filter no op", `[{"filter":{"field":"a"}}]`, "transform 0: filter: op missing"},
		{"filter no field", `[{"filter":{"op":"exists"}}]`, "transform 0: filter: field: empty field path"},
		{"filter unknown key", `[{"filter":{"field":"a","op":"exists","expr":"a>1"}}]`, `transform 0: filter: want {field: PATH`},
		{"filter eq without value", `[{"filter":{"field":"a","op":"eq"}}]`, "transform 0: filter: op eq needs a value"},
		{"filter in not a list", `[{"filter":{"field":"a","op":"in","value":"x"}}]`, "op in needs a value that is a non-empty list"},
		{"filter in empty", `[{"filter":{"field":"a","op":"in","value":[]}}]`, "op in needs a value that is a non-empty list"},
		{"filter exists with value", `[{"filter":{"field":"a","op":"exists","value":1}}]`, "op exists takes no value"},
		{"filter not an object", `[{"filter":"a == 1"}]`, "transform 0: filter: want {field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(steps(t, tc.transforms))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Parse = %v; want an error containing %q", err, tc.err)
			}
			if c.Len() != 0 {
				t.Errorf("a failed Parse returned %d steps", c.Len())
			}
		})
	}
}

// The brief's example chain, as R's runtime will hand it over: parsed from
// the definition, then applied to every record.
func BenchmarkSelectRename(b *testing.B) {
	c := mustParse(b, `[{"select":["id","total","customer"]},{"rename":{"total":"amount"}}]`)
	value := []byte(`{"id":1234567,"status":"paid","total":99.95,"currency":"EUR","customer":{"id":881,"name":"Ann Example","email":"ann@example.com"},` +
		`"items":[{"sku":"A-100","qty":2,"price":19.99},{"sku":"B-200","qty":1,"price":59.97}],"created_at":"2026-11-30T16:00:00Z","note":"leave at the door"}`)
	r := &connect.Record{Stream: "orders", Value: value}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		r.Value = value
		if keep, err := c.Apply(r); err != nil || !keep {
			b.Fatal(keep, err)
		}
	}
}

// One Chain serves every worker of a connector at once.
func TestApplyConcurrent(t *testing.T) {
	c := mustParse(t, `[{"select":["a","b.c"]},{"rename":{"a":"x"}},{"insert_metadata":{"offset":"b.o"}},{"filter":{"field":"x","op":"in","value":[1,2]}}]`)
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 200 {
				r := testRecord(`{"a":1,"b":{"c":2,"d":3},"e":4}`)
				r.Offset = int64(g*1000 + i)
				keep, aerr := c.Apply(r)
				want := `{"x":1,"b":{"c":2,"o":` + strconv.FormatInt(r.Offset, 10) + `}}`
				if aerr != nil || !keep || string(r.Value) != want {
					err = fmt.Errorf("Apply = %v, %v, %s; want %s", keep, aerr, r.Value, want)
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func ExampleChain_Apply() {
	var steps []json.RawMessage
	_ = json.Unmarshal([]byte(`[
		{"select": ["id", "total", "customer"]},
		{"drop": ["customer.ssn"]},
		{"rename": {"total": "amount"}},
		{"insert_metadata": {"offset": "_offset"}},
		{"filter": {"field": "amount", "op": "ne", "value": 0}}
	]`), &steps)
	chain, err := Parse(steps)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := &connect.Record{Offset: 42, Value: []byte(`{"id":7,"status":"paid","total":12.5,"customer":{"name":"Ann","ssn":"123"}}`)}
	keep, err := chain.Apply(r)
	fmt.Println(keep, err, string(r.Value))
	// Output: true <nil> {"id":7,"amount":12.5,"customer":{"name":"Ann"},"_offset":42}
}
