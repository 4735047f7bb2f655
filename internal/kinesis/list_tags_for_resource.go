package kinesis

import "context"

// ListTagsForResource lists all tags of the stream a ResourceARN names,
// in key order.
func init() { register("ListTagsForResource", listTagsForResource) }

type listTagsForResourceInput struct {
	ResourceARN string `json:"ResourceARN"`
}

type listTagsForResourceOutput struct {
	Tags []tagEntry `json:"Tags"`
}

func listTagsForResource(_ context.Context, s *Server, body []byte) (any, error) {
	var in listTagsForResourceInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.resourceStream(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	return listTagsForResourceOutput{Tags: sortedTags(streamTags(st))}, nil
}
