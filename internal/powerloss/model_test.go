package powerloss

import (
	"github.com/braidstream/braid/internal/catalog"
)

// The model: what the workload did and what it was told. "Acked" is what a
// client was told is durable: the call returned success and, for acks=all,
// WaitDurable returned nil. Everything the workload learns after a recovery
// is durable by definition, so resync turns what was read back into the
// model the next round starts from.

type streamKind int

const (
	kindPlain     streamKind = iota // cleanup.policy=delete, no limits
	kindCompact                     // cleanup.policy=compact
	kindRetention                   // cleanup.policy=delete with retention.bytes
)

// written is one record appended at a known offset.
type written struct {
	rec
	acked bool // durable: acks=all acknowledged, or read back after a recovery
	seen  bool // returned by a read before the crash
	txn   *txnModel
}

type shardModel struct {
	recs map[int64]*written
	// ackStart is the log start as of the last acknowledged DeleteRecords
	// or retention pass; maxStart the highest one any call may have made.
	ackStart, maxStart int64
}

func newShardModel() *shardModel { return &shardModel{recs: map[int64]*written{}} }

// gen is one life of a stream name: from a create to a delete.
type gen struct {
	id     catalog.StreamID // 0 until the create returned
	shards []*shardModel
	// commits are group offsets committed for this life of the stream.
	commits map[groupPart]*commitModel
}

type groupPart struct {
	group string
	part  int32
}

// commitModel is one group's committed offset for one shard. Commits
// apply in the order they are made (a transaction's when it ends), not in
// the order of their values, so a recovered offset must be the last
// acknowledged one or one applied after it.
type commitModel struct {
	acked int64          // value of the last acknowledged commit, -1 if none
	later map[int64]bool // values applied after it, not acknowledged (yet)
	// anytime are values of commits that failed: they may or may not have
	// been applied.
	anytime map[int64]bool
}

func newCommit() *commitModel {
	return &commitModel{acked: -1, later: map[int64]bool{}, anytime: map[int64]bool{}}
}

func (c *commitModel) ack(v int64) { c.acked, c.later = v, map[int64]bool{} }

type streamStatus int

const (
	absent streamStatus = iota
	live
	createInDoubt // a create was in flight at the crash
	deleteInDoubt // a delete was in flight at the crash
)

type streamModel struct {
	name   string
	kind   streamKind
	nShard int
	status streamStatus
	cur    *gen // live or deleteInDoubt: the life that may still be there
	next   *gen // createInDoubt: the life that may have begun
	// inflight holds values appended at offsets nobody learnt (a produce in
	// flight at the crash): they may show up at any offset at or past the
	// high watermark as of then.
	inflight map[string]bool
	// lastKey is, per key of a compacted stream, the offset of the last
	// acknowledged write.
	lastKey []map[string]int64
}

func (s *streamModel) configs() catalog.Configs {
	switch s.kind {
	case kindCompact:
		return catalog.Configs{"cleanup.policy": "compact", "segment.bytes": "4096",
			"min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0"}
	case kindRetention:
		return catalog.Configs{"retention.bytes": "6000", "segment.bytes": "4096"}
	}
	return catalog.Configs{"segment.bytes": "16384"}
}

func newGen(n int) *gen {
	g := &gen{commits: map[groupPart]*commitModel{}}
	for range n {
		g.shards = append(g.shards, newShardModel())
	}
	return g
}

type txnState int

const (
	txnOngoing   txnState = iota
	txnEnding             // EndTxn was called and did not return success
	txnCommitted          // EndTxn(commit) acknowledged
	txnAborted            // EndTxn(abort) acknowledged
)

// txnModel is one transaction: its records (always on stream txnStream)
// and its offset commits (group txnGroup).
type txnModel struct {
	id      string
	pid     int64
	state   txnState
	commit  bool // what EndTxn asked for
	offsets map[groupPart]int64
	recs    []txnRec
}

type txnRec struct {
	shard int
	off   int64
	val   string
}

// txnProducer is a transactional id as its client sees it.
type txnProducer struct {
	id    string
	pid   int64
	epoch int16
	seq   map[int]int32 // next sequence per shard of txnStream
	cur   *txnModel     // the open transaction
	all   []*txnModel
}

// idemProducer is an idempotent producer writing to one stream.
type idemProducer struct {
	pid int64
	seq map[int]int32
	// last is the last batch sent, kept for a retry after a recovery.
	last *idemBatch
	// stuck: the last batch got no answer; nothing new is sent.
	stuck bool
}

type idemBatch struct {
	shard int
	seq   int32
	recs  []rec
	base  int64 // -1: unknown (in flight at the crash)
	acked bool
	gen   *gen
}
