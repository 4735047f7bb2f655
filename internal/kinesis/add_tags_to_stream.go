package kinesis

import "context"

// AddTagsToStream adds tags to a stream or overwrites the values of keys
// it has; a stream has at most 50 tags.
func init() { register("AddTagsToStream", addTagsToStream) }

type addTagsToStreamInput struct {
	streamRef
	Tags map[string]string `json:"Tags"`
}

func addTagsToStream(_ context.Context, s *Server, body []byte) (any, error) {
	var in addTagsToStreamInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	return nil, s.addTags(st.Name, in.Tags)
}
