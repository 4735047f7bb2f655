package kafka

import (
	"context"
	"errors"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/group"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/txn"
	"github.com/braidstream/braid/internal/wal"
)

// errorMap is the one place where Braid's errors become Kafka error codes.
// Order matters only where one error wraps another.
var errorMap = []struct {
	err  error
	code *kerr.Error
}{
	{catalog.ErrStreamExists, kerr.TopicAlreadyExists},
	{catalog.ErrUnknownStream, kerr.UnknownTopicOrPartition},
	{catalog.ErrInvalidName, kerr.InvalidTopicException},
	{catalog.ErrInvalidShards, kerr.InvalidPartitions},
	{catalog.ErrUnknownShard, kerr.UnknownTopicOrPartition},
	{catalog.ErrInvalidConfig, kerr.InvalidConfig},
	{catalog.ErrReadOnlyConfig, kerr.InvalidRequest},
	{catalog.ErrShardClosed, kerr.NotLeaderForPartition},
	{catalog.ErrInternalStream, kerr.InvalidTopicException},
	{shard.ErrClosed, kerr.NotLeaderForPartition},
	{shard.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{shard.ErrCorruptBatch, kerr.CorruptMessage},
	{shard.ErrUnsupportedCompression, kerr.UnsupportedCompressionType},
	{shard.ErrUnsupportedMagic, kerr.UnsupportedForMessageFormat},
	{shard.ErrTransactional, kerr.InvalidRecord},
	{shard.ErrNullKey, kerr.InvalidRecord},
	{shard.ErrNotInTransaction, kerr.InvalidTxnState},
	{engine.ErrControlBatch, kerr.InvalidRecord},
	{engine.ErrNotTransactional, kerr.InvalidRecord},
	{txn.ErrInvalidTimeout, kerr.InvalidTransactionTimeout},
	{txn.ErrProducerFenced, kerr.ProducerFenced},
	{txn.ErrInvalidPIDMapping, kerr.InvalidProducerIDMapping},
	{txn.ErrInvalidState, kerr.InvalidTxnState},
	{txn.ErrConcurrent, kerr.ConcurrentTransactions},
	{txn.ErrUnknownPartition, kerr.UnknownTopicOrPartition},
	{txn.ErrNotAttempted, kerr.OperationNotAttempted},
	{shard.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{shard.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{shard.ErrUnknownProducer, kerr.UnknownProducerID},
	{engine.ErrRecordTooLarge, kerr.MessageTooLarge},
	{wal.ErrTooLarge, kerr.MessageTooLarge},
	{wal.ErrFailed, kerr.KafkaStorageError},
	{wal.ErrNoSpace, kerr.KafkaStorageError},
	// Out of space outside the log (the catalog, for a new stream): the
	// write was refused and nothing changed.
	{syscall.ENOSPC, kerr.KafkaStorageError},
	{syscall.EDQUOT, kerr.KafkaStorageError},
	{wal.ErrClosed, kerr.NotLeaderForPartition},
	{wal.ErrCorrupt, kerr.KafkaStorageError},
	{group.ErrUnknownMember, kerr.UnknownMemberID},
	{group.ErrIllegalGeneration, kerr.IllegalGeneration},
	{group.ErrRebalanceInProgress, kerr.RebalanceInProgress},
	{group.ErrMemberIDRequired, kerr.MemberIDRequired},
	{group.ErrInconsistentProtocol, kerr.InconsistentGroupProtocol},
	{group.ErrFencedInstance, kerr.FencedInstanceID},
	{group.ErrInvalidSessionTime, kerr.InvalidSessionTimeout},
	{group.ErrNotEmpty, kerr.NonEmptyGroup},
	{group.ErrGroupNotFound, kerr.GroupIDNotFound},
	{group.ErrCoordinatorClosed, kerr.NotCoordinator},
	{group.ErrFencedMemberEpoch, kerr.FencedMemberEpoch},
	{group.ErrStaleMemberEpoch, kerr.StaleMemberEpoch},
	{group.ErrUnreleasedInstanceID, kerr.UnreleasedInstanceID},
	{group.ErrUnsupportedAssignor, kerr.UnsupportedAssignor},
	{group.ErrInvalidRegex, kerr.InvalidRegularExpression},
	{group.ErrGroupIsClassic, kerr.InconsistentGroupProtocol},
	{group.ErrInvalidRequest, kerr.InvalidRequest},
	{group.ErrOffsetMetadataTooLarge, kerr.OffsetMetadataTooLarge},
	{group.ErrSubscribedToTopic, kerr.GroupSubscribedToTopic},
	{group.ErrCorruptGroupRecord, kerr.KafkaStorageError},
	{context.Canceled, kerr.RequestTimedOut},
	{context.DeadlineExceeded, kerr.RequestTimedOut},
}

// errCode maps an error to a Kafka error code (0 for nil).
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	for _, m := range errorMap {
		if errors.Is(err, m.err) {
			return m.code.Code
		}
	}
	return kerr.UnknownServerError.Code
}

// errMessage is the message to send along with a code, where the protocol
// has room for one.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// produceErrCode is errCode for a Produce partition: a transactional batch
// from a replaced epoch answers INVALID_PRODUCER_EPOCH there, as Kafka 2.7+
// does (KIP-588), not the coordinator's PRODUCER_FENCED.
func produceErrCode(err error) int16 {
	if errors.Is(err, txn.ErrProducerFenced) {
		return kerr.InvalidProducerEpoch.Code
	}
	return errCode(err)
}

// txnErrCode is errCode for the transaction coordinator's requests:
// versions before KIP-588 (InitProducerId v4, AddPartitionsToTxn,
// AddOffsetsToTxn and EndTxn v2) know no PRODUCER_FENCED and get
// INVALID_PRODUCER_EPOCH for it.
func txnErrCode(err error, knowsFenced bool) int16 {
	code := errCode(err)
	if code == kerr.ProducerFenced.Code && !knowsFenced {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}
