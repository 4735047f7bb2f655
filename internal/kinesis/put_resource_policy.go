package kinesis

import (
	"context"
	"encoding/json"

	"github.com/braidstream/braid/internal/catalog"
)

// PutResourcePolicy stores a resource policy on the stream a ResourceARN
// names, replacing any before it. Braid stores and returns the policy but
// does not enforce it.
func init() { register("PutResourcePolicy", putResourcePolicy) }

// maxPolicyBytes is the largest policy document AWS takes (20 KiB).
const maxPolicyBytes = 20480

type putResourcePolicyInput struct {
	ResourceARN string  `json:"ResourceARN"`
	Policy      *string `json:"Policy"`
}

func putResourcePolicy(_ context.Context, s *Server, body []byte) (any, error) {
	var in putResourcePolicyInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Policy == nil {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'policy' failed to satisfy constraint: Member must not be null")
	}
	if len(*in.Policy) > maxPolicyBytes {
		return nil, errorf(errValidation, "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to %d", maxPolicyBytes)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(*in.Policy), &doc); err != nil || len(doc) == 0 {
		return nil, errorf(errInvalidArgument, "Policy is not a valid policy document: it must be a non-empty JSON object")
	}
	st, err := s.resourceStream(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	return nil, s.eng.SetKinesis(st.Name, func(k *catalog.KinesisSettings) error {
		k.Policy = *in.Policy
		return nil
	})
}
