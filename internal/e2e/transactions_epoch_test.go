package e2e

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// bumpEpochTo moves transactional id to epoch with InitProducerId v1
// requests pipelined over one connection, and returns its producer id.
func bumpEpochTo(t testing.TB, raw *rawConn, id string, epoch int16) int64 {
	t.Helper()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("braid-e2e"))
	var pid int64 = -1
	for left := int(epoch) + 1; left > 0; {
		n := min(left, 512)
		var buf []byte
		for range n {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.SetVersion(1)
			req.TransactionalID, req.TransactionTimeoutMillis = &id, 60000
			raw.corr++
			buf = append(buf, f.AppendRequest(nil, req, raw.corr)...) // it sizes from dst[0]
		}
		raw.write(buf)
		for range n {
			_, body, err := raw.readFrame(30 * time.Second)
			if err != nil {
				t.Fatalf("InitProducerId: %v", err)
			}
			resp := kmsg.NewPtrInitProducerIDResponse()
			resp.SetVersion(1)
			if err := resp.ReadFrom(body); err != nil || resp.ErrorCode != 0 {
				t.Fatalf("InitProducerId: %v, %v", err, kerr.ErrorForCode(resp.ErrorCode))
			}
			if pid >= 0 && resp.ProducerID != pid {
				t.Fatalf("InitProducerId moved from producer %d to %d at epoch %d", pid, resp.ProducerID, resp.ProducerEpoch)
			}
			pid = resp.ProducerID
			if left--; left == 0 && resp.ProducerEpoch != epoch {
				t.Fatalf("ended at epoch %d, want %d", resp.ProducerEpoch, epoch)
			}
		}
	}
	return pid
}

// TestTransactionEpochOverflow: under transaction.version 2 every end
// bumps the epoch; the end that uses up the producer id's epochs must still
// close its transaction (markers under the old id), and the client goes on
// under the new id it gets from EndTxn. Before, the transaction stayed open
// and the last stable offset stuck.
//
// Reaching the last epoch takes 32763 durable InitProducerId calls; the data
// directory is on /dev/shm where there is one, so that they do not cost an
// fsync each (nothing here depends on a crash).
func TestTransactionEpochOverflow(t *testing.T) {
	var args []string
	if dir, err := os.MkdirTemp("/dev/shm", "braid-e2e-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(dir) }) // after the server is killed
		args = append(args, "--data-dir", dir)
	}
	p := braidtest.Start(t, args...)
	ctx := testCtx(t, 120*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "ovf", 1, nil)

	began := time.Now()
	oldPID := bumpEpochTo(t, dialRaw(t, p.KafkaAddr), "tx-ovf", 32762)
	t.Logf("32763 InitProducerId calls took %v", time.Since(began))
	// kgo runs its first transaction before it opts in to transaction
	// version 2, then re-inits; from then on each commit bumps the epoch.
	// Commit until the producer id changes: the commit from epoch 32766
	// must close its transaction under the old id and hand out a new one.
	cl := txnProducer(t, p, "tx-ovf")
	var want []string
	var newPID int64
	for i := 0; ; i++ {
		pid, epoch, err := cl.ProducerID(ctx)
		if err != nil || pid != oldPID || i == 6 {
			t.Fatalf("before commit %d: producer %d epoch %d (%v), want %d below epoch 32767", i, pid, epoch, err, oldPID)
		}
		v := fmt.Sprintf("at-%d", epoch)
		inTxn(t, ctx, cl, "ovf", 0, true, v)
		want = append(want, v)
		next, nextEpoch, err := cl.ProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if next != oldPID {
			if epoch != 32766 || nextEpoch != 0 {
				t.Fatalf("commit from epoch %d moved producer %d to %d epoch %d; want a new id at epoch 0 after epoch 32766", epoch, pid, next, nextEpoch)
			}
			newPID = next
			break
		}
	}
	inTxn(t, ctx, cl, "ovf", 0, true, "new-id")
	want = append(want, "new-id")

	hw, lso := endOffset(t, ctx, p, "ovf", 0, false), endOffset(t, ctx, p, "ovf", 0, true)
	if hw != int64(2*len(want)) || lso != hw {
		t.Fatalf("high watermark %d, last stable offset %d; want %d and %d (every transaction closed)", hw, lso, 2*len(want), 2*len(want))
	}
	if got := readAll(t, ctx, p, "ovf", 0, true); !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
	d, err := adm.DescribeTransactions(ctx, "tx-ovf")
	if err != nil {
		t.Fatal(err)
	}
	if dt := d["tx-ovf"]; dt.State != "CompleteCommit" || dt.ProducerID != newPID || dt.ProducerEpoch != 1 {
		t.Fatalf("described %+v, want CompleteCommit under producer %d epoch 1", dt, newPID)
	}
}
