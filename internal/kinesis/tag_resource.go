package kinesis

import "context"

// TagResource adds tags to the stream a ResourceARN names, as
// AddTagsToStream does.
func init() { register("TagResource", tagResource) }

type tagResourceInput struct {
	ResourceARN string            `json:"ResourceARN"`
	Tags        map[string]string `json:"Tags"`
}

func tagResource(_ context.Context, s *Server, body []byte) (any, error) {
	var in tagResourceInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.resourceStream(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	return nil, s.addTags(st.Name, in.Tags)
}
