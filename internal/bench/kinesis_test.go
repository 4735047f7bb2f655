package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func validKinesisConfig() KinesisConfig {
	return KinesisConfig{
		Endpoint:       "http://127.0.0.1:4567",
		Region:         "us-east-1",
		Stream:         "braid-bench-kinesis",
		Shards:         4,
		Callers:        4,
		RecordsPerCall: 500,
		RecordSize:     1024,
		Duration:       time.Second,
	}
}

func TestKinesisConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*KinesisConfig)
		wantMsg string // substring of the error; "" = no error
	}{
		{"valid", func(*KinesisConfig) {}, ""},
		{"rate", func(c *KinesisConfig) { c.Rate = 100 }, ""},
		{"signed", func(c *KinesisConfig) { c.AccessKeyID, c.SecretAccessKey = "a", "b" }, ""},
		{"one record per call", func(c *KinesisConfig) { c.RecordsPerCall = 1 }, ""},
		{"no endpoint", func(c *KinesisConfig) { c.Endpoint = "" }, "no endpoint"},
		{"no region", func(c *KinesisConfig) { c.Region = "" }, "no region"},
		{"no stream", func(c *KinesisConfig) { c.Stream = "" }, "no stream"},
		{"no shards", func(c *KinesisConfig) { c.Shards = 0 }, "shards must be at least 1"},
		{"no callers", func(c *KinesisConfig) { c.Callers = 0 }, "callers must be at least 1"},
		{"no records per call", func(c *KinesisConfig) { c.RecordsPerCall = 0 }, "records per call must be 1 to 500"},
		{"501 records per call", func(c *KinesisConfig) { c.RecordsPerCall = 501 }, "records per call must be 1 to 500"},
		{"empty records", func(c *KinesisConfig) { c.RecordSize = 0 }, "record size"},
		{"records over 1 MiB", func(c *KinesisConfig) { c.RecordSize = 1<<20 + 1 }, "record size"},
		{"no duration", func(c *KinesisConfig) { c.Duration = 0 }, "duration must be positive"},
		{"negative rate", func(c *KinesisConfig) { c.Rate = -1 }, "rate must not be negative"},
		{"key without secret", func(c *KinesisConfig) { c.AccessKeyID = "a" }, "both"},
		{"secret without key", func(c *KinesisConfig) { c.SecretAccessKey = "b" }, "both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validKinesisConfig()
			tc.change(&cfg)
			err := cfg.validate()
			switch {
			case tc.wantMsg == "" && err != nil:
				t.Fatalf("validate: %v, want no error", err)
			case tc.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tc.wantMsg)):
				t.Fatalf("validate: %v, want an error containing %q", err, tc.wantMsg)
			}
		})
	}
}

func TestShardEnd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records int
		next    *string
		behind  *int64
		want    bool
	}{
		{"closed shard read to its end", 0, nil, aws.Int64(0), true},
		{"last records of a closed shard", 10, nil, nil, true},
		{"at the tip", 0, aws.String("it"), aws.Int64(0), true},
		{"at the tip, no MillisBehindLatest", 0, aws.String("it"), nil, true},
		{"records, more may follow", 10, aws.String("it"), aws.Int64(0), false},
		{"records, behind", 10, aws.String("it"), aws.Int64(5000), false},
		{"empty but behind", 0, aws.String("it"), aws.Int64(1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shardEnd(tc.records, tc.next, tc.behind); got != tc.want {
				t.Fatalf("shardEnd(%d, %v, %v) = %v, want %v", tc.records, tc.next, tc.behind, got, tc.want)
			}
		})
	}
}

// TestPartitionKeysDistinct: interleaved callers never send the same
// partition key, so records spread over every shard's hash range.
func TestPartitionKeysDistinct(t *testing.T) {
	const callers, perCaller = 3, 1000
	seen := map[string]bool{}
	buf := make([]byte, 0, 24)
	for c := range callers {
		for i := range int64(perCaller) {
			k := partitionKey(buf, i, c, callers)
			if seen[k] {
				t.Fatalf("caller %d record %d: key %q repeats", c, i, k)
			}
			seen[k] = true
		}
	}
	if len(seen) != callers*perCaller {
		t.Fatalf("%d distinct keys, want %d", len(seen), callers*perCaller)
	}
	if k := partitionKey(buf, 7, 2, callers); k != "k23" {
		t.Fatalf("partitionKey(7, 2, 3) = %q, want k23", k)
	}
}
