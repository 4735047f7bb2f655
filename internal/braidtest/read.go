package braidtest

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// EndOffset lists the end of a partition: its high watermark, or with
// committed its last stable offset.
func (p *Proc) EndOffset(ctx context.Context, topic string, part int32, committed bool) int64 {
	p.t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	if committed {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = part, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	cl := p.Client()
	defer cl.Close()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		p.t.Fatalf("braidtest: list offsets %s/%d: %v", topic, part, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		p.t.Fatalf("braidtest: list offsets %s/%d: malformed response", topic, part)
	}
	pr := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(pr.ErrorCode); err != nil {
		p.t.Fatalf("braidtest: list offsets %s/%d: %v", topic, part, err)
	}
	return pr.Offset
}

// ReadPartition reads a partition from offset 0 up to its current end as
// the isolation level sees it (the last stable offset with committed, else
// the high watermark) and returns its data records.
//
// It sends raw Fetch requests and decodes them with kgo's own batch
// processing, so it always knows the next offset: control batches and
// aborted data move it forward without returning records, which a consumer
// client cannot show.
func (p *Proc) ReadPartition(ctx context.Context, topic string, part int32, committed bool) []*kgo.Record {
	p.t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	v := kversion.Stable()
	v.SetMaxKeyVersion(1, 12) // Fetch by topic name
	cl := p.Client(kgo.MaxVersions(v))
	defer cl.Close()
	end := p.EndOffset(ctx, topic, part, committed)
	var out []*kgo.Record
	for pos := int64(0); pos < end; {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 8<<20
		if committed {
			req.IsolationLevel = 1
		}
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = part, pos, 4<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			p.t.Fatalf("braidtest: read %s/%d@%d: %v (%d records so far, end %d)", topic, part, pos, err, len(out), end)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			p.t.Fatalf("braidtest: read %s/%d@%d: malformed response", topic, part, pos)
		}
		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset: pos, IsolationLevel: iso, Topic: topic, Partition: part,
		}, &resp.Topics[0].Partitions[0], kgo.DefaultDecompressor(), nil)
		if fp.Err != nil {
			p.t.Fatalf("braidtest: read %s/%d@%d: %v", topic, part, pos, fp.Err)
		}
		if next <= pos {
			p.t.Fatalf("braidtest: read %s/%d: no progress at %d (end %d, %d records)", topic, part, pos, end, len(out))
		}
		out = append(out, fp.Records...)
		pos = next
	}
	return out
}
