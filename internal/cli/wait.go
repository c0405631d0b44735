package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/dbwait"
)

type waitCmdFlags struct{ wait waitFlags }

func newWaitCmd(g *globals) *cobra.Command {
	f := &waitCmdFlags{}
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until the database accepts connections (connect, authenticate, SELECT 1)",
		Long: `Wait until the database really accepts work: connect, authenticate and run
SELECT 1, each attempt bounded, with jittered exponential backoff from 25ms
to 100ms, so work starts within tens of milliseconds of the server being ready.
It retries what can heal (connection refused, a name that does not resolve
yet, timeouts, a server starting up or out of connections) and fails at once
on what cannot: a wrong password or a missing database (exit 5), TLS
misconfiguration (exit 1). Exit 6 when the time runs out. up, down, redo and
repair do this first by themselves.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.runWait(cmd.Context(), g) },
	}
	f.wait.register(cmd.Flags(), 2*time.Minute)
	return cmd
}

func (f *waitCmdFlags) runWait(ctx context.Context, g *globals) error {
	db, d, err := g.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := dbwait.Wait(ctx, db, d, f.wait.options(g))
	if err != nil {
		return err
	}
	fmt.Fprintf(g.streams.Out, "database ready after %d attempts in %s\n", res.Attempts, round(res.Waited))
	return nil
}
