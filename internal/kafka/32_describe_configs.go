package kafka

import (
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/catalog"
)

// DescribeConfigs v0-v4 for topics (every topic config Kafka knows, with its
// value, source and synonyms) and for the broker (its read-only settings
// and its dynamic configs; for the resource "", the cluster-wide dynamic
// defaults).
func init() { register(32, 0, 4, handleDescribeConfigs) }

func handleDescribeConfigs(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		r := kmsg.NewDescribeConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			st := c.s.eng.Stream(rr.ResourceName)
			if st == nil {
				r.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			r.Configs = describeStreamConfigs(st.Configs, c.s.eng.ConfigLayers(), rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		case kmsg.ConfigResourceTypeBroker:
			if err := c.checkBrokerResource(rr.ResourceName); err != nil {
				r.ErrorCode, r.ErrorMessage = errCode(err), errMessage(err)
				break
			}
			r.Configs = c.brokerConfigs(rr.ResourceName == "", rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		default:
			r.ErrorCode = kerr.InvalidRequest.Code
			msg := "Braid describes topic and broker configs only"
			r.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp, nil
}

func wanted(names []string, name string) bool {
	if names == nil {
		return true
	}
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// describeStreamConfigs lists a stream's configs, every topic config Kafka
// knows: explicitly set ones come from the topic, the rest from the
// dynamic broker configs, the server's flags or Kafka's defaults, with
// their synonyms as Kafka lists them.
func describeStreamConfigs(set catalog.Configs, layers catalog.ConfigLayers, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, name := range catalog.ConfigNames() {
		if !wanted(names, name) {
			continue
		}
		spec := catalog.Specs[name]
		out = append(out, describedConfig(spec, layers.Topic(name, set), false, synonyms, docs))
	}
	return out
}

func describedConfig(spec catalog.ConfigSpec, r catalog.ResolvedConfig, readOnly, synonyms, docs bool) kmsg.DescribeConfigsResponseResourceConfig {
	cfg := kmsg.NewDescribeConfigsResponseResourceConfig()
	cfg.Name, cfg.ConfigType, cfg.ReadOnly = spec.Name, kmsg.ConfigType(spec.Type), readOnly
	cfg.Source, cfg.IsDefault = configSource(r.Source), r.Source == catalog.SourceDefault
	cfg.IsSensitive = spec.Sensitive
	if !r.Null && !spec.Sensitive {
		v := r.Value
		cfg.Value = &v
	}
	if synonyms {
		for _, sy := range r.Synonyms {
			s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			s.Name, s.Source = sy.Name, configSource(sy.Source)
			if !sy.Null && !spec.Sensitive {
				v := sy.Value
				s.Value = &v
			}
			cfg.ConfigSynonyms = append(cfg.ConfigSynonyms, s)
		}
	}
	if docs {
		d := spec.Doc
		cfg.Documentation = &d
	}
	return cfg
}

func configSource(s catalog.ConfigSource) kmsg.ConfigSource {
	switch s {
	case catalog.SourceTopic:
		return kmsg.ConfigSourceDynamicTopicConfig
	case catalog.SourceDynamicBroker:
		return kmsg.ConfigSourceDynamicBrokerConfig
	case catalog.SourceDynamicDefault:
		return kmsg.ConfigSourceDynamicDefaultBrokerConfig
	case catalog.SourceStatic:
		return kmsg.ConfigSourceStaticBrokerConfig
	}
	return kmsg.ConfigSourceDefaultConfig
}

// staticBrokerConfigs are the read-only broker settings the server's flags
// give, by name.
func (c *conn) staticBrokerConfigs() map[string]string {
	return map[string]string{
		"broker.id":                  strconv.Itoa(int(c.s.opts.NodeID)),
		"node.id":                    strconv.Itoa(int(c.s.opts.NodeID)),
		"auto.create.topics.enable":  strconv.FormatBool(c.s.opts.AutoCreateTopics),
		"num.partitions":             strconv.Itoa(int(c.s.opts.DefaultPartitions)),
		"default.replication.factor": "1",
		"socket.request.max.bytes":   strconv.Itoa(int(c.s.opts.MaxRequestBytes)),
		"queued.max.request.bytes":   strconv.FormatInt(c.s.opts.QueuedMaxRequestBytes, 10),
		"connections.max.idle.ms":    strconv.FormatInt(c.s.opts.ConnectionsMaxIdle.Milliseconds(), 10),
		"max.connections":            strconv.Itoa(maxOrUnlimited(c.s.opts.MaxConnections)),
		"max.connections.per.ip":     strconv.Itoa(maxOrUnlimited(c.s.opts.MaxConnectionsPerIP)),
		"fetch.max.bytes":            strconv.Itoa(int(c.s.opts.FetchMaxBytes)),
	}
}

var staticBrokerTypes = map[string]catalog.ConfigType{
	"broker.id": catalog.TypeInt, "node.id": catalog.TypeInt, "auto.create.topics.enable": catalog.TypeBoolean,
	"num.partitions": catalog.TypeInt, "default.replication.factor": catalog.TypeShort, "socket.request.max.bytes": catalog.TypeInt,
	"queued.max.request.bytes": catalog.TypeLong, "connections.max.idle.ms": catalog.TypeLong,
	"max.connections": catalog.TypeInt, "max.connections.per.ip": catalog.TypeInt, "fetch.max.bytes": catalog.TypeInt,
}

// maxOrUnlimited shows a limit of 0 (none) as Kafka does: the largest int32.
func maxOrUnlimited(n int) int {
	if n <= 0 {
		return math.MaxInt32
	}
	return n
}

// brokerConfigs describes this node: its read-only settings, then every
// dynamic broker config with its value and source. For the cluster-wide
// resource (name ""), Kafka lists only the dynamic defaults that are set.
func (c *conn) brokerConfigs(clusterWide bool, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	layers := c.s.eng.ConfigLayers()
	var out []kmsg.DescribeConfigsResponseResourceConfig
	if clusterWide {
		for _, name := range catalog.BrokerConfigNames() {
			v, ok := layers.Cluster[name]
			if !ok || !wanted(names, name) {
				continue
			}
			cv := catalog.ConfigValue{Name: name, Value: v, Source: catalog.SourceDynamicDefault}
			r := catalog.ResolvedConfig{ConfigValue: cv, Synonyms: []catalog.ConfigValue{cv}}
			out = append(out, describedConfig(catalog.BrokerSpecs[name], r, false, synonyms, docs))
		}
		return out
	}
	static := c.staticBrokerConfigs()
	for _, name := range slices.Sorted(maps.Keys(static)) {
		if !wanted(names, name) {
			continue
		}
		cv := catalog.ConfigValue{Name: name, Value: static[name], Source: catalog.SourceStatic}
		spec := catalog.ConfigSpec{Name: name, Type: staticBrokerTypes[name], Doc: "set by the server's flags; read-only"}
		out = append(out, describedConfig(spec, catalog.ResolvedConfig{ConfigValue: cv, Synonyms: []catalog.ConfigValue{cv}}, true, synonyms, docs))
	}
	for _, name := range catalog.BrokerConfigNames() {
		if !wanted(names, name) {
			continue
		}
		out = append(out, describedConfig(catalog.BrokerSpecs[name], layers.Broker(name), false, synonyms, docs))
	}
	return out
}
