// Package cli is shiplock's command-line interface: cobra commands, flags
// and environment resolved into library options, output, and the mapping of
// errors to exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/internal/redact"
	"github.com/shiplock/shiplock/migrate"
)

// Streams are the process's standard streams and environment, injected so
// that tests can run commands in-process.
type Streams struct {
	In        io.Reader
	Out, Err  io.Writer
	LookupEnv func(string) (string, bool)
	// Stop closes when the process is asked to stop (the first SIGTERM or
	// SIGINT). Commands that change the database stop between statements
	// and cancel ctx only after their --stop-grace; the others cancel at
	// once. nil never closes.
	Stop <-chan struct{}
	// GoMigrations returns the Go migrations compiled into this binary
	// for the migrations directory dir (see the public shiplockmain
	// package); nil: none, and a numbered .go file is refused as not
	// registered.
	GoMigrations func(dir string) ([]migrate.GoMigration, error)
	// Program is the name the program was called by (argv[0]): as
	// kubectl-shiplock, kubectl's plugin, help says "kubectl shiplock".
	Program string
}

func (s Streams) getenv(key string) string {
	if s.LookupEnv == nil {
		return ""
	}
	v, _ := s.LookupEnv(key)
	return v
}

// globals are the flags every command shares.
type globals struct {
	streams     Streams
	databaseURL string
	driver      string // how to read databaseURL: "" (by its form), postgres, mysql or sqlite
	tls         tlsFiles
	// timeout is the deadline of the whole command (--timeout, goose's
	// -timeout); 0 for none. Its expiry is exit 6.
	timeout    time.Duration
	cmdCtx     context.Context // the command's context under --timeout
	dir        string
	allowEmpty bool
	logFormat  string
	logLevel   string
	log        *slog.Logger
	sec        *redact.Secrets // what must never be printed; grows as settings are read

	// goose's settings: --table and --env as given; the resolved version
	// table; every setting with its source (shiplock env); a default .env
	// that could not be read, which goose ignores too (a warning).
	tableName, envFile string
	table              dialect.Table
	set                settings
	envFileErr         error

	// stopGrace is set (in nanoseconds) by a command that handles Stop
	// itself: a stop then cancels ctx only that long (plus time to record
	// progress) after it came.
	stopGrace atomic.Int64

	// ctx is Main's context: canceled when shiplock is told to stop (at
	// once, or after the stop grace).
	ctx context.Context
	// classifier classifies the driver errors of the database the command
	// opened; nil until it opens one.
	classifier dialect.Classifier
}

