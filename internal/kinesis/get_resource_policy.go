package kinesis

import "context"

// GetResourcePolicy returns the policy stored on the stream a
// ResourceARN names, "{}" when there is none.
func init() { register("GetResourcePolicy", getResourcePolicy) }

type resourcePolicyInput struct {
	ResourceARN string `json:"ResourceARN"`
}

type getResourcePolicyOutput struct {
	Policy string `json:"Policy"`
}

func getResourcePolicy(_ context.Context, s *Server, body []byte) (any, error) {
	var in resourcePolicyInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.resourceStream(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	out := getResourcePolicyOutput{Policy: "{}"}
	if st.Kinesis != nil && st.Kinesis.Policy != "" {
		out.Policy = st.Kinesis.Policy
	}
	return out, nil
}
