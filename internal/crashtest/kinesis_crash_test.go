package crashtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/braidstream/braid/internal/braidtest"
)

// TestKinesisAtomicPutRecordsCrash SIGKILLs the server while writers send
// atomic PutRecords calls of 16 records spread over every shard (and a
// shard is split under them): after each restart every call must be
// wholly readable or wholly absent, every acknowledged call must be there
// with the sequence numbers it was given, and each call's records must be
// in request order within each shard.
func TestKinesisAtomicPutRecordsCrash(t *testing.T) {
	kills := killCount(t, "BRAID_KINESIS_KILLS", 3)
	p := braidtest.Start(t)
	p.CreateStream(context.Background(), "kc", 4, map[string]*string{
		"braid.routing": aws.String("key"), "braid.put.records.atomic": aws.String("true"),
	})
	const perCall = 16
	var mu sync.Mutex
	acked := map[string][]string{} // call id -> sequence numbers
	tried := 0
	var callN int
	for round := range kills {
		kc := p.Kinesis()
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					mu.Lock()
					callN++
					id := fmt.Sprintf("c%05d", callN)
					tried++
					mu.Unlock()
					recs := make([]types.PutRecordsRequestEntry, perCall)
					for i := range recs {
						recs[i] = types.PutRecordsRequestEntry{
							PartitionKey: aws.String(fmt.Sprintf("w%d-k%d", w, i)),
							Data:         []byte(fmt.Sprintf("%s-%02d", id, i)),
						}
					}
					out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("kc"), Records: recs})
					if err != nil || *out.FailedRecordCount != 0 {
						continue // unknown outcome: all or nothing, checked below
					}
					seqs := make([]string, perCall)
					for i, r := range out.Records {
						seqs[i] = *r.ShardId + "/" + *r.SequenceNumber
					}
					mu.Lock()
					acked[id] = seqs
					mu.Unlock()
				}
			}()
		}
		if round == 0 {
			time.Sleep(100 * time.Millisecond)
			var r map[string]any
			if status, err := p.PostJSON("/v1/streams/kc/split", map[string]any{"shard": 1}, &r); err != nil || status != 200 {
				t.Fatalf("split under load: %d %v %v", status, err, r)
			}
		}
		time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
		p.Kill()
		cancel()
		wg.Wait()
		p.Restart()
		checkKinesisCalls(t, p.Kinesis(), acked, perCall)
		if t.Failed() {
			return
		}
	}
	if len(acked) == 0 {
		t.Fatalf("no call was acknowledged in %d tries", tried)
	}
	t.Logf("%d kills, %d calls tried, %d acknowledged", kills, tried, len(acked))
}

// checkKinesisCalls reads every shard and checks the all-or-nothing rule.
func checkKinesisCalls(t *testing.T, kc *kinesis.Client, acked map[string][]string, perCall int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shards, err := listShardIDs(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]map[int]string{} // call -> record index -> shard/seq
	for _, sid := range shards {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("kc"), ShardId: aws.String(sid), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("GetShardIterator %s: %v", sid, err)
		}
		next := it.ShardIterator
		last := map[string]int{} // call -> last record index seen in this shard
		for next != nil {
			out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next})
			for try := 0; err != nil && try < 3 && awsCode(err) == ""; try++ {
				// A transport error, not an answer: GetRecords reads and
				// changes nothing, so ask again.
				t.Logf("GetRecords %s: %v; retrying", sid, err)
				time.Sleep(100 * time.Millisecond)
				out, err = kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next})
			}
			if err != nil {
				t.Fatalf("GetRecords %s: %v", sid, err)
			}
			for _, r := range out.Records {
				id, idx, ok := strings.Cut(string(r.Data), "-")
				var i int
				if _, err := fmt.Sscanf(idx, "%d", &i); !ok || err != nil {
					t.Fatalf("record %q in %s", r.Data, sid)
				}
				if prev, seen := last[id]; seen && prev >= i {
					t.Errorf("call %s: record %d after %d in %s (request order)", id, i, prev, sid)
				}
				last[id] = i
				if found[id] == nil {
					found[id] = map[int]string{}
				}
				found[id][i] = sid + "/" + *r.SequenceNumber
			}
			if len(out.Records) == 0 {
				break
			}
			next = out.NextShardIterator
		}
	}
	for id, recs := range found {
		if len(recs) != perCall {
			t.Errorf("call %s is partly there: %d of %d records", id, len(recs), perCall)
		}
	}
	for id, seqs := range acked {
		for i, s := range seqs {
			if found[id][i] != s {
				t.Errorf("acknowledged call %s record %d: at %q, acknowledged at %s", id, i, found[id][i], s)
				break
			}
		}
	}
}

func listShardIDs(ctx context.Context, kc *kinesis.Client) ([]string, error) {
	// Shards are numbered from 0; the split adds two. ListShards belongs
	// to another part of the door, so probe by number.
	var out []string
	for i := range 16 {
		sid := fmt.Sprintf("shardId-%012d", i)
		_, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("kc"), ShardId: aws.String(sid), ShardIteratorType: types.ShardIteratorTypeLatest})
		if err != nil {
			if awsCode(err) == "ResourceNotFoundException" {
				return out, nil
			}
			return nil, err
		}
		out = append(out, sid)
	}
	return out, nil
}

// awsCode returns the AWS error type of err ("" if it is not an answer).
func awsCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
