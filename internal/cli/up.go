package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/shiplock/shiplock/migrate"
)

type upFlags struct {
	run          runFlags
	to           int64
	byOne        bool
	output       string
	noVersioning bool
	safety       string
}

func newUpCmd(g *globals) *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Apply pending migrations under the lock shared by all runners",
		Long: `Apply pending migrations.

When nothing is pending, up returns after one read-only check and takes no
lock. Otherwise it takes the migration lock (PostgreSQL: goose's advisory
lock id, so goose runners using goose's session locker are excluded too;
MySQL and MariaDB: GET_LOCK, which goose's table locker does not see; SQLite:
a flock), re-reads the state, refuses to run when an
applied file was edited or a pending file is out of order, and applies the
plan in the chosen transaction mode.

Built to be a container's whole command: it first waits for the database
(--wait-timeout), bounds each migration's lock waits (--ddl-lock-timeout,
retried --ddl-retries times), and writes a one-line summary to the
Kubernetes termination log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.runUp(cmd.Context(), g) },
	}
	fs := cmd.Flags()
	f.run.register(fs)
	fs.Var(newVersionValue(&f.to), "to", "apply up to and including this version (default: all)")
	fs.BoolVar(&f.byOne, "by-one", false, "apply only the next pending migration")
	fs.StringVarP(&f.output, "output", "o", "text", "result format: text or json")
	registerNoVersioning(fs, &f.noVersioning)
	g.registerTimeout(fs)
	fs.StringVar(&f.safety, "check-safety", "off", "lint the pending files before applying (shiplock lint's rules): off, warn (log the findings) or error (refuse, exit 3, on an error finding)")
	return cmd
}

func (f *upFlags) runUp(ctx context.Context, g *globals) error {
	if err := checkNoVersioning(f.noVersioning, &f.run); err != nil {
		return err
	}
	if f.safety != "off" && f.safety != "warn" && f.safety != "error" {
		return usagef(fmt.Sprintf("--check-safety %q: want off, warn or error", f.safety))
	}
	return g.mutate(ctx, &f.run, f.output, func(m *migrate.Migrator) (*migrate.Result, error) {
		o := migrate.UpOptions{To: f.to, ByOne: f.byOne}
		if f.safety != "off" {
			o.Check = safetyCheck(g, f.safety, m.Migrations())
		}
		if f.noVersioning {
			return m.UpUnversioned(ctx, o)
		}
		return m.Up(ctx, o)
	})
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return usagef(fmt.Sprintf("--output %q: want text or json", o))
	}
	return nil
}

// resultJSON is the JSON form of a run's result.
type resultJSON struct {
	From       int64                 `json:"from"`
	To         int64                 `json:"to"`
	Applied    []migrationResultJSON `json:"applied"`
	DurationMS float64               `json:"duration_ms"`
	LockWaitMS float64               `json:"lock_wait_ms"`
	Ahead      []int64               `json:"ahead,omitempty"`
	Error      string                `json:"error,omitempty"`
}

type migrationResultJSON struct {
	Version    int64   `json:"version"`
	Source     string  `json:"source"`
	Direction  string  `json:"direction"`
	DurationMS float64 `json:"duration_ms"`
	Empty      bool    `json:"empty,omitempty"`
}

func printResult(w io.Writer, format string, res *migrate.Result, err error) {
	if res == nil {
		return
	}
	if format == "json" {
		out := resultJSON{From: res.From, To: res.To, Applied: []migrationResultJSON{}, DurationMS: ms(res.Duration), LockWaitMS: ms(res.LockWait), Ahead: res.Ahead}
		for _, r := range res.Applied {
			out.Applied = append(out.Applied, migrationResultJSON{Version: r.Version, Source: r.Source, Direction: r.Direction.String(), DurationMS: ms(r.Duration), Empty: r.Empty})
		}
		if err != nil {
			out.Error = "see stderr"
		}
		writeJSON(w, out)
		return
	}
	// Each migration was logged (stderr) as it finished; stdout gets the
	// outcome.
	if len(res.Ahead) > 0 {
		fmt.Fprintf(w, "warning: the database is ahead of these files: applied versions %v have no migration file\n", res.Ahead)
	}
	fmt.Fprintln(w, summary(res, err))
}
