package kafka

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics v0-v6 (v6 may name topics by id).
func init() { register(20, 0, 6, handleDeleteTopics) }

func handleDeleteTopics(c *conn, kreq kmsg.Request) (kmsg.Response, func() kmsg.Response) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	topics := req.Topics
	if req.Version < 6 {
		for _, name := range req.TopicNames {
			t := kmsg.NewDeleteTopicsRequestTopic()
			n := name
			t.Topic = &n
			topics = append(topics, t)
		}
	}
	for _, rt := range topics {
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		var name string
		switch {
		case rt.Topic != nil:
			name = *rt.Topic
		default:
			st := c.s.eng.StreamByTopicID(rt.TopicID)
			if st == nil {
				t.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, t)
				continue
			}
			name = st.Name
			t.Topic = &name
		}
		if st := c.s.eng.Stream(name); st != nil {
			t.TopicID = st.TopicID
		}
		if err := c.s.eng.DeleteStream(name); err != nil {
			t.ErrorCode, t.ErrorMessage = errCode(err), errMessage(err)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}
