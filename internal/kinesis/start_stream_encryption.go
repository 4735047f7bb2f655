package kinesis

import (
	"context"
	"unicode/utf8"

	"github.com/braidstream/braid/internal/catalog"
)

// StartStreamEncryption records EncryptionType KMS and the KeyId given.
// Braid does not encrypt records: it records the setting so that
// DescribeStream reports what the client set.
func init() { register("StartStreamEncryption", startStreamEncryption) }

type streamEncryptionInput struct {
	streamRef
	EncryptionType string `json:"EncryptionType"`
	KeyId          string `json:"KeyId"`
}

// check validates an encryption request as AWS does: KMS and a key id of
// 1-2048 characters.
func (in *streamEncryptionInput) check() error {
	switch in.EncryptionType {
	case "KMS":
	case "":
		return errorf(errValidation, "1 validation error detected: Value null at 'encryptionType' failed to satisfy constraint: Member must not be null")
	case "NONE":
		return errorf(errInvalidArgument, "EncryptionType NONE is not valid here; only KMS is supported")
	default:
		return errorf(errValidation, "1 validation error detected: Value '%s' at 'encryptionType' failed to satisfy constraint: Member must satisfy enum value set: [NONE, KMS]", in.EncryptionType)
	}
	if n := utf8.RuneCountInString(in.KeyId); n < 1 || n > 2048 {
		return errorf(errValidation, "1 validation error detected: Value '%s' at 'keyId' failed to satisfy constraint: Member must have length between 1 and 2048", in.KeyId)
	}
	return nil
}

func startStreamEncryption(_ context.Context, s *Server, body []byte) (any, error) {
	return nil, s.setEncryption(body, func(in *streamEncryptionInput) (string, string) { return in.EncryptionType, in.KeyId })
}

// setEncryption checks a Start/StopStreamEncryption request and records
// the encryption type and key set returns for it.
func (s *Server) setEncryption(body []byte, set func(*streamEncryptionInput) (typ, key string)) error {
	var in streamEncryptionInput
	if err := decode(body, &in); err != nil {
		return err
	}
	if err := in.check(); err != nil {
		return err
	}
	st, err := s.stream(in.streamRef)
	if err != nil {
		return err
	}
	return s.eng.SetKinesis(st.Name, func(k *catalog.KinesisSettings) error {
		k.EncryptionType, k.KeyID = set(&in)
		return nil
	})
}
