package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKinesisSettingsCompatible loads a catalog written before the
// Kinesis fields existed, sets and clears settings, and checks that a
// failed change saves nothing and that cleared settings leave no trace in
// the file (so older versions read it as before).
func TestKinesisSettingsCompatible(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.json")
	const old = `{"cluster_id":"c","next_stream_id":2,"next_producer_id":0,
		"streams":[{"id":1,"topic_id":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"name":"s","shards":[{"id":0,"state":"open"}]}]}`
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Open(FileStore{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := c.Stream("s"); s.Kinesis != nil || c.KinesisAccount() != (KinesisAccount{}) {
		t.Fatalf("old catalog reads as settings %+v, account %+v", s.Kinesis, c.KinesisAccount())
	}
	if _, err := c.SetKinesis("s", func(k *KinesisSettings) error { k.Tags = map[string]string{"a": "1"}; return nil }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("refused")
	if _, err := c.SetKinesis("s", func(k *KinesisSettings) error { k.Tags["a"] = "2"; k.Policy = "{}"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed change: %v", err)
	}
	if _, err := c.SetKinesis("nope", func(*KinesisSettings) error { return nil }); !errors.Is(err, ErrUnknownStream) {
		t.Fatalf("unknown stream: %v", err)
	}
	c2, err := Open(FileStore{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := c2.Stream("s"); s.Kinesis == nil || s.Kinesis.Tags["a"] != "1" || s.Kinesis.Policy != "" {
		t.Fatalf("reopened: settings %+v", s.Kinesis)
	}
	if _, err := c2.SetKinesis("s", func(k *KinesisSettings) error { delete(k.Tags, "a"); return nil }); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), `"kinesis"`) {
		t.Fatalf("cleared settings still in the file:\n%s", data)
	}
}
