package kinesis

import "context"

// DescribeStreamConsumer describes a consumer, named by its ARN or by its
// stream's ARN and its name.
func init() { register("DescribeStreamConsumer", describeStreamConsumer) }

type describeStreamConsumerInput struct {
	consumerRef
}

type consumerDescription struct {
	consumer
	StreamARN string `json:"StreamARN"`
}

type describeStreamConsumerOutput struct {
	ConsumerDescription consumerDescription `json:"ConsumerDescription"`
}

func describeStreamConsumer(_ context.Context, s *Server, body []byte) (any, error) {
	var in describeStreamConsumerInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, c, err := s.consumerOf(in.consumerRef)
	if err != nil {
		return nil, err
	}
	return describeStreamConsumerOutput{ConsumerDescription: consumerDescription{
		consumer: s.describeConsumer(st.Name, c), StreamARN: s.arn(st.Name),
	}}, nil
}
