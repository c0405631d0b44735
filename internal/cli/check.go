package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/exitcode"
	"github.com/shiplock/shiplock/gate"
)

type checkFlags struct{ gate gateFlags }

func newCheckCmd(g *globals) *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:   "check [--version V|latest]",
		Short: "Check once whether the schema has reached the version the app needs (exit 0 or 8)",
		Long: `Check once, read-only, whether the database schema is at or past the version
the app needs, as "await" does but without waiting: usable as an exec
readiness probe. It prints the reason on stdout and exits 0 when ready, 8
when the schema is behind (the reason names a migration run statement by
statement, NO TRANSACTION or on MySQL a file with DDL, in progress: its
runner pid, since when, statement k of n) or a migration was
left interrupted half-way by a runner that is gone (a crash marker).

The version is --version V, or "latest" (the default): the newest migration
file in --dir. Credentials allowed to SELECT from goose_db_version and
shiplock_versions suffice. A database that cannot be reached (refused, reset
or closed connection, shutting down) or does not answer within --timeout
exits 6; bad credentials or a missing database exit 5.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd.Context(), g) },
	}
	f.gate.register(cmd.Flags(), 10*time.Second, "give up on the check after this long (exit 6)")
	return cmd
}

func (f *checkFlags) run(ctx context.Context, g *globals) error {
	if f.gate.timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	need, db, d, err := f.gate.open(g)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, f.gate.timeout)
	defer cancel()
	st, err := gate.Check(ctx, db, d, need)
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	if !st.Ready {
		fmt.Fprintf(g.streams.Out, "not ready: %s\n", reason(st))
		return &exitError{code: exitcode.Pending}
	}
	fmt.Fprintf(g.streams.Out, "ready: %s\n", st.Reason)
	return nil
}
