package catalog

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// KinesisSettings is what Kinesis clients set on a stream that Braid
// records and reports but does not act on: tags, a resource policy (not
// enforced), server-side encryption (Braid does not encrypt) and
// enhanced monitoring. Settings that do change Braid's behaviour
// (retention, capacity mode, record size) are stream configs instead.
//
// Stored in catalog.json under the stream's "kinesis" key; absent in
// catalogs written before it existed, which read as no settings.
type KinesisSettings struct {
	Tags map[string]string `json:"tags,omitempty"`
	// Policy is the resource policy document as the client gave it.
	Policy string `json:"policy,omitempty"`
	// EncryptionType is "KMS" after StartStreamEncryption, "" (NONE)
	// otherwise; KeyID is the key it named.
	EncryptionType string `json:"encryption_type,omitempty"`
	KeyID          string `json:"key_id,omitempty"`
	// ShardLevelMetrics are the enhanced-monitoring metrics enabled, in
	// the order Kinesis lists them.
	ShardLevelMetrics []string `json:"shard_level_metrics,omitempty"`
	// WarmThroughputMiBps is the warm throughput UpdateStreamWarmThroughput
	// asked for (on-demand streams); nil if never set.
	WarmThroughputMiBps *int `json:"warm_throughput_mibps,omitempty"`
	// RecordDistribution is the record distribution strategy
	// UpdateStreamRecordDistributionStrategy set (AUTO or
	// USER_PARTITION_KEY); "" if never set.
	RecordDistribution string `json:"record_distribution,omitempty"`
}

func (k *KinesisSettings) clone() *KinesisSettings {
	if k == nil {
		return nil
	}
	c := *k
	c.Tags = maps.Clone(k.Tags)
	c.ShardLevelMetrics = slices.Clone(k.ShardLevelMetrics)
	if k.WarmThroughputMiBps != nil {
		v := *k.WarmThroughputMiBps
		c.WarmThroughputMiBps = &v
	}
	return &c
}

func (k *KinesisSettings) empty() bool {
	return len(k.Tags) == 0 && k.Policy == "" && k.EncryptionType == "" && k.KeyID == "" && len(k.ShardLevelMetrics) == 0 &&
		k.WarmThroughputMiBps == nil && k.RecordDistribution == ""
}

// SetKinesis changes a stream's Kinesis settings: change gets a copy it
// may edit (never nil) and the copy is saved unless change fails.
func (c *Catalog) SetKinesis(name string, change func(*KinesisSettings) error) (*Stream, error) {
	return c.update(name, func(s *Stream) error {
		if s.Internal {
			return fmt.Errorf("%w: %q has no Kinesis settings", ErrInternalStream, name)
		}
		k := s.Kinesis.clone()
		if k == nil {
			k = &KinesisSettings{}
		}
		if err := change(k); err != nil {
			return err
		}
		if k.empty() {
			k = nil
		}
		s.Kinesis = k
		return nil
	}, false)
}

// KinesisAccount is the account-wide settings Kinesis clients set with
// UpdateAccountSettings: the minimum throughput billing commitment, which
// Braid records and reports (it bills nothing).
type KinesisAccount struct {
	// CommitmentStatus is ENABLED or DISABLED.
	CommitmentStatus    string    `json:"commitment_status,omitempty"`
	CommitmentStartedAt time.Time `json:"commitment_started_at,omitzero"`
	CommitmentEndedAt   time.Time `json:"commitment_ended_at,omitzero"`
}

// KinesisAccount returns a copy of the account settings (zero if never set).
func (c *Catalog) KinesisAccount() KinesisAccount {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.snap.KinesisAccount == nil {
		return KinesisAccount{}
	}
	return *c.snap.KinesisAccount
}

// SetKinesisAccount changes the account settings: change edits a copy,
// saved unless change fails.
func (c *Catalog) SetKinesisAccount(change func(*KinesisAccount) error) (KinesisAccount, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var a KinesisAccount
	if c.snap.KinesisAccount != nil {
		a = *c.snap.KinesisAccount
	}
	if err := change(&a); err != nil {
		return KinesisAccount{}, err
	}
	next := c.snap
	next.KinesisAccount = &a
	if err := c.store.Save(&next); err != nil {
		return KinesisAccount{}, err
	}
	c.install(&next)
	return a, nil
}
