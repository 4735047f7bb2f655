package cli

import "github.com/spf13/cobra"

func newConnectorRestartCmd(f *clientFlags) *cobra.Command {
	return connectorStateCmd(f, "restart", "restarted", "Stop a connector and start it again",
		`Restart a connector: close it and open it again from its last durable
position. This is how a failed connector (a poison record under
on_bad_record: fail, say) is tried again after the cause was fixed; a
retrying connector is retried at once instead of after its backoff.

Examples:
  braid connector restart orders-archive`)
}
