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
	// The first SIGTERM (what Kubernetes sends) or SIGINT asks to stop
	// (cli decides how gracefully); a second one cancels at once.
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		close(stop)
		<-sigs
		cancel()
	}()
	code := cli.Main(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, LookupEnv: os.LookupEnv, Stop: stop})
	cancel()
	os.Exit(code)
}
