package pgsink

import (
	"encoding/json"
	"testing"

	"github.com/braidstream/braid/internal/connect"
)

// FuzzFields: whatever a record's value is, fields either refuses it or
// gives values from which jsonArray writes valid JSON holding the same
// fields (the batch goes to PostgreSQL as that text).
func FuzzFields(f *testing.F) {
	for _, v := range []string{`{"a":1,"b":{"c":[1,2]},"s":"x\"y"}`, `{}`, `[1]`, `null`, `{"a":1e400}`, "{\"\\u00e9\":\"\xff\"}"} {
		f.Add([]byte(v), []byte("k"))
	}
	f.Fuzz(func(t *testing.T, value, key []byte) {
		for _, cfg := range []Config{
			{},
			{KeyColumn: "key", Columns: map[string]string{"x": "a.b", "y": "a"}},
		} {
			s := &Sink{cfg: cfg}
			fields, err := s.fields(&connect.Record{Key: key, Value: value})
			if err != nil {
				continue
			}
			body := jsonArray([]row{{fields: fields}, {fields: fields}})
			var back []map[string]json.RawMessage
			if err := json.Unmarshal(body, &back); err != nil {
				t.Fatalf("invalid batch JSON %q from value %q: %v", body, value, err)
			}
			if len(back) != 2 || len(back[0]) != len(fields) {
				t.Fatalf("batch %q lost fields of %q", body, value)
			}
		}
	})
}
