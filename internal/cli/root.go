// Package cli builds braid's command tree: one verb per file, grouped by noun
// (stream, ...), in the manner of rpk. Commands that talk to a running broker
// use the Kafka protocol through franz-go, so they work against any
// Kafka-compatible server.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRoot()
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ex errExit
		if errors.As(err, &ex) {
			return ex.code
		}
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "braid:", err)
		}
		return 1
	}
	return 0
}

// errExit ends the command with its exit code and nothing more to say.
type errExit struct{ code int }

func (e errExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// errSilent marks an error that was already reported to the user.
var errSilent = errors.New("already reported")

// NewRoot returns the root command with every subcommand attached.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "braid",
		Short:         "Braid: a durable streaming log for Kafka and Kinesis clients",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, add := range commands {
		root.AddCommand(add())
	}
	return root
}

// commands holds the constructors of the top-level commands; each command's
// file registers itself in an init function so that adding a verb touches
// one file only.
var commands []func() *cobra.Command

func register(fn func() *cobra.Command) { commands = append(commands, fn) }
