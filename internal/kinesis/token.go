package kinesis

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Pagination tokens (NextToken) are opaque to clients: the operation, the
// position to continue after, and a MAC so that a token cannot be forged or
// passed to another operation.

func encodeToken(s *Server, op, pos string) string {
	m := hmac.New(sha256.New, s.iterKey)
	m.Write([]byte(op + "\x00" + pos))
	return base64.RawURLEncoding.EncodeToString([]byte(pos)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

func decodeToken(s *Server, op, tok string) (string, error) {
	p, mac, ok := strings.Cut(tok, ".")
	pos, err1 := base64.RawURLEncoding.DecodeString(p)
	got, err2 := base64.RawURLEncoding.DecodeString(mac)
	if !ok || err1 != nil || err2 != nil {
		return "", errorf(errInvalidArgument, "invalid NextToken")
	}
	m := hmac.New(sha256.New, s.iterKey)
	m.Write([]byte(op + "\x00" + string(pos)))
	if !hmac.Equal(m.Sum(nil)[:12], got) {
		return "", errorf(errInvalidArgument, "invalid NextToken")
	}
	return string(pos), nil
}
