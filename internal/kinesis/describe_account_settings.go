package kinesis

import (
	"context"
	"time"

	"github.com/braidstream/braid/internal/catalog"
)

// DescribeAccountSettings answers the minimum throughput billing
// commitment recorded by UpdateAccountSettings (DISABLED until one is
// set). Braid bills nothing; the setting is only recorded.
func init() { register("DescribeAccountSettings", describeAccountSettings) }

type commitmentOutput struct {
	Status    string   `json:"Status"`
	StartedAt *float64 `json:"StartedAt,omitempty"`
	EndedAt   *float64 `json:"EndedAt,omitempty"`
}

type accountSettingsOutput struct {
	MinimumThroughputBillingCommitment commitmentOutput `json:"MinimumThroughputBillingCommitment"`
}

func describeAccountSettings(_ context.Context, s *Server, body []byte) (any, error) {
	var in struct{}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return accountSettings(s.eng.KinesisAccount()), nil
}

func accountSettings(a catalog.KinesisAccount) accountSettingsOutput {
	c := commitmentOutput{Status: a.CommitmentStatus}
	if c.Status == "" {
		c.Status = "DISABLED"
	}
	c.StartedAt = commitmentTime(a.CommitmentStartedAt)
	c.EndedAt = commitmentTime(a.CommitmentEndedAt)
	return accountSettingsOutput{MinimumThroughputBillingCommitment: c}
}

// commitmentTime is a timestamp as the JSON protocol writes it (nil for
// the zero time).
func commitmentTime(t time.Time) *float64 {
	if t.IsZero() {
		return nil
	}
	v := float64(t.UnixMilli()) / 1000
	return &v
}
