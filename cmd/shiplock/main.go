// Command shiplock applies database schema migrations safely: see
// "shiplock --help" and the README.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/shiplock/shiplock/internal/cli"
)

func main() {
	// A run's live heap is a few hundred KB: collect at +25% rather than
	// let the heap grow to the runtime's 4 MB minimum, so an initContainer
	// stays small (about 2 MB less RSS for a 1000-file directory).
	debug.SetGCPercent(25)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, LookupEnv: os.LookupEnv})
	stop()
	os.Exit(code)
}
