package kinesis

import (
	"context"
	"time"

	"github.com/braidstream/braid/internal/catalog"
)

// RegisterStreamConsumer registers a named consumer of a stream (at most
// 20 per stream), durably, in the catalog; it is ACTIVE at once (AWS
// answers CREATING first).
func init() { register("RegisterStreamConsumer", registerStreamConsumer) }

type registerStreamConsumerInput struct {
	StreamARN    string `json:"StreamARN"`
	ConsumerName string `json:"ConsumerName"`
}

type registerStreamConsumerOutput struct {
	Consumer consumer `json:"Consumer"`
}

func registerStreamConsumer(_ context.Context, s *Server, body []byte) (any, error) {
	var in registerStreamConsumerInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := requireStreamARN(in.StreamARN); err != nil {
		return nil, err
	}
	if !kinesisName.MatchString(in.ConsumerName) {
		return nil, errorf(errValidation, "1 validation error detected: Value '%s' at 'consumerName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128", in.ConsumerName)
	}
	st, err := s.stream(streamRef{StreamARN: in.StreamARN})
	if err != nil {
		return nil, err
	}
	c := catalog.Consumer{Name: in.ConsumerName, Created: time.Now().UnixMilli()}
	if err := s.eng.RegisterConsumer(st.Name, c); err != nil {
		return nil, err
	}
	return registerStreamConsumerOutput{Consumer: s.describeConsumer(st.Name, c)}, nil
}
