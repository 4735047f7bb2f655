package kinesis

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// Helpers shared by the stream-settings operations, and for Describe*
// outputs: retentionHours, maxRecordSizeKiB, encryption, shardLevelMetrics,
// streamTags.

const (
	minRetentionHours = 24
	maxRetentionHours = 8760
	retentionHourMs   = 3600 * 1000
)

// retentionMs is the stream's time retention in ms (retention.ms, or the
// broker default); -1 keeps records forever.
func retentionMs(s *Server, st *catalog.Stream) int64 {
	return st.Configs.Int("retention.ms", s.eng.Defaults())
}

// retentionHours is the retention a Kinesis client sees: retention.ms in
// whole hours, rounded up; a stream that keeps records forever (-1), or
// longer than Kinesis can express, shows the most Kinesis allows, 8760.
func retentionHours(s *Server, st *engine.Stream) int {
	ms := retentionMs(s, st.Stream)
	if ms < 0 {
		return maxRetentionHours
	}
	return int(min((ms+retentionHourMs-1)/retentionHourMs, maxRetentionHours))
}

// maxRecordOverhead is what a Kinesis record costs beyond its data and
// partition key once stored as a one-record batch (batch header, record
// framing, the explicit hash key header if any): max.message.bytes is
// set to the record size plus this, so that a record of exactly the
// Kinesis limit fits.
const maxRecordOverhead = 512

// maxRecordSizeKiB is the stream's largest record in KiB as Kinesis
// reports it (max.message.bytes less framing; the default 1048588 reads
// as 1024).
func maxRecordSizeKiB(s *Server, st *engine.Stream) int {
	return int(st.Configs.Int("max.message.bytes", s.eng.Defaults()) / 1024)
}

// encryption returns the stream's EncryptionType ("NONE" or "KMS") and
// KeyId ("" when none).
func encryption(st *engine.Stream) (typ, keyID string) {
	if k := st.Kinesis; k != nil && k.EncryptionType != "" {
		return k.EncryptionType, k.KeyID
	}
	return "NONE", ""
}

// metricNames are the enhanced-monitoring metrics, in the order Kinesis
// lists them; "ALL" names them all.
var metricNames = []string{
	"IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
	"WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded",
	"IteratorAgeMilliseconds",
}

// shardLevelMetrics returns the metrics enabled on a stream (never nil).
func shardLevelMetrics(st *engine.Stream) []string {
	if st.Kinesis == nil {
		return []string{}
	}
	return slices.Clone(st.Kinesis.ShardLevelMetrics)
}

// streamTags returns a copy of the stream's tags (nil when none).
func streamTags(st *engine.Stream) map[string]string {
	if st.Kinesis == nil {
		return nil
	}
	out := make(map[string]string, len(st.Kinesis.Tags))
	for k, v := range st.Kinesis.Tags {
		out[k] = v
	}
	return out
}

// Tag rules (AWS's for all tagged resources).
const (
	streamTagLimit    = 50
	maxTagKeyChars    = 128
	maxTagValueChars  = 256
	reservedTagPrefix = "aws:"
)

var tagChars = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

// checkTags checks tags to be added, before anything changes.
func checkTags(tags map[string]string) error {
	if len(tags) == 0 {
		return errorf(errValidation, "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have at least 1 entry")
	}
	if len(tags) > streamTagLimit {
		return errorf(errInvalidArgument, "%d tags given; a stream can have at most %d", len(tags), streamTagLimit)
	}
	for k, v := range tags {
		if err := checkTagKey(k); err != nil {
			return err
		}
		if n := utf8.RuneCountInString(v); n > maxTagValueChars || !tagChars.MatchString(v) {
			return errorf(errValidation, "1 validation error detected: Value '%s' at 'tags' failed to satisfy constraint: Member must have length at most %d and consist of letters, digits, spaces and _ . : / = + - @", v, maxTagValueChars)
		}
	}
	return nil
}

