package kinesis

import (
	"fmt"
	"testing"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// TestDescribeHelpers checks what Describe* outputs will report from the
// settings operations' configs and catalog fields, on a real engine.
func TestDescribeHelpers(t *testing.T) {
	eng, err := engine.Open(engine.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	s := NewServer(eng, Options{})
	if _, err := eng.CreateStream("h", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	set := func(k, v string) {
		t.Helper()
		if err := eng.SetConfigs("h", map[string]*string{k: &v}, false, false); err != nil {
			t.Fatal(err)
		}
	}
	st := func() *engine.Stream { return eng.Stream("h") }
	if h, kib := retentionHours(s, st()), maxRecordSizeKiB(s, st()); h != 168 || kib != 1024 {
		t.Fatalf("defaults: %d hours, %d KiB; want 168, 1024", h, kib)
	}
	typ, key := encryption(st())
	if typ != "NONE" || key != "" || len(shardLevelMetrics(st())) != 0 || streamTags(st()) != nil {
		t.Fatalf("defaults: encryption %s %q, metrics %v, tags %v", typ, key, shardLevelMetrics(st()), streamTags(st()))
	}
	for _, c := range []struct {
		ms    string
		hours int
	}{{"86400000", 24}, {"88200000", 25}, {"-1", 8760}} {
		set("retention.ms", c.ms)
		if h := retentionHours(s, st()); h != c.hours {
			t.Fatalf("retention.ms %s: %d hours, want %d", c.ms, h, c.hours)
		}
	}
	set("max.message.bytes", fmt.Sprint(10240*1024+maxRecordOverhead))
	if kib := maxRecordSizeKiB(s, st()); kib != 10240 {
		t.Fatalf("max record size %d KiB, want 10240", kib)
	}
	err = eng.SetKinesis("h", func(k *catalog.KinesisSettings) error {
		k.EncryptionType, k.KeyID = "KMS", "key"
		k.ShardLevelMetrics = []string{"IncomingBytes"}
		k.Tags = map[string]string{"a": "1"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	typ, key = encryption(st())
	tags := streamTags(st())
	tags["b"] = "2" // a copy: must not reach the stream
	if typ != "KMS" || key != "key" || fmt.Sprint(shardLevelMetrics(st())) != "[IncomingBytes]" || fmt.Sprint(streamTags(st())) != "map[a:1]" {
		t.Fatalf("after setting: encryption %s %q, metrics %v, tags %v", typ, key, shardLevelMetrics(st()), streamTags(st()))
	}
}
