package kinesis

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
)

// ListShards lists a stream's shards in id order, MaxResults at a time
// (1-10000, default 10000), after ExclusiveStartShardId or from the
// NextToken of an earlier answer, filtered by ShardFilter as Kinesis
// filters:
//
//	AFTER_SHARD_ID     shards with an id above ShardId
//	AT_TRIM_HORIZON    the oldest shards that still hold data: those none
//	                   of whose parents does
//	FROM_TRIM_HORIZON  every shard that has not expired
//	AT_LATEST          the open shards
//	AT_TIMESTAMP       shards open at Timestamp (created at or before it,
//	                   closed at or after it or still open)
//	FROM_TIMESTAMP     shards open at or after Timestamp: the open ones
//	                   and those closed at or after it
//
// Expired shards (shard_view.go) are never listed. A NextToken names the
// stream and the filter, so StreamName, StreamCreationTimestamp,
// ExclusiveStartShardId and ShardFilter must not come with it; it lasts
// 300 seconds, as in Kinesis.
func init() { register("ListShards", listShards) }

type shardFilter struct {
	Type      string   `json:"Type"`
	ShardId   string   `json:"ShardId,omitempty"`
	Timestamp *float64 `json:"Timestamp,omitempty"`
}

type listShardsInput struct {
	streamRef
	NextToken               string       `json:"NextToken"`
	ExclusiveStartShardId   string       `json:"ExclusiveStartShardId"`
	MaxResults              *int         `json:"MaxResults"`
	StreamCreationTimestamp *float64     `json:"StreamCreationTimestamp"`
	ShardFilter             *shardFilter `json:"ShardFilter"`
}

type listShardsOutput struct {
	Shards    []shardDesc `json:"Shards"`
	NextToken *string     `json:"NextToken,omitempty"`
}

// listShardsToken is what a ListShards NextToken carries.
type listShardsToken struct {
	Stream   string           `json:"s"`
	StreamID catalog.StreamID `json:"id"`
	After    int              `json:"a"`
	Filter   *shardFilter     `json:"f,omitempty"`
	IssuedMs int64            `json:"t"`
}

// listShardsTokenLife is how long a NextToken may be used, as in Kinesis.
const listShardsTokenLife = 300 * time.Second

func listShards(_ context.Context, s *Server, body []byte) (any, error) {
	var in listShardsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit, err := pageSize("maxResults", in.MaxResults, 10000, 10000)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var tok listShardsToken
	var st *engine.Stream
	if in.NextToken != "" {
		if in.StreamName != "" || in.StreamCreationTimestamp != nil || in.ExclusiveStartShardId != "" || in.ShardFilter != nil {
			return nil, errorf(errInvalidArgument, "NextToken and StreamName, StreamCreationTimestamp, ExclusiveStartShardId or ShardFilter cannot be provided together.")
		}
		pos, err := decodeToken(s, "ListShards", in.NextToken)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(pos), &tok); err != nil {
			return nil, errorf(errInvalidArgument, "invalid NextToken")
		}
		if now.Sub(time.UnixMilli(tok.IssuedMs)) > listShardsTokenLife {
			return nil, errorf(errExpiredNextToken, "NextToken has expired (it lasts %s)", listShardsTokenLife)
		}
		if st, err = s.stream(streamRef{StreamName: tok.Stream, StreamARN: in.StreamARN}); err != nil {
			return nil, err
		}
		if st.ID != tok.StreamID {
			return nil, errorf(errResourceNotFound, "Stream %s under account %s not found: it was deleted since the NextToken was given.", tok.Stream, s.opts.Account)
		}
	} else {
		var err error
		if st, err = s.stream(in.streamRef); err != nil {
			return nil, err
		}
		if ts := in.StreamCreationTimestamp; ts != nil && st.CreatedMs != 0 && int64(math.Round(*ts*1000)) != st.CreatedMs {
			return nil, errorf(errResourceNotFound, "Stream %s under account %s created at %v not found.", st.Name, s.opts.Account, *ts)
		}
		tok = listShardsToken{Stream: st.Name, StreamID: st.ID, After: -1, Filter: in.ShardFilter}
		if in.ExclusiveStartShardId != "" {
			id, err := ParseShardName(in.ExclusiveStartShardId)
			if err != nil {
				return nil, err
			}
			tok.After = int(id)
		}
	}
	keep, err := shardFilterFunc(st, tok.Filter, now)
	if err != nil {
		return nil, err
	}
	out := listShardsOutput{Shards: []shardDesc{}}
	for _, sh := range kinesisShards(st, now) {
		if int(sh.ID) <= tok.After || !keep(sh) {
			continue
		}
		if len(out.Shards) == limit {
			tok.After, tok.IssuedMs = int(out.Shards[len(out.Shards)-1].id()), now.UnixMilli()
			pos, _ := json.Marshal(tok)
			next := encodeToken(s, "ListShards", string(pos))
			out.NextToken = &next
			break
		}
		out.Shards = append(out.Shards, describeShard(sh))
	}
	return out, nil
}

// shardFilterFunc returns which shards filter f keeps.
func shardFilterFunc(st *engine.Stream, f *shardFilter, now time.Time) (func(catalog.Shard) bool, error) {
	if f == nil {
		return func(catalog.Shard) bool { return true }, nil
	}
	needTimestamp := func() (int64, error) {
		if f.Timestamp == nil {
			return 0, errorf(errInvalidArgument, "ShardFilter type %s needs a Timestamp", f.Type)
		}
		return int64(math.Round(*f.Timestamp * 1000)), nil
	}
	switch f.Type {
	case "AFTER_SHARD_ID":
		if f.ShardId == "" {
			return nil, errorf(errInvalidArgument, "ShardFilter type AFTER_SHARD_ID needs a ShardId")
		}
		id, err := ParseShardName(f.ShardId)
		if err != nil {
			return nil, err
		}
		return func(sh catalog.Shard) bool { return sh.ID > id }, nil
	case "AT_TRIM_HORIZON":
		return func(sh catalog.Shard) bool {
			for _, p := range sh.Parents {
				if !expired(st, st.Stream.Shards[p], now) {
					return false
				}
			}
			return true
		}, nil
	case "FROM_TRIM_HORIZON":
		return func(catalog.Shard) bool { return true }, nil
	case "AT_LATEST":
		return func(sh catalog.Shard) bool { return sh.State == catalog.ShardOpen }, nil
	case "AT_TIMESTAMP":
		t, err := needTimestamp()
		if err != nil {
			return nil, err
		}
		return func(sh catalog.Shard) bool { return sh.CreatedMs <= t && openAtOrAfter(sh, t) }, nil
	case "FROM_TIMESTAMP":
		t, err := needTimestamp()
		if err != nil {
			return nil, err
		}
		return func(sh catalog.Shard) bool { return openAtOrAfter(sh, t) }, nil
	case "":
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'shardFilter.type' failed to satisfy constraint: Member must not be null")
	}
	return nil, errorf(errValidation, "1 validation error detected: Value '%s' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]", f.Type)
}

// openAtOrAfter reports a shard still open, or closed at or after t (Unix
// ms); a close time a catalog did not keep counts as late.
func openAtOrAfter(sh catalog.Shard, t int64) bool {
	return sh.State == catalog.ShardOpen || sh.ClosedMs == 0 || sh.ClosedMs >= t
}
