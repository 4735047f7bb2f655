package catalog

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

var (
	// ErrInvalidConfig is returned for an unknown config name or a bad value.
	ErrInvalidConfig = errors.New("catalog: invalid config")
	// ErrReadOnlyConfig is returned for a broker config that only the
	// server's flags set.
	ErrReadOnlyConfig = errors.New("catalog: config cannot be changed dynamically")
)

// ConfigType is a config's value type, as Kafka's ConfigDef types it.
type ConfigType int8

// The values are Kafka's DescribeConfigs config_type codes.
const (
	TypeBoolean  ConfigType = 1
	TypeString   ConfigType = 2
	TypeInt      ConfigType = 3
	TypeShort    ConfigType = 4
	TypeLong     ConfigType = 5
	TypeDouble   ConfigType = 6
	TypeList     ConfigType = 7
	TypeClass    ConfigType = 8
	TypePassword ConfigType = 9
)

func (t ConfigType) String() string {
	switch t {
	case TypeBoolean:
		return "BOOLEAN"
	case TypeString:
		return "STRING"
	case TypeInt:
		return "INT"
	case TypeShort:
		return "SHORT"
	case TypeLong:
		return "LONG"
	case TypeDouble:
		return "DOUBLE"
	case TypeList:
		return "LIST"
	case TypeClass:
		return "CLASS"
	case TypePassword:
		return "PASSWORD"
	}
	return "UNKNOWN"
}

// parse checks that v is a value of type t (as Kafka's ConfigDef parses
// it) and returns it as a number for the numeric types.
func (t ConfigType) parse(v string) (float64, error) {
	switch t {
	case TypeBoolean:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return 0, errors.New("not a boolean (true or false)")
		}
	case TypeInt, TypeShort, TypeLong:
		bits := map[ConfigType]int{TypeInt: 32, TypeShort: 16, TypeLong: 64}[t]
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			return 0, fmt.Errorf("not a %d-bit integer", bits)
		}
		return float64(n), nil
	case TypeDouble:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) {
			return 0, errors.New("not a number")
		}
		return f, nil
	}
	return 0, nil
}

// BrokerSynonym is a broker config that gives a topic config its default
// (Kafka's config synonyms): log.retention.hours for retention.ms.
type BrokerSynonym struct {
	Name string
	// Unit converts the broker value to the topic's: 3600000 for hours
	// given to a config in milliseconds; 0 means as is.
	Unit int64
}

// ConfigSpec describes one config, named as Kafka names it so that Kafka
// admin tools work unchanged.
type ConfigSpec struct {
	Name string
	Type ConfigType
	// Default is Kafka's default; HasDefault is false where Kafka's is
	// null (log.retention.ms: the hours setting decides).
	Default    string
	HasDefault bool
	Doc        string
	// Applied says that Braid acts on the value. The others are accepted,
	// kept and listed so that Kafka tooling works, and change nothing.
	Applied   bool
	Sensitive bool
	// Synonyms are the broker configs that give a topic config its
	// default, most specific first; for a broker config, the topic
	// config it is the default of.
	Synonyms []BrokerSynonym
	Topic    string
	// check validates a value already parsed by Type; num is its number.
	check func(v string, num float64) error
}

func (s ConfigSpec) validate(v string) error {
	num, err := s.Type.parse(v)
	if err != nil {
		return err
	}
	if s.check != nil {
		return s.check(v, num)
	}
	return nil
}

func atLeast(min float64) func(string, float64) error {
	return func(_ string, n float64) error {
		if n < min {
			return fmt.Errorf("must be at least %s", strconv.FormatFloat(min, 'f', -1, 64))
		}
		return nil
	}
}

func between(min, max float64) func(string, float64) error {
	return func(_ string, n float64) error {
		if n < min || n > max {
			return fmt.Errorf("must be between %s and %s", strconv.FormatFloat(min, 'f', -1, 64), strconv.FormatFloat(max, 'f', -1, 64))
		}
		return nil
	}
}

func oneOf(vals ...string) func(string, float64) error {
	return func(v string, _ float64) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
	}
}

// listOf checks a comma-separated list whose items are all in vals, none
// twice.
func listOf(vals ...string) func(string, float64) error {
	return func(v string, _ float64) error {
		seen := map[string]bool{}
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(vals, p) {
				return fmt.Errorf("must be a list of %s", strings.Join(vals, ", "))
			}
			if seen[p] {
				return fmt.Errorf("lists %q twice", p)
			}
			seen[p] = true
		}
		return nil
	}
}

