package kafka

import (
	"fmt"
	"runtime/debug"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// PanicLogMessage is the message of the log line written for every panic
// the door recovers from (a handler or a completion). A recovered panic is
// always a bug: the fuzz target and internal/braidtest fail on it.
const PanicLogMessage = "kafka: recovered panic"

// recovered makes a recovered panic observable: one distinctive error log
// line with the stack, and braid_kafka_handler_panics_total. It must be
// called from the deferred function that recovered v, so that the stack
// still shows where the panic came from.
func (c *conn) recovered(stage string, key, version int16, v any) {
	c.s.opts.Metrics.panics.Inc()
	c.s.opts.Logger.Error(PanicLogMessage, "stage", stage, "api", kmsg.NameForKey(key), "version", version,
		"client", c.client, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}
