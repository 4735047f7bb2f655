package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsumers checks the consumer rules, that a refused change leaves
// the stream as it was, and that consumers persist without changing the
// JSON of streams that have none.
func TestConsumers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.json")
	c, err := Open(FileStore{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream("s", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream("plain", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	before, _ := c.Stream("s")
	for _, tc := range []struct {
		stream, name string
		want         error
	}{
		{"s", "a", nil},
		{"s", "a", ErrConsumerExists},
		{"s", "bad name", ErrInvalidConsumer},
		{"s", strings.Repeat("x", 129), ErrInvalidConsumer},
		{"missing", "a", ErrUnknownStream},
	} {
		if _, err := c.AddConsumer(tc.stream, Consumer{Name: tc.name, Created: 1000}); !errors.Is(err, tc.want) {
			t.Fatalf("add %q to %q: %v, want %v", tc.name, tc.stream, err, tc.want)
		}
	}
	if len(before.Consumers) != 0 {
		t.Fatalf("a copy taken before saw %v", before.Consumers)
	}
	for i := 1; i < MaxConsumers; i++ {
		if _, err := c.AddConsumer("s", Consumer{Name: strings.Repeat("b", i), Created: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AddConsumer("s", Consumer{Name: "one-too-many"}); !errors.Is(err, ErrTooManyConsumers) {
		t.Fatalf("21st: %v", err)
	}
	if _, err := c.RemoveConsumer("s", "nobody"); !errors.Is(err, ErrUnknownConsumer) {
		t.Fatalf("remove unknown: %v", err)
	}
	if gone, err := c.RemoveConsumer("s", "a"); err != nil || gone.Created != 1000 {
		t.Fatalf("remove: %+v %v", gone, err)
	}

	c2, err := Open(FileStore{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := c2.Stream("s")
	if _, ok := s.Consumer("a"); ok || len(s.Consumers) != MaxConsumers-1 {
		t.Fatalf("reopened: %d consumers %v", len(s.Consumers), s.Consumers)
	}
	raw, _ := os.ReadFile(path)
	if n := strings.Count(string(raw), `"kinesis_consumers"`); n != 1 {
		t.Fatalf("kinesis_consumers appears %d times in %s (only stream s has consumers)", n, raw)
	}
}
