package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/braidstream/braid/internal/connect"
)

// selectStep keeps only the listed fields. A listed field that is missing
// is no error; a field on a listed path that is not an object is dropped
// (the path does not exist in it).
type selectStep struct{ root *selNode }

// selNode is one level of the selected paths: all keeps the whole field.
type selNode struct {
	all  bool
	kids map[string]*selNode
}

func parseSelect(v json.RawMessage) (step, error) {
	ps, err := parsePaths(v)
	if err != nil {
		return nil, err
	}
	root := &selNode{kids: map[string]*selNode{}}
	for _, p := range ps {
		n := root
		for _, k := range p {
			if n.all {
				break // a shorter path already keeps all of it
			}
			if n.kids == nil {
				n.kids = map[string]*selNode{}
			}
			next := n.kids[k]
			if next == nil {
				next = &selNode{}
				n.kids[k] = next
			}
			n = next
		}
		n.all, n.kids = true, nil
	}
	return selectStep{root: root}, nil
}

func (selectStep) kind() string { return kindSelect }

func (s selectStep) apply(o *object, _ *connect.Record) (bool, bool, error) {
	return selectIn(o, s.root), true, nil
}

func selectIn(o *object, n *selNode) bool {
	changed := false
	kept := o.members[:0]
	for _, m := range o.members {
		k := n.kids[string(m.key)]
		switch {
		case k == nil:
			changed = true
			continue
		case k.all:
		default:
			c := m.child()
			if c == nil {
				changed = true
				continue
			}
			changed = selectIn(c, k) || changed
		}
		kept = append(kept, m)
	}
	clear(o.members[len(kept):])
	o.members = kept
	return changed
}

// dropStep removes the listed fields; a missing one is no error.
type dropStep struct{ paths []path }

func parseDrop(v json.RawMessage) (step, error) {
	ps, err := parsePaths(v)
	if err != nil {
		return nil, err
	}
	return dropStep{paths: ps}, nil
}

func (dropStep) kind() string { return kindDrop }

func (s dropStep) apply(o *object, _ *connect.Record) (bool, bool, error) {
	changed := false
	for _, p := range s.paths {
		if par := parent(o, p); par != nil && par.remove(p[len(p)-1]) {
			changed = true
		}
	}
	return changed, true, nil
}

// renameStep gives fields new names in the same object: {total: amount},
// {customer.name: full_name}. The renames of one step are independent of
// each other (Parse refuses those that are not), so their order does not
// matter. Renaming onto a field that exists is an error: a silent
// overwrite would lose data.
type renameStep struct {
	from []path
	to   []string
	// toKey is to as bytes, made once so applying allocates nothing.
	toKey [][]byte
}

func parseRename(v json.RawMessage) (step, error) {
	m, err := parseFieldMap(v, "{total: amount}")
	if err != nil {
		return nil, err
	}
	s := renameStep{}
	for from := range m {
		p, err := parsePath(from)
		if err != nil {
			return nil, err
		}
		s.from = append(s.from, p)
	}
	sortPaths(s.from)
	for i, p := range s.from {
		to := m[p.String()]
		switch {
		case to == "":
			return nil, fmt.Errorf("%q: empty new name", p)
		case strings.Contains(to, "."):
			return nil, fmt.Errorf("%q: new name %q has a dot; a rename keeps the field where it is, give the new name only", p, to)
		case to == p[len(p)-1]:
			return nil, fmt.Errorf("%q: renamed to itself", p)
		}
		s.to = append(s.to, to)
		s.toKey = append(s.toKey, []byte(to))
		for j, q := range s.from[:i] {
			switch {
			case hasPrefix(p, q):
				return nil, fmt.Errorf("%q and %q in one rename: the first is inside the second; use two rename steps", p, q)
			case !slices.Equal(p[:len(p)-1], q[:len(q)-1]):
			case s.to[j] == to:
				return nil, fmt.Errorf("%q and %q are both renamed to %q", q, p, to)
			case s.to[j] == p[len(p)-1] || to == q[len(q)-1]:
				return nil, fmt.Errorf("%q and %q in one rename: one is renamed to the other's name; use two rename steps", q, p)
			}
		}
	}
	return s, nil
}

func (renameStep) kind() string { return kindRename }

func (s renameStep) apply(o *object, _ *connect.Record) (bool, bool, error) {
	changed := false
	for i, p := range s.from {
		par := parent(o, p)
		if par == nil {
			continue
		}
		j := par.find(p[len(p)-1])
		if j < 0 {
			continue
		}
		if par.find(s.to[i]) >= 0 {
			return false, false, fmt.Errorf("rename %q to %q: the field %q exists already", p, s.to[i], s.to[i])
		}
		par.members[j].key, par.members[j].quotedKey = s.toKey[i], nil
		changed = true
	}
	return changed, true, nil
}

// Metadata a record carries that insert_metadata can add.
const (
	metaStream    = "stream"
	metaShard     = "shard"
	metaOffset    = "offset"
	metaTimestamp = "timestamp"
)

var metaNames = []string{metaStream, metaShard, metaOffset, metaTimestamp}

// timestampLayout is RFC 3339 in UTC with milliseconds, the precision of
// a Kafka record's timestamp.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

// metadataStep sets fields to the record's stream, shard, offset or
// timestamp, replacing a field that exists (in its place) and creating the
// objects on a dotted path that are missing.
type metadataStep struct {
	what []string // metaNames, in that order
	to   []path
}

