package bench

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validConfig is a configuration normalize accepts; cases change one thing.
func validConfig() Config {
	return Config{
		Brokers:                []string{"127.0.0.1:9092"},
		Stream:                 "braid-bench",
		Partitions:             1,
		RecordSize:             1024,
		Count:                  1000,
		Producers:              1,
		Acks:                   "all",
		Compression:            "none",
		BatchMaxBytes:          1 << 20,
		Idempotent:             true,
		FetchMaxBytes:          64 << 20,
		FetchMaxPartitionBytes: 8 << 20,
	}
}

func TestNormalizeTransactions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*Config)
		wantErr error  // checked with errors.Is when set
		wantMsg string // substring of the error; "" = no error
	}{
		{"off", func(*Config) {}, nil, ""},
		{"on", func(c *Config) { c.TxnInterval = 100 * time.Millisecond }, nil, ""},
		{"acks -1 is all", func(c *Config) { c.TxnInterval = time.Second; c.Acks = "-1" }, nil, ""},
		{"not idempotent", func(c *Config) { c.TxnInterval = time.Second; c.Idempotent = false },
			ErrTxnNeedsIdempotence, "idempotent false"},
		{"acks 1", func(c *Config) { c.TxnInterval = time.Second; c.Acks = "1" },
			ErrTxnNeedsIdempotence, "acks 1"},
		{"acks 0", func(c *Config) { c.TxnInterval = time.Second; c.Acks = "0"; c.Idempotent = false },
			ErrTxnNeedsIdempotence, "acks 0"},
		{"negative", func(c *Config) { c.TxnInterval = -time.Second }, nil, "must not be negative"},
		{"off without idempotence", func(c *Config) { c.Idempotent = false; c.Acks = "1" }, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.change(&cfg)
			err := cfg.normalize()
			switch {
			case tc.wantMsg == "" && err != nil:
				t.Fatalf("normalize: %v, want no error", err)
			case tc.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tc.wantMsg)):
				t.Fatalf("normalize: %v, want an error containing %q", err, tc.wantMsg)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("normalize: %v, want errors.Is %v", err, tc.wantErr)
			}
		})
	}
}

func TestSettingsTxnInterval(t *testing.T) {
	cfg := validConfig()
	if s := cfg.settings(); s.TxnInterval != "" {
		t.Errorf("settings without transactions: txn_interval %q, want empty", s.TxnInterval)
	}
	cfg.TxnInterval = 100 * time.Millisecond
	if s := cfg.settings(); s.TxnInterval != "100ms" {
		t.Errorf("settings: txn_interval %q, want 100ms", s.TxnInterval)
	}
}
