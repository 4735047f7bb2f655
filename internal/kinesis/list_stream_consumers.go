package kinesis

import (
	"context"
	"sort"

	"github.com/braidstream/braid/internal/catalog"
)

// ListStreamConsumers lists a stream's consumers by name, MaxResults
// (1-10000, default 100) at a time, with a NextToken to go on.
// StreamCreationTimestamp is accepted and not checked.
func init() { register("ListStreamConsumers", listStreamConsumers) }

type listStreamConsumersInput struct {
	StreamARN               string   `json:"StreamARN"`
	MaxResults              *int     `json:"MaxResults"`
	NextToken               string   `json:"NextToken"`
	StreamCreationTimestamp *float64 `json:"StreamCreationTimestamp"`
}

type listStreamConsumersOutput struct {
	Consumers []consumer `json:"Consumers"`
	NextToken *string    `json:"NextToken,omitempty"`
}

func listStreamConsumers(_ context.Context, s *Server, body []byte) (any, error) {
	var in listStreamConsumersInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := requireStreamARN(in.StreamARN); err != nil {
		return nil, err
	}
	limit, err := pageSize("maxResults", in.MaxResults, 100, 10000)
	if err != nil {
		return nil, err
	}
	st, err := s.stream(streamRef{StreamARN: in.StreamARN})
	if err != nil {
		return nil, err
	}
	after := ""
	if in.NextToken != "" {
		// The token names its stream, so it cannot page another one.
		if after, err = decodeToken(s, "ListStreamConsumers\x00"+st.Name, in.NextToken); err != nil {
			return nil, err
		}
	}
	var cs []catalog.Consumer
	for _, c := range st.Consumers {
		if c.Name > after {
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	out := listStreamConsumersOutput{Consumers: []consumer{}}
	if len(cs) > limit {
		cs = cs[:limit]
		tok := encodeToken(s, "ListStreamConsumers\x00"+st.Name, cs[len(cs)-1].Name)
		out.NextToken = &tok
	}
	for _, c := range cs {
		out.Consumers = append(out.Consumers, s.describeConsumer(st.Name, c))
	}
	return out, nil
}
