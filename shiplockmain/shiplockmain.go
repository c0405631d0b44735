// Package shiplockmain is shiplock's command line as a library, for a
// team that builds its own shiplock binary with its Go migrations
// compiled in. The binary keeps every command of shiplock, the kube
// subcommands included; cmd/shiplock is built from it too.
//
//	package main
//
//	import (
//		"os"
//
//		_ "example.com/app/migrations" // registers its Go migrations with goose
//
//		"github.com/shiplock/shiplock/goosemigrations"
//		"github.com/shiplock/shiplock/shiplockmain"
//	)
//
//	func main() {
//		os.Exit(shiplockmain.Main(shiplockmain.Options{GoMigrations: goosemigrations.Collect}))
//	}
package shiplockmain

import (
	"context"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/shiplock/shiplock/internal/cli"
	"github.com/shiplock/shiplock/migrate"
)

// Options are what a binary compiles in. The zero value is shiplock's own
// binary.
type Options struct {
	// GoMigrations returns the Go migrations compiled into the binary for
	// the migrations directory dir (--dir or SHIPLOCK_DIR, resolved); nil:
	// none, and a numbered .go file is refused as not registered.
	// goosemigrations.Collect reads them from goose's registry.
	GoMigrations func(dir string) ([]migrate.GoMigration, error)
}

// Streams are the standard streams and environment of Run.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
	// LookupEnv reads the environment; nil: empty.
	LookupEnv func(string) (string, bool)
	// Stop closes to ask the command to stop, as the first SIGTERM does
	// (commands that change the database stop between statements); nil
	// never closes.
	Stop <-chan struct{}
	// Program is the name the program was called by (argv[0]): called
	// kubectl-NAME, kubectl's plugin, its help says "kubectl NAME".
	Program string
}

// Main runs shiplock as the process: its arguments, standard streams and
// environment. The first SIGTERM (what Kubernetes sends) or SIGINT asks
// the command to stop, a second one cancels it. It returns the exit code
// for os.Exit.
func Main(o Options) int {
	// A run's live heap is a few hundred KB: collect at +25% rather than
	// let the heap grow to the runtime's 4 MB minimum, so an initContainer
	// stays small (about 2 MB less RSS for a 1000-file directory).
	debug.SetGCPercent(25)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		close(stop)
		<-sigs
		cancel()
	}()
	return Run(ctx, os.Args[1:], Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, LookupEnv: os.LookupEnv, Stop: stop, Program: os.Args[0]}, o)
}

// Run runs shiplock in this process with args (without the program
// name) and returns the exit code. Cancelling ctx cancels the command.
func Run(ctx context.Context, args []string, s Streams, o Options) int {
	return cli.Main(ctx, args, cli.Streams{In: s.In, Out: s.Out, Err: s.Err, LookupEnv: s.LookupEnv, Stop: s.Stop, Program: s.Program, GoMigrations: o.GoMigrations})
}
