package kinesis

import (
	"context"

	"github.com/braidstream/braid/internal/catalog"
)

// DeleteResourcePolicy removes the policy stored on the stream a
// ResourceARN names; ResourceNotFoundException when it has none.
func init() { register("DeleteResourcePolicy", deleteResourcePolicy) }

func deleteResourcePolicy(_ context.Context, s *Server, body []byte) (any, error) {
	var in resourcePolicyInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	st, err := s.resourceStream(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	return nil, s.eng.SetKinesis(st.Name, func(k *catalog.KinesisSettings) error {
		if k.Policy == "" {
			return errorf(errResourceNotFound, "No resource policy found for resource %s.", in.ResourceARN)
		}
		k.Policy = ""
		return nil
	})
}
