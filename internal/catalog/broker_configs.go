package catalog

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// BrokerSpecs lists the broker configs Kafka lets AlterConfigs change at
// run time (its dynamic broker configs), by name. The broker synonyms of
// topic configs (log.retention.ms, log.cleanup.policy, message.max.bytes,
// ...) are stream defaults: Braid applies those whose topic config it
// applies. The rest are accepted, kept and listed, and change nothing.
var BrokerSpecs = map[string]ConfigSpec{}

// ReadOnlyBrokerConfigs are broker configs that only the server's flags
// set; altering one is refused with ErrReadOnlyConfig.
var ReadOnlyBrokerConfigs = []string{
	"broker.id", "node.id", "auto.create.topics.enable", "num.partitions",
	"default.replication.factor", "socket.request.max.bytes",
	"queued.max.request.bytes", "connections.max.idle.ms", "max.connections", "max.connections.per.ip",
	"fetch.max.bytes",
	"log.dir", "log.dirs", "listeners", "advertised.listeners", "process.roles",
}

func brokerSpec(name string, t ConfigType, def string, check func(string, float64) error) ConfigSpec {
	return ConfigSpec{Name: name, Type: t, Default: def, HasDefault: true, Doc: not, check: check}
}

func initBrokerSpecs() {
	for _, ts := range Specs {
		for i, sy := range ts.Synonyms {
			bs := ConfigSpec{Name: sy.Name, Type: ts.Type, Applied: ts.Applied, Topic: ts.Name, check: ts.check}
			// In a group of synonyms only the least specific has a
			// default (log.retention.hours: 168); the others are null.
			if i == len(ts.Synonyms)-1 {
				bs.Default, bs.HasDefault = ts.Default, true
			}
			if sy.Unit > 0 {
				bs.Type, bs.check = TypeInt, unitCheck(ts, sy.Unit)
				if bs.HasDefault {
					d, _ := strconv.ParseInt(ts.Default, 10, 64)
					bs.Default = strconv.FormatInt(d/sy.Unit, 10)
				}
			}
			if ts.Applied {
				bs.Doc = "default of " + ts.Name + " for streams that do not set it"
			} else {
				bs.Doc = "default of " + ts.Name + "; " + not
			}
			BrokerSpecs[sy.Name] = bs
		}
	}
	maxInt, maxLongF := "2147483647", "9223372036854775807"
	for _, s := range []ConfigSpec{
		brokerSpec("log.cleaner.threads", TypeInt, "1", atLeast(0)),
		brokerSpec("log.cleaner.io.max.bytes.per.second", TypeDouble, "1.7976931348623157E308", nil),
		brokerSpec("log.cleaner.dedupe.buffer.size", TypeLong, "134217728", nil),
		brokerSpec("log.cleaner.io.buffer.size", TypeInt, "524288", atLeast(0)),
		brokerSpec("log.cleaner.io.buffer.load.factor", TypeDouble, "0.9", nil),
		brokerSpec("log.cleaner.backoff.ms", TypeLong, "15000", atLeast(0)),
		brokerSpec("num.io.threads", TypeInt, "8", atLeast(1)),
		brokerSpec("num.network.threads", TypeInt, "3", atLeast(1)),
		brokerSpec("num.replica.fetchers", TypeInt, "1", nil),
		brokerSpec("num.recovery.threads.per.data.dir", TypeInt, "2", atLeast(1)),
		brokerSpec("background.threads", TypeInt, "10", atLeast(1)),
		brokerSpec("max.connections.per.ip.overrides", TypeString, "", nil),
		brokerSpec("max.connection.creation.rate", TypeInt, maxInt, atLeast(0)),
		brokerSpec("leader.replication.throttled.rate", TypeLong, maxLongF, atLeast(0)),
		brokerSpec("follower.replication.throttled.rate", TypeLong, maxLongF, atLeast(0)),
		brokerSpec("replica.alter.log.dirs.io.max.bytes.per.second", TypeLong, maxLongF, atLeast(0)),
		brokerSpec("producer.id.expiration.ms", TypeInt, "86400000", atLeast(1)),
		brokerSpec("transaction.partition.verification.enable", TypeBoolean, "true", nil),
		brokerSpec("metric.reporters", TypeList, "", nil),
	} {
		BrokerSpecs[s.Name] = s
	}
}

// unitCheck validates a broker synonym in a coarser unit (hours) by the
// topic config's rule on the converted value.
func unitCheck(ts ConfigSpec, unit int64) func(string, float64) error {
	return func(v string, n float64) error {
		if ts.check == nil {
			return nil
		}
		return ts.check(toTopicUnit(v, unit), n*float64(unit))
	}
}

func toTopicUnit(v string, unit int64) string {
	if unit <= 0 {
		return v
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	if n < 0 {
		return "-1" // Kafka: a negative time means no limit
	}
	return strconv.FormatInt(n*unit, 10)
}

// ValidateBrokerConfig checks one dynamic broker config name/value pair.
func ValidateBrokerConfig(name, value string) error {
	if err := checkBrokerName(name); err != nil {
		return err
	}
	if err := BrokerSpecs[name].validate(value); err != nil {
		return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, name, value, err)
	}
	return nil
}

func checkBrokerName(name string) error {
	if slices.Contains(ReadOnlyBrokerConfigs, name) {
		return fmt.Errorf("%w: %s is set by the server's flags", ErrReadOnlyConfig, name)
	}
	if _, ok := BrokerSpecs[name]; !ok {
		return fmt.Errorf("%w: unknown broker config %q", ErrInvalidConfig, name)
	}
	return nil
}

// BrokerConfigNames returns every dynamic broker config name, sorted.
func BrokerConfigNames() []string {
	return slices.Sorted(maps.Keys(BrokerSpecs))
}

