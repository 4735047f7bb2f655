package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/braidtest/tmpfs"
	"github.com/braidstream/braid/internal/catalog"
)

// TestKinesisPutRecordsDiskFull fills the disk under atomic PutRecords
// calls: once the log refuses appends, a call fails every record
// (FailedRecordCount = count) and none of them is ever stored, not even
// after space returns; a call caught in the flush that hit the full disk
// gets a request error and is stored whole or not at all; acknowledged
// calls stay.
func TestKinesisPutRecordsDiskFull(t *testing.T) {
	t.Parallel()
	mnt := tmpfs.Mount(t, 64<<20)
	p := braidtest.StartData(t, filepath.Join(mnt, "data"), "--wal-segment-bytes", "4194304")
	keyStream(t, p, "kf", 2, catalog.PutRecordsAtomicConfig, "true")
	kc := p.Kinesis()
	ctx := testCtx(t, 90*time.Second)
	const perCall = 8
	call := func(n int) (*kinesis.PutRecordsOutput, error) {
		recs := make([]types.PutRecordsRequestEntry, perCall)
		for i := range recs {
			recs[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(i)), Data: append([]byte(fmt.Sprintf("c%04d-%d|", n, i)), payload(uint64(n*perCall+i), 8<<10)...)}
		}
		return kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("kf"), Records: recs})
	}
	acked := map[string]bool{}
	unknown := map[string]bool{}
	refused := map[string]bool{}
	removeFiller := tmpfs.Fill(t, filepath.Join(mnt, "filler"), 0)
	n := 0
	for ; n < 2000 && len(refused) < 3; n++ {
		id := fmt.Sprintf("c%04d", n)
		out, err := call(n)
		switch {
		case err != nil:
			if c := awsErrorCode(err); c != "ServiceUnavailable" {
				t.Fatalf("call %d: %v, want ServiceUnavailable or an answer", n, err)
			}
			unknown[id] = true
		case *out.FailedRecordCount == 0:
			acked[id] = true
		default:
			if *out.FailedRecordCount != perCall {
				t.Fatalf("call %d on a full disk: %d of %d records failed", n, *out.FailedRecordCount, perCall)
			}
			for _, r := range out.Records {
				if r.ErrorCode == nil || *r.ErrorCode != "InternalFailure" || r.SequenceNumber != nil {
					t.Fatalf("call %d on a full disk: record %+v", n, r)
				}
			}
			refused[id] = true
			t.Logf("call %s refused: %s", id, *out.Records[0].ErrorMessage)
		}
	}
	if len(refused) < 3 {
		t.Fatalf("%d calls and the disk never refused one", n)
	}
	t.Logf("disk full after %d acknowledged calls (%d unknown)", len(acked), len(unknown))
	removeFiller()
	waitFor(t, ctx, "/healthz ok after space returned", func() bool {
		code, _ := cliHTTPGet(t, ctx, "http://"+p.HTTPAddr+"/healthz")
		return code == 200
	})
	if out, err := call(n); err != nil || *out.FailedRecordCount != 0 {
		t.Fatalf("call after space returned: %+v %v", out, err)
	}
	acked[fmt.Sprintf("c%04d", n)] = true

	found := map[string]int{}
	for _, sid := range []string{"shardId-000000000000", "shardId-000000000001"} {
		got, _ := kRead(t, kc, kIter(t, kc, "kf", sid, types.ShardIteratorTypeTrimHorizon, nil, nil))
		for _, r := range got {
			id, _, _ := strings.Cut(string(r.Data), "-")
			found[id]++
		}
	}
	for id := range acked {
		if found[id] != perCall {
			t.Errorf("acknowledged call %s: %d of %d records", id, found[id], perCall)
		}
	}
	for id, k := range found {
		switch {
		case refused[id]:
			t.Errorf("refused call %s stored %d records", id, k)
		case k != perCall:
			t.Errorf("call %s partly stored: %d of %d", id, k, perCall)
		}
	}
}