func parseMetadata(v json.RawMessage) (step, error) {
	m, err := parseFieldMap(v, "{stream: _stream, offset: _offset}")
	if err != nil {
		return nil, err
	}
	for k := range m {
		if !slices.Contains(metaNames, k) {
			return nil, fmt.Errorf("unknown metadata %q; metadata are %s", k, strings.Join(metaNames, ", "))
		}
	}
	s := metadataStep{}
	for _, what := range metaNames {
		to, ok := m[what]
		if !ok {
			continue
		}
		p, err := parsePath(to)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		for j, q := range s.to {
			if hasPrefix(p, q) || hasPrefix(q, p) {
				return nil, fmt.Errorf("%s and %s go to overlapping fields %q and %q", s.what[j], what, q, p)
			}
		}
		s.what = append(s.what, what)
		s.to = append(s.to, p)
	}
	return s, nil
}

func (metadataStep) kind() string { return kindMetadata }

func (s metadataStep) apply(o *object, r *connect.Record) (bool, bool, error) {
	for i, p := range s.to {
		par := o
		for _, k := range p[:len(p)-1] {
			j := par.find(k)
			if j < 0 {
				next := &object{}
				par.members = append(par.members, member{key: []byte(k), obj: next})
				par = next
				continue
			}
			next := par.members[j].child()
			if next == nil {
				return false, false, fmt.Errorf("%s to %q: the field %q is not an object", s.what[i], p, p[:slices.Index(p, k)+1])
			}
			par = next
		}
		var raw []byte
		switch s.what[i] {
		case metaStream:
			raw = appendQuoted(nil, r.Stream)
		case metaShard:
			raw = strconv.AppendInt(nil, int64(r.Shard), 10)
		case metaOffset:
			raw = strconv.AppendInt(nil, r.Offset, 10)
		case metaTimestamp:
			if r.Timestamp.IsZero() {
				raw = []byte("null")
			} else {
				raw = append(r.Timestamp.UTC().AppendFormat([]byte{'"'}, timestampLayout), '"')
			}
		}
		par.set(p[len(p)-1], raw, nil)
	}
	return true, true, nil
}

// Filter operators.
const (
	opEq        = "eq"
	opNe        = "ne"
	opIn        = "in"
	opExists    = "exists"
	opNotExists = "not_exists"
)

var ops = []string{opEq, opNe, opIn, opExists, opNotExists}

// filterStep keeps a record when its field passes the test. A missing
// field is not equal to anything (eq and in drop the record, ne keeps
// it). Values compare as JSON values: numbers by value (1 equals 1.0),
// objects and arrays element by element.
// Numbers compare to about 150 significant digits (numberPrec).
type filterStep struct {
	field path
	op    string
	want  []any // one value for eq and ne, the list for in
}

func parseFilter(v json.RawMessage) (step, error) {
	var f struct {
		Field string          `json:"field"`
		Op    string          `json:"op"`
		Value json.RawMessage `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("want {field: PATH, op: %s, value: V}: %v", strings.Join(ops, "|"), err)
	}
	p, err := parsePath(f.Field)
	if err != nil {
		return nil, fmt.Errorf("field: %w", err)
	}
	s := filterStep{field: p, op: f.Op}
	switch f.Op {
	case opEq, opNe:
		if f.Value == nil {
			return nil, fmt.Errorf("op %s needs a value", f.Op)
		}
		w, err := decodeValue(f.Value)
		if err != nil {
			return nil, fmt.Errorf("value: %v", err)
		}
		s.want = []any{w}
	case opIn:
		w, err := decodeValue(f.Value)
		list, ok := w.([]any)
		if f.Value == nil || err != nil || !ok || len(list) == 0 {
			return nil, errors.New("op in needs a value that is a non-empty list")
		}
		s.want = list
	case opExists, opNotExists:
		if f.Value != nil {
			return nil, fmt.Errorf("op %s takes no value", f.Op)
		}
	case "":
		return nil, fmt.Errorf("op missing; ops are %s", strings.Join(ops, ", "))
	default:
		return nil, fmt.Errorf("unknown op %q; ops are %s", f.Op, strings.Join(ops, ", "))
	}
	return s, nil
}

func (filterStep) kind() string { return kindFilter }

func (s filterStep) apply(o *object, _ *connect.Record) (bool, bool, error) {
	m := lookup(o, s.field)
	switch s.op {
	case opExists:
		return false, m != nil, nil
	case opNotExists:
		return false, m == nil, nil
	}
	match := false
	if m != nil {
		got, err := decodeValue(m.rawValue())
		if err != nil {
			return false, false, fmt.Errorf("field %q: %v", s.field, err)
		}
		for _, w := range s.want {
			if jsonEqual(got, w) {
				match = true
				break
			}
		}
	}
	if s.op == opNe {
		return false, !match, nil
	}
	return false, match, nil
}

// numberPrec is the precision, in bits, numbers compare at: about 150
// significant decimal digits.
const numberPrec = 512

// decodeValue decodes one JSON value, numbers as json.Number so they
// compare exactly.
func decodeValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// jsonEqual compares two decoded JSON values.
func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case json.Number:
		bn, ok := b.(json.Number)
		if !ok {
			return false
		}
		if a == bn {
			return true
		}
		// big.Float, not big.Rat: a Rat of 1e999999999 would be huge.
		x, _, errx := big.ParseFloat(string(a), 10, numberPrec, big.ToNearestEven)
		y, _, erry := big.ParseFloat(string(bn), 10, numberPrec, big.ToNearestEven)
		return errx == nil && erry == nil && x.Cmp(y) == 0
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !jsonEqual(a[i], bl[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, av := range a {
			bv, ok := bm[k]
			if !ok || !jsonEqual(av, bv) {
				return false
			}
		}
		return true
	}
	return false
}
