package cli

import "github.com/spf13/cobra"

func newConnectorResumeCmd(f *clientFlags) *cobra.Command {
	return connectorStateCmd(f, "resume", "resumed", "Start a paused connector again",
		`Resume a paused connector: it goes on from its position (or from the offsets
set by "braid connector offsets reset" while it was paused).

Examples:
  braid connector resume orders-archive`)
}
