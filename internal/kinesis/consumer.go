package kinesis

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// What the stream consumer operations (register/deregister/describe/
// list_stream_consumer(s).go) and SubscribeToShard share: a consumer's
// ARN and its description. Consumers are kept in the catalog
// (catalog/kinesis_consumers.go); Braid registers them at once, so their
// status is always ACTIVE.

// consumer is a Consumer as AWS answers it.
type consumer struct {
	ConsumerName              string  `json:"ConsumerName"`
	ConsumerARN               string  `json:"ConsumerARN"`
	ConsumerStatus            string  `json:"ConsumerStatus"`
	ConsumerCreationTimestamp float64 `json:"ConsumerCreationTimestamp"`
}

// consumerARN is arn:aws:kinesis:REGION:ACCOUNT:stream/NAME/consumer/CNAME:EPOCH,
// EPOCH the registration time in seconds: a consumer registered again
// under the same name has a new ARN.
func (s *Server) consumerARN(stream string, c catalog.Consumer) string {
	return fmt.Sprintf("%s/consumer/%s:%d", s.arn(stream), c.Name, c.Created/1000)
}

func (s *Server) describeConsumer(stream string, c catalog.Consumer) consumer {
	return consumer{
		ConsumerName: c.Name, ConsumerARN: s.consumerARN(stream, c), ConsumerStatus: "ACTIVE",
		ConsumerCreationTimestamp: float64(c.Created) / 1000,
	}
}

var errBadConsumerARN = errors.New("not a consumer ARN")

// splitConsumerARN returns the stream ARN, consumer name and creation
// epoch a consumer ARN holds.
func splitConsumerARN(arn string) (streamARN, name string, epoch int64, err error) {
	streamARN, rest, ok := strings.Cut(arn, "/consumer/")
	i := strings.LastIndexByte(rest, ':')
	if !ok || i < 0 {
		return "", "", 0, errBadConsumerARN
	}
	epoch, err = strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil {
		return "", "", 0, errBadConsumerARN
	}
	return streamARN, rest[:i], epoch, nil
}

// consumerByARN returns the stream and consumer a ConsumerARN names.
func (s *Server) consumerByARN(arn string) (*engine.Stream, catalog.Consumer, error) {
	streamARN, name, epoch, err := splitConsumerARN(arn)
	if err != nil {
		return nil, catalog.Consumer{}, errorf(errInvalidArgument, "ConsumerARN %q is not a consumer ARN (arn:aws:kinesis:region:account:stream/name/consumer/consumer-name:epoch)", arn)
	}
	st, err := s.stream(streamRef{StreamARN: streamARN})
	if err != nil {
		return nil, catalog.Consumer{}, err
	}
	c, ok := st.Consumer(name)
	if !ok || c.Created/1000 != epoch {
		return nil, catalog.Consumer{}, errorf(errResourceNotFound, "Consumer %s under account %s not found.", arn, s.opts.Account)
	}
	return st, c, nil
}

// consumerRef is how DescribeStreamConsumer and DeregisterStreamConsumer
// name a consumer: its ARN, or its stream's ARN and its name.
type consumerRef struct {
	StreamARN    string `json:"StreamARN,omitempty"`
	ConsumerName string `json:"ConsumerName,omitempty"`
	ConsumerARN  string `json:"ConsumerARN,omitempty"`
}

func (s *Server) consumerOf(ref consumerRef) (*engine.Stream, catalog.Consumer, error) {
	if ref.ConsumerARN != "" {
		st, c, err := s.consumerByARN(ref.ConsumerARN)
		if err == nil && ((ref.StreamARN != "" && ref.StreamARN != s.arn(st.Name)) || (ref.ConsumerName != "" && ref.ConsumerName != c.Name)) {
			return nil, c, errorf(errInvalidArgument, "ConsumerARN %s does not match the StreamARN and ConsumerName given", ref.ConsumerARN)
		}
		return st, c, err
	}
	if ref.StreamARN == "" || ref.ConsumerName == "" {
		return nil, catalog.Consumer{}, errorf(errInvalidArgument, "either ConsumerARN or both StreamARN and ConsumerName must be given")
	}
	st, err := s.stream(streamRef{StreamARN: ref.StreamARN})
	if err != nil {
		return nil, catalog.Consumer{}, err
	}
	c, ok := st.Consumer(ref.ConsumerName)
	if !ok {
		return nil, c, errorf(errResourceNotFound, "Consumer %s under account %s not found.", ref.ConsumerName, s.opts.Account)
	}
	return st, c, nil
}

// requireStreamARN checks the StreamARN member the consumer operations
// require.
func requireStreamARN(arn string) error {
	if arn == "" {
		return errorf(errValidation, "1 validation error detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null")
	}
	return nil
}
