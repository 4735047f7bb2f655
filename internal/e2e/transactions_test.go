package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/braidstream/braid/internal/braidtest"
)

// txnProducer returns a transactional kgo client that sends each record to
// its Partition.
func txnProducer(t testing.TB, p *braidtest.Proc, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(p.KafkaAddr),
		kgo.TransactionalID(id),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryTimeout(15 * time.Second),
	}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// inTxn runs one transaction: begin, produce values to part synchronously,
// then commit or abort.
func inTxn(t testing.TB, ctx context.Context, cl *kgo.Client, topic string, part int32, commit bool, values ...string) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("begin: %v", err)
	}
	for _, v := range values {
		produce(t, ctx, cl, &kgo.Record{Topic: topic, Partition: part, Value: []byte(v)})
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// readAll reads a partition from the start to its end as the isolation
// level sees it and returns the values.
func readAll(t testing.TB, ctx context.Context, p *braidtest.Proc, topic string, part int32, committed bool) []string {
	t.Helper()
	var out []string
	for _, r := range p.ReadPartition(ctx, topic, part, committed) {
		out = append(out, string(r.Value))
	}
	return out
}

func endOffset(t testing.TB, ctx context.Context, p *braidtest.Proc, topic string, part int32, committed bool) int64 {
	t.Helper()
	return p.EndOffset(ctx, topic, part, committed)
}

func TestTransactionsCommitAndAbort(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "tx", 2, nil)
	cl := txnProducer(t, p, "tx-commit-abort")

	inTxn(t, ctx, cl, "tx", 0, true, "c1", "c2")
	inTxn(t, ctx, cl, "tx", 0, false, "a1", "a2")
	inTxn(t, ctx, cl, "tx", 1, false, "a3")
	inTxn(t, ctx, cl, "tx", 0, true, "c3")

	if got, want := readAll(t, ctx, p, "tx", 0, true), []string{"c1", "c2", "c3"}; !slices.Equal(got, want) {
		t.Errorf("read_committed partition 0: %q, want %q", got, want)
	}
	if got, want := readAll(t, ctx, p, "tx", 0, false), []string{"c1", "c2", "a1", "a2", "c3"}; !slices.Equal(got, want) {
		t.Errorf("read_uncommitted partition 0: %q, want %q", got, want)
	}
	if got := readAll(t, ctx, p, "tx", 1, true); len(got) != 0 {
		t.Errorf("read_committed partition 1: %q, want nothing", got)
	}
	if got, want := readAll(t, ctx, p, "tx", 1, false), []string{"a3"}; !slices.Equal(got, want) {
		t.Errorf("read_uncommitted partition 1: %q, want %q", got, want)
	}
	// 3 commits' and aborts' markers on partition 0 take offsets: 2+1, 2+1, 1+1.
	if hw := endOffset(t, ctx, p, "tx", 0, false); hw != 8 {
		t.Errorf("partition 0 high watermark %d, want 8 (5 records, 3 markers)", hw)
	}
}

func TestTransactionOpenHoldsLastStableOffset(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "lso", 1, nil)
	plain := newProducer(t, p)
	produce(t, ctx, plain, &kgo.Record{Topic: "lso", Value: []byte("before")})

	cl := txnProducer(t, p, "tx-lso")
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, cl, &kgo.Record{Topic: "lso", Value: []byte("open")})
	// Non-transactional data after the open transaction is held back too.
	produce(t, ctx, plain, &kgo.Record{Topic: "lso", Value: []byte("after")})

	if hw, lso := endOffset(t, ctx, p, "lso", 0, false), endOffset(t, ctx, p, "lso", 0, true); hw != 3 || lso != 1 {
		t.Fatalf("with a transaction open at 1: high watermark %d, last stable %d; want 3 and 1", hw, lso)
	}
	committed := newClient(t, p, kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"lso": {0: kgo.NewOffset().AtStart()}}))
	if got := pollN(t, ctx, committed, 1); string(got[0].Value) != "before" {
		t.Fatalf("read_committed got %s, want before", describe(got[0]))
	}
	pollNothing(t, committed, 500*time.Millisecond)

	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got := pollN(t, ctx, committed, 2)
	if string(got[0].Value) != "open" || string(got[1].Value) != "after" {
		t.Fatalf("after commit read_committed got %s, %s; want open, after", describe(got[0]), describe(got[1]))
	}
	if lso := endOffset(t, ctx, p, "lso", 0, true); lso != 4 {
		t.Fatalf("last stable offset after commit %d, want 4", lso)
	}
}

