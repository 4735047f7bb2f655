package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/group"
)

// ConsumerGroupHeartbeat v0-v1 (KIP-848): the consumer protocol with
// server-side assignment. v1 clients name themselves; a v0 join without a
// member id gets one.
func init() { register(68, 0, 1, handleConsumerGroupHeartbeat) }

func handleConsumerGroupHeartbeat(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	memberID := req.MemberID
	if memberID == "" && req.MemberEpoch == 0 && req.Version == 0 {
		var b [16]byte
		rand.Read(b[:])
		memberID = hex.EncodeToString(b[:])
	}
	host, _, _ := net.SplitHostPort(c.nc.RemoteAddr().String())
	hr := group.HeartbeatRequest{
		Group: req.Group, MemberID: memberID, InstanceID: str(req.InstanceID), RackID: str(req.RackID),
		ClientID: c.client, ClientHost: "/" + host, MemberEpoch: req.MemberEpoch,
		RebalanceTimeout: time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		SubscribedTopics: req.SubscribedTopicNames, SubscribedRegex: req.SubscribedTopicRegex,
		Assignor: req.ServerAssignor, OwnedKnown: req.Topics != nil,
	}
	if req.SubscribedTopicNames != nil && len(req.SubscribedTopicNames) == 0 {
		hr.SubscribedTopics = []string{}
	}
	for _, t := range req.Topics {
		st := c.s.eng.StreamByTopicID(t.TopicID)
		if st == nil {
			continue // a deleted stream: nothing to release
		}
		for _, p := range t.Partitions {
			hr.Owned = append(hr.Owned, group.TopicPartition{Topic: st.Name, Partition: p})
		}
	}
	r, err := c.s.groups.ConsumerHeartbeat(hr)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		return resp, nil
	}
	if r.Wait == 0 {
		return fillConsumerHeartbeat(c, resp, r), nil
	}
	// The change must be durable before the member acts on it.
	return nil, func() kmsg.Response {
		ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
		defer cancel()
		if err := c.s.eng.Offsets().WaitDurable(ctx, r.Wait); err != nil {
			resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
			return resp
		}
		return fillConsumerHeartbeat(c, resp, r)
	}
}

func fillConsumerHeartbeat(c *conn, resp *kmsg.ConsumerGroupHeartbeatResponse, r group.HeartbeatResponse) *kmsg.ConsumerGroupHeartbeatResponse {
	resp.MemberID = &r.MemberID
	resp.MemberEpoch, resp.HeartbeatIntervalMillis = r.MemberEpoch, int32(r.HeartbeatInterval/time.Millisecond)
	if r.AssignmentSent {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		byTopic := map[string]int{}
		for _, tp := range r.Assignment {
			st := c.s.eng.Stream(tp.Topic)
			if st == nil {
				continue
			}
			i, ok := byTopic[tp.Topic]
			if !ok {
				t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
				t.TopicID = st.TopicID
				a.Topics = append(a.Topics, t)
				i = len(a.Topics) - 1
				byTopic[tp.Topic] = i
			}
			a.Topics[i].Partitions = append(a.Topics[i].Partitions, tp.Partition)
		}
		resp.Assignment = &a
	}
	return resp
}

// topicsCache is the group coordinator's view of the engine's stream map.
type topicsCache struct {
	src map[string]*engine.Stream
	out map[string]group.TopicInfo
}

// consumerTopics tells the group coordinator which streams exist. The
// engine swaps its (immutable) stream map on every change, so the view is
// built once per change and the same map handed out until then: the
// coordinator resolves subscriptions again only when it gets a new one.
func (s *Server) consumerTopics() map[string]group.TopicInfo {
	streams := s.eng.Streams()
	if tc := s.topics.Load(); tc != nil && reflect.ValueOf(tc.src).UnsafePointer() == reflect.ValueOf(streams).UnsafePointer() {
		return tc.out
	}
	out := make(map[string]group.TopicInfo, len(streams))
	for name, st := range streams {
		out[name] = group.TopicInfo{Name: name, ID: st.TopicID, Partitions: int32(len(st.Shards))}
	}
	s.topics.Store(&topicsCache{src: streams, out: out})
	return out
}
