package kinesis

import (
	"regexp"
	"strings"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// streamRef is how requests name a stream: StreamName or StreamARN (at
// least one; both must agree).
type streamRef struct {
	StreamName string `json:"StreamName,omitempty"`
	StreamARN  string `json:"StreamARN,omitempty"`
}

var kinesisName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// name returns the stream name a request refers to, checked as Kinesis
// checks it.
func (s *Server) name(ref streamRef) (string, error) {
	name := ref.StreamName
	if ref.StreamARN != "" {
		i := strings.LastIndex(ref.StreamARN, ":stream/")
		if !strings.HasPrefix(ref.StreamARN, "arn:") || i < 0 {
			return "", errorf(errInvalidArgument, "StreamARN %q is not a Kinesis stream ARN (arn:aws:kinesis:region:account:stream/name)", ref.StreamARN)
		}
		fromARN := ref.StreamARN[i+len(":stream/"):]
		if name != "" && name != fromARN {
			return "", errorf(errInvalidArgument, "StreamName %q and StreamARN %q name different streams", name, ref.StreamARN)
		}
		name = fromARN
	}
	if name == "" {
		return "", errorf(errInvalidArgument, "either StreamName or StreamARN must be given")
	}
	if !kinesisName.MatchString(name) {
		return "", errorf(errValidation, "1 validation error detected: Value '%s' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length at most 128", name)
	}
	return name, nil
}

// stream returns the stream a request refers to; internal streams are
// not Kinesis streams.
func (s *Server) stream(ref streamRef) (*engine.Stream, error) {
	name, err := s.name(ref)
	if err != nil {
		return nil, err
	}
	st := s.eng.Stream(name)
	if st == nil || st.Internal {
		return nil, errorf(errResourceNotFound, "Stream %s under account %s not found.", name, s.opts.Account)
	}
	return st, nil
}

// openShards counts a stream's open shards.
func openShards(st *engine.Stream) int {
	n := 0
	for _, sh := range st.Stream.Shards {
		if sh.State == catalog.ShardOpen {
			n++
		}
	}
	return n
}

// onDemand says whether a stream is in ON_DEMAND capacity mode.
func onDemand(st *engine.Stream) bool { return streamMode(st.Configs) == "ON_DEMAND" }
