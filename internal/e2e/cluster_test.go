package e2e

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestClusterMetadata covers DescribeCluster, Metadata and
// OffsetForLeaderEpoch, and that the cluster and topic ids survive a
// restart.
func TestClusterMetadata(t *testing.T) {
	const node = 3
	p := braidtest.Start(t, "--node-id", strconv.Itoa(node))
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	host, portStr, _ := net.SplitHostPort(p.KafkaAddr)
	port, _ := strconv.Atoi(portStr)
	const topic = "cl-meta"
	createStream(t, ctx, adm, topic, 2, nil)
	var recs []*kgo.Record
	for i := range 7 {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprint(i))})
	}
	produce(t, ctx, newProducer(t, p), recs...)

	describeCluster := func(t *testing.T, version int16) *kmsg.DescribeClusterResponse {
		t.Helper()
		resp := dialRaw(t, p.KafkaAddr).request(kmsg.NewPtrDescribeClusterRequest(), version).(*kmsg.DescribeClusterResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("DescribeCluster v%d: %v", version, kerr.ErrorForCode(resp.ErrorCode))
		}
		if resp.ClusterID == "" || resp.ControllerID != node || len(resp.Brokers) != 1 {
			t.Fatalf("DescribeCluster v%d: cluster %q controller %d, %d brokers", version, resp.ClusterID, resp.ControllerID, len(resp.Brokers))
		}
		if b := resp.Brokers[0]; b.NodeID != node || b.Host != host || b.Port != int32(port) {
			t.Errorf("DescribeCluster v%d broker: %d at %s:%d, want %d at %s", version, b.NodeID, b.Host, b.Port, node, p.KafkaAddr)
		}
		if version >= 1 && resp.EndpointType != 1 {
			t.Errorf("DescribeCluster v%d: endpoint type %d, want 1 (brokers)", version, resp.EndpointType)
		}
		return resp
	}

	var clusterID string
	t.Run("describe-cluster", func(t *testing.T) {
		for v := int16(0); v <= 2; v++ {
			id := describeCluster(t, v).ClusterID
			if clusterID == "" {
				clusterID = id
			} else if id != clusterID {
				t.Errorf("DescribeCluster v%d: cluster id %q, earlier %q", v, id, clusterID)
			}
		}
		req := kmsg.NewPtrDescribeClusterRequest()
		req.EndpointType = 2 // controllers
		resp := dialRaw(t, p.KafkaAddr).request(req, 1).(*kmsg.DescribeClusterResponse)
		if resp.ErrorCode != kerr.UnsupportedEndpointType.Code {
			t.Errorf("DescribeCluster for controller endpoints: %v, want UNSUPPORTED_ENDPOINT_TYPE", kerr.ErrorForCode(resp.ErrorCode))
		}
	})

	var topicIDBefore [16]byte
	for _, v := range []int16{0, 1, 4, 9, 10, 12} {
		t.Run(fmt.Sprintf("metadata/v%d", v), func(t *testing.T) {
			req := kmsg.NewPtrMetadataRequest()
			if v == 0 {
				req.Topics = []kmsg.MetadataRequestTopic{} // v0: empty means all
			}
			resp := dialRaw(t, p.KafkaAddr).request(req, v).(*kmsg.MetadataResponse)
			if len(resp.Brokers) != 1 {
				t.Fatalf("%d brokers", len(resp.Brokers))
			}
			if b := resp.Brokers[0]; b.NodeID != node || b.Host != host || b.Port != int32(port) {
				t.Errorf("broker %d at %s:%d, want %d at %s", b.NodeID, b.Host, b.Port, node, p.KafkaAddr)
			}
			if v >= 1 && resp.ControllerID != node {
				t.Errorf("controller %d, want %d", resp.ControllerID, node)
			}
			if v >= 2 && (resp.ClusterID == nil || *resp.ClusterID != clusterID) {
				t.Errorf("cluster id %v, DescribeCluster said %q", resp.ClusterID, clusterID)
			}
			var found bool
			for _, tp := range resp.Topics {
				if tp.Topic == nil || *tp.Topic != topic {
					continue
				}
				found = true
				if tp.ErrorCode != 0 || len(tp.Partitions) != 2 {
					t.Fatalf("%s: %v, %d partitions", topic, kerr.ErrorForCode(tp.ErrorCode), len(tp.Partitions))
				}
				if v >= 10 {
					if tp.TopicID == ([16]byte{}) {
						t.Errorf("%s has no topic id", topic)
					}
					topicIDBefore = tp.TopicID
				}
				for i, part := range tp.Partitions {
					if part.Partition != int32(i) || part.ErrorCode != 0 || part.Leader != node ||
						len(part.Replicas) != 1 || part.Replicas[0] != node || len(part.ISR) != 1 || part.ISR[0] != node {
						t.Errorf("partition %d: %+v", i, part)
					}
					if v >= 7 && part.LeaderEpoch != 0 {
						t.Errorf("partition %d: leader epoch %d, want 0", i, part.LeaderEpoch)
					}
				}
			}
			if !found {
				t.Errorf("metadata for all topics does not list %s", topic)
			}
		})
	}

	t.Run("offset-for-leader-epoch", func(t *testing.T) {
		type ask struct {
			topic          string
			part           int32
			currentEpoch   int32
			epoch          int32
			code           int16
			leaderEpoch    int32
			endOffset      int64
			name           string
			minimumVersion int16
		}
		cases := []ask{
			{topic, 0, -1, 0, 0, 0, 7, "epoch-0-is-the-high-watermark", 0},
			{topic, 1, -1, 0, 0, 0, 0, "empty-partition", 0},
			{topic, 0, 0, 0, 0, 0, 7, "current-epoch-0", 2},
			{topic, 0, -1, 1, 0, -1, -1, "later-epoch-undefined", 0},
			{topic, 0, 1, 0, kerr.UnknownLeaderEpoch.Code, -1, -1, "current-epoch-ahead", 2},
			{topic, 5, -1, 0, kerr.UnknownTopicOrPartition.Code, -1, -1, "unknown-partition", 0},
			{"cl-no-such-topic", 0, -1, 0, kerr.UnknownTopicOrPartition.Code, -1, -1, "unknown-topic", 0},
		}
		for _, v := range []int16{0, 2, 4} {
			for _, c := range cases {
				if v < c.minimumVersion {
					continue
				}
				t.Run(fmt.Sprintf("v%d/%s", v, c.name), func(t *testing.T) {
					req := kmsg.NewPtrOffsetForLeaderEpochRequest()
					req.ReplicaID = -1
					rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
					rt.Topic = c.topic
					rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
					rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = c.part, c.currentEpoch, c.epoch
					rt.Partitions = append(rt.Partitions, rp)
					req.Topics = append(req.Topics, rt)
					resp := dialRaw(t, p.KafkaAddr).request(req, v).(*kmsg.OffsetForLeaderEpochResponse)
					if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
						t.Fatalf("malformed answer %+v", resp)
					}
					got := resp.Topics[0].Partitions[0]
					if got.ErrorCode != c.code || got.Partition != c.part {
						t.Fatalf("partition %d: %v, want %v", got.Partition, kerr.ErrorForCode(got.ErrorCode), kerr.ErrorForCode(c.code))
					}
					if c.code == 0 && (got.EndOffset != c.endOffset || (v >= 1 && got.LeaderEpoch != c.leaderEpoch)) {
						t.Errorf("end offset %d leader epoch %d, want %d and %d", got.EndOffset, got.LeaderEpoch, c.endOffset, c.leaderEpoch)
					}
				})
			}
		}
	})

	if err := p.Stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	p.Restart()

	t.Run("ids-survive-restart", func(t *testing.T) {
		if id := describeCluster(t, 2).ClusterID; id != clusterID {
			t.Errorf("cluster id after restart %q, before %q", id, clusterID)
		}
		if id := metadataTopic(t, p, topic).TopicID; id != topicIDBefore {
			t.Errorf("topic id after restart %x, before %x", id, topicIDBefore)
		}
		// And Fetch by topic id (v13+) still finds the stream.
		got := fetchRaw(t, testCtx(t, 10*time.Second), newClient(t, p), topic, topicIDBefore, 0, 0)
		if got.ErrorCode != 0 || got.HighWatermark != 7 {
			t.Errorf("fetch after restart: %v, high watermark %d", kerr.ErrorForCode(got.ErrorCode), got.HighWatermark)
		}
	})
}