func TestTransactionFencing(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "fence", 1, nil)

	old := txnProducer(t, p, "tx-fence")
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, old, &kgo.Record{Topic: "fence", Value: []byte("zombie")})
	oldPID, oldEpoch, err := old.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A new producer with the same transactional id aborts the zombie's
	// transaction and fences it.
	cur := txnProducer(t, p, "tx-fence")
	inTxn(t, ctx, cur, "fence", 0, true, "current")
	pid, epoch, err := cur.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pid != oldPID || epoch <= oldEpoch {
		t.Fatalf("new producer got id %d epoch %d, want id %d with an epoch above %d", pid, epoch, oldPID, oldEpoch)
	}
	err = old.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("zombie commit: %v, want PRODUCER_FENCED", err)
	}
	if got, want := readAll(t, ctx, p, "fence", 0, true), []string{"current"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}

	// Raw requests from the fenced epoch are refused and change nothing.
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "tx-fence", oldPID, oldEpoch, true
	resp, err := end.RequestWith(ctx, newClient(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("EndTxn from old epoch: %v, want PRODUCER_FENCED", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestTransactionTimeoutAborts(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "hung", 1, nil)

	cl := txnProducer(t, p, "tx-hung", kgo.TransactionTimeout(1500*time.Millisecond))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, cl, &kgo.Record{Topic: "hung", Value: []byte("hung")})
	if lso := endOffset(t, ctx, p, "hung", 0, true); lso != 0 {
		t.Fatalf("last stable offset %d with the transaction open, want 0", lso)
	}
	deadline := time.Now().Add(15 * time.Second)
	for endOffset(t, ctx, p, "hung", 0, true) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("hung transaction not aborted 15 s after its 1.5 s timeout")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := readAll(t, ctx, p, "hung", 0, true); len(got) != 0 {
		t.Fatalf("read_committed after the timeout: %q, want nothing", got)
	}
	d, err := adm.DescribeTransactions(ctx, "tx-hung")
	if err != nil {
		t.Fatal(err)
	}
	if dt := d["tx-hung"]; dt.Err != nil || dt.State != "CompleteAbort" || dt.ProducerEpoch != 1 {
		t.Fatalf("described %+v, want CompleteAbort at epoch 1 (bumped by the abort)", dt)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("committing a transaction the coordinator aborted succeeded")
	}
}

func TestTransactionalOffsetsVisibleOnCommit(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "out", 1, nil)
	createStream(t, ctx, adm, "in", 1, nil)

	cl := txnProducer(t, p, "tx-offsets")
	for _, commit := range []bool{false, true} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		produce(t, ctx, cl, &kgo.Record{Topic: "out", Value: []byte("x")})
		pid, epoch, err := cl.ProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = "tx-offsets", pid, epoch, "g"
		if resp, err := add.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
			t.Fatalf("AddOffsetsToTxn: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
		}
		commitReq := kmsg.NewPtrTxnOffsetCommitRequest()
		commitReq.TransactionalID, commitReq.Group, commitReq.ProducerID, commitReq.ProducerEpoch = "tx-offsets", "g", pid, epoch
		commitReq.Generation = -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "in"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 42
		if commit {
			rp.Offset = 7
		}
		rt.Partitions = append(rt.Partitions, rp)
		commitReq.Topics = append(commitReq.Topics, rt)
		resp, err := commitReq.RequestWith(ctx, cl)
		if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("TxnOffsetCommit: %v %v", err, kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode))
		}

		// Not visible while open; require_stable says so.
		if got := fetchOffset(t, ctx, p, "g", false); got.ErrorCode != 0 || got.Offset != map[bool]int64{false: -1, true: -1}[commit] {
			t.Fatalf("offset visible before the transaction ended: %+v", got)
		}
		if got := fetchOffset(t, ctx, p, "g", true); got.ErrorCode != kerr.UnstableOffsetCommit.Code {
			t.Fatalf("require_stable with a pending transactional commit: %v, want UNSTABLE_OFFSET_COMMIT", kerr.ErrorForCode(got.ErrorCode))
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
		want := int64(-1)
		if commit {
			want = 7
		}
		if got := fetchOffset(t, ctx, p, "g", true); got.ErrorCode != 0 || got.Offset != want {
			t.Fatalf("after end (commit %v): offset %d (%v), want %d", commit, got.Offset, kerr.ErrorForCode(got.ErrorCode), want)
		}
	}
	// Committed transactional offsets survive a SIGKILL like any other.
	p.Kill()
	p.Restart()
	if got := fetchOffset(t, ctx, p, "g", true); got.ErrorCode != 0 || got.Offset != 7 {
		t.Fatalf("after restart: offset %d (%v), want 7", got.Offset, kerr.ErrorForCode(got.ErrorCode))
	}
}

