package kafka

import (
	"math"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/catalog"
)

// DescribeConfigs v0-v4 for topics (every known config with its value and
// source) and for the broker (its read-only settings).
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
			r.Configs = describeStreamConfigs(st.Configs, c.s.eng.Defaults(), rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(c.s.opts.NodeID)) {
				r.ErrorCode = kerr.InvalidRequest.Code
				break
			}
			r.Configs = c.brokerConfigs(rr.ConfigNames)
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

// describeStreamConfigs lists a stream's configs: explicitly set ones come
// from the topic, the rest from the broker's defaults or Braid's own.
func describeStreamConfigs(set, defaults catalog.Configs, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, name := range catalog.ConfigNames() {
		if !wanted(names, name) {
			continue
		}
		spec := catalog.Specs[name]
		cfg := kmsg.NewDescribeConfigsResponseResourceConfig()
		v := set.Get(name, defaults)
		cfg.Name, cfg.Value, cfg.ConfigType = name, &v, configType(name, spec.Default)
		_, isSet := set[name]
		_, isBrokerDefault := defaults[name]
		switch {
		case isSet:
			cfg.Source = kmsg.ConfigSourceDynamicTopicConfig
		case isBrokerDefault:
			cfg.Source = kmsg.ConfigSourceStaticBrokerConfig
		default:
			cfg.Source, cfg.IsDefault = kmsg.ConfigSourceDefaultConfig, true
		}
		if synonyms {
			if isSet {
				cfg.ConfigSynonyms = append(cfg.ConfigSynonyms, synonym(name, set[name], kmsg.ConfigSourceDynamicTopicConfig))
			}
			if isBrokerDefault {
				cfg.ConfigSynonyms = append(cfg.ConfigSynonyms, synonym(name, defaults[name], kmsg.ConfigSourceStaticBrokerConfig))
			}
			cfg.ConfigSynonyms = append(cfg.ConfigSynonyms, synonym(name, spec.Default, kmsg.ConfigSourceDefaultConfig))
		}
		if docs {
			d := spec.Doc
			cfg.Documentation = &d
		}
		out = append(out, cfg)
	}
	return out
}

func synonym(name, value string, src kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, &value, src
	return s
}

func configType(name, def string) kmsg.ConfigType {
	switch {
	case name == "cleanup.policy":
		return kmsg.ConfigTypeList
	case def == "true" || def == "false":
		return kmsg.ConfigTypeBoolean
	}
	if _, err := strconv.ParseInt(def, 10, 64); err == nil {
		return kmsg.ConfigTypeLong
	}
	if _, err := strconv.ParseFloat(def, 64); err == nil {
		return kmsg.ConfigTypeDouble
	}
	return kmsg.ConfigTypeString
}

// maxOrUnlimited shows a limit of 0 (none) as Kafka does: the largest int32.
func maxOrUnlimited(n int) int {
	if n <= 0 {
		return math.MaxInt32
	}
	return n
}

func (c *conn) brokerConfigs(names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	vals := [][2]string{
		{"broker.id", strconv.Itoa(int(c.s.opts.NodeID))},
		{"node.id", strconv.Itoa(int(c.s.opts.NodeID))},
		{"auto.create.topics.enable", strconv.FormatBool(c.s.opts.AutoCreateTopics)},
		{"num.partitions", strconv.Itoa(int(c.s.opts.DefaultPartitions))},
		{"default.replication.factor", "1"},
		{"socket.request.max.bytes", strconv.Itoa(int(c.s.opts.MaxRequestBytes))},
		{"queued.max.request.bytes", strconv.FormatInt(c.s.opts.QueuedMaxRequestBytes, 10)},
		{"connections.max.idle.ms", strconv.FormatInt(c.s.opts.ConnectionsMaxIdle.Milliseconds(), 10)},
		{"max.connections", strconv.Itoa(maxOrUnlimited(c.s.opts.MaxConnections))},
		{"max.connections.per.ip", strconv.Itoa(maxOrUnlimited(c.s.opts.MaxConnectionsPerIP))},
		{"fetch.max.bytes", strconv.Itoa(int(c.s.opts.FetchMaxBytes))},
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, kv := range vals {
		if !wanted(names, kv[0]) {
			continue
		}
		cfg := kmsg.NewDescribeConfigsResponseResourceConfig()
		v := kv[1]
		cfg.Name, cfg.Value, cfg.ReadOnly, cfg.Source = kv[0], &v, true, kmsg.ConfigSourceStaticBrokerConfig
		cfg.ConfigType = configType(kv[0], v)
		out = append(out, cfg)
	}
	return out
}
