package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/braidstream/braid/internal/catalog"
	"github.com/braidstream/braid/internal/engine"
	"github.com/braidstream/braid/internal/group"
	"github.com/braidstream/braid/internal/shard"
	"github.com/braidstream/braid/internal/wal"
)

// TestEveryDomainErrorIsMapped fails when a package's sentinel error has no
// Kafka code, so a new error cannot silently become UNKNOWN_SERVER_ERROR.
func TestEveryDomainErrorIsMapped(t *testing.T) {
	for _, err := range []error{
		catalog.ErrStreamExists, catalog.ErrUnknownStream, catalog.ErrInvalidName, catalog.ErrInvalidShards,
		catalog.ErrUnknownShard, catalog.ErrInvalidConfig, catalog.ErrShardClosed, catalog.ErrInternalStream,
		shard.ErrNullKey, shard.ErrClosed, shard.ErrOffsetOutOfRange, shard.ErrCorruptBatch, shard.ErrUnsupportedCompression,
		shard.ErrUnsupportedMagic, shard.ErrTransactional,
		shard.ErrOutOfOrderSequence, shard.ErrInvalidProducerEpoch, shard.ErrUnknownProducer,
		engine.ErrRecordTooLarge,
		group.ErrUnknownMember, group.ErrIllegalGeneration, group.ErrRebalanceInProgress, group.ErrMemberIDRequired,
		group.ErrInconsistentProtocol, group.ErrFencedInstance, group.ErrInvalidSessionTime, group.ErrNotEmpty,
		group.ErrGroupNotFound, group.ErrCoordinatorClosed,
		group.ErrFencedMemberEpoch, group.ErrStaleMemberEpoch, group.ErrUnreleasedInstanceID, group.ErrUnsupportedAssignor,
		group.ErrInvalidRegex, group.ErrGroupIsClassic, group.ErrInvalidRequest,
		group.ErrOffsetMetadataTooLarge, group.ErrSubscribedToTopic, group.ErrCorruptGroupRecord,
		wal.ErrTooLarge, wal.ErrFailed, wal.ErrClosed, wal.ErrCorrupt,
	} {
		wrapped := fmt.Errorf("context: %w", err)
		if code := errCode(wrapped); code == kerr.UnknownServerError.Code {
			t.Errorf("%v has no Kafka error code", err)
		}
	}
}
