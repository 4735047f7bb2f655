package kinesis

import "context"

// DeleteStream deletes a stream and its data at once (Kinesis answers
// DELETING for a while; Braid has nothing to wait for). There are no
// registered consumers to enforce deletion of, so EnforceConsumerDeletion
// is accepted and has no effect.
func init() { register("DeleteStream", deleteStream) }

type deleteStreamInput struct {
	streamRef
	EnforceConsumerDeletion *bool `json:"EnforceConsumerDeletion"`
}

func deleteStream(_ context.Context, s *Server, body []byte) (any, error) {
	var in deleteStreamInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	if err := s.eng.DeleteStream(st.Name); err != nil {
		return nil, err
	}
	return nil, nil
}
