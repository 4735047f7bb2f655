package engine

import "github.com/braidstream/braid/internal/catalog"

// RegisterConsumer durably adds a Kinesis consumer to a stream.
func (e *Engine) RegisterConsumer(stream string, c catalog.Consumer) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.cat.AddConsumer(stream, c)
	if err == nil {
		e.installStreams(e.wal)
	}
	return err
}

// DeregisterConsumer durably removes a Kinesis consumer from a stream.
func (e *Engine) DeregisterConsumer(stream, name string) (catalog.Consumer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.cat.RemoveConsumer(stream, name)
	if err == nil {
		e.installStreams(e.wal)
	}
	return c, err
}
