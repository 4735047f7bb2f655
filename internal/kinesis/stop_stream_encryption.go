package kinesis

import (
	"context"
)

// StopStreamEncryption records EncryptionType NONE (the request names
// KMS and the key, as in AWS). Braid never encrypted anything.
func init() { register("StopStreamEncryption", stopStreamEncryption) }

func stopStreamEncryption(_ context.Context, s *Server, body []byte) (any, error) {
	return nil, s.setEncryption(body, func(*streamEncryptionInput) (string, string) { return "", "" })
}
