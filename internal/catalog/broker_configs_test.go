package catalog

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestTopicConfigFromLayers(t *testing.T) {
	cases := []struct {
		name   string
		layers ConfigLayers
		set    Configs
		config string
		want   string
		src    ConfigSource
		first  string // name of the first synonym
	}{
		{"kafka default", ConfigLayers{}, nil, "retention.ms", "604800000", SourceDefault, "log.retention.hours"},
		{"static flag", ConfigLayers{Static: Configs{"retention.ms": "1000"}}, nil, "retention.ms", "1000", SourceStatic, "log.retention.ms"},
		{"cluster hours", ConfigLayers{Cluster: Configs{"log.retention.hours": "2"}}, nil, "retention.ms", "7200000", SourceDynamicDefault, "log.retention.hours"},
		{"cluster minutes beat hours", ConfigLayers{Cluster: Configs{"log.retention.hours": "2", "log.retention.minutes": "3"}}, nil, "retention.ms", "180000", SourceDynamicDefault, "log.retention.minutes"},
		{"negative hours keep forever", ConfigLayers{Cluster: Configs{"log.retention.hours": "-1"}}, nil, "retention.ms", "-1", SourceDynamicDefault, "log.retention.hours"},
		{"dynamic beats static", ConfigLayers{Cluster: Configs{"log.retention.ms": "5"}, Static: Configs{"retention.ms": "1000"}}, nil, "retention.ms", "5", SourceDynamicDefault, "log.retention.ms"},
		{"node beats cluster", ConfigLayers{Node: Configs{"log.retention.ms": "6"}, Cluster: Configs{"log.retention.ms": "5"}}, nil, "retention.ms", "6", SourceDynamicBroker, "log.retention.ms"},
		{"topic beats all", ConfigLayers{Node: Configs{"log.retention.ms": "6"}}, Configs{"retention.ms": "7"}, "retention.ms", "7", SourceTopic, "retention.ms"},
		{"other name", ConfigLayers{Cluster: Configs{"message.max.bytes": "4096"}}, nil, "max.message.bytes", "4096", SourceDynamicDefault, "message.max.bytes"},
		{"no synonym", ConfigLayers{}, nil, "remote.storage.enable", "false", SourceDefault, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.layers.Topic(c.config, c.set)
			if r.Value != c.want || r.Source != c.src {
				t.Errorf("%s = %q from %d, want %q from %d", c.config, r.Value, r.Source, c.want, c.src)
			}
			first := ""
			if len(r.Synonyms) > 0 {
				first = r.Synonyms[0].Name
			}
			if first != c.first {
				t.Errorf("first synonym %q, want %q (%+v)", first, c.first, r.Synonyms)
			}
			d := c.layers.StreamDefaults()
			if v, ok := d[c.config]; c.src != SourceDefault && c.src != SourceTopic && (!ok || v != c.want) {
				t.Errorf("stream default %q (set %v), want %q", v, ok, c.want)
			}
		})
	}
}

func TestValidateConfigByType(t *testing.T) {
	good := map[string]string{
		"segment.bytes": "2147483647", "min.insync.replicas": "3", "cleanup.policy": "compact,delete",
		"compression.type": "zstd", "preallocate": "TRUE", "min.cleanable.dirty.ratio": "0.25",
		"message.format.version": "2.8", "compression.gzip.level": "-1", "compression.zstd.level": "-5",
		"leader.replication.throttled.replicas": "0:1,1:2", "follower.replication.throttled.replicas": "*",
		"local.retention.ms": "-2", "remote.storage.enable": "false", "message.downconversion.enable": "false",
	}
	for k, v := range good {
		if err := ValidateConfig(k, v); err != nil {
			t.Errorf("%s=%s refused: %v", k, v, err)
		}
	}
	bad := map[string]string{
		"segment.bytes": "2147483648", "min.insync.replicas": "0", "cleanup.policy": "delete,shred",
		"compression.type": "brotli", "preallocate": "yes", "min.cleanable.dirty.ratio": "1.5",
		"message.format.version": "latest", "compression.gzip.level": "0", "compression.zstd.level": "23",
		"compression.lz4.level": "18", "leader.replication.throttled.replicas": "0-1", "local.retention.ms": "-3",
		"remote.storage.enable": "true", "retention.ms": "-2", "message.timestamp.type": "NoTime",
		"retention.bytes": "1.5", "no.such.config": "1",
	}
	for k, v := range bad {
		if err := ValidateConfig(k, v); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s=%s: %v, want ErrInvalidConfig", k, v, err)
		}
	}
	if err := ValidateBrokerConfig("log.retention.hours", "x"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("log.retention.hours=x: %v", err)
	}
	if err := ValidateBrokerConfig("log.roll.hours", "0"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("log.roll.hours=0 (segment.ms must be at least 1): %v", err)
	}
	if err := ValidateBrokerConfig("num.partitions", "3"); !errors.Is(err, ErrReadOnlyConfig) {
		t.Errorf("num.partitions: %v, want ErrReadOnlyConfig", err)
	}
}

func TestDynamicConfigsPersist(t *testing.T) {
	store := FileStore{Path: filepath.Join(t.TempDir(), "catalog.json")}
	c, err := Open(store)
	if err != nil {
		t.Fatal(err)
	}
	v := "3600000"
	if err := c.SetDynamicConfigs(true, map[string]*string{"log.retention.ms": &v}, false, false); err != nil {
		t.Fatal(err)
	}
	bad := "soon"
	if err := c.SetDynamicConfigs(false, map[string]*string{"log.retention.ms": &v, "log.segment.bytes": &bad}, false, false); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad value: %v", err)
	}
	if err := c.SetDynamicConfigs(false, map[string]*string{"num.io.threads": &v}, false, true); err != nil {
		t.Fatal(err)
	}
	c2, err := Open(store)
	if err != nil {
		t.Fatal(err)
	}
	node, cluster := c2.DynamicConfigs()
	if len(node) != 0 || len(cluster) != 1 || cluster["log.retention.ms"] != v {
		t.Fatalf("after reopening: node %v cluster %v", node, cluster)
	}
}

// Kafka's order of checks: an existing or unknown stream is reported before
// a bad config.
func TestStreamErrorsBeforeConfigErrors(t *testing.T) {
	c, err := Open(FileStore{Path: filepath.Join(t.TempDir(), "catalog.json")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream("s", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream("s", 1, Configs{"retention.ms": "soon"}, false); !errors.Is(err, ErrStreamExists) {
		t.Errorf("create an existing stream with a bad config: %v, want ErrStreamExists", err)
	}
	bad := "soon"
	if _, err := c.SetConfigs("missing", map[string]*string{"retention.ms": &bad}, false, false); !errors.Is(err, ErrUnknownStream) {
		t.Errorf("alter a missing stream with a bad config: %v, want ErrUnknownStream", err)
	}
	if _, err := c.SetConfigs("s", map[string]*string{"retention.ms": &bad}, false, false); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("alter with a bad config: %v, want ErrInvalidConfig", err)
	}
}
