package catalog

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ErrInvalidConfig is returned for an unknown config name or a bad value.
var ErrInvalidConfig = errors.New("catalog: invalid config")

// ConfigSpec describes one per-stream config, named as Kafka names it so that
// Kafka admin tools work unchanged.
type ConfigSpec struct {
	Name      string
	Default   string
	Doc       string
	Sensitive bool
	validate  func(string) error
}

func longAtLeast(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
	}
}

func ratio(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return fmt.Errorf("must be a number between 0 and 1")
	}
	return nil
}

func cleanupPolicy(v string) error {
	parts := strings.Split(v, ",")
	seen := map[string]bool{}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p != "delete" && p != "compact" {
			return fmt.Errorf("must be delete, compact or compact,delete")
		}
		if seen[p] {
			return fmt.Errorf("lists %q twice", p)
		}
		seen[p] = true
	}
	return nil
}

func anyValue(string) error { return nil }

// MaxMessageBytesDefault is the default largest record batch a stream takes,
// as Kafka's broker default (1 MiB plus batch overhead).
const MaxMessageBytesDefault = 1048588

// Specs lists every per-stream config Braid knows, by name.
var Specs = map[string]ConfigSpec{}

func init() {
	for _, s := range []ConfigSpec{
		{Name: "cleanup.policy", Default: "delete", Doc: "delete, compact, or compact,delete", validate: cleanupPolicy},
		{Name: "retention.ms", Default: "604800000", Doc: "time to keep data, ms; -1 keeps forever", validate: longAtLeast(-1)},
		{Name: "retention.bytes", Default: "-1", Doc: "bytes to keep per shard; -1 keeps all", validate: longAtLeast(-1)},
		{Name: "segment.bytes", Default: "1073741824", Doc: "size of a shard segment, bytes", validate: longAtLeast(14)},
		{Name: "segment.ms", Default: "604800000", Doc: "time after which a segment is rolled, ms", validate: longAtLeast(1)},
		{Name: "max.message.bytes", Default: strconv.Itoa(MaxMessageBytesDefault), Doc: "largest record batch accepted, bytes", validate: longAtLeast(0)},
		{Name: "message.timestamp.type", Default: "CreateTime", Doc: "CreateTime or LogAppendTime", validate: oneOf("CreateTime", "LogAppendTime")},
		{Name: "min.compaction.lag.ms", Default: "0", Doc: "minimum age before a record may be compacted, ms", validate: longAtLeast(0)},
		{Name: "max.compaction.lag.ms", Default: "9223372036854775807", Doc: "maximum time a record stays uncompacted, ms", validate: longAtLeast(1)},
		{Name: "delete.retention.ms", Default: "86400000", Doc: "how long tombstones are kept after compaction, ms", validate: longAtLeast(0)},
		{Name: "min.cleanable.dirty.ratio", Default: "0.5", Doc: "dirty share of the log that triggers compaction", validate: ratio},
		{Name: "compression.type", Default: "producer", Doc: "kept as the producer sent it", validate: oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")},
		// Accepted for compatibility with Kafka tooling; one node has one copy.
		{Name: "min.insync.replicas", Default: "1", Doc: "accepted for compatibility; a single node keeps one copy", validate: longAtLeast(1)},
		{Name: "unclean.leader.election.enable", Default: "false", Doc: "accepted for compatibility", validate: oneOf("true", "false")},
		{Name: "message.timestamp.difference.max.ms", Default: "9223372036854775807", Doc: "accepted for compatibility", validate: longAtLeast(0)},
		{Name: "file.delete.delay.ms", Default: "60000", Doc: "accepted for compatibility", validate: longAtLeast(0)},
		{Name: "flush.messages", Default: "9223372036854775807", Doc: "accepted for compatibility; acks=all is always fsync'd", validate: longAtLeast(1)},
		{Name: "flush.ms", Default: "9223372036854775807", Doc: "accepted for compatibility; acks=all is always fsync'd", validate: longAtLeast(0)},
		{Name: "index.interval.bytes", Default: "4096", Doc: "accepted for compatibility", validate: longAtLeast(0)},
		{Name: "preallocate", Default: "false", Doc: "accepted for compatibility", validate: oneOf("true", "false")},
		{Name: "message.downconversion.enable", Default: "true", Doc: "accepted for compatibility", validate: anyValue},
		{Name: "segment.index.bytes", Default: "10485760", Doc: "accepted for compatibility", validate: longAtLeast(4)},
		{Name: "segment.jitter.ms", Default: "0", Doc: "accepted for compatibility", validate: longAtLeast(0)},
	} {
		Specs[s.Name] = s
	}
}

// ValidateConfig checks one name/value pair.
func ValidateConfig(name, value string) error {
	spec, ok := Specs[name]
	if !ok {
		return fmt.Errorf("%w: unknown config %q", ErrInvalidConfig, name)
	}
	if err := spec.validate(value); err != nil {
		return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, name, value, err)
	}
	return nil
}

// ConfigNames returns every known config name, sorted.
func ConfigNames() []string {
	out := make([]string, 0, len(Specs))
	for n := range Specs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Configs is a stream's explicitly set configs; unset names take the
// broker-wide default.
type Configs map[string]string

// Get returns the value of name, falling back to defaults, then the spec.
func (c Configs) Get(name string, defaults Configs) string {
	if v, ok := c[name]; ok {
		return v
	}
	if v, ok := defaults[name]; ok {
		return v
	}
	return Specs[name].Default
}

// Int returns an integer config (already validated when set).
func (c Configs) Int(name string, defaults Configs) int64 {
	n, _ := strconv.ParseInt(c.Get(name, defaults), 10, 64)
	return n
}