func checkTagKey(k string) error {
	if n := utf8.RuneCountInString(k); n < 1 || n > maxTagKeyChars || !tagChars.MatchString(k) {
		return errorf(errValidation, "1 validation error detected: Value '%s' at 'tagKeys' failed to satisfy constraint: Member must have length between 1 and %d and consist of letters, digits, spaces and _ . : / = + - @", k, maxTagKeyChars)
	}
	if strings.HasPrefix(strings.ToLower(k), reservedTagPrefix) {
		return errorf(errInvalidArgument, "tag key %q: keys starting with %q are reserved for AWS", k, reservedTagPrefix)
	}
	return nil
}

// checkTagKeys checks the keys of a removal.
func checkTagKeys(keys []string) error {
	if len(keys) < 1 || len(keys) > streamTagLimit {
		return errorf(errValidation, "1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must have between 1 and %d items", streamTagLimit)
	}
	for _, k := range keys {
		if n := utf8.RuneCountInString(k); n < 1 || n > maxTagKeyChars {
			return errorf(errValidation, "1 validation error detected: Value '%s' at 'tagKeys' failed to satisfy constraint: Member must have length between 1 and %d", k, maxTagKeyChars)
		}
	}
	return nil
}

// addTags adds (or overwrites) tags on a stream, refusing to go past 50.
func (s *Server) addTags(name string, tags map[string]string) error {
	if err := checkTags(tags); err != nil {
		return err
	}
	return s.eng.SetKinesis(name, func(k *catalog.KinesisSettings) error {
		n := len(k.Tags)
		for key := range tags {
			if _, ok := k.Tags[key]; !ok {
				n++
			}
		}
		if n > streamTagLimit {
			return errorf(errInvalidArgument, "Failed to add tags to stream %s: it would have %d tags; a stream can have at most %d", name, n, streamTagLimit)
		}
		if k.Tags == nil {
			k.Tags = map[string]string{}
		}
		for key, v := range tags {
			k.Tags[key] = v
		}
		return nil
	})
}

// removeTags removes tags by key; keys the stream does not have are
// ignored.
func (s *Server) removeTags(name string, keys []string) error {
	if err := checkTagKeys(keys); err != nil {
		return err
	}
	return s.eng.SetKinesis(name, func(k *catalog.KinesisSettings) error {
		for _, key := range keys {
			delete(k.Tags, key)
		}
		return nil
	})
}

// tagEntry is one tag in a list answer.
type tagEntry struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// sortedTags lists tags in key order.
func sortedTags(tags map[string]string) []tagEntry {
	out := make([]tagEntry, 0, len(tags))
	for k, v := range tags {
		out = append(out, tagEntry{Key: k, Value: v})
	}
	slices.SortFunc(out, func(a, b tagEntry) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// resourceStream returns the stream a ResourceARN names. Only stream ARNs
// are resources in Braid; a consumer ARN names nothing Braid has.
func (s *Server) resourceStream(arn string) (*engine.Stream, error) {
	if arn == "" {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'resourceARN' failed to satisfy constraint: Member must not be null")
	}
	if i := strings.LastIndex(arn, ":stream/"); i >= 0 && strings.Contains(arn[i:], "/consumer/") {
		return nil, errorf(errResourceNotFound, "Resource %s not found: Braid has no stream consumers", arn)
	}
	return s.stream(streamRef{StreamARN: arn})
}

// rangeError is the ValidationException AWS gives for a number out of range.
// pageSize is an optional count of 1 to max (Limit, MaxResults), def
// when the request leaves it out.
func pageSize(field string, v *int, def, max int) (int, error) {
	if v == nil {
		return def, nil
	}
	if *v < 1 || *v > max {
		return 0, rangeError(field, *v, 1, max)
	}
	return *v, nil
}

func rangeError(field string, v, lo, hi int) error {
	return errorf(errValidation, "1 validation error detected: Value '%d' at '%s' failed to satisfy constraint: Member must have value between %d and %d", v, field, lo, hi)
}
