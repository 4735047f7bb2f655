package kinesis

import "context"

// UntagResource removes tags from the stream a ResourceARN names, as
// RemoveTagsFromStream does.
func init() { register("UntagResource", untagResource) }

type untagResourceInput struct {
	ResourceARN string   `json:"ResourceARN"`
	TagKeys     []string `json:"TagKeys"`
}

func untagResource(_ context.Context, s *Server, body []byte) (any, error) {
	var in untagResourceInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.resourceStream(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	return nil, s.removeTags(st.Name, in.TagKeys)
}
