package e2e

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/braidstream/braid/internal/braidtest"
)

// initProducerID sends one InitProducerId for transactional id at version
// over raw, naming pid/epoch (KIP-360; -1 for none).
func initProducerID(t testing.TB, raw *rawConn, id string, pid int64, epoch int16, version int16) *kmsg.InitProducerIDResponse {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch = &id, 60000, pid, epoch
	return raw.request(req, version).(*kmsg.InitProducerIDResponse)
}

// TestInitProducerIDFencesZombie: an InitProducerId naming an epoch the
// transactional id has moved past (a zombie's) is fenced — PRODUCER_FENCED
// from v4, INVALID_PRODUCER_EPOCH before (KIP-588) — and neither bumps the
// epoch nor aborts the live producer's open transaction.
func TestInitProducerIDFencesZombie(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "zombie", 1, nil)

	zombie := txnProducer(t, p, "tx-zombie")
	zpid, zepoch, err := zombie.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	live := txnProducer(t, p, "tx-zombie")
	if err := live.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, live, &kgo.Record{Topic: "zombie", Value: []byte("live")})
	pid, epoch, err := live.ProducerID(ctx)
	if err != nil || pid != zpid || epoch <= zepoch {
		t.Fatalf("live producer %d epoch %d (%v), zombie %d epoch %d", pid, epoch, err, zpid, zepoch)
	}

	raw := dialRaw(t, p.KafkaAddr)
	for _, tc := range []struct {
		version int16
		want    *kerr.Error
	}{{4, kerr.ProducerFenced}, {5, kerr.ProducerFenced}, {3, kerr.InvalidProducerEpoch}} {
		resp := initProducerID(t, raw, "tx-zombie", zpid, zepoch, tc.version)
		if resp.ErrorCode != tc.want.Code || resp.ProducerEpoch != -1 {
			t.Errorf("zombie InitProducerId v%d: %v epoch %d, want %v and no epoch", tc.version,
				kerr.ErrorForCode(resp.ErrorCode), resp.ProducerEpoch, tc.want)
		}
	}
	// The other coordinator requests from the zombie's epoch, before and
	// after KIP-588's versions.
	for _, tc := range []struct {
		name    string
		req     kmsg.Request
		version int16
		want    *kerr.Error
	}{
		{"EndTxn", &kmsg.EndTxnRequest{TransactionalID: "tx-zombie", ProducerID: zpid, ProducerEpoch: zepoch, Commit: false}, 1, kerr.InvalidProducerEpoch},
		{"EndTxn", &kmsg.EndTxnRequest{TransactionalID: "tx-zombie", ProducerID: zpid, ProducerEpoch: zepoch, Commit: false}, 2, kerr.ProducerFenced},
		{"AddOffsetsToTxn", &kmsg.AddOffsetsToTxnRequest{TransactionalID: "tx-zombie", ProducerID: zpid, ProducerEpoch: zepoch, Group: "g"}, 1, kerr.InvalidProducerEpoch},
		{"AddOffsetsToTxn", &kmsg.AddOffsetsToTxnRequest{TransactionalID: "tx-zombie", ProducerID: zpid, ProducerEpoch: zepoch, Group: "g"}, 2, kerr.ProducerFenced},
	} {
		var code int16
		switch resp := raw.request(tc.req, tc.version).(type) {
		case *kmsg.EndTxnResponse:
			code = resp.ErrorCode
		case *kmsg.AddOffsetsToTxnResponse:
			code = resp.ErrorCode
		}
		if code != tc.want.Code {
			t.Errorf("zombie %s v%d: %v, want %v", tc.name, tc.version, kerr.ErrorForCode(code), tc.want)
		}
	}
	d, err := adm.DescribeTransactions(ctx, "tx-zombie")
	if err != nil {
		t.Fatal(err)
	}
	if dt := d["tx-zombie"]; dt.State != "Ongoing" || dt.ProducerEpoch != epoch {
		t.Fatalf("after the zombie: %+v, want the live transaction Ongoing at epoch %d", dt, epoch)
	}
	if err := live.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("live producer's commit after the zombie: %v", err)
	}
	if got, want := readAll(t, ctx, p, "zombie", 0, true), []string{"live"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
}

