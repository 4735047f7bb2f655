package kinesis

import "context"

// ListTagsForStream lists a stream's tags in key order, Limit at a time
// (1-50, default 50), after ExclusiveStartTagKey.
func init() { register("ListTagsForStream", listTagsForStream) }

type listTagsForStreamInput struct {
	streamRef
	ExclusiveStartTagKey string `json:"ExclusiveStartTagKey"`
	Limit                *int   `json:"Limit"`
}

type listTagsForStreamOutput struct {
	Tags        []tagEntry `json:"Tags"`
	HasMoreTags bool       `json:"HasMoreTags"`
}

func listTagsForStream(_ context.Context, s *Server, body []byte) (any, error) {
	var in listTagsForStreamInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit := streamTagLimit
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > streamTagLimit {
			return nil, rangeError("limit", *in.Limit, 1, streamTagLimit)
		}
		limit = *in.Limit
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	out := listTagsForStreamOutput{Tags: []tagEntry{}}
	for _, t := range sortedTags(streamTags(st)) {
		if in.ExclusiveStartTagKey != "" && t.Key <= in.ExclusiveStartTagKey {
			continue
		}
		if len(out.Tags) == limit {
			out.HasMoreTags = true
			break
		}
		out.Tags = append(out.Tags, t)
	}
	return out, nil
}
