package pgcdc

import (
	"encoding/json"

	"github.com/jackc/pglogrepl"
)

// Type OIDs whose text form becomes a JSON number or is JSON already.
const (
	oidBool    = 16
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidOID     = 26
	oidJSON    = 114
	oidFloat4  = 700
	oidFloat8  = 701
	oidNumeric = 1700
	oidJSONB   = 3802
)

// tupleJSON is a row as a JSON object in column order. keyOnly: the tuple
// is an old key (the other columns are NULL placeholders), so only
// non-null columns are written.
func tupleJSON(rel *pglogrepl.RelationMessage, t *pglogrepl.TupleData, keyOnly bool) []byte {
	b := []byte{'{'}
	first := true
	for i, col := range t.Columns {
		if i >= len(rel.Columns) {
			break
		}
		if col.DataType == pglogrepl.TupleDataTypeToast {
			continue // unchanged TOASTed value: PostgreSQL did not send it
		}
		if keyOnly && col.DataType == pglogrepl.TupleDataTypeNull {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, rel.Columns[i].Name)
		b = append(b, ':')
		b = appendValue(b, rel.Columns[i].DataType, col)
	}
	return append(b, '}')
}

// keyJSON is the key columns' values as a JSON object; nil for a table
// without a key.
func keyJSON(rel *pglogrepl.RelationMessage, keyCols []string, t *pglogrepl.TupleData) []byte {
	if len(keyCols) == 0 || t == nil {
		return nil
	}
	b := []byte{'{'}
	for k, name := range keyCols {
		if k > 0 {
			b = append(b, ',')
		}
		b = appendString(b, name)
		b = append(b, ':')
		v := []byte("null")
		for i, c := range rel.Columns {
			if c.Name == name && i < len(t.Columns) {
				v = appendValue(nil, c.DataType, t.Columns[i])
				break
			}
		}
		b = append(b, v...)
	}
	return append(b, '}')
}

func appendValue(b []byte, oid uint32, col *pglogrepl.TupleDataColumn) []byte {
	if col.DataType != pglogrepl.TupleDataTypeText {
		return append(b, "null"...)
	}
	return appendText(b, oid, col.Data)
}

// appendText appends a value in PostgreSQL's text form as JSON; nil is
// NULL.
func appendText(b []byte, oid uint32, text []byte) []byte {
	if text == nil {
		return append(b, "null"...)
	}
	switch oid {
	case oidBool:
		if string(text) == "t" {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case oidInt2, oidInt4, oidInt8, oidOID, oidFloat4, oidFloat8, oidNumeric:
		if isJSONNumber(text) {
			return append(b, text...)
		}
		return appendString(b, string(text)) // NaN, Infinity
	case oidJSON, oidJSONB:
		if json.Valid(text) {
			return append(b, text...)
		}
	}
	return appendString(b, string(text))
}

// isJSONNumber: valid JSON starting like a number is a number.
func isJSONNumber(text []byte) bool {
	return len(text) > 0 && (text[0] == '-' || (text[0] >= '0' && text[0] <= '9')) && json.Valid(text)
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