// TestProduceStaleEpochIsInvalidProducerEpoch: a transactional batch from
// an epoch the coordinator replaced gets INVALID_PRODUCER_EPOCH (Kafka
// 2.7+), which transactional clients treat as fatal: the fenced kgo client
// fails its produce and cannot commit, and nothing of it is readable.
func TestProduceStaleEpochIsInvalidProducerEpoch(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "stale", 1, nil)

	old := txnProducer(t, p, "tx-stale")
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, old, &kgo.Record{Topic: "stale", Value: []byte("first")})
	opid, oepoch, _ := old.ProducerID(ctx)
	cur := txnProducer(t, p, "tx-stale")
	inTxn(t, ctx, cur, "stale", 0, true, "current")

	id := "tx-stale"
	if code := rawProduce(t, ctx, newClient(t, p), &id, "stale", rawBatch(0x10, opid, oepoch)); code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("raw batch from the replaced epoch: %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	err := old.ProduceSync(ctx, &kgo.Record{Topic: "stale", Value: []byte("zombie")}).FirstErr()
	if !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Errorf("fenced kgo producer's produce: %v, want INVALID_PRODUCER_EPOCH", err)
	}
	if err := old.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Errorf("fenced kgo producer committed")
	}
	if got, want := readAll(t, ctx, p, "stale", 0, true), []string{"current"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
}

// TestReadCommittedFromInsideAbortedTxn: a read_committed fetch that starts
// in the middle of an aborted transaction must still be told about it (the
// aborted list covers transactions that began before the fetch offset), so
// none of its records is returned.
func TestReadCommittedFromInsideAbortedTxn(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "mid", 1, nil)
	cl := txnProducer(t, p, "tx-mid")
	inTxn(t, ctx, cl, "mid", 0, true, "c0")              // 0, marker 1
	inTxn(t, ctx, cl, "mid", 0, false, "a2", "a3", "a4") // 2-4 (one batch each), marker 5
	inTxn(t, ctx, cl, "mid", 0, true, "c6")              // 6, marker 7

	if got, want := readAll(t, ctx, p, "mid", 0, false), []string{"c0", "a2", "a3", "a4", "c6"}; !slices.Equal(got, want) {
		t.Fatalf("read_uncommitted: %q, want %q", got, want)
	}
	for _, from := range []int64{3, 4, 5} {
		committed := newClient(t, p, kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"mid": {0: kgo.NewOffset().At(from)}}))
		got := pollN(t, ctx, committed, 1)
		if string(got[0].Value) != "c6" || got[0].Offset != 6 {
			t.Errorf("read_committed from %d: first record %s, want c6 at 6", from, describe(got[0]))
		}
		committed.Close()
	}
	// The aborted list names the transaction for a fetch from inside it.
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.IsolationLevel = 0, 1, 1<<20, 1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "mid", topicID(t, ctx, adm, "mid")
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = 3, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, newClient(t, p))
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("read_committed fetch from 3: %v", err)
	}
	fp := resp.Topics[0].Partitions[0]
	if len(fp.AbortedTransactions) != 1 || fp.AbortedTransactions[0].FirstOffset != 2 {
		t.Fatalf("aborted transactions for a fetch from 3: %+v, want the one from 2", fp.AbortedTransactions)
	}
}