func fetchOffset(t testing.TB, ctx context.Context, p *braidtest.Proc, group string, requireStable bool) kmsg.OffsetFetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group, req.RequireStable = group, requireStable
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = "in", []int32{0}
	req.Topics = append(req.Topics, rt)
	cl := newClient(t, p, kgo.MaxVersions(kversionsOffsetFetch7()))
	defer cl.Close()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func TestTransactionsSurviveSIGKILL(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 90*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "crash", 1, nil)

	cl := txnProducer(t, p, "tx-crash")
	inTxn(t, ctx, cl, "crash", 0, true, "committed")
	inTxn(t, ctx, cl, "crash", 0, false, "aborted")
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, cl, &kgo.Record{Topic: "crash", Value: []byte("open")})
	cl.Close()

	p.Kill()
	p.Restart()
	if hw, lso := endOffset(t, ctx, p, "crash", 0, false), endOffset(t, ctx, p, "crash", 0, true); hw != 5 || lso != 4 {
		t.Fatalf("after restart: high watermark %d, last stable %d; want 5 and 4 (the open transaction still holds it)", hw, lso)
	}
	if got, want := readAll(t, ctx, p, "crash", 0, true), []string{"committed"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed after restart: %q, want %q", got, want)
	}
	// The producer comes back: its open transaction is aborted, and a new
	// one commits.
	again := txnProducer(t, p, "tx-crash")
	inTxn(t, ctx, again, "crash", 0, true, "after")
	if got, want := readAll(t, ctx, p, "crash", 0, true), []string{"committed", "after"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed at the end: %q, want %q", got, want)
	}
	if got, want := readAll(t, ctx, p, "crash", 0, false), []string{"committed", "aborted", "open", "after"}; !slices.Equal(got, want) {
		t.Fatalf("read_uncommitted at the end: %q, want %q", got, want)
	}
	// And once more after a clean restart (from a checkpoint, not replay).
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	p.Restart()
	if got, want := readAll(t, ctx, p, "crash", 0, true), []string{"committed", "after"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed after a clean restart: %q, want %q", got, want)
	}
}