// throttledReplicas checks Kafka's [partition]:[broker] list, or "*".
func throttledReplicas(v string, _ float64) error {
	if strings.TrimSpace(v) == "" || strings.TrimSpace(v) == "*" {
		return nil
	}
	for _, p := range strings.Split(v, ",") {
		part, broker, ok := strings.Cut(strings.TrimSpace(p), ":")
		_, e1 := strconv.ParseInt(part, 10, 32)
		_, e2 := strconv.ParseInt(broker, 10, 32)
		if !ok || e1 != nil || e2 != nil {
			return errors.New("must be *, or a list of partition:broker pairs")
		}
	}
	return nil
}

var kafkaVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?(-IV[0-9]+)?$`)

// messageFormatVersion takes any Kafka version string, as Kafka 3 does
// (it ignores the value since 3.0).
func messageFormatVersion(v string, _ float64) error {
	if !kafkaVersion.MatchString(v) {
		return errors.New("must be a Kafka version such as 2.8 or 3.0-IV1")
	}
	return nil
}

func gzipLevel(_ string, n float64) error {
	if n != -1 && (n < 1 || n > 9) {
		return errors.New("must be -1 or 1 to 9")
	}
	return nil
}

// noRemoteStorage refuses tiered storage, as Kafka does when the broker
// has it disabled: Braid keeps every shard on local disk.
func noRemoteStorage(v string, _ float64) error {
	if strings.EqualFold(v, "true") {
		return errors.New("tiered storage is not enabled on this broker")
	}
	return nil
}

const (
	maxLong  = "9223372036854775807"
	hourMs   = 3600000
	minuteMs = 60000
	// not is the Doc of configs Braid accepts but does not act on.
	not = "accepted and kept for Kafka tooling; Braid does not act on it"
)

// MaxMessageBytesDefault is the default largest record batch a stream takes,
// as Kafka's broker default (1 MiB plus batch overhead).
const MaxMessageBytesDefault = 1048588

// topicSpec builds a topic config spec; syn names its broker synonyms.
func topicSpec(name string, t ConfigType, def string, applied bool, doc string, check func(string, float64) error, syn ...BrokerSynonym) ConfigSpec {
	return ConfigSpec{Name: name, Type: t, Default: def, HasDefault: true, Applied: applied, Doc: doc, check: check, Synonyms: syn}
}

func syn(name string) BrokerSynonym { return BrokerSynonym{Name: name} }

// Specs lists every topic (stream) config Kafka 3.x and 4.x accept, legacy
// ones included, by name.
var Specs = map[string]ConfigSpec{}

func init() {
	gzip, lz4, zstd := "compression.gzip.level", "compression.lz4.level", "compression.zstd.level"
	for _, s := range []ConfigSpec{
		topicSpec("cleanup.policy", TypeList, "delete", true, "delete, compact, or compact,delete", listOf("delete", "compact"), syn("log.cleanup.policy")),
		topicSpec("retention.ms", TypeLong, "604800000", true, "time to keep data, ms; -1 keeps forever", atLeast(-1),
			syn("log.retention.ms"), BrokerSynonym{"log.retention.minutes", minuteMs}, BrokerSynonym{"log.retention.hours", hourMs}),
		topicSpec("retention.bytes", TypeLong, "-1", true, "bytes to keep per shard; -1 keeps all", nil, syn("log.retention.bytes")),
		topicSpec("segment.bytes", TypeInt, "1073741824", true, "size of a shard segment, bytes", atLeast(14), syn("log.segment.bytes")),
		topicSpec("segment.ms", TypeLong, "604800000", true, "time after which a segment is rolled, ms", atLeast(1),
			syn("log.roll.ms"), BrokerSynonym{"log.roll.hours", hourMs}),
		topicSpec("max.message.bytes", TypeInt, strconv.Itoa(MaxMessageBytesDefault), true, "largest record batch accepted, bytes", atLeast(0), syn("message.max.bytes")),
		topicSpec("message.timestamp.type", TypeString, "CreateTime", true, "CreateTime or LogAppendTime", oneOf("CreateTime", "LogAppendTime"), syn("log.message.timestamp.type")),
		topicSpec("min.compaction.lag.ms", TypeLong, "0", true, "minimum age before a record may be compacted, ms", atLeast(0), syn("log.cleaner.min.compaction.lag.ms")),
		topicSpec("max.compaction.lag.ms", TypeLong, maxLong, true, "maximum time a record stays uncompacted, ms", atLeast(1), syn("log.cleaner.max.compaction.lag.ms")),
		topicSpec("delete.retention.ms", TypeLong, "86400000", true, "how long tombstones are kept after compaction, ms", atLeast(0), syn("log.cleaner.delete.retention.ms")),
		topicSpec("min.cleanable.dirty.ratio", TypeDouble, "0.5", true, "dirty share of the log that triggers compaction", between(0, 1), syn("log.cleaner.min.cleanable.ratio")),

		topicSpec("compression.type", TypeString, "producer", false, "accepted; Braid keeps batches as the producer compressed them",
			oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"), syn("compression.type")),
		topicSpec(gzip, TypeInt, "-1", false, not, gzipLevel, syn(gzip)),
		topicSpec(lz4, TypeInt, "9", false, not, between(1, 17), syn(lz4)),
		topicSpec(zstd, TypeInt, "3", false, not, between(-131072, 22), syn(zstd)),
		topicSpec("min.insync.replicas", TypeInt, "1", false, "accepted; one node is the only replica and acks=all waits for its fsync", atLeast(1), syn("min.insync.replicas")),
		topicSpec("unclean.leader.election.enable", TypeBoolean, "false", false, not, nil, syn("unclean.leader.election.enable")),
		topicSpec("message.timestamp.difference.max.ms", TypeLong, maxLong, false, not+" (removed in Kafka 4)", atLeast(0), syn("log.message.timestamp.difference.max.ms")),
		topicSpec("message.timestamp.before.max.ms", TypeLong, maxLong, false, not, atLeast(0), syn("log.message.timestamp.before.max.ms")),
		topicSpec("message.timestamp.after.max.ms", TypeLong, maxLong, false, not, atLeast(0), syn("log.message.timestamp.after.max.ms")),
		topicSpec("message.format.version", TypeString, "3.0-IV1", false, not+" (ignored by Kafka since 3.0, removed in 4)", messageFormatVersion, syn("log.message.format.version")),
		topicSpec("message.downconversion.enable", TypeBoolean, "true", false, not+" (removed in Kafka 4)", nil, syn("log.message.downconversion.enable")),
		topicSpec("file.delete.delay.ms", TypeLong, "60000", false, not, atLeast(0), syn("log.segment.delete.delay.ms")),
		topicSpec("flush.messages", TypeLong, maxLong, false, "accepted; acks=all is always fsync'd", atLeast(1), syn("log.flush.interval.messages")),
		topicSpec("flush.ms", TypeLong, maxLong, false, "accepted; acks=all is always fsync'd", atLeast(0),
			syn("log.flush.interval.ms"), syn("log.flush.scheduler.interval.ms")),
		topicSpec("index.interval.bytes", TypeInt, "4096", false, not, atLeast(0), syn("log.index.interval.bytes")),
		topicSpec("preallocate", TypeBoolean, "false", false, not, nil, syn("log.preallocate")),
		topicSpec("segment.index.bytes", TypeInt, "10485760", false, not, atLeast(4), syn("log.index.size.max.bytes")),
		topicSpec("segment.jitter.ms", TypeLong, "0", false, not, atLeast(0),
			syn("log.roll.jitter.ms"), BrokerSynonym{"log.roll.jitter.hours", hourMs}),
		topicSpec("leader.replication.throttled.replicas", TypeList, "", false, not+" (one node replicates nothing)", throttledReplicas),
		topicSpec("follower.replication.throttled.replicas", TypeList, "", false, not+" (one node replicates nothing)", throttledReplicas),
		topicSpec("remote.storage.enable", TypeBoolean, "false", false, "tiered storage; only false is accepted", noRemoteStorage),
		topicSpec("local.retention.ms", TypeLong, "-2", false, not, atLeast(-2), syn("log.local.retention.ms")),
		topicSpec("local.retention.bytes", TypeLong, "-2", false, not, atLeast(-2), syn("log.local.retention.bytes")),
		topicSpec("remote.log.copy.disable", TypeBoolean, "false", false, not, nil),
		topicSpec("remote.log.delete.on.disable", TypeBoolean, "false", false, not, nil),
	} {
		Specs[s.Name] = s
	}
	initBrokerSpecs()
}

// ValidateConfig checks one topic config name/value pair.
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

// ConfigNames returns every known topic config name, sorted.
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
