// Command shiplock applies database schema migrations safely: see
// "shiplock --help" and the README.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shiplock/shiplock/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, LookupEnv: os.LookupEnv})
	stop()
	os.Exit(code)
}
