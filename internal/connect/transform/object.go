package transform

import (
	"bytes"
	"encoding/json"
	"errors"
)

// object is a JSON object that keeps its members in document order and
// their values as the bytes they were written as. Only the objects a step
// reaches into are split further (lazily, by child), so a select of three
// top-level fields never decodes the values it keeps or throws away.
type object struct {
	members []member
}

// member is one key and its value. Exactly one of raw and obj is set:
// raw until a step reaches into the value (or for a value that is not an
// object), obj after.
type member struct {
	// quotedKey is the key as written in the input (with quotes), copied
	// as is when the object is encoded again; nil for a key a step set.
	quotedKey []byte
	// key is the key unescaped: a piece of the input for most keys, so
	// splitting an object does not allocate a string per key.
	key []byte
	raw []byte
	obj *object
}

// errNotObject says the bytes are not one JSON object.
var errNotObject = errors.New("not a JSON object")

// parseObject splits b, which must be one valid JSON object, into its
// members. Nested values stay raw. A key written twice keeps its first
// position and its last value, as encoding/json reads it.
func parseObject(b []byte) (*object, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errNotObject
	}
	o := &object{members: make([]member, 0, 8)}
	var index map[string]int // built only for objects with many keys
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return o, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, errNotObject
		}
		end := skipString(b, i)
		if end < 0 {
			return nil, errNotObject
		}
		qk := b[i:end]
		key, err := unquoteBytes(qk)
		if err != nil {
			return nil, err
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, errNotObject
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		if vend < 0 {
			return nil, errNotObject
		}
		m := member{quotedKey: qk, key: key, raw: b[i:vend]}
		dup := -1
		if index != nil {
			if j, ok := index[string(key)]; ok {
				dup = j
			}
		} else {
			dup = o.findBytes(key)
		}
		if dup >= 0 {
			o.members[dup].raw = m.raw
		} else {
			o.members = append(o.members, m)
			if index != nil {
				index[string(key)] = len(o.members) - 1
			} else if len(o.members) > 16 {
				index = make(map[string]int, 32)
				for j, m := range o.members {
					index[string(m.key)] = j
				}
			}
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return nil, errNotObject
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			if skipSpace(b, i+1) != len(b) {
				return nil, errNotObject
			}
			return o, nil
		default:
			return nil, errNotObject
		}
	}
}

// find is the index of key's member, or -1.
func (o *object) find(key string) int {
	for i := range o.members {
		if string(o.members[i].key) == key {
			return i
		}
	}
	return -1
}

func (o *object) findBytes(key []byte) int {
	for i := range o.members {
		if bytes.Equal(o.members[i].key, key) {
			return i
		}
	}
	return -1
}

// child returns the member's value as an object, splitting it on first
// use; nil if the value is not an object.
func (m *member) child() *object {
	if m.obj != nil {
		return m.obj
	}
	i := skipSpace(m.raw, 0)
	if i >= len(m.raw) || m.raw[i] != '{' {
		return nil
	}
	o, err := parseObject(m.raw)
	if err != nil {
		// The whole value was checked with json.Valid before it was
		// split, so a nested object always parses.
		return nil
	}
	m.obj = o
	m.raw = nil
	return o
}

// set puts value under key: in place if the key is there, else last.
func (o *object) set(key string, raw []byte, obj *object) {
	if i := o.find(key); i >= 0 {
		o.members[i].raw, o.members[i].obj = raw, obj
		return
	}
	o.members = append(o.members, member{key: []byte(key), raw: raw, obj: obj})
}

// remove deletes key's member and reports whether there was one.
func (o *object) remove(key string) bool {
	i := o.find(key)
	if i < 0 {
		return false
	}
	o.members = append(o.members[:i], o.members[i+1:]...)
	return true
}

// appendJSON appends the object's JSON encoding to dst.
func (o *object) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	for i := range o.members {
		m := &o.members[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		if m.quotedKey != nil {
			dst = append(dst, m.quotedKey...)
		} else {
			dst = appendQuoted(dst, string(m.key))
		}
		dst = append(dst, ':')
		if m.obj != nil {
			dst = m.obj.appendJSON(dst)
		} else {
			dst = append(dst, m.raw...)
		}
	}
	return append(dst, '}')
}

// size estimates the encoded length, to allocate the output once.
func (o *object) size() int {
	n := 2
	for i := range o.members {
		m := &o.members[i]
		n += len(m.quotedKey) + len(m.key) + 4
		if m.obj != nil {
			n += m.obj.size()
		} else {
			n += len(m.raw)
		}
	}
	return n
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] (a
// quote), or -1.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the value starting at b[i], or -1.
// It finds the value's end only; json.Valid checked the bytes before.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default:
		start := i
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if i == start {
					return -1
				}
				return i
			}
			i++
		}
		if i == start {
			return -1
		}
		return i
	}
}

// unquoteBytes decodes a JSON string token (with its quotes); a string
// without escapes is returned as a piece of q.
func unquoteBytes(q []byte) ([]byte, error) {
	inner := q[1 : len(q)-1]
	simple := true
	for _, c := range inner {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		return inner, nil
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return nil, errNotObject
	}
	return []byte(s), nil
}

// appendQuoted appends s as a JSON string.
func appendQuoted(dst []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c < 0x20 || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	q, _ := json.Marshal(s) // a string always encodes
	return append(dst, q...)
}
