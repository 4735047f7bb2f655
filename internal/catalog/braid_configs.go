package catalog

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Braid's own stream configs, beside Kafka's. Kafka admin tools list and
// change them like any topic config.
const (
	// RoutingConfig is braid.routing: "key" routes keyed records to the
	// open shard owning the MD5 of their key; "partition" keeps records
	// where the producer addressed them, as Kafka does (the default for
	// streams created through Kafka's CreateTopics). See
	// docs/design/resharding.md.
	RoutingConfig = "braid.routing"
	// MaxShardsConfig is braid.shards.max, the most open shards a scale
	// may ask for.
	MaxShardsConfig = "braid.shards.max"
	// KinesisModeConfig is braid.kinesis.stream.mode, the capacity mode a
	// Kinesis client gave the stream (PROVISIONED or ON_DEMAND); Braid
	// records and reports it, and scales either way.
	KinesisModeConfig = "braid.kinesis.stream.mode"
)

// The autoscale configs (docs/design/resharding.md, "Autoscale").
const (
	AutoscaleEnableConfig       = "braid.autoscale.enable"
	AutoscaleMinShardsConfig    = "braid.autoscale.min.shards"
	AutoscaleMaxShardsConfig    = "braid.autoscale.max.shards"
	AutoscaleSplitBytesConfig   = "braid.autoscale.split.bytes.per.sec"
	AutoscaleSplitRecordsConfig = "braid.autoscale.split.records.per.sec"
	AutoscaleMergeRatioConfig   = "braid.autoscale.merge.ratio"
	AutoscaleWindowConfig       = "braid.autoscale.window.ms"
	AutoscaleMaxChangesConfig   = "braid.autoscale.max.changes.per.minute"
)

func init() {
	for _, s := range []ConfigSpec{
		topicSpec(RoutingConfig, TypeString, "partition", true,
			"key: route keyed records to the open shard owning MD5(key), keeping per-key order across splits and merges; partition: records stay in the partition the producer chose, as in Kafka",
			oneOf("key", "partition")),
		topicSpec(MaxShardsConfig, TypeInt, strconv.Itoa(DefaultMaxShards), true,
			"the most open shards braid stream scale (or autoscale) may give the stream", between(1, MaxShards)),
		topicSpec(KinesisModeConfig, TypeString, "PROVISIONED", true,
			"the capacity mode Kinesis clients see (PROVISIONED or ON_DEMAND); recorded and reported, Braid scales either way",
			oneOf("PROVISIONED", "ON_DEMAND")),
		topicSpec(AutoscaleEnableConfig, TypeBoolean, "false", true,
			"split shards whose write rate stays over a threshold and merge adjacent cold shards, within the min and max shard counts", nil),
		topicSpec(AutoscaleMinShardsConfig, TypeInt, "1", true,
			"autoscale never merges below this many open shards (and splits up to it)", between(1, MaxShards)),
		topicSpec(AutoscaleMaxShardsConfig, TypeInt, "16", true,
			"autoscale never splits above this many open shards (and merges down to it); at most braid.shards.max", between(1, MaxShards)),
		topicSpec(AutoscaleSplitBytesConfig, TypeLong, "4194304", true,
			"bytes per second a shard must take for the whole window to be split; 0: not used", atLeast(0)),
		topicSpec(AutoscaleSplitRecordsConfig, TypeLong, "0", true,
			"records per second a shard must take for the whole window to be split; 0: not used", atLeast(0)),
		topicSpec(AutoscaleMergeRatioConfig, TypeDouble, "0.25", true,
			"two adjacent shards merge when their summed rate stays under this fraction of the split threshold for the whole window; 0: never merge",
			mergeRatio),
		topicSpec(AutoscaleWindowConfig, TypeLong, "60000", true,
			"milliseconds a rate must stay over (or under) a threshold before autoscale acts; a shard younger than this is not judged",
			between(1000, 24*3600*1000)),
		topicSpec(AutoscaleMaxChangesConfig, TypeInt, "4", true,
			"the most splits and merges autoscale makes to the stream in any minute", between(1, 60)),
	} {
		Specs[s.Name] = s
	}
}

func mergeRatio(_ string, n float64) error {
	if n < 0 || n >= 1 {
		return fmt.Errorf("must be at least 0 and below 1 (a merged shard must stay under the split threshold)")
	}
	return nil
}

// AutoscalePolicy is a stream's autoscale configuration, resolved.
type AutoscalePolicy struct {
	Enabled              bool
	MinShards, MaxShards int
	// SplitBytesPerSec and SplitRecordsPerSec are the split thresholds;
	// 0 leaves one unused.
	SplitBytesPerSec, SplitRecordsPerSec float64
	MergeRatio                           float64
	Window                               time.Duration
	MaxChangesPerMinute                  int
}

// Autoscale resolves the stream's autoscale configs.
func (c Configs) Autoscale(defaults Configs) AutoscalePolicy {
	ratio, _ := strconv.ParseFloat(c.Get(AutoscaleMergeRatioConfig, defaults), 64)
	return AutoscalePolicy{
		Enabled:             strings.EqualFold(c.Get(AutoscaleEnableConfig, defaults), "true"),
		MinShards:           int(c.Int(AutoscaleMinShardsConfig, defaults)),
		MaxShards:           int(c.Int(AutoscaleMaxShardsConfig, defaults)),
		SplitBytesPerSec:    float64(c.Int(AutoscaleSplitBytesConfig, defaults)),
		SplitRecordsPerSec:  float64(c.Int(AutoscaleSplitRecordsConfig, defaults)),
		MergeRatio:          ratio,
		Window:              time.Duration(c.Int(AutoscaleWindowConfig, defaults)) * time.Millisecond,
		MaxChangesPerMinute: int(c.Int(AutoscaleMaxChangesConfig, defaults)),
	}
}

// CheckAutoscale checks what a single config's validator cannot: that the
// autoscale configs of a stream that has autoscale on, resolved against
// defaults, make sense together.
func (c Configs) CheckAutoscale(defaults Configs) error {
	p := c.Autoscale(defaults)
	if !p.Enabled {
		return nil
	}
	if p.MinShards > p.MaxShards {
		return fmt.Errorf("%w: %s (%d) is above %s (%d)", ErrInvalidConfig,
			AutoscaleMinShardsConfig, p.MinShards, AutoscaleMaxShardsConfig, p.MaxShards)
	}
	if limit := int(c.Int(MaxShardsConfig, defaults)); p.MaxShards > limit {
		return fmt.Errorf("%w: %s (%d) is above %s (%d)", ErrInvalidConfig,
			AutoscaleMaxShardsConfig, p.MaxShards, MaxShardsConfig, limit)
	}
	if p.SplitBytesPerSec == 0 && p.SplitRecordsPerSec == 0 {
		return fmt.Errorf("%w: %s is true but neither %s nor %s is set above 0", ErrInvalidConfig,
			AutoscaleEnableConfig, AutoscaleSplitBytesConfig, AutoscaleSplitRecordsConfig)
	}
	return nil
}

// TouchesAutoscale reports whether a config change names a config that
// CheckAutoscale looks at.
func TouchesAutoscale(set map[string]*string) bool {
	for k := range set {
		if strings.HasPrefix(k, "braid.autoscale.") || k == MaxShardsConfig {
			return true
		}
	}
	return false
}
