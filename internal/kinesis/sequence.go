package kinesis

import (
	"fmt"
	"strconv"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/shard"
)

// A sequence number is "4", the shard id in 10 digits and the offset in 19
// digits: 30 digits, so that within a shard (and across shards, by shard)
// string order is write order, as Kinesis promises.
const seqLen = 1 + 10 + 19

// SequenceNumber returns the sequence number of the record at offset off
// of shard id.
func SequenceNumber(id catalog.ShardID, off shard.Offset) string {
	return fmt.Sprintf("4%010d%019d", id, off)
}

// ParseSequenceNumber returns the shard and offset a sequence number
// encodes.
func ParseSequenceNumber(s string) (catalog.ShardID, shard.Offset, error) {
	if len(s) != seqLen || s[0] != '4' {
		return 0, 0, errorf(errInvalidArgument, "%q is not a sequence number of this stream", s)
	}
	id, err1 := strconv.ParseInt(s[1:11], 10, 32)
	off, err2 := strconv.ParseInt(s[11:], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, errorf(errInvalidArgument, "%q is not a sequence number of this stream", s)
	}
	return catalog.ShardID(id), shard.Offset(off), nil
}

// ShardName is the Kinesis name of shard id: shardId-000000000007.
func ShardName(id catalog.ShardID) string { return fmt.Sprintf("shardId-%012d", id) }

// ParseShardName accepts shardId-000000000007 and, as Kinesis does, the
// bare number.
func ParseShardName(s string) (catalog.ShardID, error) {
	n := s
	if len(s) > 8 && s[:8] == "shardId-" {
		n = s[8:]
	}
	id, err := strconv.ParseInt(n, 10, 32)
	if err != nil || id < 0 {
		return 0, errorf(errInvalidArgument, "%q is not a shard id (shardId-000000000000)", s)
	}
	return catalog.ShardID(id), nil
}
