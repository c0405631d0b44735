package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// errCommandTimeout is the cause of a command's context when its
// --timeout runs out.
var errCommandTimeout = errors.New("command timeout")

// registerTimeout adds --timeout, the deadline of the whole command (as
// goose's -timeout), to the commands that talk to the database.
func (g *globals) registerTimeout(fs *pflag.FlagSet) {
	fs.DurationVar(&g.timeout, "timeout", 0, "give up on the whole command after this long, the wait for the database and the lock included (goose's -timeout): a running migration is cancelled and rolled back (one run statement by statement, as NO TRANSACTION or MySQL DDL, keeps the statements that completed, recorded, and the next up resumes it), exit 6; 0: no limit")
}

// startDeadline bounds cmd's context by --timeout.
func (g *globals) startDeadline(cmd *cobra.Command) {
	if g.timeout <= 0 {
		return
	}
	ctx, cancel := context.WithTimeoutCause(cmd.Context(), g.timeout, errCommandTimeout)
	g.cmdCtx = ctx
	context.AfterFunc(g.ctx, cancel) // released with Main's context
	cmd.SetContext(ctx)
}

// timedOut reports whether the command's --timeout ran out.
func (g *globals) timedOut() bool {
	return g.cmdCtx != nil && errors.Is(context.Cause(g.cmdCtx), errCommandTimeout)
}