func TestTransactionAdminAndRefusals(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "adm", 1, nil)
	cl := txnProducer(t, p, "tx-admin")
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, cl, &kgo.Record{Topic: "adm", Value: []byte("v")})

	d, err := adm.DescribeTransactions(ctx, "tx-admin", "no-such-id")
	if err != nil {
		t.Fatal(err)
	}
	if dt := d["tx-admin"]; dt.Err != nil || dt.State != "Ongoing" || len(dt.Topics["adm"]) != 1 || dt.StartTimestamp <= 0 {
		t.Fatalf("described %+v, want Ongoing with adm/0", dt)
	}
	if dt := d["no-such-id"]; !errors.Is(dt.Err, kerr.TransactionalIDNotFound) {
		t.Fatalf("unknown id described as %+v, want TRANSACTIONAL_ID_NOT_FOUND", dt)
	}
	l, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := l.TransactionalIDs(); !slices.Equal(ids, []string{"tx-admin"}) {
		t.Fatalf("listed Ongoing %q, want [tx-admin]", ids)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	// A transactional batch without a transactional id, and a control
	// batch from a producer, are refused and write nothing.
	raw := newClient(t, p)
	hw := endOffset(t, ctx, p, "adm", 0, false)
	for name, attrs := range map[string]int16{"transactional": 0x10, "control": 0x30} {
		if code := rawProduce(t, ctx, raw, nil, "adm", rawBatch(attrs, 7, 0)); code != kerr.InvalidRecord.Code {
			t.Errorf("%s batch without a transaction: %v, want INVALID_RECORD", name, kerr.ErrorForCode(code))
		}
	}
	// A transactional produce for a partition not added to the
	// transaction: refused up to Produce v11; v12 (KIP-890 part 2) adds
	// the partition, opening a transaction.
	pid, epoch, _ := cl.ProducerID(ctx)
	id := "tx-admin"
	txnProduce := func(cl *kgo.Client) int16 {
		t.Helper()
		return rawProduce(t, ctx, cl, &id, "adm", rawBatch(0x10, pid, epoch))
	}
	v11 := kversion.Stable()
	v11.SetMaxKeyVersion(0, 11)
	if code := txnProduce(newClient(t, p, kgo.MaxVersions(v11))); code != kerr.InvalidTxnState.Code {
		t.Errorf("produce v11 outside the open transaction: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if got := endOffset(t, ctx, p, "adm", 0, false); got != hw {
		t.Fatalf("refused produces moved the high watermark from %d to %d", hw, got)
	}
	if code := txnProduce(raw); code != 0 {
		t.Fatalf("produce v12 outside the open transaction: %v, want it added implicitly", kerr.ErrorForCode(code))
	}
	d, err = adm.DescribeTransactions(ctx, "tx-admin")
	if err != nil {
		t.Fatal(err)
	}
	if dt := d["tx-admin"]; dt.State != "Ongoing" || len(dt.Topics["adm"]) != 1 {
		t.Fatalf("after an implicit add: %+v, want Ongoing with adm/0", dt)
	}
	// A transaction timeout above the maximum is refused.
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &id, int32((16 * time.Minute).Milliseconds())
	iresp, err := init.RequestWith(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if iresp.ErrorCode != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("16 min transaction timeout: %v, want INVALID_TRANSACTION_TIMEOUT", kerr.ErrorForCode(iresp.ErrorCode))
	}
}

// rawProduce sends records to partition 0 of topic in one acks=all Produce
// (transactional if txnID is set) and returns the partition's error code.
func rawProduce(t testing.TB, ctx context.Context, cl *kgo.Client, txnID *string, topic string, records []byte) int16 {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.TransactionID, req.Acks, req.TimeoutMillis = txnID, -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// rawBatch builds a one-record uncompressed batch with the given attributes
// and producer.
func rawBatch(attrs int16, pid int64, epoch int16) []byte {
	rb := kmsg.RecordBatch{
		Magic: 2, Attributes: attrs, LastOffsetDelta: 0, FirstTimestamp: time.Now().UnixMilli(),
		MaxTimestamp: time.Now().UnixMilli(), ProducerID: pid, ProducerEpoch: epoch, FirstSequence: 0, NumRecords: 1,
	}
	rec := kmsg.Record{Value: []byte("raw")}
	body := rec.AppendTo(nil)[1:] // encoded with Length 0: one varint byte
	rec.Length = int32(len(body))
	rb.Records = rec.AppendTo(nil)
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// kversionsOffsetFetch7 caps OffsetFetch at v7, the last version with a
// single group (and per-partition errors).
func kversionsOffsetFetch7() *kversion.Versions {
	v := kversion.Stable()
	v.SetMaxKeyVersion(9, 7)
	return v
}

// TestProducerStateExpires: with short --transactional-id-expiration and
// --producer-id-expiration, a finished transactional id and its producer's
// per-shard state are forgotten, and the id starts afresh when used again.
func TestProducerStateExpires(t *testing.T) {
	p := braidtest.Start(t, "--transactional-id-expiration", "2s", "--producer-id-expiration", "2s",
		"--retention-check-interval", "200ms")
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "exp", 1, nil)
	cl := txnProducer(t, p, "tx-expire")
	inTxn(t, ctx, cl, "exp", 0, true, "v")
	cl.Close()

	producers := func() int {
		d, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"exp": {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		d.EachProducer(func(kadm.DescribedProducer) { n++ })
		return n
	}
	if n := producers(); n != 1 {
		t.Fatalf("%d producers on exp/0 right after the transaction, want 1", n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := adm.DescribeTransactions(ctx, "tx-expire")
		if err != nil {
			t.Fatal(err)
		}
		idGone := errors.Is(d["tx-expire"].Err, kerr.TransactionalIDNotFound)
		if idGone && producers() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: transactional id described as %+v, %d producers; want both expired", d["tx-expire"], producers())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The id works again, and the data is untouched.
	again := txnProducer(t, p, "tx-expire")
	inTxn(t, ctx, again, "exp", 0, true, "w")
	if got, want := readAll(t, ctx, p, "exp", 0, true), []string{"v", "w"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
}

// TestTransactionVersion2: Braid announces transaction.version 2 (KIP-890
// part 2), so kgo adds partitions by producing, and every transaction end
// moves the producer to a new epoch written into the markers: a late batch
// of an ended transaction is fenced, and a retried EndTxn from the epoch
// just replaced is answered with the current one.
func TestTransactionVersion2(t *testing.T) {
	p := braidtest.Start(t)
	ctx := testCtx(t, 60*time.Second)
	adm := newAdmin(t, p)
	createStream(t, ctx, adm, "tv2", 1, nil)

	av, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, newClient(t, p))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range av.FinalizedFeatures {
		found = found || f.Name == "transaction.version" && f.MaxVersionLevel == 2
	}
	if !found {
		t.Fatalf("finalized features %+v lack transaction.version 2", av.FinalizedFeatures)
	}

	cl := txnProducer(t, p, "tx-v2")
	inTxn(t, ctx, cl, "tv2", 0, true, "a")
	pid1, epoch1, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inTxn(t, ctx, cl, "tv2", 0, true, "b")
	pid2, epoch2, _ := cl.ProducerID(ctx)
	if pid2 != pid1 || epoch2 != epoch1+1 {
		t.Fatalf("after a second commit: producer %d epoch %d, want %d epoch %d (one bump per transaction)", pid2, epoch2, pid1, epoch1+1)
	}

	raw := newClient(t, p)
	// A batch from the replaced epoch is fenced.
	id := "tx-v2"
	if code := rawProduce(t, ctx, raw, &id, "tv2", rawBatch(0x10, pid1, epoch1)); code != kerr.InvalidProducerEpoch.Code {
		t.Errorf("late batch from the replaced epoch: %v, want it fenced with INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(code))
	}
	// A retried commit from the replaced epoch gets the current one.
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, pid1, epoch2-1, true
	eresp, err := end.RequestWith(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if eresp.ErrorCode != 0 || eresp.ProducerID != pid2 || eresp.ProducerEpoch != epoch2 {
		t.Fatalf("retried EndTxn: %v, producer %d epoch %d; want success with %d epoch %d",
			kerr.ErrorForCode(eresp.ErrorCode), eresp.ProducerID, eresp.ProducerEpoch, pid2, epoch2)
	}
	// The rest of Kafka's answers under transaction.version 2 with
	// nothing open: a retried abort of a commit and a commit are refused;
	// an abort bumps the epoch.
	for _, tc := range []struct {
		name   string
		epoch  int16
		commit bool
		code   int16
		next   int16
	}{
		{"retried abort of a commit", epoch2 - 1, false, kerr.InvalidTxnState.Code, -1},
		{"commit with nothing open", epoch2, true, kerr.InvalidTxnState.Code, -1},
		{"abort with nothing open", epoch2, false, 0, epoch2 + 1},
	} {
		end := kmsg.NewPtrEndTxnRequest()
		end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, pid1, tc.epoch, tc.commit
		resp, err := end.RequestWith(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != tc.code || resp.ProducerEpoch != tc.next {
			t.Errorf("%s: %v with epoch %d, want %v with epoch %d", tc.name, kerr.ErrorForCode(resp.ErrorCode),
				resp.ProducerEpoch, kerr.ErrorForCode(tc.code), tc.next)
		}
	}
	if got, want := readAll(t, ctx, p, "tv2", 0, true), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("read_committed: %q, want %q", got, want)
	}
}