// ConfigSource says where a config's value comes from, most specific
// first, as Kafka's DescribeConfigs reports it.
type ConfigSource int8

const (
	SourceTopic          ConfigSource = iota + 1 // set on the stream
	SourceDynamicBroker                          // set on this node at run time
	SourceDynamicDefault                         // set cluster-wide at run time
	SourceStatic                                 // the server's flags
	SourceDefault                                // Kafka's default
)

// ConfigValue is one config value and where it comes from; Null marks a
// config without a value (Kafka's null default).
type ConfigValue struct {
	Name   string
	Value  string
	Null   bool
	Source ConfigSource
}

// ResolvedConfig is a config's effective value and every value that
// competed for it (Kafka's synonyms), the winner first.
type ResolvedConfig struct {
	ConfigValue
	Synonyms []ConfigValue
}

// ConfigLayers are the broker-level sources of config values. Node and
// Cluster are dynamic broker configs (by broker name); Static are the
// server's --stream-default flags (by topic name), standing for the most
// specific broker synonym of each.
type ConfigLayers struct {
	Node, Cluster, Static Configs
}

// staticByBroker returns the static layer by broker config name.
func (l ConfigLayers) staticByBroker() Configs {
	out := Configs{}
	for k, v := range l.Static {
		if s, ok := Specs[k]; ok && len(s.Synonyms) > 0 {
			out[s.Synonyms[0].Name] = v
		} else {
			out[k] = v
		}
	}
	return out
}

// collect lists the values names have in each layer, most specific layer
// first, then their defaults.
func (l ConfigLayers) collect(names []string) []ConfigValue {
	var out []ConfigValue
	for _, layer := range []struct {
		c   Configs
		src ConfigSource
	}{{l.Node, SourceDynamicBroker}, {l.Cluster, SourceDynamicDefault}, {l.staticByBroker(), SourceStatic}} {
		for _, n := range names {
			if v, ok := layer.c[n]; ok {
				out = append(out, ConfigValue{Name: n, Value: v, Source: layer.src})
			}
		}
	}
	for _, n := range names {
		if bs, ok := BrokerSpecs[n]; ok && bs.HasDefault {
			out = append(out, ConfigValue{Name: n, Value: bs.Default, Source: SourceDefault})
		}
	}
	return out
}

// Topic resolves topic config name for a stream whose explicit configs are
// set: the stream's value, else the most specific broker synonym's (in
// the topic config's unit), else Kafka's default.
func (l ConfigLayers) Topic(name string, set Configs) ResolvedConfig {
	spec := Specs[name]
	names := []string{name}
	if len(spec.Synonyms) > 0 {
		names = names[:0]
		for _, s := range spec.Synonyms {
			names = append(names, s.Name)
		}
	}
	var syns []ConfigValue
	if v, ok := set[name]; ok {
		syns = append(syns, ConfigValue{Name: name, Value: v, Source: SourceTopic})
	}
	syns = append(syns, l.collect(names)...)
	r := ResolvedConfig{ConfigValue: ConfigValue{Name: name, Value: spec.Default, Source: SourceDefault}, Synonyms: syns}
	if len(syns) > 0 && syns[0].Source != SourceDefault {
		r.Value, r.Source = syns[0].Value, syns[0].Source
		for _, s := range spec.Synonyms {
			if s.Name == syns[0].Name && syns[0].Source != SourceTopic {
				r.Value = toTopicUnit(syns[0].Value, s.Unit)
			}
		}
	}
	return r
}

// Broker resolves dynamic broker config name.
func (l ConfigLayers) Broker(name string) ResolvedConfig {
	syns := l.collect([]string{name})
	r := ResolvedConfig{ConfigValue: ConfigValue{Name: name, Null: true, Source: SourceDefault}, Synonyms: syns}
	if len(syns) > 0 {
		r.ConfigValue = syns[0]
	}
	return r
}

// StreamDefaults returns the value every topic config takes on a stream
// that does not set it, where that is not Kafka's default.
func (l ConfigLayers) StreamDefaults() Configs {
	out := Configs{}
	for name := range Specs {
		if r := l.Topic(name, nil); r.Source != SourceDefault {
			out[name] = r.Value
		}
	}
	return out
}

// DynamicConfigs returns copies of the dynamic broker configs: this node's
// and the cluster-wide defaults.
func (c *Catalog) DynamicConfigs() (node, cluster Configs) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return maps.Clone(c.snap.NodeConfigs), maps.Clone(c.snap.ClusterConfigs)
}

// SetDynamicConfigs replaces (replace=true) or edits this node's
// (cluster=false) or the cluster-wide (cluster=true) dynamic broker
// configs. In edit mode a nil value deletes the name. Nothing changes if
// any name or value is bad.
func (c *Catalog) SetDynamicConfigs(cluster bool, set map[string]*string, replace, validateOnly bool) error {
	for k, v := range set {
		var err error
		if v == nil {
			err = checkBrokerName(k)
		} else {
			err = ValidateBrokerConfig(k, *v)
		}
		if err != nil {
			return err
		}
	}
	if validateOnly {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.snap
	cur := &next.NodeConfigs
	if cluster {
		cur = &next.ClusterConfigs
	}
	cfgs := maps.Clone(*cur)
	if replace || cfgs == nil {
		cfgs = Configs{}
	}
	for k, v := range set {
		if v == nil {
			delete(cfgs, k)
		} else {
			cfgs[k] = *v
		}
	}
	if len(cfgs) == 0 {
		cfgs = nil
	}
	*cur = cfgs
	if err := c.store.Save(&next); err != nil {
		return err
	}
	c.install(&next)
	return nil
}
