package kinesis

import "context"

// RemoveTagsFromStream removes tags by key; keys the stream does not have
// are ignored.
func init() { register("RemoveTagsFromStream", removeTagsFromStream) }

type removeTagsFromStreamInput struct {
	streamRef
	TagKeys []string `json:"TagKeys"`
}

func removeTagsFromStream(_ context.Context, s *Server, body []byte) (any, error) {
	var in removeTagsFromStreamInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	return nil, s.removeTags(st.Name, in.TagKeys)
}
