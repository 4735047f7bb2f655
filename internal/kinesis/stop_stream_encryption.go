package kinesis

import (
	"context"

	"github.com/braidstream/braid/internal/catalog"
)

// StopStreamEncryption records EncryptionType NONE (the request names
// KMS and the key, as in AWS). Braid never encrypted anything.
func init() { register("StopStreamEncryption", stopStreamEncryption) }

func stopStreamEncryption(_ context.Context, s *Server, body []byte) (any, error) {
	var in streamEncryptionInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.check(); err != nil {
		return nil, err
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return nil, err
	}
	return nil, s.eng.SetKinesis(st.Name, func(k *catalog.KinesisSettings) error {
		k.EncryptionType, k.KeyID = "", ""
		return nil
	})
}
