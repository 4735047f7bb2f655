package s3sink

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzObjectFields: for any valid JSON, the scanner agrees with
// encoding/json on whether it is an object and on its fields (the last
// of a repeated name counting).
func FuzzObjectFields(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : 1 , "b":[1,{"c":"}"}], "d\"e":"x\\y\"z", "a": null } `,
		`[1]`, `"s"`, `12`, `{"nested":{"a":{"b":[]}},"t":true,"f":false,"n":-1.5e3}`, `{"\u00e9":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if !json.Valid(v) {
			return
		}
		fields, ok := objectFields(v)
		var want map[string]json.RawMessage
		err := json.Unmarshal(v, &want)
		isObject := err == nil && want != nil
		if ok != isObject {
			t.Fatalf("%s: object %v, encoding/json says %v (%v)", v, ok, isObject, err)
		}
		if !ok {
			return
		}
		got := map[string]json.RawMessage{}
		for _, f := range fields {
			got[f.name] = f.raw
		}
		if len(got) != len(want) {
			t.Fatalf("%s: fields %v, want %v", v, got, want)
		}
		for name, raw := range want {
			if !bytes.Equal(bytes.TrimSpace(got[name]), bytes.TrimSpace(raw)) {
				t.Fatalf("%s: field %q = %s, want %s", v, name, got[name], raw)
			}
		}
	})
}
