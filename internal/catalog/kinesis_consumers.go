package catalog

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// A Kinesis stream consumer (RegisterStreamConsumer) is a name and a
// creation time kept with its stream, so that consumer ARNs survive a
// restart and vanish with the stream. Consumers hold no read position:
// SubscribeToShard starts where the caller says.
//
// Stream.clone copies the Consumers slice header only: the slice is
// never changed in place, each change below installs a new one.

// MaxConsumers is Kinesis' limit of registered consumers per stream.
const MaxConsumers = 20

var (
	ErrConsumerExists   = errors.New("catalog: consumer already registered")
	ErrUnknownConsumer  = errors.New("catalog: unknown consumer")
	ErrTooManyConsumers = errors.New("catalog: too many consumers")
	ErrInvalidConsumer  = errors.New("catalog: invalid consumer name")
)

// Consumer is one registered consumer of a stream.
type Consumer struct {
	Name string `json:"name"`
	// Created is the registration time in Unix milliseconds; its seconds
	// are part of the consumer's ARN.
	Created int64 `json:"created_ms"`
}

var consumerName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// Consumer returns the stream's consumer of that name.
func (s *Stream) Consumer(name string) (Consumer, bool) {
	i := slices.IndexFunc(s.Consumers, func(c Consumer) bool { return c.Name == name })
	if i < 0 {
		return Consumer{}, false
	}
	return s.Consumers[i], true
}

// AddConsumer registers consumer c on the named stream.
func (c *Catalog) AddConsumer(stream string, cons Consumer) (*Stream, error) {
	if !consumerName.MatchString(cons.Name) {
		return nil, fmt.Errorf("%w: %q (1 to 128 of a-z, A-Z, 0-9, '_', '.', '-')", ErrInvalidConsumer, cons.Name)
	}
	return c.update(stream, func(s *Stream) error {
		if s.Internal {
			return fmt.Errorf("%w: %q has no consumers", ErrInternalStream, stream)
		}
		if _, dup := s.Consumer(cons.Name); dup {
			return fmt.Errorf("%w: %q on stream %q", ErrConsumerExists, cons.Name, stream)
		}
		if len(s.Consumers) >= MaxConsumers {
			return fmt.Errorf("%w: stream %q has %d consumers, the limit", ErrTooManyConsumers, stream, MaxConsumers)
		}
		s.Consumers = append(slices.Clip(s.Consumers), cons)
		return nil
	}, false)
}

// RemoveConsumer deregisters the named consumer and returns it.
func (c *Catalog) RemoveConsumer(stream, name string) (Consumer, error) {
	var gone Consumer
	_, err := c.update(stream, func(s *Stream) error {
		var ok bool
		if gone, ok = s.Consumer(name); !ok {
			return fmt.Errorf("%w: %q on stream %q", ErrUnknownConsumer, name, stream)
		}
		s.Consumers = slices.DeleteFunc(slices.Clone(s.Consumers), func(c Consumer) bool { return c.Name == name })
		return nil
	}, false)
	return gone, err
}
