package pgcdc

import (
	"encoding/json"
	"testing"

	"github.com/jackc/pglogrepl"
)

// FuzzRowJSON: a row's values, whatever their text, become valid JSON
// (numbers only when they are JSON numbers; json/jsonb only when valid).
func FuzzRowJSON(f *testing.F) {
	for _, v := range []string{"1", "-1.5e3", "NaN", "Infinity", "t", `{"a":1}`, "x\"y", "\xff", " 1", "0x10"} {
		f.Add([]byte(v), uint32(oidNumeric))
	}
	oids := []uint32{oidBool, oidInt2, oidInt4, oidInt8, oidOID, oidJSON, oidFloat4, oidFloat8, oidNumeric, oidJSONB, 25}
	f.Fuzz(func(t *testing.T, text []byte, pick uint32) {
		oid := oids[pick%uint32(len(oids))]
		rel := &pglogrepl.RelationMessage{Columns: []*pglogrepl.RelationMessageColumn{
			{Name: "k", DataType: oid}, {Name: "v", DataType: oid}, {Name: "n", DataType: oid},
		}}
		tup := &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{
			{DataType: pglogrepl.TupleDataTypeText, Data: text},
			{DataType: pglogrepl.TupleDataTypeText, Data: text},
			{DataType: pglogrepl.TupleDataTypeNull},
		}}
		for _, b := range [][]byte{tupleJSON(rel, tup, false), tupleJSON(rel, tup, true), keyJSON(rel, []string{"k", "n"}, tup)} {
			var obj map[string]any
			if err := json.Unmarshal(b, &obj); err != nil {
				t.Fatalf("oid %d, text %q: invalid JSON %q: %v", oid, text, b, err)
			}
		}
	})
}
