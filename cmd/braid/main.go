// Command braid is the Braid streaming log: one binary that serves the
// broker and the command-line tools that talk to it.
package main

import (
	"os"

	"github.com/braidstream/braid/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
