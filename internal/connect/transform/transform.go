package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	fastjson "github.com/segmentio/encoding/json"

	"github.com/braidstream/braid/internal/connect"
)

// ErrNotObject is returned by Apply for a record whose value is not a JSON
// object; the runtime treats the record as a bad record.
var ErrNotObject = errors.New("transform: record value is not a JSON object")

// Kinds of step, as a definition spells them.
const (
	kindSelect   = "select"
	kindDrop     = "drop"
	kindRename   = "rename"
	kindMetadata = "insert_metadata"
	kindFilter   = "filter"
)

var kinds = []string{kindSelect, kindDrop, kindRename, kindMetadata, kindFilter}

// Chain is a parsed transforms list. The zero Chain keeps every record
// unchanged without looking at it. A Chain does not change after Parse, so
// one Chain may be applied from several goroutines.
type Chain struct {
	steps []step
}

// step is one transform. apply changes o in place and says whether it
// changed anything and whether the record is kept.
type step interface {
	kind() string
	apply(o *object, r *connect.Record) (changed, keep bool, err error)
}

// Parse reads a definition's transforms list, one object per element.
func Parse(raw []json.RawMessage) (Chain, error) {
	var c Chain
	for i, el := range raw {
		s, err := parseStep(el)
		if err != nil {
			return Chain{}, fmt.Errorf("transform %d: %w", i, err)
		}
		c.steps = append(c.steps, s)
	}
	return c, nil
}

// Len is the number of steps.
func (c Chain) Len() int { return len(c.steps) }

// Apply runs the chain on r's value. keep is false when a filter drops the
// record. r.Value is replaced by a new encoding only when a step changed
// something; the old bytes are never written to. An error means the value
// is not a JSON object (ErrNotObject) or a step could not apply to it; it
// names the step.
func (c Chain) Apply(r *connect.Record) (keep bool, err error) {
	if len(c.steps) == 0 {
		return true, nil
	}
	if !fastjson.Valid(r.Value) {
		if len(bytes.TrimSpace(r.Value)) == 0 {
			return false, fmt.Errorf("%w: the value is empty", ErrNotObject)
		}
		return false, fmt.Errorf("%w: not valid JSON", ErrNotObject)
	}
	o, err := parseObject(r.Value)
	if err != nil {
		return false, fmt.Errorf("%w: it is %s", ErrNotObject, jsonKind(r.Value))
	}
	changed := false
	for i, s := range c.steps {
		ch, keep, err := s.apply(o, r)
		if err != nil {
			return false, fmt.Errorf("transform %d (%s): %w", i, s.kind(), err)
		}
		if !keep {
			return false, nil
		}
		changed = changed || ch
	}
	if changed {
		r.Value = o.appendJSON(make([]byte, 0, o.size()))
	}
	return true, nil
}

func parseStep(el json.RawMessage) (step, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(el, &m); err != nil || m == nil {
		return nil, fmt.Errorf("want an object with one of the keys %s", strings.Join(kinds, ", "))
	}
	if len(m) != 1 {
		keys := slices.Sorted(maps.Keys(m))
		return nil, fmt.Errorf("want exactly one of %s, got %d keys (%s)", strings.Join(kinds, ", "), len(m), strings.Join(keys, ", "))
	}
	for k, v := range m {
		var s step
		var err error
		switch k {
		case kindSelect:
			s, err = parseSelect(v)
		case kindDrop:
			s, err = parseDrop(v)
		case kindRename:
			s, err = parseRename(v)
		case kindMetadata:
			s, err = parseMetadata(v)
		case kindFilter:
			s, err = parseFilter(v)
		default:
			return nil, fmt.Errorf("unknown transform %q; transforms are %s", k, strings.Join(kinds, ", "))
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		return s, nil
	}
	panic("unreachable")
}

// path is a dotted field path split at its dots: "customer.ssn" reaches
// the field ssn of the object in the field customer.
type path []string

func parsePath(s string) (path, error) {
	if s == "" {
		return nil, errors.New("empty field path")
	}
	p := strings.Split(s, ".")
	if slices.Contains(p, "") {
		return nil, fmt.Errorf("field path %q has an empty part", s)
	}
	return p, nil
}

func (p path) String() string { return strings.Join(p, ".") }

// parsePaths reads a non-empty list of field paths.
func parsePaths(v json.RawMessage) ([]path, error) {
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		return nil, errors.New("want a list of field paths, like [id, customer.name]")
	}
	if len(list) == 0 {
		return nil, errors.New("empty list of field paths")
	}
	out := make([]path, 0, len(list))
	for _, s := range list {
		p, err := parsePath(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// parseFieldMap reads an object of string values.
func parseFieldMap(v json.RawMessage, example string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal(v, &m); err != nil || m == nil {
		return nil, fmt.Errorf("want an object of field names, like %s", example)
	}
	if len(m) == 0 {
		return nil, errors.New("empty object")
	}
	return m, nil
}

// parent walks p's prefix from o, splitting objects on the way; nil if a
// field on the way is missing or not an object.
func parent(o *object, p path) *object {
	for _, k := range p[:len(p)-1] {
		i := o.find(k)
		if i < 0 {
			return nil
		}
		if o = o.members[i].child(); o == nil {
			return nil
		}
	}
	return o
}

// lookup finds p's member, or nil.
func lookup(o *object, p path) *member {
	o = parent(o, p)
	if o == nil {
		return nil
	}
	i := o.find(p[len(p)-1])
	if i < 0 {
		return nil
	}
	return &o.members[i]
}

// hasPrefix reports whether q starts with all of p.
func hasPrefix(q, p path) bool {
	return len(q) >= len(p) && slices.Equal(q[:len(p)], p)
}

// sortPaths orders paths so steps apply in an order that does not depend
// on map iteration.
func sortPaths(ps []path) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].String() < ps[j].String() })
}

// rawValue is a member's value as JSON bytes.
func (m *member) rawValue() []byte {
	if m.obj != nil {
		return m.obj.appendJSON(nil)
	}
	return bytes.TrimSpace(m.raw)
}

// jsonKind names the kind of a valid JSON value, for an error.
func jsonKind(b []byte) string {
	t := bytes.TrimSpace(b)
	switch t[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
