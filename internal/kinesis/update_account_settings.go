package kinesis

import (
	"context"
	"time"

	"github.com/braidstream/braid/internal/catalog"
)

// UpdateAccountSettings records the minimum throughput billing commitment
// as ENABLED (from now) or DISABLED (ended now) and answers it. Braid
// bills nothing and keeps no minimum commitment period.
func init() { register("UpdateAccountSettings", updateAccountSettings) }

type updateAccountSettingsInput struct {
	MinimumThroughputBillingCommitment *struct {
		Status string `json:"Status"`
	} `json:"MinimumThroughputBillingCommitment"`
}

func updateAccountSettings(_ context.Context, s *Server, body []byte) (any, error) {
	var in updateAccountSettingsInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.MinimumThroughputBillingCommitment == nil {
		return nil, errorf(errValidation, "1 validation error detected: Value null at 'minimumThroughputBillingCommitment' failed to satisfy constraint: Member must not be null")
	}
	status := in.MinimumThroughputBillingCommitment.Status
	if status != "ENABLED" && status != "DISABLED" {
		return nil, errorf(errValidation, "1 validation error detected: Value '%s' at 'minimumThroughputBillingCommitment.status' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]", status)
	}
	now := time.Now().UTC()
	a, err := s.eng.SetKinesisAccount(func(a *catalog.KinesisAccount) error {
		enabled := a.CommitmentStatus == "ENABLED"
		switch {
		case status == "ENABLED" && !enabled:
			*a = catalog.KinesisAccount{CommitmentStatus: status, CommitmentStartedAt: now}
		case status == "DISABLED" && enabled:
			a.CommitmentStatus, a.CommitmentEndedAt = status, now
		case status == "DISABLED":
			a.CommitmentStatus = status
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return accountSettings(a), nil
}
