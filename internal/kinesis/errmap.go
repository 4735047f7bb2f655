package kinesis

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/wal"
)

// AWS error types (the __type of an error answer), as the Kinesis API
// reference names them.
const (
	errResourceNotFound   = "ResourceNotFoundException"
	errResourceInUse      = "ResourceInUseException"
	errInvalidArgument    = "InvalidArgumentException"
	errLimitExceeded      = "LimitExceededException"
	errExpiredIterator    = "ExpiredIteratorException"
	errThroughput         = "ProvisionedThroughputExceededException"
	errValidation         = "ValidationException"
	errSerialization      = "SerializationException"
	errUnknownOperation   = "UnknownOperationException"
	errAccessDenied       = "AccessDeniedException"
	errInternalFailure    = "InternalFailure"
	errServiceUnavailable = "ServiceUnavailable"
	// ListShards (list_shards.go).
	errExpiredNextToken = "ExpiredNextTokenException"

	// Signature Version 4 (sigv4.go), all HTTP 400 as AWS answers them.
	errMissingAuthToken    = "MissingAuthenticationTokenException"
	errIncompleteSignature = "IncompleteSignatureException"
	errUnrecognizedClient  = "UnrecognizedClientException"
	errInvalidSignature    = "InvalidSignatureException"
)

// apiError is an error with its AWS type.
type apiError struct {
	typ string
	msg string
	err error // the cause, if any (for errors.Is)
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }
func (e *apiError) Unwrap() error { return e.err }

// errorf makes an error of AWS type typ.
func errorf(typ, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &apiError{typ: typ, msg: err.Error(), err: errors.Unwrap(err)}
}

// statusOf is the HTTP status of each type: 400 for the caller's
// mistakes, 500/503 for the server's.
func statusOf(typ string) int {
	switch typ {
	case errInternalFailure:
		return http.StatusInternalServerError
	case errServiceUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// domainErrors maps Braid's sentinel errors to AWS types.
var domainErrors = []struct {
	err error
	typ string
}{
	{catalog.ErrUnknownStream, errResourceNotFound},
	{catalog.ErrUnknownShard, errResourceNotFound},
	{catalog.ErrStreamExists, errResourceInUse},
	{catalog.ErrInvalidName, errValidation},
	{catalog.ErrInvalidShards, errInvalidArgument},
	{catalog.ErrInvalidReshard, errInvalidArgument},
	{catalog.ErrShardClosed, errInvalidArgument},
	{catalog.ErrInternalStream, errInvalidArgument},
	{catalog.ErrInvalidConfig, errInvalidArgument},
	{engine.ErrRecordTooLarge, errInvalidArgument},
	{catalog.ErrConsumerExists, errResourceInUse},
	{catalog.ErrUnknownConsumer, errResourceNotFound},
	{catalog.ErrTooManyConsumers, errLimitExceeded},
	{catalog.ErrInvalidConsumer, errValidation},
	{shard.ErrClosed, errServiceUnavailable},
	{wal.ErrNoSpace, errServiceUnavailable},
	// Appended, durability not seen: the outcome is unknown, like a
	// timeout's (after its cause, which may map more precisely).
	{engine.ErrUnconfirmed, errServiceUnavailable},
}

// mapError returns the AWS type, HTTP status and message for err.
func mapError(err error) (typ string, status int, msg string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.typ, statusOf(ae.typ), ae.msg
	}
	for _, d := range domainErrors {
		if errors.Is(err, d.err) {
			return d.typ, statusOf(d.typ), withoutPackage(err.Error())
		}
	}
	return errInternalFailure, http.StatusInternalServerError, err.Error()
}

// withoutPackage drops the "catalog: " or "engine: " that starts Braid's
// error texts: it names Go code, which means nothing to an AWS client.
func withoutPackage(msg string) string {
	pkg, rest, ok := strings.Cut(msg, ": ")
	if !ok || pkg == "" || strings.TrimLeft(pkg, "abcdefghijklmnopqrstuvwxyz") != "" {
		return msg
	}
	return rest
}
