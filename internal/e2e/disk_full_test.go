package e2e

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/braidstream/braid/internal/braidtest"
	"github.com/braidstream/braid/internal/braidtest/tmpfs"
)

// TestDiskFull runs a node on a real 64 MiB tmpfs, fills the filesystem
// with a file beside the data directory and produces until the node runs
// out of space. The producer must get KAFKA_STORAGE_ERROR at once, /healthz
// and /metrics must say the node is full and why, every acknowledged
// record must stay readable, and once the filler is gone the same process
// must take writes again, with every acknowledged record there exactly once.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	mnt := tmpfs.Mount(t, 64<<20)
	// Small WAL segments: the preallocated one is soon used up and the
	// next cannot be allocated.
	p := braidtest.StartData(t, filepath.Join(mnt, "data"), "--wal-segment-bytes", "4194304")
	ctx := testCtx(t, 90*time.Second)
	createStream(t, ctx, newAdmin(t, p), "full", 1, nil)

	const deliveryTimeout = 60 * time.Second
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.KafkaAddr), kgo.DefaultProduceTopic("full"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// KAFKA_STORAGE_ERROR is retriable: without a limit kgo retries
		// (after a metadata refresh, ~5 s each) until space returns or
		// the delivery timeout.
		kgo.RecordRetries(0), kgo.RecordDeliveryTimeout(deliveryTimeout), kgo.ProduceRequestTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	value := func(i int) []byte { return append([]byte(fmt.Sprintf("%06d|", i)), payload(uint64(i), 16<<10)...) }
	var acked, failed []int
	produceOne := func(i int) (time.Duration, error) {
		began := time.Now()
		err := cl.ProduceSync(ctx, &kgo.Record{Value: value(i)}).FirstErr()
		if err == nil {
			acked = append(acked, i)
		} else {
			failed = append(failed, i)
		}
		return time.Since(began), err
	}
	for i := range 20 {
		if _, err := produceOne(i); err != nil {
			t.Fatalf("produce before the disk filled: %v", err)
		}
	}

	removeFiller := tmpfs.Fill(t, filepath.Join(mnt, "filler"), 0)
	var took time.Duration
	i := 20
	for ; i < 2000; i++ { // 32 MiB at most: far more than the space left
		if took, err = produceOne(i); err != nil {
			break
		}
	}
	if !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("produce on a full disk after %d records: %v, want KAFKA_STORAGE_ERROR", i, err)
	}
	if took > 5*time.Second {
		t.Errorf("the storage error took %s, want it at once, well under the %s delivery timeout", took, deliveryTimeout)
	}
	t.Logf("disk full after %d records; the producer had KAFKA_STORAGE_ERROR after %s", len(acked), took)

	code, body := cliHTTPGet(t, ctx, "http://"+p.HTTPAddr+"/healthz")
	if code != 503 || !strings.HasPrefix(body, "full: ") || !strings.Contains(body, "no space left on device") {
		t.Errorf("/healthz on a full disk: %d %q, want 503 \"full: ...no space left on device\"", code, body)
	}
	m := scrapeMetrics(t, ctx, p)
	if full, ok := m.must(t, "braid_storage_state", "state", "full"), m.must(t, "braid_storage_state", "state", "ok"); full != 1 || ok != 0 {
		t.Errorf("braid_storage_state on a full disk: full=%v ok=%v, want 1 and 0", full, ok)
	}
	// Later produces are refused at once, before anything is appended:
	// the node answers well before the request's own timeout.
	raw := newClient(t, p)
	began := time.Now()
	if code := rawProduce(t, ctx, raw, nil, "full", rawBatch(0, -1, -1)); code != kerr.KafkaStorageError.Code {
		t.Errorf("raw produce on a full disk: %v, want KAFKA_STORAGE_ERROR", kerr.ErrorForCode(code))
	}
	if d := time.Since(began); d > 5*time.Second { // a waiting server answers after 30 s
		t.Errorf("raw produce on a full disk answered after %s, want at once", d)
	}
	checkOnce(t, p.ReadPartition(ctx, "full", 0, false), acked, failed)
	// A new stream needs a catalog write, which fails: a clear error, and
	// no stream.
	adm := newAdmin(t, p)
	if resp, err := adm.CreateTopic(ctx, 1, 1, nil, "nospace"); !errors.Is(err, kerr.KafkaStorageError) {
		t.Errorf("create a stream on a full disk: %v (%s), want KAFKA_STORAGE_ERROR", err, resp.ErrMessage)
	}
	if topics, err := adm.ListTopics(ctx); err != nil || topics.Has("nospace") {
		t.Errorf("a stream refused for lack of space exists anyway (%v)", err)
	}

	removeFiller()
	freed := time.Now()
	waitFor(t, ctx, "/healthz ok after space returned", func() bool {
		code, _ := cliHTTPGet(t, ctx, "http://"+p.HTTPAddr+"/healthz")
		return code == 200
	})
	t.Logf("healthy again %s after the filler was removed", time.Since(freed))
	if v := scrapeMetrics(t, ctx, p).must(t, "braid_storage_state", "state", "ok"); v != 1 {
		t.Errorf("braid_storage_state{state=\"ok\"} = %v after space returned, want 1", v)
	}
	for j := i + 2; j < i+52; j++ {
		if _, err := produceOne(j); err != nil {
			t.Fatalf("produce after space returned (no restart): %v", err)
		}
	}
	checkOnce(t, p.ReadPartition(ctx, "full", 0, false), acked, failed)
}

// checkOnce checks that the records read hold every acknowledged value
// exactly once, in produce order, and nothing but acknowledged or failed
// ones (a produce that got an error may still be stored, as with Kafka).
func checkOnce(t *testing.T, got []*kgo.Record, acked, failed []int) {
	t.Helper()
	isAcked, isFailed := map[int]bool{}, map[int]bool{}
	for _, i := range acked {
		isAcked[i] = true
	}
	for _, i := range failed {
		isFailed[i] = true
	}
	seen := map[int]bool{}
	var order []int
	for _, r := range got {
		var i int
		if _, err := fmt.Sscanf(string(r.Value), "%06d|", &i); err != nil {
			t.Fatalf("record at %d has an unexpected value %.20q", r.Offset, r.Value)
		}
		if string(r.Value) != string(append([]byte(fmt.Sprintf("%06d|", i)), payload(uint64(i), 16<<10)...)) {
			t.Fatalf("record %d at offset %d has other bytes than were produced", i, r.Offset)
		}
		if seen[i] {
			t.Fatalf("record %d is stored twice (again at offset %d)", i, r.Offset)
		}
		if !isAcked[i] && !isFailed[i] {
			t.Fatalf("record %d at offset %d was never produced", i, r.Offset)
		}
		seen[i] = true
		if isAcked[i] {
			order = append(order, i)
		}
	}
	for k, i := range acked {
		if !seen[i] {
			t.Fatalf("acknowledged record %d is missing (%d records read)", i, len(got))
		}
		if order[k] != i {
			t.Fatalf("acknowledged records out of order: %d where %d was expected", order[k], i)
		}
	}
}
