package catalog

import "strconv"

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
)

func init() {
	for _, s := range []ConfigSpec{
		topicSpec(RoutingConfig, TypeString, "partition", true,
			"key: route keyed records to the open shard owning MD5(key), keeping per-key order across splits and merges; partition: records stay in the partition the producer chose, as in Kafka",
			oneOf("key", "partition")),
		topicSpec(MaxShardsConfig, TypeInt, strconv.Itoa(DefaultMaxShards), true,
			"the most open shards braid stream scale (or autoscale) may give the stream", between(1, MaxShards)),
	} {
		Specs[s.Name] = s
	}
}
