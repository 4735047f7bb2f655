package connect

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var testTypes = NewRegistry(
	Type{Name: "x-sink", NewSink: func(Env, json.RawMessage) (Sink, error) { return nil, nil }},
	Type{Name: "x-source", ExactlyOnce: true, NewSource: func(Env, json.RawMessage) (Source, error) { return nil, nil }},
)

// The brief's example, in YAML, reads into the same definition as JSON.
func TestParseDefinitionYAMLAndJSON(t *testing.T) {
	yml := `
name: orders-archive
type: x-sink
streams: [orders]
errors:
  on_bad_record: dead-letter
  dead_letter_stream: orders-dlq
  retry_backoff_max: 30s
transforms:
  - {select: [id, total]}
  - {rename: {total: amount}}
config:
  bucket: archive
  n: 3
  on: off
  when: 2024-01-02
  big: 9007199254740993
`
	d, err := ParseDefinition([]byte(yml), testTypes)
	if err != nil {
		t.Fatal(err)
	}
	if d.Delivery != AtLeastOnce || d.Errors.OnBadRecord != OnBadDeadLetter || d.RetryMax() != 30*time.Second {
		t.Fatalf("parsed %+v", d)
	}
	if len(d.Transforms) != 2 || string(d.Transforms[1]) != `{"rename":{"total":"amount"}}` {
		t.Fatalf("transforms %s", d.Transforms)
	}
	if string(d.Config) != `{"big":9007199254740993,"bucket":"archive","n":3,"on":"off","when":"2024-01-02"}` {
		t.Fatalf("config %s", d.Config)
	}
	js, _ := json.Marshal(d)
	d2, err := ParseDefinition(js, testTypes)
	if err != nil {
		t.Fatal(err)
	}
	if js2, _ := json.Marshal(d2); string(js2) != string(js) {
		t.Fatalf("JSON round trip: %s != %s", js2, js)
	}
}

func TestParseDefinitionRefusals(t *testing.T) {
	cases := []struct {
		name, doc, field string
	}{
		{"empty", ``, ""},
		{"list", `[1]`, ""},
		{"long name", `{"name":"` + strings.Repeat("a", 101) + `","type":"x-sink","streams":["s"]}`, "name"},
		{"unknown type", `{"name":"a","type":"nope","streams":["s"]}`, "type"},
		{"no type", `{"name":"a","streams":["s"]}`, "type"},
		{"sink with stream", `{"name":"a","type":"x-sink","stream":"s","streams":["t"]}`, "stream"},
		{"source without stream", `{"name":"a","type":"x-source"}`, "stream"},
		{"bad stream name", `{"name":"a","type":"x-sink","streams":["a/b"]}`, "streams"},
		{"stream twice", `{"name":"a","type":"x-sink","streams":["s","s"]}`, "streams"},
		{"exactly-once sink", `{"name":"a","type":"x-sink","streams":["s"],"delivery":"exactly-once"}`, "delivery"},
		{"bad delivery", `{"name":"a","type":"x-source","stream":"s","delivery":"twice"}`, "delivery"},
		{"bad policy", `{"name":"a","type":"x-sink","streams":["s"],"errors":{"on_bad_record":"ignore"}}`, "errors.on_bad_record"},
		{"dead letter into the input", `{"name":"a","type":"x-sink","streams":["s"],"errors":{"on_bad_record":"dead-letter","dead_letter_stream":"s"}}`, "errors.dead_letter_stream"},
		{"short backoff", `{"name":"a","type":"x-sink","streams":["s"],"errors":{"retry_backoff_max":"10ms"}}`, "errors.retry_backoff_max"},
		{"wrong type of value", `{"name":"a","type":"x-sink","streams":"s"}`, "streams"},
		{"unknown key", `{"name":"a","type":"x-sink","streams":["s"],"stremas":["t"]}`, "stremas"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDefinition([]byte(c.doc), testTypes)
			var de *DefinitionError
			if !errors.As(err, &de) {
				t.Fatalf("err %v, want a DefinitionError", err)
			}
			if de.Field != c.field {
				t.Fatalf("field %q (%v), want %q", de.Field, err, c.field)
			}
		})
	}
	_, err := ParseDefinition([]byte(`{"name":"a","type":"nope","streams":["s"]}`), testTypes)
	if !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), "known: x-sink, x-source") {
		t.Fatalf("unknown type: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for n, w := range want {
		if got := backoff(n, 10*time.Second); got != w {
			t.Errorf("backoff(%d) = %s, want %s", n, got, w)
		}
	}
}
