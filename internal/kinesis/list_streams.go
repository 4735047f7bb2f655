package kinesis

import (
	"context"
	"sort"

	"github.com/braidstream/braid/internal/catalog"
)

// ListStreams lists stream names (and summaries) in name order, Limit at a
// time (1-10000, default 100), after ExclusiveStartStreamName or from the
// NextToken of an earlier answer.
func init() { register("ListStreams", listStreams) }

type listStreamsInput struct {
	Limit                    *int   `json:"Limit"`
	ExclusiveStartStreamName string `json:"ExclusiveStartStreamName"`
	NextToken                string `json:"NextToken"`
}

type streamSummary struct {
	StreamName              string            `json:"StreamName"`
	StreamARN               string            `json:"StreamARN"`
	StreamStatus            string            `json:"StreamStatus"`
	StreamModeDetails       streamModeDetails `json:"StreamModeDetails"`
	StreamCreationTimestamp float64           `json:"StreamCreationTimestamp"`
}

type streamModeDetails struct {
	StreamMode string `json:"StreamMode"`
}

type listStreamsOutput struct {
	StreamNames     []string        `json:"StreamNames"`
	HasMoreStreams  bool            `json:"HasMoreStreams"`
	NextToken       *string         `json:"NextToken,omitempty"`
	StreamSummaries []streamSummary `json:"StreamSummaries"`
}

func listStreams(_ context.Context, s *Server, body []byte) (any, error) {
	var in listStreamsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit, err := pageSize("limit", in.Limit, 100, 10000)
	if err != nil {
		return nil, err
	}
	after := in.ExclusiveStartStreamName
	if in.NextToken != "" {
		if in.ExclusiveStartStreamName != "" {
			return nil, errorf(errInvalidArgument, "NextToken and ExclusiveStartStreamName cannot both be given")
		}
		tok, err := decodeToken(s, "ListStreams", in.NextToken)
		if err != nil {
			return nil, err
		}
		after = tok
	}
	var names []string
	streams := s.eng.Streams()
	for name, st := range streams {
		if !st.Internal && name > after {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := listStreamsOutput{StreamNames: []string{}, StreamSummaries: []streamSummary{}}
	if len(names) > limit {
		names, out.HasMoreStreams = names[:limit], true
		tok := encodeToken(s, "ListStreams", names[len(names)-1])
		out.NextToken = &tok
	}
	for _, n := range names {
		out.StreamNames = append(out.StreamNames, n)
		out.StreamSummaries = append(out.StreamSummaries, streamSummary{
			StreamName: n, StreamARN: s.arn(n), StreamStatus: "ACTIVE",
			StreamModeDetails:       streamModeDetails{StreamMode: streamMode(streams[n].Configs)},
			StreamCreationTimestamp: epochSeconds(streams[n].CreatedMs),
		})
	}
	return out, nil
}

func streamMode(c catalog.Configs) string {
	if m := c[catalog.KinesisModeConfig]; m != "" {
		return m
	}
	return "PROVISIONED"
}