// Main runs shiplock with args (without the program name) and returns the
// process exit code.
func Main(ctx context.Context, args []string, streams Streams) int {
	g := &globals{streams: streams, ctx: ctx}
	root := newRoot(g)
	if name, ok := strings.CutPrefix(filepath.Base(streams.Program), "kubectl-"); ok {
		asPlugin(root, "kubectl "+name)
	}
	args, err := gooseArgs(root, args)
	if err != nil {
		fmt.Fprintf(streams.Err, "shiplock: %s\n", err)
		return int(exitcode.Usage)
	}
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g.ctx = ctx
	if streams.Stop != nil {
		go func() {
			select {
			case <-streams.Stop:
			case <-ctx.Done():
				return
			}
			grace := time.Duration(g.stopGrace.Load())
			if grace <= 0 {
				cancel()
				return
			}
			// The engine stops between statements, and cancels a statement
			// that outlasts the grace itself; this is the backstop.
			t := time.NewTimer(grace + stopRecordTime)
			defer t.Stop()
			select {
			case <-t.C:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	err = root.ExecuteContext(ctx)
	if err == nil {
		return int(exitcode.OK)
	}
	if g.timedOut() {
		err = fmt.Errorf("the command's --timeout of %s ran out: %w", g.timeout, err)
	}
	code := g.exitCode(err)
	if unreg := (*migrate.UnregisteredError)(nil); streams.GoMigrations != nil && errors.As(err, &unreg) {
		unreg.Compiled = true
	}
	if msg := errorText(err); msg != "" {
		fmt.Fprintf(streams.Err, "shiplock: %s\n", g.redact(msg))
		if code.Retryable() {
			fmt.Fprintf(streams.Err, "shiplock: exit %d, %s: running the same command again can succeed\n", code, code.Info().Short)
		}
	}
	return int(code)
}

// stopRecordTime is what a stopping run gets after its grace to cancel the
// statement in flight, record it and release the lock.
const stopRecordTime = 5 * time.Second

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "shiplock",
		Short: "Safe, goose-compatible database schema migrations for Kubernetes",
		Long: `shiplock applies goose-format SQL migrations (same files, same goose_db_version
table) under a lock shared by every runner, so N replicas can migrate at once.

` + exitcode.Summary(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildVersion(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.startDeadline(cmd)
			return g.setup()
		},
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return unknownCommand(cmd, args) },
	}
	// --version without cobra's -v: goose's -v means verbose.
	root.Flags().Bool("version", false, "print shiplock's version, commit and Go version (the database's: shiplock version)")
	root.SetVersionTemplate("{{.Version}}")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usagef(err.Error()) })
	pf := root.PersistentFlags()
	pf.StringVar(&g.databaseURL, "database-url", "", "database URL (env DATABASE_URL); postgres://, mysql://, a MySQL DSN (USER@tcp(HOST:3306)/DB), sqlite:// or a file path")
	pf.StringVar(&g.driver, "driver", "", "read --database-url as postgres, mysql or sqlite (goose's DRIVER; set by the goose form \"shiplock DRIVER DBSTRING COMMAND\")")
	_ = pf.MarkHidden("driver")
	g.tls.register(pf)
	pf.StringVar(&g.dir, "dir", "", "migrations directory (env SHIPLOCK_DIR, GOOSE_MIGRATION_DIR; default ./migrations)")
	pf.StringVar(&g.tableName, "table", "", "goose's version table, NAME or SCHEMA.NAME as goose's -table (env SHIPLOCK_TABLE, GOOSE_TABLE; default goose_db_version)")
	pf.StringVar(&g.envFile, "env", "", `file of goose's variables (GOOSE_DRIVER, GOOSE_DBSTRING, GOOSE_MIGRATION_DIR, GOOSE_TABLE), as goose's -env; default .env if present; "none" reads none`)
	pf.BoolVar(&g.allowEmpty, "allow-empty", false, "accept a migrations directory with no migration files (else exit 3, so a wrong --dir never passes as \"nothing to do\")")
	pf.StringVar(&g.logFormat, "log-format", "auto", "log format on stderr: auto (text on a terminal, JSON otherwise), text or json")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")

	root.AddCommand(
		newUpCmd(g), newDownCmd(g), newRedoCmd(g),
		newStatusCmd(g), newVersionCmd(g), newPlanCmd(g), newVerifyCmd(g),
		newValidateCmd(g), newCreateCmd(g), newFixCmd(g),
		newRepairCmd(g), newWaitCmd(g),
		newAwaitCmd(g), newCheckCmd(g), newLintCmd(g),
		newKubeCmd(g), newEnvCmd(g),
	)
	usageArgs(root)
	setupHelp(root)
	return root
}

func (g *globals) setup() error {
	g.sec = g.newSecrets()
	if err := g.resolveSettings(); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return usagef(fmt.Sprintf("--log-level %q: want debug, info, warn or error", g.logLevel))
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch g.logFormat {
	case "json":
		h = slog.NewJSONHandler(g.streams.Err, opts)
	case "text":
		h = slog.NewTextHandler(g.streams.Err, opts)
	case "auto":
		if isTerminal(g.streams.Err) {
			h = slog.NewTextHandler(g.streams.Err, opts)
		} else {
			h = slog.NewJSONHandler(g.streams.Err, opts)
		}
	default:
		return usagef(fmt.Sprintf("--log-format %q: want auto, text or json", g.logFormat))
	}
	g.log = slog.New(redact.Handler(h, g.sec))
	if g.envFileErr != nil {
		g.log.Warn("ignoring "+defaultEnvFile+", as goose does: it cannot be read", "err", g.envFileErr)
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// redact removes passwords from text shown to the user: the configured
// database's, and any in a connection string.
func (g *globals) redact(s string) string {
	if g.sec == nil { // a flag error, before setup
		g.sec = g.newSecrets()
	}
	return g.sec.String(s)
}

// Command returns shiplock's command tree for generators that run outside
// the binary (the release's man pages and shell completions).
func Command() *cobra.Command { return newRoot(&globals{}) }

// asPlugin makes root's help speak of itself as display ("kubectl
// shiplock"), as kubectl runs it: usage lines and examples.
func asPlugin(root *cobra.Command, display string) {
	root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: display}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Example = exampleCommand.ReplaceAllString(c.Example, "${1}"+display+" ")
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// exampleCommand is "shiplock" where an example line starts with it.
var exampleCommand = regexp.MustCompile(`(?m)^(\s*)shiplock `)
