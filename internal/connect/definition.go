package connect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Definition is the document a user writes for one connector (YAML or
// JSON); docs/connectors.md is its reference.
type Definition struct {
	Name     string      `json:"name"`
	Type     string      `json:"type"`
	Streams  []string    `json:"streams,omitempty"`
	Stream   string      `json:"stream,omitempty"`
	Delivery Delivery    `json:"delivery"`
	Errors   ErrorPolicy `json:"errors"`
	// Transforms are kept as written; the transform package parses them.
	Transforms []json.RawMessage `json:"transforms,omitempty"`
	Config     json.RawMessage   `json:"config,omitempty"`
}

// ErrorPolicy is a definition's "errors" object.
type ErrorPolicy struct {
	OnBadRecord      BadRecordPolicy `json:"on_bad_record"`
	DeadLetterStream string          `json:"dead_letter_stream,omitempty"`
	// RetryBackoffMax is written as a Go duration ("1m", "30s").
	RetryBackoffMax string `json:"retry_backoff_max,omitempty"`
}

// BadRecordPolicy is what happens to a record a sink refuses for good.
type BadRecordPolicy string

const (
	OnBadFail       BadRecordPolicy = "fail"
	OnBadSkip       BadRecordPolicy = "skip"
	OnBadDeadLetter BadRecordPolicy = "dead-letter"
)

// DefaultRetryBackoffMax bounds the wait between retries of a connector
// whose target fails, unless errors.retry_backoff_max says otherwise.
const DefaultRetryBackoffMax = time.Minute

// DefinitionError is a definition refused; Field names what is wrong.
type DefinitionError struct {
	Field string
	Err   error
}

func (e *DefinitionError) Error() string {
	if e.Field == "" {
		return "connector definition: " + e.Err.Error()
	}
	return fmt.Sprintf("connector definition: %s: %v", e.Field, e.Err)
}

func (e *DefinitionError) Unwrap() error { return e.Err }

func defErr(field, format string, args ...any) error {
	return &DefinitionError{Field: field, Err: fmt.Errorf(format, args...)}
}

var (
	namePattern   = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,100}$`)
	streamPattern = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
)

// Kind is "sink" or "source".
func (t Type) Kind() string {
	if t.NewSource != nil {
		return "source"
	}
	return "sink"
}

// Registry is the connector types a node knows, by name.
type Registry map[string]Type

// NewRegistry indexes types by name.
func NewRegistry(types ...Type) Registry {
	r := make(Registry, len(types))
	for _, t := range types {
		r[t.Name] = t
	}
	return r
}

// Names lists the known type names, sorted.
func (r Registry) Names() []string {
	var out []string
	for n := range r {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ParseDefinition reads a definition in YAML or JSON (JSON is YAML) and
// checks everything but the type's own config (see Check). Unknown keys are
// refused: a misspelt "on_bad_recrod" must not silently mean "fail".
func ParseDefinition(doc []byte, types Registry) (*Definition, error) {
	js, err := yamlToJSON(doc)
	if err != nil {
		return nil, &DefinitionError{Err: fmt.Errorf("not YAML or JSON: %w", err)}
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, &DefinitionError{Err: errors.New("empty document")}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, &DefinitionError{Err: errors.New("the document must be an object")}
	}
	known := map[string]bool{"name": true, "type": true, "streams": true, "stream": true, "delivery": true,
		"errors": true, "transforms": true, "config": true}
	for k := range top {
		if !known[k] {
			return nil, defErr(k, "unknown key (known: config, delivery, errors, name, stream, streams, transforms, type)")
		}
	}
	if e, ok := top["errors"]; ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(e, &m); err != nil {
			return nil, defErr("errors", "must be an object")
		}
		for k := range m {
			switch k {
			case "on_bad_record", "dead_letter_stream", "retry_backoff_max":
			default:
				return nil, defErr("errors."+k, "unknown key (known: dead_letter_stream, on_bad_record, retry_backoff_max)")
			}
		}
	}
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(js))
	if err := dec.Decode(&d); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, defErr(te.Field, "wrong type: %s where %s was expected", te.Value, te.Type)
		}
		return nil, &DefinitionError{Err: err}
	}
	if err := d.validate(types); err != nil {
		return nil, err
	}
	return &d, nil
}

func (d *Definition) validate(types Registry) error {
	if d.Name == "" {
		return defErr("name", "missing")
	}
	if !namePattern.MatchString(d.Name) {
		return defErr("name", "%q is not 1 to 100 of [a-zA-Z0-9._-]", d.Name)
	}
	if d.Type == "" {
		return defErr("type", "missing (known: %s)", strings.Join(types.Names(), ", "))
	}
	t, ok := types[d.Type]
	if !ok {
		return &DefinitionError{Field: "type", Err: fmt.Errorf("%w %q (known: %s)", ErrUnknownType, d.Type, strings.Join(types.Names(), ", "))}
	}
	if t.Kind() == "sink" {
		if len(d.Streams) == 0 {
			return defErr("streams", "a sink needs at least one stream to read")
		}
		if d.Stream != "" {
			return defErr("stream", "a sink reads streams; use streams: [%s]", d.Stream)
		}
		seen := map[string]bool{}
		for _, s := range d.Streams {
			if !streamPattern.MatchString(s) {
				return defErr("streams", "%q is not a stream name", s)
			}
			if seen[s] {
				return defErr("streams", "%q is named twice", s)
			}
			seen[s] = true
		}
	} else {
		if len(d.Streams) > 0 {
			return defErr("streams", "a source writes to one stream: use stream, not streams")
		}
		if d.Stream == "" {
			return defErr("stream", "a source needs the stream its records go to")
		}
		if !streamPattern.MatchString(d.Stream) {
			return defErr("stream", "%q is not a stream name", d.Stream)
		}
	}
	switch d.Delivery {
	case "":
		d.Delivery = AtLeastOnce
	case AtLeastOnce:
	case ExactlyOnce:
		if !t.ExactlyOnce {
			return defErr("delivery", "type %s cannot deliver exactly once; use at-least-once", t.Name)
		}
	default:
		return defErr("delivery", "%q is neither at-least-once nor exactly-once", d.Delivery)
	}
	switch d.Errors.OnBadRecord {
	case "":
		d.Errors.OnBadRecord = OnBadFail
	case OnBadFail, OnBadSkip:
	case OnBadDeadLetter:
		if d.Errors.DeadLetterStream == "" {
			return defErr("errors.dead_letter_stream", "missing: on_bad_record dead-letter needs a stream to write refused records to")
		}
	default:
		return defErr("errors.on_bad_record", "%q is not fail, skip or dead-letter", d.Errors.OnBadRecord)
	}
	if s := d.Errors.DeadLetterStream; s != "" {
		if !streamPattern.MatchString(s) {
			return defErr("errors.dead_letter_stream", "%q is not a stream name", s)
		}
		for _, in := range d.Streams {
			if in == s {
				return defErr("errors.dead_letter_stream", "%q is also a stream the connector reads", s)
			}
		}
	}
	if s := d.Errors.RetryBackoffMax; s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			return defErr("errors.retry_backoff_max", "%q is not a duration (like 30s or 1m)", s)
		}
		if v < time.Second {
			return defErr("errors.retry_backoff_max", "%s is less than 1s", v)
		}
	}
	if len(d.Config) == 0 || bytes.Equal(d.Config, []byte("null")) {
		d.Config = json.RawMessage("{}")
	}
	return nil
}

// RetryMax is the longest wait between retries.
func (d *Definition) RetryMax() time.Duration {
	if v, err := time.ParseDuration(d.Errors.RetryBackoffMax); err == nil && v > 0 {
		return v
	}
	return DefaultRetryBackoffMax
}

// Build makes the connector from its type: the type checks its config
// here, so a bad config is refused when the definition is created.
func (d *Definition) Build(types Registry, env Env) (Sink, Source, error) {
	t, ok := types[d.Type]
	if !ok {
		return nil, nil, &DefinitionError{Field: "type", Err: fmt.Errorf("%w %q", ErrUnknownType, d.Type)}
	}
	if t.NewSink != nil {
		s, err := t.NewSink(env, d.Config)
		if err != nil {
			return nil, nil, &DefinitionError{Field: "config", Err: err}
		}
		return s, nil, nil
	}
	s, err := t.NewSource(env, d.Config)
	if err != nil {
		return nil, nil, &DefinitionError{Field: "config", Err: err}
	}
	return nil, s, nil
}

// yamlToJSON reads a YAML 1.2 document (JSON is one) and writes it as
// JSON. YAML 1.2 matters: under 1.1 rules a key or value n, no, on or off
// is a boolean, and {n: 3} would reach a connector as {"false": 3}.
// Scalars keep their text where JSON has no type for them (a date stays
// the string written).
func yamlToJSON(doc []byte) ([]byte, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(doc, &n); err != nil {
		return nil, err
	}
	if n.Kind == 0 {
		return []byte("null"), nil
	}
	v, err := nodeValue(&n, 0)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func nodeValue(n *yaml.Node, depth int) (any, error) {
	if depth > 64 {
		return nil, errors.New("nested too deep")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0], depth+1)
	case yaml.AliasNode:
		return nodeValue(n.Alias, depth+1)
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a key must be a string", k.Line)
			}
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: merge keys (<<) are not supported", k.Line)
			}
			c, err := nodeValue(v, depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = c
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			c, err := nodeValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			err := n.Decode(&b)
			return b, err
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return i, nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("line %d: %s is not a JSON number", n.Line, n.Value)
			}
			return f, nil
		default: // strings, timestamps, binary: as written
			return n.Value, nil
		}
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}
