package kinesis

import (
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/shard"
)

// What DescribeStream, DescribeStreamSummary and ListShards say about a
// stream and its shards.

type hashKeyRange struct {
	StartingHashKey string `json:"StartingHashKey"`
	EndingHashKey   string `json:"EndingHashKey"`
}

type sequenceNumberRange struct {
	StartingSequenceNumber string  `json:"StartingSequenceNumber"`
	EndingSequenceNumber   *string `json:"EndingSequenceNumber,omitempty"`
}

// shardDesc is AWS's Shard.
type shardDesc struct {
	ShardId               string              `json:"ShardId"`
	ParentShardId         *string             `json:"ParentShardId,omitempty"`
	AdjacentParentShardId *string             `json:"AdjacentParentShardId,omitempty"`
	HashKeyRange          hashKeyRange        `json:"HashKeyRange"`
	SequenceNumberRange   sequenceNumberRange `json:"SequenceNumberRange"`
}

type enhancedMetrics struct {
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

// describeShard describes shard sh. A split's children name the split
// shard as parent; a merge's child names the parent with the lower hash
// range as ParentShardId and the other as AdjacentParentShardId. The
// sequence range starts at offset 0 and, for a closed shard, ends at its
// last offset.
func describeShard(sh catalog.Shard) shardDesc {
	d := shardDesc{
		ShardId:      ShardName(sh.ID),
		HashKeyRange: hashKeyRange{StartingHashKey: sh.Range.Start.String(), EndingHashKey: sh.Range.End.String()},
		SequenceNumberRange: sequenceNumberRange{
			StartingSequenceNumber: SequenceNumber(sh.ID, 0),
		},
	}
	if len(sh.Parents) > 0 {
		p := ShardName(sh.Parents[0])
		d.ParentShardId = &p
	}
	if len(sh.Parents) > 1 {
		p := ShardName(sh.Parents[1])
		d.AdjacentParentShardId = &p
	}
	if sh.State == catalog.ShardClosed {
		end := SequenceNumber(sh.ID, shard.Offset(max(sh.EndOffset-1, 0)))
		d.SequenceNumberRange.EndingSequenceNumber = &end
	}
	return d
}

// kinesisShards returns the shards Kinesis clients see, in id order: those
// with a hash range (shards added as Kafka partitions own none, and no
// Kinesis record can reach them) that have not expired.
func kinesisShards(st *engine.Stream, now time.Time) []catalog.Shard {
	var out []catalog.Shard
	for _, sh := range st.Stream.Shards {
		if sh.Range != nil && !expired(st, sh, now) {
			out = append(out, sh)
		}
	}
	return out
}

// expired reports a closed shard whose records are all gone: trimmed by
// retention or DeleteRecords, or, for a shard closed empty, closed longer
// than the retention period ago. Kinesis lists no expired shards.
func expired(st *engine.Stream, sh catalog.Shard, now time.Time) bool {
	if sh.State != catalog.ShardClosed || int(sh.ID) >= len(st.Shards) {
		return false
	}
	logStart, _, _ := st.Shards[sh.ID].Offsets()
	if int64(logStart) < sh.EndOffset {
		return false
	}
	if sh.EndOffset > 0 {
		return true
	}
	ret := st.Retention.Ms
	return ret >= 0 && sh.ClosedMs > 0 && sh.ClosedMs+ret <= now.UnixMilli()
}

// epochSeconds is a Kinesis timestamp: seconds since the epoch, with a
// fraction.
func epochSeconds(ms int64) float64 { return float64(ms) / 1000 }

// id is the shard id d describes.
func (d shardDesc) id() catalog.ShardID {
	id, _ := ParseShardName(d.ShardId)
	return id
}
