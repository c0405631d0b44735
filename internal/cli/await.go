package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shiplock/shiplock/dialect"
	"github.com/shiplock/shiplock/gate"
)

// gateFlags are the flags await and check share.
type gateFlags struct {
	version string
	timeout time.Duration
}

func (f *gateFlags) register(fs *pflag.FlagSet, timeout time.Duration, timeoutHelp string) {
	fs.StringVar(&f.version, "version", "latest", `schema version the app needs: a version number, or "latest" for the newest file in --dir`)
	fs.DurationVar(&f.timeout, "timeout", timeout, timeoutHelp)
}

// need resolves --version. Only "latest" reads the migrations directory.
func (f *gateFlags) need(g *globals) (int64, error) {
	if f.version == "latest" {
		migs, err := g.loadMigrations()
		if err != nil {
			return 0, err
		}
		if len(migs) == 0 {
			return 0, nil // --allow-empty: no files need no version
		}
		return migs[len(migs)-1].Version, nil
	}
	v, err := parseVersion(f.version)
	if err != nil {
		return 0, usagef(fmt.Sprintf("--version %q: want a version number or latest", f.version))
	}
	return v, nil
}

// open resolves --version first (bad flags and files fail before any
// connection), then opens the database for one connection at a time.
func (f *gateFlags) open(g *globals) (int64, *sql.DB, dialect.Dialect, error) {
	need, err := f.need(g)
	if err != nil {
		return 0, nil, nil, err
	}
	db, d, err := g.openDB()
	if err != nil {
		return 0, nil, nil, err
	}
	// A check uses one connection; keep it between polls.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return need, db, d, nil
}

// reason is a status's reason, with what to do about a crash marker.
func reason(st gate.Status) string {
	if len(st.Interrupted) > 0 {
		return st.Reason + `; see "shiplock status", then "shiplock repair"`
	}
	return st.Reason
}

// notReadyError is an await that ran out of time: exit 6 (through the
// context error it wraps), with the reason as its message.
type notReadyError struct {
	msg string
	err *gate.NotReadyError
}

func (e *notReadyError) Error() string { return e.msg }
func (e *notReadyError) Unwrap() error { return e.err }

type awaitFlags struct {
	gate           gateFlags
	terminationLog string
}

func newAwaitCmd(g *globals) *cobra.Command {
	f := &awaitFlags{}
	cmd := &cobra.Command{
		Use:   "await [--version V|latest] [--timeout D]",
		Short: "Wait until the schema reaches the version the app needs (read-only; an initContainer)",
		Long: `Wait until the database schema is at or past the version the app needs,
then exit 0: the initContainer of a Deployment whose migrations run in a Job,
so that replicas never start on an old schema and never contend for the
migration lock.

The version is --version V, or "latest" (the default): the newest migration
file in --dir, so an image that carries the app and its migrations waits for
exactly its own schema. With --version V no migrations directory is needed.
A database ahead of that version is ready (the app was rolled back); a
migration run statement by statement (NO TRANSACTION, or on MySQL a file
with DDL) in progress (its runner alive) is waited for and
named in the log; one left interrupted half-way by a runner that is gone (a
crash marker) is never ready.

await only reads goose_db_version and shiplock_versions, with no lock:
credentials allowed to SELECT from those two tables suffice. It polls with
jittered backoff from 25ms to 1s, retries what can heal (the database is not
up yet, refuses connections, is starting) and logs each distinct error once.
It fails at once on what cannot heal: bad credentials or a missing database
(exit 5), a missing permission (exit 1). When --timeout runs out it exits 6
with the reason ("at 5, need 7"), also written to the termination log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context(), g) },
	}
	f.gate.register(cmd.Flags(), 10*time.Minute, "give up after this long (exit 6); 0 waits without limit")
	cmd.Flags().StringVar(&f.terminationLog, "termination-log", "", "write the outcome here, never through a symbolic link (default /dev/termination-log when it exists; env SHIPLOCK_TERMINATION_LOG)")
	return cmd
}

func (f *awaitFlags) run(ctx context.Context, g *globals) error {
	if f.gate.timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	err := f.await(ctx, g)
	g.writeTerminationLog(f.terminationLog, nil, err)
	return err
}

func (f *awaitFlags) await(ctx context.Context, g *globals) error {
	need, db, d, err := f.gate.open(g)
	if err != nil {
		return err
	}
	defer db.Close()
	if f.gate.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.gate.timeout)
		defer cancel()
	}
	start := time.Now()
	st, err := gate.Await(ctx, db, d, need, gate.AwaitOptions{Logger: g.log})
	var nr *gate.NotReadyError
	switch {
	case errors.As(err, &nr):
		why := reason(nr.Status)
		if nr.Err != nil {
			why = "last check failed: " + nr.Err.Error()
		} else if why == "" {
			why = "no check completed"
		}
		return &notReadyError{msg: fmt.Sprintf("schema not ready after %s: %s", round(time.Since(start)), why), err: nr}
	case err != nil:
		return err
	}
	fmt.Fprintf(g.streams.Out, "schema ready: %s\n", st.Reason)
	return nil
}