// TestDescribeProducersTxnStart: DescribeProducers reports where a
// producer's open transaction starts on the shard, and -1 once it ends.
func TestDescribeProducersTxnStart(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "dp", 1, nil)
	plain := newProducer(t, p)
	produce(t, ctx, plain, &kgo.Record{Topic: "dp", Value: []byte("p0")}, &kgo.Record{Topic: "dp", Value: []byte("p1")})

	cl := txnProducer(t, p, "tx-dp")
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, cl, &kgo.Record{Topic: "dp", Value: []byte("t2")})
	produce(t, ctx, cl, &kgo.Record{Topic: "dp", Value: []byte("t3")})
	pid, _, _ := cl.ProducerID(ctx)

	start := func() int64 {
		t.Helper()
		d, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"dp": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		got := int64(-2)
		d.EachProducer(func(dp kadm.DescribedProducer) {
			if dp.ProducerID == pid {
				got = dp.CurrentTxnStartOffset
			}
		})
		return got
	}
	if got := start(); got != 2 {
		t.Fatalf("open transaction's start offset %d, want 2", got)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := start(); got != -1 {
		t.Fatalf("start offset %d after the commit, want -1", got)
	}
}

// TestPreparedTransactionRetried: a transaction whose marker cannot be
// written stays PrepareCommit, holding the last stable offset back, and the
// coordinator keeps retrying it until it completes. The commit itself is
// answered as done (it is decided once Prepare is durable), and the
// producer's next transaction waits with CONCURRENT_TRANSACTIONS. The fault is real: an
// idempotent batch under the transaction's producer id with a higher epoch
// makes the shard refuse the marker's older epoch (as Kafka's would), until
// --producer-id-expiration forgets that state.
func TestPreparedTransactionRetried(t *testing.T) {
	p := braidtest.Start(t, "--producer-id-expiration", "3s", "--retention-check-interval", "200ms")
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "stuck", 1, nil)
	cl := txnProducer(t, p, "tx-stuck")
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, cl, &kgo.Record{Topic: "stuck", Value: []byte("v")})
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw := newClient(t, p)
	if code := rawProduce(t, ctx, raw, nil, "stuck", rawBatch(0, pid, epoch+10)); code != 0 {
		t.Fatalf("idempotent batch at epoch %d: %v", epoch+10, kerr.ErrorForCode(code))
	}

	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "tx-stuck", pid, epoch, true
	resp, err := end.RequestWith(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	// Once Prepare is durable the commit is decided, and answered so.
	if resp.ErrorCode != 0 || resp.ProducerID != pid || resp.ProducerEpoch != epoch+1 {
		t.Fatalf("commit: %v, producer %d epoch %d; want success with %d epoch %d",
			kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch, pid, epoch+1)
	}
	state := func() string {
		t.Helper()
		d, err := adm.DescribeTransactions(ctx, "tx-stuck")
		if err != nil {
			t.Fatal(err)
		}
		return d["tx-stuck"].State
	}
	if s := state(); s != "PrepareCommit" {
		t.Fatalf("state %s after the failed marker, want PrepareCommit", s)
	}
	if lso := endOffset(t, ctx, p, "stuck", 0, true); lso != 0 {
		t.Fatalf("last stable offset %d while prepared, want 0", lso)
	}
	id := "tx-stuck"
	if code := rawProduce(t, ctx, raw, &id, "stuck", rawBatch(0x10, pid, epoch+1)); code != kerr.ConcurrentTransactions.Code {
		t.Fatalf("next transaction's batch while prepared: %v, want CONCURRENT_TRANSACTIONS", kerr.ErrorForCode(code))
	}
	began := time.Now()
	deadline := began.Add(20 * time.Second)
	for state() != "CompleteCommit" {
		if time.Now().After(deadline) {
			t.Fatalf("still %s 20 s after the fault cleared (3 s)", state())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("completed %v after the commit", time.Since(began))
	if got, want := readAll(t, ctx, p, "stuck", 0, true), []string{"v", "raw"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
	if hw, lso := endOffset(t, ctx, p, "stuck", 0, false), endOffset(t, ctx, p, "stuck", 0, true); hw != 3 || lso != 3 {
		t.Fatalf("high watermark %d, last stable offset %d; want 3 and 3", hw, lso)
	}
}
