package cli

import "github.com/spf13/cobra"

func newConnectorPauseCmd(f *clientFlags) *cobra.Command {
	return connectorStateCmd(f, "pause", "paused", "Stop a connector until it is resumed",
		`Pause a connector: it stops moving records and keeps its position (a sink
first makes what it has taken durable in its target). It stays paused across
restarts of the node, until "braid connector resume". Offsets can be reset
only while a connector is paused.

Examples:
  braid connector pause orders-archive
  braid connector pause orders-archive --format json | jq .state`)
}
