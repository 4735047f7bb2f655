package transform

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzApply parses a transforms list and applies it to a value. Whatever
// the input: no panic; a refused list yields no chain; a kept record's
// value is one valid JSON object; a value no step changed is the input
// slice itself; and the value given is never written to.
func FuzzApply(f *testing.F) {
	for _, seed := range []struct{ transforms, value string }{
		{`[{"select":["id","total","customer"]},{"drop":["customer.ssn"]},{"rename":{"total":"amount"}}]`,
			`{"id":1,"total":2.5,"customer":{"ssn":"x","name":"y"},"z":[1,{"a":2}]}`},
		{`[{"insert_metadata":{"stream":"_s","shard":"m.sh","offset":"_o","timestamp":"_ts"}}]`, `{"m":{"a":1},"_o":"x"}`},
		{`[{"filter":{"field":"status","op":"in","value":["paid",1,null,{"a":[]}]}}]`, `{"status":{"a":[]}}`},
		{`[{"filter":{"field":"a.b","op":"not_exists"}},{"rename":{"a.c":"d"}}]`, `{"a":{"c":"\u00e9\"","b":null},"a":{"c":1}}`},
		{`[{"filter":{"field":"n","op":"eq","value":1e2}}]`, `{"n":100.0}`},
		{`[{"drop":["a"]}]`, `{"a" : 1 , "b":[ "}" , "\\" ]}`},
		{`[{"select":["x"]}]`, `[1,2]`},
		{`[]`, `not json`},
		{`[{"rename":{"a":"b","b":"a"}}]`, `{}`},
	} {
		f.Add(seed.transforms, []byte(seed.value))
	}
	f.Fuzz(func(t *testing.T, transforms string, value []byte) {
		var raw []json.RawMessage
		if json.Unmarshal([]byte(transforms), &raw) != nil {
			return
		}
		c, err := Parse(raw)
		if err != nil {
			if c.Len() != 0 {
				t.Fatalf("Parse failed (%v) but returned %d steps", err, c.Len())
			}
			return
		}
		in := append([]byte(nil), value...)
		r := testRecord(string(value))
		r.Value = value
		keep, err := c.Apply(r)
		if !bytes.Equal(value, in) {
			t.Fatalf("Apply wrote to the value it was given")
		}
		if err != nil || !keep || c.Len() == 0 {
			return
		}
		var obj map[string]any
		if err := json.Unmarshal(r.Value, &obj); err != nil || obj == nil {
			t.Fatalf("kept value is not one JSON object: %v\nin:  %s\nout: %s", err, in, r.Value)
		}
		if &r.Value[0] == &value[0] {
			return // unchanged: nothing more to check
		}
		// Applying the chain again to its own output must not fail for
		// want of an object.
		again := testRecord("")
		again.Value = r.Value
		if _, err := c.Apply(again); err != nil && bytes.Contains([]byte(err.Error()), []byte(ErrNotObject.Error())) {
			t.Fatalf("output refused as not an object: %v\nout: %s", err, r.Value)
		}
	})
}

// FuzzObjectRoundTrip: splitting a valid object and encoding it again,
// with every nested object split too, reads back as the same JSON value.
func FuzzObjectRoundTrip(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, ` {"a" : {"b":[1,{"c":"}"}]}, "a":2, "\u00e9":"\\\""} `, `{"x":{"y":{"z":{}}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want any
		if json.Unmarshal(b, &want) != nil {
			return
		}
		o, err := parseObject(b)
		if _, isObj := want.(map[string]any); !isObj {
			if err == nil {
				t.Fatalf("parseObject accepted a non-object %s", b)
			}
			return
		}
		if err != nil {
			t.Fatalf("parseObject(%s): %v", b, err)
		}
		splitAll(o)
		out := o.appendJSON(nil)
		var got any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("encoded %s as invalid JSON %s: %v", b, out, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip changed the value\nin:  %s\nout: %s", b, out)
		}
	})
}

func splitAll(o *object) {
	for i := range o.members {
		if c := o.members[i].child(); c != nil {
			splitAll(c)
		}
	}
}
