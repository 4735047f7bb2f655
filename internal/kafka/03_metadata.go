package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/engine"
)

// Metadata v0-v12 (v13 only adds a top-level error code; v10+ carries topic
// ids). Topics are auto-created only when the server allows it and the
// client asks (v4+).
func init() { register(3, 0, 12, handleMetadata) }

func handleMetadata(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	s := c.s
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = s.opts.NodeID, s.opts.AdvertisedHost, s.opts.AdvertisedPort
	resp.Brokers = append(resp.Brokers, b)
	cid := s.eng.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = s.opts.NodeID

	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		for _, st := range s.eng.Streams() {
			resp.Topics = append(resp.Topics, c.metadataTopic(st))
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		var st *engine.Stream
		if rt.Topic != nil {
			st = s.eng.Stream(*rt.Topic)
			if st == nil && s.opts.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation) {
				_, err := s.eng.CreateStream(*rt.Topic, int(s.opts.DefaultPartitions), nil, false)
				if err != nil && errCode(err) != kerr.TopicAlreadyExists.Code {
					t := kmsg.NewMetadataResponseTopic()
					t.Topic, t.ErrorCode = rt.Topic, errCode(err)
					resp.Topics = append(resp.Topics, t)
					continue
				}
				st = s.eng.Stream(*rt.Topic)
			}
		} else {
			st = s.eng.StreamByTopicID(rt.TopicID)
		}
		if st == nil {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic, t.TopicID, t.ErrorCode = rt.Topic, rt.TopicID, kerr.UnknownTopicOrPartition.Code
			if rt.Topic == nil {
				t.ErrorCode = kerr.UnknownTopicID.Code
			}
			resp.Topics = append(resp.Topics, t)
			continue
		}
		resp.Topics = append(resp.Topics, c.metadataTopic(st))
	}
	return resp, nil
}

// metadataTopic describes a stream's partitions. Replicas and ISR name this
// node only, whatever replication factor the topic was created with: it is
// the one copy, made durable by fsync before any acknowledgement.
func (c *conn) metadataTopic(st *engine.Stream) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	name := st.Name
	t.Topic, t.TopicID, t.IsInternal = &name, st.TopicID, st.Internal
	node := c.s.opts.NodeID
	for _, sh := range st.Stream.Shards {
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Partition, p.Leader, p.LeaderEpoch = int32(sh.ID), node, 0
		p.Replicas, p.ISR = []int32{node}, []int32{node}
		t.Partitions = append(t.Partitions, p)
	}
	return t
}
