package kinesis

import "context"

// DeregisterStreamConsumer removes a consumer, named by its ARN or by its
// stream's ARN and its name. It is gone at once (AWS shows it DELETING
// for a while); subscriptions it holds end within a second.
func init() { register("DeregisterStreamConsumer", deregisterStreamConsumer) }

type deregisterStreamConsumerInput struct {
	consumerRef
}

func deregisterStreamConsumer(_ context.Context, s *Server, body []byte) (any, error) {
	var in deregisterStreamConsumerInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, c, err := s.consumerOf(in.consumerRef)
	if err != nil {
		return nil, err
	}
	if _, err := s.eng.DeregisterConsumer(st.Name, c.Name); err != nil {
		return nil, err
	}
	return nil, nil
}
