package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/catalog"
)

// CreateTopics v0-v7. Any replication factor is accepted (production
// configs and test suites ask for 3): the node is every partition's only
// replica, durability comes from fsync before acknowledging, and the answer
// and Metadata say replication factor 1. A manual replica assignment is
// taken only for its partition count.
func init() { register(19, 0, 7, handleCreateTopics) }

func handleCreateTopics(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = rt.Topic, -1, -1
		fail := func(code int16, msg string) {
			t.ErrorCode, t.ErrorMessage = code, &msg
		}
		n := int(rt.NumPartitions)
		if len(rt.ReplicaAssignment) > 0 {
			n = len(rt.ReplicaAssignment)
		} else if n == -1 {
			n = int(c.s.opts.DefaultPartitions)
		}
		configs := catalog.Configs{}
		for _, cfg := range rt.Configs {
			if cfg.Value != nil {
				configs[cfg.Name] = *cfg.Value
			}
		}
		switch {
		case seen[rt.Topic] > 1:
			fail(kerr.InvalidRequest.Code, "topic named more than once in the request")
		case c.s.eng.Stream(rt.Topic) != nil:
			fail(kerr.TopicAlreadyExists.Code, "topic \""+rt.Topic+"\" already exists")
		case rt.ReplicationFactor == 0 || rt.ReplicationFactor < -1:
			fail(kerr.InvalidReplicationFactor.Code, "replication factor must be at least 1, or -1 for the default")
		default:
			s, err := c.s.eng.CreateStream(rt.Topic, n, configs, req.ValidateOnly)
			if err != nil {
				t.ErrorCode, t.ErrorMessage = errCode(err), errMessage(err)
				break
			}
			t.TopicID, t.NumPartitions, t.ReplicationFactor = s.TopicID, int32(len(s.Shards)), 1
			for _, cfg := range describeStreamConfigs(s.Configs, c.s.eng.ConfigLayers(), nil, false, false) {
				rc := kmsg.NewCreateTopicsResponseTopicConfig()
				rc.Name, rc.Value, rc.ReadOnly, rc.Source, rc.IsSensitive = cfg.Name, cfg.Value, cfg.ReadOnly, int8(cfg.Source), cfg.IsSensitive
				t.Configs = append(t.Configs, rc)
			}
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}
