package engine

import "github.com/braidstream/braid/internal/catalog"

// What the Kinesis door needs beyond the Kafka door's calls: changes that
// read the current value and decide on it must do both under e.mu, or two
// clients could each pass a check the other's change breaks.

// UpdateConfigs edits a stream's configs as SetConfigs does (nil deletes),
// with change deciding the edit from the stream's current catalog entry
// while no other catalog change can run. An error from change is returned
// and nothing changes.
func (e *Engine) UpdateConfigs(name string, change func(cur *catalog.Stream) (map[string]*string, error)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur, err := e.cat.Stream(name)
	if err != nil {
		return err
	}
	set, err := change(cur)
	if err != nil {
		return err
	}
	return e.setConfigsLocked(name, set, false, false)
}

// SetKinesis changes a stream's Kinesis settings (catalog.SetKinesis).
func (e *Engine) SetKinesis(name string, change func(*catalog.KinesisSettings) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.cat.SetKinesis(name, change); err != nil {
		return err
	}
	e.installStreams(e.wal)
	return nil
}

// KinesisAccount returns the Kinesis account settings.
func (e *Engine) KinesisAccount() catalog.KinesisAccount { return e.cat.KinesisAccount() }

// SetKinesisAccount changes the Kinesis account settings.
func (e *Engine) SetKinesisAccount(change func(*catalog.KinesisAccount) error) (catalog.KinesisAccount, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cat.SetKinesisAccount(change)
}
